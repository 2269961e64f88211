"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

Kept free of heavy imports: Airflow calls this whenever it discovers providers.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mlprod import __version__
from airflow_provider_mlprod.config import OPTIONS, SECTION

PACKAGE_NAME = "airflow-provider-mlprod"
INTEGRATION = "ML production guardrails (mlprod)"

_URL_ONLY_FIELDS = ["host", "port", "login", "schema"]
_ALERT_COMMON_FIELDS = {
    "timeout": {
        "label": "Request timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 10, "minimum": 0},
    },
    "total_timeout": {
        "label": "Delivery deadline (seconds)",
        "description": "Most one alert may take on this channel, all attempts and retry waits included.",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 0},
    },
    "max_attempts": {
        "label": "Attempts per alert",
        "schema": {"type": ["integer", "null"], "default": 4, "minimum": 1},
    },
}


def _connection_types() -> list[dict[str, Any]]:
    hooks = "airflow_provider_mlprod.hooks"
    return [
        {
            "connection-type": "mlprodstore",
            "hook-class-name": f"{hooks}.store.MetricsStoreHook",
            "hook-name": "ML metrics store (mlprod)",
            "ui-field-behaviour": {
                "hidden-fields": _URL_ONLY_FIELDS,
                "relabeling": {"password": "Database password (merged into the URL)"},
                "placeholders": {
                    "extra": '{"sqlalchemy_url": "postgresql+psycopg2://mlprod@db:5432/mlprod"}'
                },
            },
            "conn-fields": {
                "sqlalchemy_url": {
                    "label": "SQLAlchemy URL (without password)",
                    "description": "e.g. postgresql+psycopg2://mlprod@db:5432/mlprod or sqlite:////data/mlprod.db",
                    "schema": {"type": ["string", "null"]},
                },
            },
        },
        {
            "connection-type": "mlprodslack",
            "hook-class-name": f"{hooks}.alert_channels.SlackWebhookChannelHook",
            "hook-name": "Slack incoming webhook (mlprod alerts)",
            "ui-field-behaviour": {
                "hidden-fields": _URL_ONLY_FIELDS,
                "relabeling": {"password": "Webhook URL"},
                "placeholders": {"password": "https://hooks.slack.com/services/T000/B000/XXXX"},
            },
            "conn-fields": dict(_ALERT_COMMON_FIELDS),
        },
        {
            "connection-type": "mlprodteams",
            "hook-class-name": f"{hooks}.alert_channels.TeamsWebhookChannelHook",
            "hook-name": "Microsoft Teams workflow webhook (mlprod alerts)",
            "ui-field-behaviour": {
                "hidden-fields": _URL_ONLY_FIELDS,
                "relabeling": {"password": "Workflow webhook URL"},
                "placeholders": {"password": "https://prod-00.westus.logic.azure.com/workflows/..."},
            },
            "conn-fields": dict(_ALERT_COMMON_FIELDS),
        },
        {
            "connection-type": "mlprodwebhook",
            "hook-class-name": f"{hooks}.alert_channels.JsonWebhookChannelHook",
            "hook-name": "JSON webhook (mlprod alerts)",
            "ui-field-behaviour": {
                "hidden-fields": _URL_ONLY_FIELDS,
                "relabeling": {"password": "Webhook URL"},
                "placeholders": {"password": "https://alerts.example.com/hooks/ml"},
            },
            "conn-fields": {
                **_ALERT_COMMON_FIELDS,
                "signing_secret": {
                    "label": "HMAC-SHA256 signing secret",
                    "description": "When set, each request carries a signature of its body.",
                    "schema": {"type": ["string", "null"], "format": "password"},
                },
                "headers": {
                    "label": "Extra HTTP headers (JSON object)",
                    "schema": {"type": ["object", "null"]},
                },
            },
        },
        {
            "connection-type": "mlprodpagerduty",
            "hook-class-name": f"{hooks}.alert_channels.PagerDutyChannelHook",
            "hook-name": "PagerDuty Events API v2 (mlprod alerts)",
            "ui-field-behaviour": {
                "hidden-fields": _URL_ONLY_FIELDS,
                "relabeling": {"password": "Integration (routing) key"},
                "placeholders": {},
            },
            "conn-fields": {
                **_ALERT_COMMON_FIELDS,
                "events_url": {
                    "label": "Events API URL",
                    "schema": {
                        "type": ["string", "null"],
                        "default": "https://events.pagerduty.com/v2/enqueue",
                        "format": "url",
                    },
                },
            },
        },
        {
            "connection-type": "mlprodduckdb",
            "hook-class-name": f"{hooks}.duckdb.DuckDBHook",
            "hook-name": "DuckDB (mlprod drift profiles)",
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "login", "password", "port"],
                "relabeling": {"host": "Database file (empty: in memory, for files)"},
                "placeholders": {"extra": '{"config": {"threads": 2}, "read_only": true}'},
            },
        },
    ]


def _config() -> dict[str, Any]:
    return {
        SECTION: {
            "description": "Settings of airflow-provider-mlprod (metrics store, reports, alert channels).",
            "options": {
                option.name: {
                    "description": option.description,
                    "version_added": None,
                    "type": "string",
                    "example": option.example,
                    "default": option.default,
                }
                for option in OPTIONS
            },
        }
    }


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow: package, hooks, connection types, configuration, plugin, CLI."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "ML production guardrails",
        "description": (
            "Guardrails for ML pipelines: data validation with Great Expectations, drift detection, "
            "model gates and promotion, monitoring and alerts."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://pypi.org/project/airflow-provider-mlprod/",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_mlprod.hooks.store",
                    "airflow_provider_mlprod.hooks.alert_channels",
                    "airflow_provider_mlprod.hooks.duckdb",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_mlprod.operators.gate",
                    "airflow_provider_mlprod.operators.registry",
                    "airflow_provider_mlprod.operators.validation",
                    "airflow_provider_mlprod.operators.alerts",
                    "airflow_provider_mlprod.operators.drift",
                    "airflow_provider_mlprod.operators.monitoring",
                    "airflow_provider_mlprod.operators.outputs",
                    "airflow_provider_mlprod.operators.serving",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_mlprod.sensors.freshness",
                    "airflow_provider_mlprod.sensors.ground_truth",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_mlprod.triggers.freshness"],
            }
        ],
        "notifications": ["airflow_provider_mlprod.notifications.mlprod.MlprodNotifier"],
        "extra-links": ["airflow_provider_mlprod.operators.reports.ReportLink"],
        "connection-types": _connection_types(),
        "config": _config(),
        "plugins": [{"name": "mlprod", "plugin-class": "airflow_provider_mlprod.plugin.MlprodPlugin"}],
        "cli": ["airflow_provider_mlprod.cli.definition.get_cli_commands"],
    }

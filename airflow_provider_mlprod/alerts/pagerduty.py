"""PagerDuty Events API v2 channel: trigger and resolve incidents with a stable dedup key.

Trigger event (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/)::

    {"routing_key": "<integration key>", "event_action": "trigger", "dedup_key": "<alert.dedup_key>",
     "client": "airflow-provider-mlprod",
     "payload": {"summary": "<title: summary, <= 1024 chars>", "source": "<alert.source>",
                 "severity": "critical|error|warning|info", "timestamp": "<ISO 8601>",
                 "component": "<task_id>", "group": "<dag_id>", "class": "mlprod-alert",
                 "custom_details": {"summary": ..., "facts": {...}, "dag_id": ..., "run_id": ...,
                                    "task_id": ...}},
     "links": [{"href": "<url>", "text": "<label>"}, ...]}

A resolve event carries only ``routing_key``, ``event_action: "resolve"`` and ``dedup_key``; it closes
the incident the trigger with the same key opened. PagerDuty answers 202; 429 and 5xx are retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import require_http_url
from airflow_provider_mlprod.alerts.message import SEVERITIES, Alert, truncate_text
from airflow_provider_mlprod.exceptions import ConfigurationError

KIND = "pagerduty"

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")

#: Alert severity -> PagerDuty event severity (override per target with ``severity_map``).
SEVERITY_MAP: dict[str, str] = {"info": "info", "warning": "warning", "critical": "critical"}

SUMMARY_MAX = 1024
#: Largest event sent, in bytes of JSON (the Events API v2 refuses events above 512 KB).
EVENT_MAX_BYTES = 500_000
#: (custom_details summary, fact value, fact count) limits tried in order until the event fits.
SHRINK_STEPS: tuple[tuple[int, int, int], ...] = (
    (10**9, 10**9, 10**9),
    (100_000, 10_000, 1_000),
    (20_000, 2_000, 200),
    (5_000, 500, 50),
    (1_000, 100, 10),
)
SOURCE_MAX = 255
CLIENT_NAME = "airflow-provider-mlprod"


@dataclass(frozen=True)
class PagerDutyTarget:
    """A PagerDuty Events API v2 integration. ``repr`` does not show the routing key.

    :param routing_key: the integration key of the service.
    :param events_url: the enqueue endpoint (configurable for tests and regional accounts).
    :param severity_map: alert severity -> PagerDuty severity, replacing :data:`SEVERITY_MAP` entries
        (e.g. ``{"warning": "error"}``).
    """

    routing_key: str = field(repr=False)
    events_url: str = DEFAULT_EVENTS_URL
    severity_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.routing_key, str) or not self.routing_key.strip():
            raise ConfigurationError(f"{KIND} target: routing_key is empty")
        require_http_url(self.events_url, KIND, what="events_url")
        for severity, mapped in self.severity_map.items():
            if severity not in SEVERITIES:
                raise ConfigurationError(
                    f"{KIND} target: severity_map key {severity!r} is not one of {SEVERITIES}"
                )
            if mapped not in PAGERDUTY_SEVERITIES:
                raise ConfigurationError(
                    f"{KIND} target: severity_map[{severity!r}] = {mapped!r} "
                    f"is not one of {PAGERDUTY_SEVERITIES}"
                )

    def pagerduty_severity(self, severity: str) -> str:
        """Map an alert severity to the PagerDuty event severity of this target."""
        return {**SEVERITY_MAP, **self.severity_map}[severity]


def build_pagerduty_payload(target: PagerDutyTarget, alert: Alert) -> dict[str, Any]:
    """Build the Events API v2 event for ``alert`` (trigger or resolve), at most
    :data:`EVENT_MAX_BYTES` of JSON: when larger, the summary and fact values in ``custom_details``
    are cut (then facts dropped) step by step, and ``custom_details.truncated`` says what was cut."""
    for summary_max, value_max, max_facts in SHRINK_STEPS:
        event = _event(target, alert, summary_max, value_max, max_facts)
        if len(json.dumps(event).encode("utf-8")) <= EVENT_MAX_BYTES:
            break
    return event


def _event(
    target: PagerDutyTarget, alert: Alert, summary_max: int, value_max: int, max_facts: int
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": target.routing_key,
        "event_action": alert.action,
        "dedup_key": alert.dedup_key,
    }
    if alert.action == "resolve":
        return event
    headline = f"{alert.title}: {alert.summary}" if alert.summary else alert.title
    payload: dict[str, Any] = {
        "summary": truncate_text(" ".join(headline.split()), SUMMARY_MAX),
        "source": truncate_text(alert.source, SOURCE_MAX),
        "severity": target.pagerduty_severity(alert.severity),
        "timestamp": alert.created_at.isoformat(),
        "class": "mlprod-alert",
        "custom_details": {
            "summary": truncate_text(alert.summary, summary_max),
            "facts": {
                truncate_text(key, 200): truncate_text(value, value_max)
                for key, value in list(alert.rendered_facts.items())[:max_facts]
            },
            "dag_id": alert.dag_id,
            "run_id": alert.run_id,
            "task_id": alert.task_id,
        },
    }
    if (summary_max, value_max, max_facts) != SHRINK_STEPS[0]:
        payload["custom_details"]["truncated"] = (
            f"shortened to fit PagerDuty's {EVENT_MAX_BYTES // 1000} KB event limit: summary at most "
            f"{summary_max} characters, fact values {value_max}, {min(max_facts, len(alert.facts))} of "
            f"{len(alert.facts)} facts; the task log has the full alert"
        )
    if alert.task_id:
        payload["component"] = alert.task_id
    if alert.dag_id:
        payload["group"] = alert.dag_id
    event["client"] = CLIENT_NAME
    event["payload"] = payload
    if alert.links:
        event["links"] = [{"href": link.url, "text": link.label} for link in alert.links]
    return event

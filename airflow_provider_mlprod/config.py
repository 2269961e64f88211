"""The ``[mlprod]`` configuration section: options, defaults and where the embedded defaults live.

Options are read through Airflow's configuration, so each one can be set in ``airflow.cfg`` or as an
environment variable ``AIRFLOW__MLPROD__<OPTION>``. ``get_provider_info`` declares the same options,
so ``airflow config list`` shows them with their descriptions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SECTION = "mlprod"


@dataclass(frozen=True)
class ConfigOption:
    """One option of the ``[mlprod]`` section."""

    name: str
    default: str
    description: str
    example: str | None = None


OPTIONS: tuple[ConfigOption, ...] = (
    ConfigOption(
        name="store_conn_id",
        default="mlprod_store_default",
        description=(
            "Connection id of the metrics store: an ``mlprodstore`` connection holding a SQLAlchemy URL, "
            "or any Airflow SQL connection (postgres, sqlite, ...). When this is left at its default and "
            "no connection of that id exists, the embedded SQLite store is used where ``embedded_store`` "
            "allows it; otherwise the task fails naming the missing connection."
        ),
        example="mlprod_store_postgres",
    ),
    ConfigOption(
        name="embedded_store_path",
        default="",
        description=(
            "File of the embedded SQLite metrics store, used when no store connection exists. "
            "Empty means ``$AIRFLOW_HOME/mlprod/metrics.db``."
        ),
        example="/data/mlprod/metrics.db",
    ),
    ConfigOption(
        name="embedded_store",
        default="auto",
        description=(
            "When the embedded SQLite store may stand in for a missing store connection: ``auto`` only "
            "for tasks run by the LocalExecutor (the task's ``executor``, else ``[core] executor``) and "
            "by ``dag.test()``, where every task shares one machine; ``true`` always (you know every "
            "worker sees the same file); ``false`` never."
        ),
        example="true",
    ),
    ConfigOption(
        name="report_folder",
        default="",
        description=(
            "Where HTML reports are written: a local folder or any object storage URI that Airflow's "
            "ObjectStoragePath understands (``s3://``, ``gs://``, ...). Empty means "
            "``$AIRFLOW_HOME/mlprod/reports``, used only where every task shares one machine (the "
            "LocalExecutor, ``dag.test()``); elsewhere a task writing a report fails until this is set."
        ),
        example="s3://ml-reports/mlprod",
    ),
    ConfigOption(
        name="alert_conn_ids",
        default="",
        description=(
            "Comma-separated connection ids of the default alert channels (mlprodslack, mlprodteams, "
            "mlprodwebhook, mlprodpagerduty or slackwebhook). Empty means alerts go to the task log."
        ),
        example="mlprod_slack_ml_team,mlprod_pagerduty_oncall",
    ),
)

_DEFAULTS = {option.name: option.default for option in OPTIONS}


def get_option(name: str) -> str:
    """Return the value of ``[mlprod] <name>``, or its declared default."""
    if name not in _DEFAULTS:
        raise KeyError(f"[{SECTION}] has no option {name!r}; known options: {sorted(_DEFAULTS)}")
    from airflow.sdk import conf

    return conf.get(SECTION, name, fallback=_DEFAULTS[name]).strip()


def airflow_home() -> Path:
    """The AIRFLOW_HOME folder, resolved the way Airflow resolves it."""
    return Path(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")))


def store_conn_id() -> str:
    """Connection id of the metrics store (may name a connection that does not exist)."""
    return get_option("store_conn_id")


def default_store_conn_id() -> str:
    """The store connection id that falls back to the embedded store when it does not exist."""
    return _DEFAULTS["store_conn_id"]


def embedded_store_path() -> Path:
    """File of the embedded SQLite metrics store."""
    configured = get_option("embedded_store_path")
    return Path(configured).expanduser() if configured else airflow_home() / "mlprod" / "metrics.db"


def embedded_store_policy() -> str:
    """``[mlprod] embedded_store``: ``auto``, ``true`` or ``false`` (ConfigurationError otherwise)."""
    from airflow_provider_mlprod.exceptions import ConfigurationError

    value = get_option("embedded_store").lower() or "auto"
    if value not in ("auto", "true", "false"):
        raise ConfigurationError(f"[{SECTION}] embedded_store must be auto, true or false, got {value!r}")
    return value


def report_folder() -> str:
    """Where reports are written, as a path or URI string."""
    return get_option("report_folder") or str(airflow_home() / "mlprod" / "reports")


def alert_conn_ids() -> list[str]:
    """Connection ids of the default alert channels; empty means the task log."""
    return [part.strip() for part in get_option("alert_conn_ids").split(",") if part.strip()]

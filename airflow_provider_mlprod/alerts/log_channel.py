"""Log channel: writes an alert readably to a Python logger. The default when nothing is configured.

Under Airflow the logger's records land in the task log. Severity maps onto the log level
(info -> INFO, warning -> WARNING, critical -> ERROR). The text looks like::

    [CRITICAL] Validation failed: orders (2 of 5 expectations)
    2 expectations failed on suite 'orders'.
      evaluated: 5
      failed: 2
      Report: https://reports.example/orders
    dag etl · run manual__1 · task validate · source etl.validate · dedup key mlprod:validation:...
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from airflow_provider_mlprod.alerts.message import Alert

KIND = "log"

DEFAULT_LOGGER_NAME = "airflow_provider_mlprod.alerts"

#: Alert severity -> logging level.
SEVERITY_MAP: dict[str, int] = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


@dataclass(frozen=True)
class LogTarget:
    """A logger to write alerts to.

    :param logger_name: name passed to :func:`logging.getLogger`.
    """

    logger_name: str = DEFAULT_LOGGER_NAME


def render_alert_text(alert: Alert) -> str:
    """Render ``alert`` as a few readable lines of plain text."""
    label = "RESOLVED" if alert.action == "resolve" else alert.severity.upper()
    lines = [f"[{label}] {alert.title}"]
    if alert.summary:
        lines.append(alert.summary)
    lines.extend(f"  {key}: {value}" for key, value in alert.rendered_facts.items())
    lines.extend(f"  {link.label}: {link.url}" for link in alert.links)
    trailer = [part for part in (alert.run_context, f"source {alert.source}") if part]
    trailer.append(f"dedup key {alert.dedup_key}")
    lines.append(" · ".join(trailer))
    return "\n".join(lines)


def build_log_payload(target: LogTarget | None, alert: Alert) -> str:
    """Return the text the log channel writes (``target`` is unused; kept for a uniform signature)."""
    return render_alert_text(alert)

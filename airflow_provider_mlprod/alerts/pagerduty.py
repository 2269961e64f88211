"""PagerDuty Events API v2: trigger and resolve events keyed by the alert's dedup key.

A trigger carries ``payload`` (summary <= 1024 characters, source, severity, timestamp, component,
group, ``custom_details`` with summary, facts and ids) and ``links``; a resolve only the routing key,
``event_action`` and ``dedup_key``. An event over :data:`EVENT_MAX_BYTES` (the API refuses 512 KB)
has its details cut step by step, and ``custom_details.truncated`` says what was cut.
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
SEVERITY_MAP: dict[str, str] = {"info": "info", "warning": "warning", "critical": "critical"}
EVENT_MAX_BYTES = 500_000
#: (custom_details summary, fact value, fact count) limits tried in order until the event fits.
SHRINK_STEPS: tuple[tuple[int, int, int], ...] = (
    (10**9, 10**9, 10**9),
    (100_000, 10_000, 1_000),
    (20_000, 2_000, 200),
    (5_000, 500, 50),
    (1_000, 100, 10),
)


@dataclass(frozen=True)
class PagerDutyTarget:
    """A PagerDuty integration; ``repr`` hides the routing key. ``severity_map`` overrides
    :data:`SEVERITY_MAP` entries (e.g. ``{"warning": "error"}``)."""

    routing_key: str = field(repr=False)
    events_url: str = DEFAULT_EVENTS_URL
    severity_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.routing_key, str) or not self.routing_key.strip():
            raise ConfigurationError(f"{KIND} target: routing_key is empty")
        require_http_url(self.events_url, KIND, what="events_url")
        for severity, mapped in self.severity_map.items():
            if severity not in SEVERITIES or mapped not in PAGERDUTY_SEVERITIES:
                raise ConfigurationError(
                    f"{KIND} target: severity_map {severity!r} -> {mapped!r} must map one of {SEVERITIES} "
                    f"to one of {PAGERDUTY_SEVERITIES}"
                )


def build_pagerduty_payload(target: PagerDutyTarget, alert: Alert) -> dict[str, Any]:
    """The Events API v2 event for ``alert``, at most :data:`EVENT_MAX_BYTES` of JSON."""
    event: dict[str, Any] = {
        "routing_key": target.routing_key,
        "event_action": alert.action,
        "dedup_key": alert.dedup_key,
    }
    if alert.action == "resolve":
        return event
    headline = f"{alert.title}: {alert.summary}" if alert.summary else alert.title
    ids = {"dag_id": alert.dag_id, "run_id": alert.run_id, "task_id": alert.task_id}
    payload: dict[str, Any] = {
        "summary": truncate_text(" ".join(headline.split()), 1024),
        "source": truncate_text(alert.source, 255),
        "severity": {**SEVERITY_MAP, **target.severity_map}[alert.severity],
        "timestamp": alert.created_at.isoformat(),
        "class": "mlprod-alert",
        **({"component": alert.task_id} if alert.task_id else {}),
        **({"group": alert.dag_id} if alert.dag_id else {}),
    }
    event.update(client="airflow-provider-mlprod", payload=payload)
    if alert.links:
        event["links"] = [{"href": link.url, "text": link.label} for link in alert.links]
    for summary_max, value_max, max_facts in SHRINK_STEPS:
        facts = list(alert.rendered_facts.items())[:max_facts]
        details = {
            "summary": truncate_text(alert.summary, summary_max),
            "facts": {truncate_text(key, 200): truncate_text(value, value_max) for key, value in facts},
            **ids,
        }
        if summary_max != SHRINK_STEPS[0][0]:
            details["truncated"] = (
                f"shortened to fit PagerDuty's {EVENT_MAX_BYTES // 1000} KB event limit: summary at most "
                f"{summary_max} characters, fact values {value_max}, {len(facts)} of {len(alert.facts)} "
                "facts; the task log has the full alert"
            )
        payload["custom_details"] = details
        if len(json.dumps(event).encode("utf-8")) <= EVENT_MAX_BYTES:
            break
    return event

"""Tests of the Alert model."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from airflow_provider_mlprod.alerts.message import Alert, AlertLink, render_fact_value, truncate_text
from airflow_provider_mlprod.exceptions import SpecError


def test_to_dict_is_json_safe_and_complete(sample_alert: Alert) -> None:
    data = json.loads(json.dumps(sample_alert.to_dict()))
    assert data["title"] == sample_alert.title
    assert data["severity"] == "critical"
    assert data["action"] == "trigger"
    assert data["facts"] == {"Evaluated": "5", "Failed": "2", "Null share": "0.125", "Suite": "orders"}
    assert data["links"][0] == {"label": "Report", "url": "https://reports.example/orders"}
    assert (data["dag_id"], data["run_id"], data["task_id"]) == ("etl", "manual__2026-01-01", "validate")
    assert data["source"] == "etl.validate"
    assert data["created_at"] == "2026-01-01T12:00:00+00:00"


def test_derived_dedup_key_is_stable_across_runs_and_differs_by_task() -> None:
    first = Alert(title="Drift", severity="warning", dag_id="d", task_id="t", run_id="r1")
    second = Alert(title="Drift", severity="warning", dag_id="d", task_id="t", run_id="r2")
    other_task = Alert(title="Drift", severity="warning", dag_id="d", task_id="u", run_id="r1")
    assert first.dedup_key == second.dedup_key
    assert first.dedup_key != other_task.dedup_key
    assert first.dedup_key.startswith("mlprod:")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": " ", "severity": "info"}, "title is empty"),
        ({"title": "x", "severity": "fatal"}, "severity 'fatal'"),
        ({"title": "x", "severity": "info", "action": "ack"}, "action 'ack'"),
        ({"title": "x", "severity": "info", "facts": {"k": [1, 2]}}, "fact 'k' has type list"),
        ({"title": "x", "severity": "info", "created_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"title": "x", "severity": "info", "links": ["https://a.example"]}, "AlertLink"),
    ],
)
def test_invalid_alerts_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Alert(**kwargs)


def test_link_requires_http_url_and_label() -> None:
    with pytest.raises(SpecError, match="must start with http"):
        AlertLink("Report", "file:///etc/passwd")
    with pytest.raises(SpecError, match="label is empty"):
        AlertLink("", "https://a.example")


def test_text_rendering() -> None:
    assert truncate_text("abcdef", 4) == "abc…"
    assert truncate_text("abc", 4) == "abc"
    assert render_fact_value(None) == "n/a"
    assert render_fact_value(True) == "yes"
    assert render_fact_value(0.123456) == "0.1235"


def test_run_context_lists_only_known_ids() -> None:
    assert Alert(title="x", severity="info", dag_id="d").run_context == "dag d"
    assert Alert(title="x", severity="info").run_context == ""
    assert Alert(title="x", severity="info").source == "airflow-provider-mlprod"


def test_over_long_dedup_key_is_hashed_not_refused() -> None:
    long_key = "mlprod:" + "k" * 400
    alert = Alert(title="x", severity="info", dedup_key=long_key)
    same = Alert(title="y", severity="critical", dedup_key=long_key)
    other = Alert(title="x", severity="info", dedup_key=long_key + "z")
    assert alert.dedup_key.startswith("sha256:")
    assert len(alert.dedup_key) <= 255
    assert alert.dedup_key == same.dedup_key != other.dedup_key
    assert Alert(title="x", severity="info", dedup_key="k" * 255).dedup_key == "k" * 255


def test_idempotency_key_is_stable_per_run_and_differs_by_action() -> None:
    first = Alert(title="x", severity="critical", dedup_key="k", run_id="r1")
    retry = Alert(title="x", severity="critical", dedup_key="k", run_id="r1")
    assert first.idempotency_key == retry.idempotency_key
    assert (
        first.idempotency_key
        != Alert(title="x", severity="critical", dedup_key="k", run_id="r2").idempotency_key
    )
    resolve = Alert(title="x", severity="critical", dedup_key="k", run_id="r1", action="resolve")
    assert first.idempotency_key != resolve.idempotency_key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{'evaluated': 10, 'passed': 9, 'failed_critical': 1}", "evaluated 10, passed 9, failed_critical 1"),
        ('{"roc_auc": 0.91234, "ok": true}', "roc_auc 0.9123, ok yes"),
        ({"rows": 5, "drift": None}, "rows 5, drift n/a"),
        ("['a', 'b']", "a, b"),
        ("None", None),
        ("{not a literal", "{not a literal"),
        ("plain text", "plain text"),
        (3, 3),
        (0.5, 0.5),
    ],
)
def test_readable_fact_turns_template_reprs_into_text(value, expected) -> None:
    from airflow_provider_mlprod.alerts.message import readable_fact

    assert readable_fact(value) == expected

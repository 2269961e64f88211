"""MlprodNotifier as the AsyncCallback of a DeadlineAlert: the example DAG, its serialised callback, and
the callback run the way Airflow's triggerer runs it (CallbackTrigger), without any metrics store.

A whole run of the example DAG is in tests/test_airflow_runtime.py (scheduler and triggerer through
REST): on Airflow 3.3.2 ``dag.test()`` fails at the end of any run of a DAG that has a deadline (it
hands the SDK's DeadlineAlert to ``DeadlineAlertModel.get_by_id``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "mlprod_deadline_alert.py"
HOOK_PATH = "/hooks/deadline-path-secret-7070"
NOTIFIER_PATH = "airflow_provider_mlprod.notifications.mlprod.MlprodNotifier"


@pytest.fixture
def deadline_dag(airflow_db):
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["mlprod_deadline_alert"]


def _deadline(dag):
    deadlines = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    [deadline] = deadlines
    return deadline


def test_the_deadline_callback_is_the_notifier_with_serialisable_kwargs(deadline_dag):
    from airflow.sdk import AsyncCallback
    from airflow.serialization.serialized_objects import DagSerialization

    deadline = _deadline(deadline_dag)
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == NOTIFIER_PATH
    json.dumps(deadline.callback.kwargs)  # plain values only
    serialised = json.dumps(DagSerialization.to_dict(deadline_dag))
    assert NOTIFIER_PATH in serialised


def _triggerer_context(run_id: str) -> dict:
    """The context the scheduler hands the triggerer (the REST API's run model, and the deadline)."""
    return {
        "dag_run": {
            "dag_run_id": run_id,
            "dag_id": "mlprod_deadline_alert",
            "state": "running",
            "queued_at": "2026-01-01T00:00:00Z",
            "conf": {"work_seconds": 45},
        },
        "deadline": {"id": "0193-deadline", "deadline_time": "2026-01-01T00:00:30+00:00"},
    }


def test_the_triggerer_runs_the_callback_and_the_alert_goes_out_without_a_store(
    monkeypatch, httpserver: HTTPServer, deadline_dag
):
    from airflow.triggers.callback import CallbackTrigger

    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEADLINE_HOOK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for(HOOK_PATH)}),
    )
    monkeypatch.setenv("AIRFLOW__MLPROD__ALERT_CONN_IDS", "deadline_hook")
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE", "false")  # the triggerer has no store
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080")
    deadline = _deadline(deadline_dag)
    trigger = CallbackTrigger(
        deadline.callback.path,
        {**deadline.callback.kwargs, "context": _triggerer_context("manual__2026-01-01T00:00:00")},
    )

    async def run() -> list:
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(run())

    assert [event["state"] for event in events] == ["running", "success"], events
    [(request, _)] = httpserver.log
    body = json.loads(request.get_data())
    assert body["title"] == "DAG mlprod_deadline_alert: run manual__2026-01-01T00:00:00 missed its deadline"
    assert body["severity"] == "warning"
    assert body["run_id"] == "manual__2026-01-01T00:00:00"
    assert body["facts"]["Deadline"] == "2026-01-01T00:00:30+00:00"
    assert {
        "label": "Run",
        "url": "http://airflow.example:8080/dags/mlprod_deadline_alert/runs/manual__2026-01-01T00%3A00%3A00",
    } in body["links"]
    assert "downstream dashboards" in body["summary"]
    assert "Idempotency-Key" in request.headers

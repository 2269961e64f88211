"""SendAlertOperator under a partial outage: a channel down for one whole try gets the alert on the
task's retry, and the channels that already had it get it once."""

from __future__ import annotations

import json
import threading

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SLACK_PATH = "/services/T0PARTIAL/B0PARTIAL/partialSlackToken77"
HOOK_PATH = "/hooks/partial-outage-path-5151"

DAG_SOURCE = """
from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_mlprod.operators.alerts import SendAlertOperator


@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def build():
    SendAlertOperator(
        task_id="send", title="Orders late", severity="critical",
        alert_conn_ids=["partial_slack", "partial_hook"], store_conn_id="partial_store",
        retries={retries}, retry_delay=timedelta(seconds=0),
    )


build()
"""


@pytest.fixture
def partial_outage(monkeypatch, httpserver: HTTPServer, sqlite_url: str) -> dict[str, list[int]]:
    """Slack always answers; the webhook answers 503 to its first two requests (one whole try of
    two attempts), then 200. Returns the status codes each path answered."""
    answered: dict[str, list[int]] = {SLACK_PATH: [], HOOK_PATH: []}
    lock = threading.Lock()

    def answer(request: Request) -> Response:
        with lock:
            codes = answered[request.path]
            status = 503 if request.path == HOOK_PATH and len(codes) < 2 else 200
            codes.append(status)
        return Response("down" if status == 503 else "ok", status=status)

    httpserver.expect_request(SLACK_PATH).respond_with_handler(answer)
    httpserver.expect_request(HOOK_PATH).respond_with_handler(answer)
    fast = {"timeout": 2, "max_attempts": 2}
    connections = {
        "partial_slack": {
            "conn_type": "mlprod_slack",
            "password": httpserver.url_for(SLACK_PATH),
            "extra": fast,
        },
        "partial_hook": {
            "conn_type": "mlprod_webhook",
            "password": httpserver.url_for(HOOK_PATH),
            "extra": fast,
        },
        "partial_store": {"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": sqlite_url}},
    }
    for conn_id, fields in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return answered


@pytest.mark.dagrun
def test_a_channel_down_for_a_whole_try_gets_the_alert_on_the_retry_and_the_others_once(
    dag_file, partial_outage
):
    dag = dag_file("alert_partial_outage", DAG_SOURCE.format(dag_id="alert_partial_outage", retries=1))

    dr = dag.test()

    assert dr.state == "success"
    [ti] = dr.get_task_instances()
    assert ti.try_number == 2
    assert partial_outage[HOOK_PATH] == [503, 503, 200]
    assert partial_outage[SLACK_PATH] == [200]  # suppressed on the retry: it had it


@pytest.mark.dagrun
def test_without_retries_left_a_partial_delivery_is_a_success(dag_file, partial_outage):
    dag = dag_file("alert_partial_last_try", DAG_SOURCE.format(dag_id="alert_partial_last_try", retries=0))

    dr = dag.test()

    assert dr.state == "success"
    assert partial_outage[HOOK_PATH] == [503, 503]
    assert partial_outage[SLACK_PATH] == [200]

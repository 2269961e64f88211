"""SendAlertOperator in real DAG runs: templating, summaries, partial and total failure, 429, secrets."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Response

from airflow_provider_mlprod.operators.alerts import SendAlertOperator
from airflow_provider_mlprod.store.metrics_store import MetricsStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SLACK_PATH = "/services/T0OPSLACK/B0OPHOOK/opSlackToken4242424242"
HOOK_PATH = "/hooks/operator-path-secret-9911"
SIGNING_SECRET = "operator-signing-secret-31"
ROUTING_KEY = "R0UTEKEY0operator0123456789abcd"
SECRETS = ("opSlackToken4242424242", "T0OPSLACK", "operator-path-secret-9911", SIGNING_SECRET, ROUTING_KEY)

DAG_HEAD = """
from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_mlprod.operators.alerts import SendAlertOperator


@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
     params={{"table": "orders"}})
def build():
"""
DAG_TAIL = """

build()
"""


def _source(dag_id: str, body: str) -> str:
    indented = "\n".join(f"    {line}" if line else "" for line in body.strip("\n").splitlines())
    return DAG_HEAD.format(dag_id=dag_id) + indented + DAG_TAIL


@pytest.fixture
def store_url(monkeypatch, sqlite_url: str) -> str:
    """A metrics store of this test's own, as the connection ``alert_store``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": sqlite_url}}),
    )
    return sqlite_url


@pytest.fixture
def channels(monkeypatch, httpserver: HTTPServer) -> dict[str, str]:
    """Slack, signed webhook and PagerDuty connections on the local server, with fast retries."""
    fast = {"timeout": 2, "max_attempts": 2}
    for conn_id, fields in {
        "op_slack": {"conn_type": "mlprod_slack", "password": httpserver.url_for(SLACK_PATH), "extra": fast},
        "op_hook": {
            "conn_type": "mlprod_webhook",
            "password": httpserver.url_for(HOOK_PATH),
            "extra": {**fast, "signing_secret": SIGNING_SECRET},
        },
        "op_pd": {
            "conn_type": "mlprod_pagerduty",
            "password": ROUTING_KEY,
            "extra": {**fast, "events_url": httpserver.url_for("/v2/enqueue")},
        },
    }.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return {"op_slack": SLACK_PATH, "op_hook": HOOK_PATH, "op_pd": "/v2/enqueue"}


def _deliveries(store_url: str) -> list[dict]:
    engine = sa.create_engine(store_url)
    try:
        return MetricsStore(engine).alert_deliveries()
    finally:
        engine.dispose()


def _xcom(dr, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=dr.run_id, dag_ids=dr.dag_id, task_ids=task_id, key="return_value")
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


#: The local test server logs each request line (with the path) itself; that is not product output.
TEST_SERVER_LOGGER = "werkzeug"


def _without_test_server_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if f"[{TEST_SERVER_LOGGER}]" not in line)


def _task_states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


SEND_TWO = """
SendAlertOperator(
    task_id="send",
    title="Late data: {{ params.table }}",
    text="run {{ run_id }}",
    severity="warning",
    facts={"table": "{{ params.table }}", "rows": 0},
    links={"Runbook": "https://runbooks.example/{{ params.table }}"},
    alert_conn_ids=["op_slack", "op_hook"],
    store_conn_id="alert_store",
)
"""


@pytest.mark.dagrun
def test_templated_alert_with_one_failing_channel_succeeds(dag_file, httpserver, channels, store_url):
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    httpserver.expect_request(HOOK_PATH).respond_with_data("down", status=500)
    dag = dag_file("alert_partial", _source("alert_partial", SEND_TWO))

    dr = dag.test()

    assert dr.state == "success"
    report = _xcom(dr, "send")
    assert report["title"] == "Late data: orders"
    assert report["delivered"] == ["op_slack"]
    assert report["failed"] == ["op_hook"]
    failed = next(result for result in report["results"] if result["channel"] == "op_hook")
    assert (failed["attempts"], failed["status_code"]) == (2, 500)
    slack_body = json.loads(next(r for r, _ in httpserver.log if r.path == SLACK_PATH).get_data(as_text=True))
    rendered = json.dumps(slack_body)
    assert "Late data: orders" in rendered
    assert "https://runbooks.example/orders" in rendered
    assert {(row["channel"], row["delivered"]) for row in _deliveries(store_url)} == {
        ("op_slack", True),
        ("op_hook", False),
    }


@pytest.mark.dagrun
def test_all_channels_refusing_fails_the_task_finally_naming_each(
    dag_file, httpserver, channels, store_url, capfd, caplog
):
    httpserver.expect_request(SLACK_PATH).respond_with_data("no such hook", status=404)
    httpserver.expect_request(HOOK_PATH).respond_with_data("forbidden", status=403)
    body = SEND_TWO.replace('"warning"', '"critical"').replace(
        'store_conn_id="alert_store",', 'store_conn_id="alert_store", retries=2,'
    )
    dag = dag_file("alert_all_refused", _source("alert_all_refused", body))

    with caplog.at_level(logging.ERROR, logger="airflow_provider_mlprod"):
        dr = dag.test()

    assert dr.state == "failed"
    assert _task_states(dr) == {"send": "failed"}  # final: retries=2 are not used
    report = _xcom(dr, "send")  # the report is pushed before the task fails
    assert report["failed"] == ["op_slack", "op_hook"]
    task_error = capfd.readouterr().out  # the task's exception, as the task log prints it
    assert "AirflowFailException" in task_error
    assert "channel 'op_slack' (slack): HTTP 404" in task_error
    assert "channel 'op_hook' (webhook): HTTP 403" in task_error
    rows = _deliveries(store_url)
    assert sorted((row["channel"], row["delivered"], row["status_code"]) for row in rows) == [
        ("op_hook", False, 403),
        ("op_slack", False, 404),
    ]
    assert len(httpserver.log) == 2  # 4xx is not retried, and the task is not retried
    # The undeliverable alert is in the task log in full, at ERROR.
    lost = [r.getMessage() for r in caplog.records if "reached no channel" in r.getMessage()]
    assert len(lost) == 1
    assert "Late data: orders" in lost[0]
    assert "https://runbooks.example/orders" in lost[0]


@pytest.mark.dagrun
def test_outage_longer_than_one_try_is_delivered_by_the_task_retry(dag_file, httpserver, channels, store_url):
    # Each try makes 2 attempts (max_attempts=2); the hook is down for the whole first try.
    for status in (502, 503):
        httpserver.expect_ordered_request(HOOK_PATH).respond_with_data("down", status=status)
    httpserver.expect_ordered_request(HOOK_PATH).respond_with_data("ok")
    body = """
from datetime import timedelta

SendAlertOperator(
    task_id="send", title="Outage", severity="critical", alert_conn_ids=["op_hook"],
    store_conn_id="alert_store", retries=2, retry_delay=timedelta(seconds=0),
)
"""
    dag = dag_file("alert_outage", _source("alert_outage", body))

    dr = dag.test()

    assert dr.state == "success"
    [ti] = dr.get_task_instances()
    assert ti.try_number == 2
    assert len(httpserver.log) == 3
    keys = {request.headers["Idempotency-Key"] for request, _ in httpserver.log}
    assert len(keys) == 1  # the same key on every attempt of both tries
    assert [(row["delivered"], row["status_code"]) for row in _deliveries(store_url)] == [
        (False, 503),
        (True, 200),
    ]


@pytest.mark.dagrun
def test_log_listed_beside_a_connection_is_kept(dag_file, httpserver, channels, store_url, caplog):
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    body = """
SendAlertOperator(
    task_id="send", title="Both places", alert_conn_ids=["log", "op_slack"], store_conn_id="alert_store",
)
"""
    dag = dag_file("alert_log_beside", _source("alert_log_beside", body))

    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        dr = dag.test()

    assert dr.state == "success"
    assert _xcom(dr, "send")["delivered"] == ["log", "op_slack"]
    assert any("[WARNING] Both places" in record.getMessage() for record in caplog.records)


@pytest.mark.dagrun
def test_same_alert_twice_is_sent_once(dag_file, httpserver, channels, store_url):
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    body = """
first = SendAlertOperator(
    task_id="first", title="Orders are late", dedup_key="orders-late",
    alert_conn_ids=["op_slack"], store_conn_id="alert_store",
)
second = SendAlertOperator(
    task_id="second", title="Orders are late", dedup_key="orders-late",
    alert_conn_ids=["op_slack"], store_conn_id="alert_store",
)
first >> second
"""
    dag = dag_file("alert_dedup", _source("alert_dedup", body))

    dr = dag.test()

    assert dr.state == "success"
    assert len(httpserver.log) == 1
    assert _xcom(dr, "first")["delivered"] == ["op_slack"]
    assert _xcom(dr, "second")["suppressed"] == ["op_slack"]


@pytest.mark.dagrun
def test_alert_from_an_upstream_drift_summary_routed_by_severity(dag_file, httpserver, channels, store_url):
    httpserver.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    body = """
@task
def drift():
    return {
        "dataset_drift": True, "drifted_share": 0.5, "drift_share_threshold": 0.3,
        "columns": [
            {"column": "amount", "test": "ks", "statistic": 0.4, "threshold": 0.1, "drifted": True},
            {"column": "country", "test": "psi", "statistic": 0.01, "threshold": 0.2, "drifted": False},
        ],
    }

drift() >> SendAlertOperator(
    task_id="send",
    summary_task_id="drift",
    routing={"critical": ["op_pd", "op_slack"], "warning": ["op_slack"]},
    store_conn_id="alert_store",
    alert_conn_ids=[],
)
"""
    dag = dag_file("alert_summary", _source("alert_summary", body))

    dr = dag.test()

    assert dr.state == "success"
    report = _xcom(dr, "send")
    assert report["title"] == "Data drift: dataset (1 of 2 columns drifted)"
    assert report["severity"] == "warning"
    assert report["delivered"] == ["op_slack"]  # warning goes to Slack only, not PagerDuty
    assert [request.path for request, _ in httpserver.log] == [SLACK_PATH]
    assert report["dedup_key"] == "mlprod:drift:alert_summary:drift:dataset"


@pytest.mark.dagrun
def test_429_retry_after_is_honoured(dag_file, httpserver, channels, store_url):
    httpserver.expect_ordered_request(HOOK_PATH).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "1"})
    )
    httpserver.expect_ordered_request(HOOK_PATH).respond_with_data("ok")
    body = """
SendAlertOperator(task_id="send", title="Busy hook", alert_conn_ids=["op_hook"], store_conn_id="alert_store")
"""
    dag = dag_file("alert_429", _source("alert_429", body))

    dr = dag.test()

    assert dr.state == "success"
    [result] = _xcom(dr, "send")["results"]
    assert (result["status"], result["attempts"], result["waits"]) == ("delivered", 2, [1.0])
    [row] = _deliveries(store_url)
    assert (row["delivered"], row["attempts"], row["status_code"]) == (True, 2, 200)


@pytest.mark.dagrun
def test_missing_summary_or_connection_fails_the_task(dag_file, httpserver, store_url, capfd):
    body = """
@task
def nothing():
    return None

nothing() >> SendAlertOperator(task_id="from_summary", summary_task_id="nothing", store_conn_id="alert_store")
SendAlertOperator(
    task_id="no_conn", title="x", alert_conn_ids=["never_defined"], store_conn_id="alert_store"
)
"""
    dag = dag_file("alert_bad_inputs", _source("alert_bad_inputs", body))

    dr = dag.test()

    states = _task_states(dr)
    assert states["from_summary"] == "failed"
    assert states["no_conn"] == "failed"
    task_errors = capfd.readouterr().out
    assert "task 'nothing' pushed no summary under XCom key 'return_value'" in task_errors
    assert "channel 'never_defined' (unusable)" in task_errors
    assert ("never_defined", False) in {(row["channel"], row["delivered"]) for row in _deliveries(store_url)}


@pytest.mark.dagrun
def test_no_secret_in_logs_output_xcom_or_errors(dag_file, httpserver, channels, store_url, caplog, capfd):
    def echo_secrets(request):
        text = (
            f"rejected {request.url} {request.get_data(as_text=True)} {request.headers} {' '.join(SECRETS)}"
        )
        return Response(text, status=500, headers={"X-Echo": " ".join(SECRETS)})

    for path in channels.values():
        httpserver.expect_request(path).respond_with_handler(echo_secrets)
    body = """
SendAlertOperator(
    task_id="send", title="Leak check", severity="critical",
    alert_conn_ids=["op_slack", "op_hook", "op_pd"], store_conn_id="alert_store",
)
"""
    dag = dag_file("alert_secrets", _source("alert_secrets", body))

    with caplog.at_level(logging.DEBUG):
        dr = dag.test()

    assert dr.state == "failed"
    report = _xcom(dr, "send")
    assert sorted(report["failed"]) == ["op_hook", "op_pd", "op_slack"]
    # dag.test() runs the task in this process: the alert engine's stdlib log records reach caplog, the
    # operator's own log lines and the task's exception (as the task log prints it) go to stdout.
    out, err = capfd.readouterr()
    rows = _deliveries(store_url)
    product_records = [record for record in caplog.records if not record.name.startswith(TEST_SERVER_LOGGER)]
    haystacks = {
        "log records": "\n".join(
            f"{record.getMessage()} {record.exc_text or ''}" for record in product_records
        ),
        "stdout": _without_test_server_lines(out),
        "stderr": _without_test_server_lines(err),
        "xcom": json.dumps(report),
        "store": json.dumps(rows, default=str),
    }
    # Each log capture holds what the run is known to write there, so an empty capture fails the test.
    assert "alert 'Leak check' reached no channel" in haystacks["log records"]
    assert "alert channel 'op_hook' (webhook): attempt 1 of 2 failed: HTTP 500" in haystacks["log records"]
    assert "alert 'Leak check' was not delivered on any channel" in haystacks["stdout"]
    assert "channel 'op_slack' (slack): HTTP 500" in haystacks["stdout"]
    for where, text in haystacks.items():
        for secret in (*SECRETS, httpserver.url_for(SLACK_PATH), httpserver.url_for(HOOK_PATH)):
            assert secret not in text, f"{secret!r} leaked into {where}"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give a title"),
        ({"title": "x", "severity": "loud"}, "severity"),
        ({"summary_task_id": "v", "summary_kind": "lineage"}, "summary_kind"),
        ({"title": "x", "dedup_window": -5}, "dedup_window"),
        ({"title": "x", "routing": {"critical": "op_slack"}}, "list of connection ids"),
    ],
)
def test_bad_arguments_fail_at_dag_parse_time(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SendAlertOperator(task_id="send", **kwargs)


def test_templated_fields_are_declared():
    assert {"title", "text", "severity", "facts", "links", "routing", "dedup_key"} <= set(
        SendAlertOperator.template_fields
    )


class SummaryTaskInstance:
    """The bits of a task instance ``build_alert`` reads: ids and the upstream summary XCom."""

    dag_id, run_id, task_id = "etl", "manual__1", "send"

    def __init__(self, summary: dict) -> None:
        self.summary = summary

    def xcom_pull(self, task_ids: str, key: str) -> dict:
        return self.summary


PASSED_VALIDATION = {
    "success": True,
    "suite_name": "orders_suite",
    "dataset": "orders.csv",
    "counts": {"evaluated": 3, "passed": 3, "failed_critical": 0, "failed_warning": 0},
    "failures": [],
}
FAILED_VALIDATION = {
    **PASSED_VALIDATION,
    "success": False,
    "counts": {"evaluated": 3, "passed": 2, "failed_critical": 1, "failed_warning": 0},
    "failures": [{"expectation_type": "expect_column_values_to_not_be_null", "severity": "critical"}],
}


@pytest.mark.parametrize(
    ("summary", "action", "expected"),
    [
        (PASSED_VALIDATION, None, "resolve"),  # the summary's own action
        (FAILED_VALIDATION, None, "trigger"),
        (PASSED_VALIDATION, "trigger", "trigger"),  # an explicit action replaces it
        (FAILED_VALIDATION, "resolve", "resolve"),
    ],
)
def test_explicit_action_applies_to_an_alert_built_from_a_summary(summary, action, expected):
    operator = SendAlertOperator(task_id="send", summary_task_id="validate", action=action)
    alert = operator.build_alert({"ti": SummaryTaskInstance(summary)})
    assert alert.action == expected


def test_action_defaults_to_trigger_without_a_summary():
    operator = SendAlertOperator(task_id="send", title="manual alert")
    assert operator.build_alert({"ti": SummaryTaskInstance({})}).action == "trigger"
    resolve = SendAlertOperator(task_id="send", title="manual alert", action="resolve")
    assert resolve.build_alert({"ti": SummaryTaskInstance({})}).action == "resolve"


@pytest.mark.dagrun
def test_summary_facts_read_as_text_and_the_alert_links_to_the_run(
    dag_file, httpserver, channels, store_url, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080")
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    body = """
@task
def validate():
    return {"counts": {"evaluated": 10, "passed": 9, "failed_critical": 1}}

validate() >> SendAlertOperator(
    task_id="send", title="Run report", alert_conn_ids=["op_hook"], store_conn_id="alert_store",
    facts={"validation": "{{ ti.xcom_pull(task_ids='validate')['counts'] }}", "champion": "{{ None }}"},
)
"""
    dag = dag_file("alert_readable", _source("alert_readable", body))

    dr = dag.test()

    assert dr.state == "success"
    sent = json.loads(next(r for r, _ in httpserver.log if r.path == HOOK_PATH).get_data(as_text=True))
    assert sent["facts"] == {"validation": "evaluated 10, passed 9, failed_critical 1", "champion": "n/a"}
    [run_link] = [link for link in sent["links"] if link["label"] == "Run"]
    assert run_link["url"].startswith("http://airflow.example:8080/dags/alert_readable/runs/")

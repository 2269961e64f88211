"""MlprodNotifier: task callbacks in real DAG runs, deadline contexts, dedup and failure accounting."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.routing import AlertDeliveryError
from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier
from airflow_provider_mlprod.store.metrics_store import MetricsStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOOK_PATH = "/hooks/notifier-path-secret-5150"
SIGNING_SECRET = "notifier-signing-secret-77"

DAG_SOURCE = """
from datetime import datetime, timedelta

from airflow.sdk import dag, task

from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier

notifier = MlprodNotifier(
    title="{{{{ ti.task_id }}}} broke in {{{{ dag.dag_id }}}}",
    text="try {{{{ ti.try_number }}}} of run {{{{ run_id }}}}",
    alert_conn_ids=["alert_hook"],
    store_conn_id="alert_store",
    {extra}
)


@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def build():
    @task(retries={retries}, retry_delay=timedelta(seconds=0), {callbacks})
    def load():
        from airflow.sdk import get_current_context

        summary = {summary!r}
        if summary:
            get_current_context()["ti"].xcom_push(key="return_value", value=summary)
        raise ValueError("load broke")

    load()


build()
"""

VALIDATION_SUMMARY = {
    "success": False,
    "suite_name": "orders_suite",
    "dataset": "orders.csv",
    "rows_checked": 10,
    "counts": {"evaluated": 3, "passed": 2, "failed_critical": 1, "failed_warning": 0},
    "failures": [
        {
            "expectation_type": "expect_column_values_to_not_be_null",
            "column": "id",
            "severity": "critical",
            "unexpected_percent": 20.0,
        }
    ],
    "report_location": "https://reports.example/orders.html",
}


def _dag_source(dag_id: str, *, retries=0, callbacks="on_failure_callback=notifier", summary=None, extra=""):
    return DAG_SOURCE.format(
        dag_id=dag_id, retries=retries, callbacks=callbacks, summary=summary, extra=extra
    )


@pytest.fixture
def store_url(monkeypatch, sqlite_url: str) -> str:
    """A metrics store of this test's own, as the connection ``alert_store``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": sqlite_url}}),
    )
    return sqlite_url


@pytest.fixture
def alert_hook(monkeypatch, httpserver: HTTPServer) -> str:
    """A signed JSON webhook connection ``alert_hook`` on the local server (fast retries)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_HOOK",
        json.dumps(
            {
                "conn_type": "mlprod_webhook",
                "password": httpserver.url_for(HOOK_PATH),
                "extra": {"signing_secret": SIGNING_SECRET, "timeout": 2, "max_attempts": 2},
            }
        ),
    )
    return "alert_hook"


def _deliveries(store_url: str) -> list[dict]:
    engine = sa.create_engine(store_url)
    try:
        return MetricsStore(engine).alert_deliveries()
    finally:
        engine.dispose()


def _bodies(httpserver: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data(as_text=True)) for request, _ in httpserver.log]


@pytest.mark.dagrun
def test_failure_callback_sends_the_rendered_alert(dag_file, httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    dag = dag_file("notify_failure", _dag_source("notify_failure"))

    dr = dag.test()

    assert dr.state == "failed"
    [body] = _bodies(httpserver)
    assert body["title"] == "load broke in notify_failure"
    assert body["summary"] == f"try 1 of run {dr.run_id}"
    assert body["severity"] == "critical"
    assert (body["dag_id"], body["run_id"], body["task_id"]) == ("notify_failure", dr.run_id, "load")
    assert body["facts"]["Error type"] == "ValueError"
    [log_link] = body["links"]
    assert log_link["label"] == "Task log"
    assert "/dags/notify_failure/runs/" in log_link["url"]
    assert "/tasks/load" in log_link["url"]
    [row] = _deliveries(store_url)
    assert (row["channel"], row["delivered"], row["attempts"]) == ("alert_hook", True, 1)


@pytest.mark.dagrun
def test_retries_and_repeated_failures_do_not_spam(dag_file, httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    source = _dag_source(
        "notify_retries",
        retries=2,
        callbacks="on_retry_callback=notifier, on_failure_callback=notifier",
        extra='severity="critical", dedup_key="load-broke",',
    )
    dag = dag_file("notify_retries", source)

    dr = dag.test()

    assert dr.state == "failed"
    assert len(httpserver.log) == 1  # two retries and the final failure: one alert
    rows = _deliveries(store_url)
    assert [(row["channel"], row["delivered"]) for row in rows] == [("alert_hook", True)]

    second = dag.test(logical_date=dr.logical_date + timedelta(days=1))
    assert second.state == "failed"
    assert len(httpserver.log) == 1  # a failing next run within the window is suppressed too


@pytest.mark.dagrun
def test_a_pushed_validation_summary_enriches_the_alert(dag_file, httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    source = _dag_source("notify_summary", summary=VALIDATION_SUMMARY).replace(
        'title="{{ ti.task_id }} broke in {{ dag.dag_id }}",', ""
    )
    dag = dag_file("notify_summary", source)

    dr = dag.test()

    assert dr.state == "failed"
    [body] = _bodies(httpserver)
    assert body["title"] == "Validation failed: orders.csv (1 of 3 expectations)"
    assert body["severity"] == "critical"
    assert body["dedup_key"] == "mlprod:validation:notify_summary:load:orders_suite"
    assert body["facts"]["Failed"] == "1"
    assert body["facts"]["Error type"] == "ValueError"
    assert {link["label"] for link in body["links"]} == {"Report", "Task log"}
    assert body["summary"].startswith("try 1 of run")  # explicit text replaces the summary text


class FakeTaskInstance:
    """The attributes of a task instance a callback reads, with an XCom of choice."""

    def __init__(self, xcom=None, *, state="failed"):
        self.dag_id, self.run_id, self.task_id = "etl", "manual__1", "score"
        self.map_index, self.try_number, self.state = -1, 2, state
        self.log_url = "http://airflow.example/dags/etl/runs/manual__1/tasks/score?try_number=2"
        self._xcom = xcom

    def xcom_pull(self, **kwargs):
        if isinstance(self._xcom, Exception):
            raise self._xcom
        return self._xcom


@pytest.mark.parametrize(
    "xcom",
    [
        None,
        {  # a validation summary the engine refuses: nothing was evaluated
            "success": True,
            "counts": {"evaluated": 0, "passed": 0, "failed_critical": 0, "failed_warning": 0},
        },
        RuntimeError("xcom backend down"),
        ["not", "a", "summary"],
    ],
)
def test_unusable_summaries_fall_back_to_the_task_alert(xcom):
    alert = MlprodNotifier(alert_conn_ids=[]).build_alert({"ti": FakeTaskInstance(xcom)})
    assert alert.title == "Task score failed in DAG etl"
    assert alert.severity == "critical"
    assert alert.facts == {"Try": 2, "State": "failed"}
    assert [link.url for link in alert.links] == [FakeTaskInstance().log_url]


@pytest.mark.parametrize(
    ("state", "title", "severity"),
    [
        ("up_for_retry", "Task score failed and will be retried in DAG etl", "warning"),
        ("success", "Task score succeeded in DAG etl", "info"),
        ("TaskInstanceState.SKIPPED", "Task score was skipped in DAG etl", "info"),
    ],
)
def test_default_wording_follows_the_task_state(state, title, severity):
    alert = MlprodNotifier(alert_conn_ids=[]).build_alert({"ti": FakeTaskInstance(state=state)})
    assert (alert.title, alert.severity) == (title, severity)


def test_an_empty_context_still_alerts_on_the_task_log(caplog, store_url):
    notifier = MlprodNotifier(alert_conn_ids=[], store_conn_id="alert_store")
    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        notifier({})
    assert "A task needs attention in DAG unknown DAG" in caplog.text
    assert notifier.last_report["delivered"] == ["log"]


def test_deadline_context_all_channels_failing_is_recorded_and_raised(httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("gone", status=410)
    notifier = MlprodNotifier(
        routing={"warning": ["alert_hook", "missing_conn"]}, store_conn_id="alert_store", alert_conn_ids=[]
    )
    context = {
        "dag_run": {"dag_id": "etl", "run_id": "scheduled__2026-01-01"},
        "deadline": {"id": "d1", "deadline_time": "2026-01-01T01:00:00+00:00"},
    }
    with pytest.raises(AlertDeliveryError) as caught:
        notifier(context)
    message = str(caught.value)
    assert "DAG etl: run scheduled__2026-01-01 missed its deadline" in message
    assert "'alert_hook'" in message
    assert "HTTP 410" in message
    assert "'missing_conn'" in message
    assert "is not defined" in message
    for secret in (HOOK_PATH, "notifier-path-secret-5150", SIGNING_SECRET):
        assert secret not in message
    rows = _deliveries(store_url)
    assert sorted((row["channel"], row["delivered"]) for row in rows) == [
        ("alert_hook", False),
        ("missing_conn", False),
    ]


def test_deadline_alert_runs_through_the_async_path(httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    context = {"dag_run": {"dag_id": "etl", "run_id": "scheduled__2026-01-02"}, "deadline": {"id": "d2"}}

    async def fire():
        # How the triggerer runs an AsyncCallback(MlprodNotifier, kwargs=...): instantiate, then await.
        await MlprodNotifier(
            title="{{ dag_run.dag_id }} is late",
            alert_conn_ids=["alert_hook"],
            store_conn_id="alert_store",
            dedup_window=600,
            context=context,
        )

    asyncio.run(fire())
    [body] = _bodies(httpserver)
    assert body["title"] == "etl is late"
    assert body["run_id"] == "scheduled__2026-01-02"


def test_templates_render_afresh_for_each_callback(httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    notifier = MlprodNotifier(
        title="attempt {{ ti.try_number }}",
        dedup_key="score-try-{{ ti.try_number }}",  # one task: the default key would dedup the second
        alert_conn_ids=["alert_hook"],
        store_conn_id="alert_store",
    )
    first, second = FakeTaskInstance(), FakeTaskInstance()
    second.try_number = 3
    notifier({"ti": first})
    notifier({"ti": second})
    assert [body["title"] for body in _bodies(httpserver)] == ["attempt 2", "attempt 3"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"dedup_window": timedelta(0)}, "dedup_window"),
        ({"dedup_window": "1h"}, "dedup_window"),
        ({"routing": {"page": ["x"]}}, "routing key"),
        ({"routing": {"critical": "slack"}}, "list of connection ids"),
    ],
)
def test_bad_settings_fail_at_dag_parse_time(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MlprodNotifier(**kwargs)


def test_templated_severity_is_checked_after_rendering(caplog):
    notifier = MlprodNotifier(severity="{{ params.level }}", alert_conn_ids=[])
    notifier.severity = "urgent"  # what a bad template renders to
    with caplog.at_level(logging.ERROR):
        alert = notifier.build_alert({"ti": FakeTaskInstance(state="success")})
    assert alert.severity == "critical"
    assert "'urgent' is not one of" in caplog.text


# -- routing strings, the "log" channel and channels that cannot be built --------------------------


def test_templated_routing_string_is_parsed_after_rendering(httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    notifier = MlprodNotifier(
        routing='{"warning": ["{{ \'alert_hook\' }}"]}', alert_conn_ids=[], store_conn_id="alert_store"
    )
    notifier({})  # an empty context: "A task needs attention", severity warning
    assert notifier.last_report["delivered"] == ["alert_hook"]
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("routing", "match"),
    [
        ("not json {", "parameter 'routing' rendered to text that is not JSON"),
        ('["alert_hook"]', r"routing must map a severity.*\(parameter 'routing'\)"),
        ('{"page": ["alert_hook"]}', r"routing key 'page'.*\(parameter 'routing'\)"),
    ],
)
def test_bad_rendered_routing_is_a_configuration_error_naming_it(store_url, routing, match):
    from airflow_provider_mlprod.alerts.message import Alert
    from airflow_provider_mlprod.exceptions import ConfigurationError
    from airflow_provider_mlprod.notifications.mlprod import AlertSettings, send_alert_via_connections

    with pytest.raises(ConfigurationError, match=match):
        send_alert_via_connections(
            Alert(title="x failed", severity="critical"), AlertSettings(alert_conn_ids=[], routing=routing)
        )


def test_log_in_alert_conn_ids_is_the_builtin_task_log(caplog, store_url):
    from airflow_provider_mlprod.alerts.message import Alert
    from airflow_provider_mlprod.notifications.mlprod import AlertSettings, send_alert_via_connections

    with caplog.at_level(logging.INFO):
        report = send_alert_via_connections(
            Alert(title="load failed", severity="critical"),
            AlertSettings(alert_conn_ids=["log"], routing={"critical": ["log"]}, store_conn_id="alert_store"),
        )
    assert (report.delivered_channels, report.failed_channels) == (["log"], [])
    assert "[CRITICAL] load failed" in caplog.text  # the alert, as the "log" channel wrote it
    assert "is not defined" not in caplog.text


def test_a_channel_that_cannot_be_built_never_stops_the_others(
    monkeypatch, httpserver, alert_hook, store_url, caplog
):
    from airflow_provider_mlprod.alerts.message import Alert
    from airflow_provider_mlprod.hooks import connections
    from airflow_provider_mlprod.notifications.mlprod import AlertSettings, send_alert_via_connections

    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    for conn_id, extra in (
        ("bad_header", {"headers": {"X-Team": "équipe ☃"}}),
        ("endless", {"max_attempts": "inf"}),
    ):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps(
                {"conn_type": "mlprod_webhook", "password": httpserver.url_for(HOOK_PATH), "extra": extra}
            ),
        )
    real_get_connection = connections.BaseHook.get_connection

    def get_connection(conn_id):  # a secrets backend that fails for one connection
        if conn_id == "vaulted":
            raise RuntimeError("vault token hvs.SECRET0TOKEN expired")
        return real_get_connection(conn_id)

    monkeypatch.setattr(connections.BaseHook, "get_connection", staticmethod(get_connection))

    with caplog.at_level(logging.DEBUG):  # a secret logged at any level would be in the task log
        report = send_alert_via_connections(
            Alert(title="load failed", severity="critical"),
            AlertSettings(
                alert_conn_ids=["vaulted", "bad_header", "endless", "alert_hook"], store_conn_id="alert_store"
            ),
        )

    assert report.delivered_channels == ["alert_hook"]
    assert report.failed_channels == ["vaulted", "bad_header", "endless"]
    errors = {result.channel: result.error for result in report.results if result.failed}
    assert errors["vaulted"] == "connection 'vaulted' could not be read (RuntimeError)"
    assert "not latin-1" in errors["bad_header"]
    assert "must be a finite number" in errors["endless"]
    assert "alert channel 'vaulted' cannot be used: connection 'vaulted' could not be read" in caplog.text
    assert "SECRET0TOKEN" not in caplog.text + json.dumps(report.to_dict())
    rows = _deliveries(store_url)
    assert sorted((row["channel"], row["delivered"]) for row in rows) == [
        ("alert_hook", True),
        ("bad_header", False),
        ("endless", False),
        ("vaulted", False),
    ]


def test_a_resolve_goes_only_where_a_trigger_is_open(httpserver, alert_hook, store_url, caplog):
    from airflow_provider_mlprod.alerts.message import Alert
    from airflow_provider_mlprod.notifications.mlprod import AlertSettings, send_alert_via_connections

    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    routing = {"critical": ["alert_hook"], "info": ["log"]}

    def send(severity: str, action: str):
        alert = Alert(title="load", severity=severity, action=action, dedup_key="mlprod:notifier:load")
        return send_alert_via_connections(
            alert, AlertSettings(alert_conn_ids=[], routing=routing, store_conn_id="alert_store")
        )

    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        quiet = send("info", "resolve")  # a passing run with nothing open
    assert httpserver.log == []
    assert (quiet.delivered_channels, quiet.suppressed_channels) == (["log"], ["alert_hook"])
    assert "[RESOLVED] load" in caplog.text

    assert send("critical", "trigger").delivered_channels == ["alert_hook"]
    assert send("info", "resolve").delivered_channels == ["alert_hook"]  # log: resolve within the window
    assert [body["action"] for body in _bodies(httpserver)] == ["trigger", "resolve"]


def test_the_notifier_on_success_resolves_what_the_failure_opened(httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    notifier = MlprodNotifier(alert_conn_ids=["alert_hook"], store_conn_id="alert_store")

    notifier({"ti": FakeTaskInstance(state="success")})  # nothing open: nothing posted
    notifier({"ti": FakeTaskInstance(state="failed")})
    notifier({"ti": FakeTaskInstance(state="success")})  # closes it
    notifier({"ti": FakeTaskInstance(state="success")})  # nothing open any more

    bodies = _bodies(httpserver)
    assert [(body["action"], body["title"]) for body in bodies] == [
        ("trigger", "Task score failed in DAG etl"),
        ("resolve", "Task score succeeded in DAG etl"),
    ]
    assert {body["dedup_key"] for body in bodies} == {"mlprod:task:etl:score"}


def test_repeat_every_sets_the_cooldown_and_is_checked():
    assert MlprodNotifier(repeat_every=7200).dedup_window == timedelta(hours=2)
    assert MlprodNotifier(dedup_window=60).dedup_window == timedelta(seconds=60)
    with pytest.raises(ValueError, match="repeat_every must be positive"):
        MlprodNotifier(repeat_every=0)


def test_an_over_long_rendered_dedup_key_is_hashed_and_the_alert_sent(httpserver, alert_hook, store_url):
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    notifier = MlprodNotifier(
        dedup_key="{{ ti.task_id }}-" + "k" * 300, alert_conn_ids=["alert_hook"], store_conn_id="alert_store"
    )

    notifier({"ti": FakeTaskInstance()})

    [body] = _bodies(httpserver)
    assert body["dedup_key"].startswith("sha256:")
    assert len(body["dedup_key"]) <= 255
    assert notifier.last_report["delivered"] == ["alert_hook"]

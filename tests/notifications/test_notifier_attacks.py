"""The notifier's alert path under a hostile store: a store connection that stalls after it was opened."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import STORE_CALL_SECONDS
from airflow_provider_mlprod.notifications.mlprod import AlertSettings, send_alert_via_connections


class StallingProxy:
    """A TCP proxy to the PostgreSQL test server that forwards until ``stall`` is set, then holds
    every byte: the connection stays open and acknowledged, and no answer ever comes (a hung
    pooler, a network partition behind a load balancer)."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.stall = threading.Event()
        self.closed = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.stall.is_set() and not self.closed.is_set():
                    time.sleep(0.05)
                sink.sendall(data)
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


@pytest.fixture
def stalling_store(monkeypatch, postgres_url) -> Iterator[StallingProxy]:
    url = sa.make_url(postgres_url)
    proxy = StallingProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_STALLING_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": proxied}}),
    )
    yield proxy
    proxy.close()


def test_a_store_that_stalls_after_connecting_delays_the_alert_by_a_bounded_time(
    monkeypatch, httpserver: HTTPServer, stalling_store, caplog
):
    httpserver.expect_request("/hook").respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_STALL_HOOK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/hook")}),
    )
    settings = AlertSettings(alert_conn_ids=["stall_hook"], store_conn_id="stalling_store")
    first = send_alert_via_connections(Alert(title="first", severity="critical"), settings)
    assert first.delivered_channels == ["stall_hook"]  # the store worked: its pooled connection is open
    stalling_store.stall.set()
    outcome: dict[str, object] = {}

    def second() -> None:
        started = time.monotonic()
        outcome["report"] = send_alert_via_connections(Alert(title="second", severity="critical"), settings)
        outcome["elapsed"] = time.monotonic() - started

    sender = threading.Thread(target=second, daemon=True)
    sender.start()
    sender.join(STORE_CALL_SECONDS + 10)

    assert not sender.is_alive(), "the alert hung on the stalled store"
    assert outcome["report"].delivered_channels == ["stall_hook"]
    assert outcome["elapsed"] < STORE_CALL_SECONDS + 4
    assert len(httpserver.log) == 2
    assert "without dedup or history" in caplog.text


PASTED_URL = "https://hooks.slack.com/services/T0PASTED/B0PASTED/pastedSecretToken"


def test_a_webhook_url_given_as_connection_id_is_refused_at_parse_time_without_showing_it():
    with pytest.raises(ValueError, match="looks like a URL") as raised:
        AlertSettings(alert_conn_ids=["slack_ml", PASTED_URL])

    assert "pastedSecretToken" not in str(raised.value)


def test_a_webhook_url_in_the_configured_connection_ids_never_stops_the_others_nor_shows(
    monkeypatch, httpserver: HTTPServer, caplog
):
    httpserver.expect_request("/hook").respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_CONFIGURED_HOOK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/hook")}),
    )
    monkeypatch.setenv("AIRFLOW__MLPROD__ALERT_CONN_IDS", f"configured_hook, {PASTED_URL}")
    caplog.set_level(logging.DEBUG)

    report = send_alert_via_connections(Alert(title="Orders late", severity="critical"), AlertSettings())

    assert report.delivered_channels == ["configured_hook"]
    assert len(report.failed_channels) == 1
    assert len(httpserver.log) == 1
    assert "alert channel 1 cannot be used: an alert connection id looks like a URL" in caplog.text
    assert "pastedSecretToken" not in caplog.text
    assert "pastedSecretToken" not in json.dumps(report.to_dict())


def test_only_a_webhook_url_as_connection_id_logs_the_alert_text_and_raises(monkeypatch, caplog):
    from airflow_provider_mlprod.alerts.routing import AlertDeliveryError

    monkeypatch.setenv("AIRFLOW__MLPROD__ALERT_CONN_IDS", PASTED_URL)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AlertDeliveryError) as raised:
        send_alert_via_connections(
            Alert(title="Orders late", severity="critical", summary="3 of 5 checks failed"), AlertSettings()
        )

    assert "3 of 5 checks failed" in caplog.text  # the alert itself is in the task log
    assert "pastedSecretToken" not in caplog.text
    assert "pastedSecretToken" not in str(raised.value)


def test_many_deadline_alerts_at_once_in_the_triggerer_each_end_at_the_hanging_channels_deadline(
    monkeypatch, httpserver: HTTPServer
):
    """The triggerer awaits every deadline callback on one event loop; its shared thread pool has
    min(32, cores + 4) threads, which alerts waiting on a hanging channel must not queue behind."""
    import asyncio

    from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier

    deadline, alerts = 1.5, 16
    httpserver.expect_request("/deadline-ok").respond_with_data("ok")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        hanging = f"http://127.0.0.1:{silent.getsockname()[1]}/hang"
        monkeypatch.setenv(
            "AIRFLOW_CONN_DEADLINE_OK",
            json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/deadline-ok")}),
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_DEADLINE_HANG",
            json.dumps(
                {"conn_type": "mlprod_webhook", "password": hanging, "extra": {"total_timeout": deadline}}
            ),
        )
        monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE", "false")

        async def deadline_alert(index: int) -> float:
            notifier = MlprodNotifier(alert_conn_ids=["deadline_ok", "deadline_hang"], severity="warning")
            context = {"dag_run": {"dag_id": "d", "dag_run_id": f"run_{index}"}, "deadline": {}}
            started = time.monotonic()
            await notifier.async_notify(context)
            return time.monotonic() - started

        async def other_trigger() -> float:
            started = time.monotonic()
            await asyncio.to_thread(time.sleep, 0)
            return time.monotonic() - started

        async def triggerer() -> list[float]:
            return await asyncio.gather(*(deadline_alert(index) for index in range(alerts)), other_trigger())

        *durations, other_wait = asyncio.run(triggerer())

    assert len(httpserver.log) == alerts
    assert max(durations) < deadline + 1.5, durations
    assert other_wait < 1.0


@pytest.mark.parametrize("conn_ids", ["slack_ml", "{{ var.value.alert_connections }}"])
def test_one_string_as_alert_conn_ids_is_refused_at_parse_time(conn_ids):
    from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier

    with pytest.raises(ValueError, match="must be a list of connection ids"):
        MlprodNotifier(alert_conn_ids=conn_ids)


def test_one_mapped_instances_success_never_resolves_another_instances_failure(
    monkeypatch, httpserver: HTTPServer, sqlite_url
):
    """Mapped instances of one task run side by side: instance 1 succeeding while instance 0 stays
    failed must leave instance 0's incident open."""
    from types import SimpleNamespace

    from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier

    httpserver.expect_request("/mapped").respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MAPPED_HOOK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/mapped")}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MAPPED_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": sqlite_url}}),
    )
    notifier = MlprodNotifier(alert_conn_ids=["mapped_hook"], store_conn_id="mapped_store")

    def instance(map_index: int, state: str) -> dict:
        ids = {"dag_id": "etl", "run_id": "manual__1", "task_id": "score_partition", "try_number": 1}
        return {"ti": SimpleNamespace(**ids, map_index=map_index, state=state)}

    notifier(instance(0, "failed"))
    notifier(instance(1, "success"))  # another partition: instance 0 is still failed
    posted_while_instance_0_failed = len(httpserver.log)
    notifier(instance(0, "success"))  # instance 0 fixed on a clear: now it is resolved

    bodies = [json.loads(request.get_data(as_text=True)) for request, _ in httpserver.log]
    assert posted_while_instance_0_failed == 1, bodies
    assert [body["action"] for body in bodies] == ["trigger", "resolve"]
    assert bodies[0]["dedup_key"] == bodies[1]["dedup_key"]


def test_a_webhook_url_in_routing_is_refused_without_showing_it(monkeypatch, caplog):
    from airflow_provider_mlprod.exceptions import ConfigurationError

    caplog.set_level(logging.DEBUG)

    with pytest.raises(ValueError, match="looks like a URL") as at_parse_time:
        AlertSettings(routing={"critical": [PASTED_URL]})
    rendered = AlertSettings(
        routing=json.dumps({"critical": [PASTED_URL]})
    )  # a template, checked once rendered
    with pytest.raises(ConfigurationError, match="looks like a URL") as at_send_time:
        send_alert_via_connections(Alert(title="Orders late", severity="critical"), rendered)

    # Nothing is logged before either refusal; the logs get each error's traceback, with any cause.
    logged = caplog.text + "".join(
        line for error in (at_parse_time, at_send_time) for line in traceback.format_exception(error.value)
    )
    assert "alert routing: an alert connection id looks like a URL" in logged
    assert "pastedSecretToken" not in str(at_parse_time.value)
    assert "pastedSecretToken" not in str(at_send_time.value)
    assert "pastedSecretToken" not in logged


def test_a_connection_id_that_rendered_blank_is_skipped_and_the_alert_still_sent(
    monkeypatch, httpserver: HTTPServer, caplog
):
    """``["slack_ml", "{{ params.extra_channel }}"]`` with an empty default renders one id blank."""
    httpserver.expect_request("/blank").respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_BESIDE_BLANK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/blank")}),
    )
    settings = AlertSettings(alert_conn_ids=["beside_blank", "{{ params.extra_channel }}"])
    settings.alert_conn_ids = ["beside_blank", " "]  # as rendered

    report = send_alert_via_connections(Alert(title="Orders late", severity="critical"), settings)

    assert report.delivered_channels == ["beside_blank"]
    assert len(httpserver.log) == 1


PASSED_VALIDATION = {
    "success": True,
    "suite_name": "orders_suite",
    "dataset": "orders.csv",
    "rows_checked": 10,
    "counts": {"evaluated": 3, "passed": 3, "failed_critical": 0, "failed_warning": 0},
    "failures": [],
    "report_location": None,
}


def test_a_success_with_a_summary_resolves_the_crash_that_opened_the_tasks_own_key(
    monkeypatch, httpserver: HTTPServer, sqlite_url
):
    """A validation task that crashed (its database down) before pushing any summary alerts on the
    task's own key; the next run passes and pushes a summary: that success must close the crash."""
    from types import SimpleNamespace

    from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier

    httpserver.expect_request("/crash").respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRASH_HOOK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/crash")}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRASH_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": sqlite_url}}),
    )
    notifier = MlprodNotifier(alert_conn_ids=["crash_hook"], store_conn_id="crash_store")

    def run(run_id: str, state: str, summary: dict | None) -> dict:
        ids = {"dag_id": "etl", "run_id": run_id, "task_id": "validate", "map_index": -1, "try_number": 1}
        return {"ti": SimpleNamespace(**ids, state=state, xcom_pull=lambda **_: summary)}

    notifier({**run("run_1", "failed", None), "exception": ConnectionError("database down")})
    notifier(run("run_2", "success", PASSED_VALIDATION))
    notifier(run("run_3", "success", PASSED_VALIDATION))  # nothing open any more: nothing posted

    bodies = [json.loads(request.get_data(as_text=True)) for request, _ in httpserver.log]
    assert [(body["action"], body["dedup_key"]) for body in bodies] == [
        ("trigger", "mlprod:task:etl:validate"),
        ("resolve", "mlprod:task:etl:validate"),
    ]

"""Dedup state and delivery history in the metrics store (SQLite and PostgreSQL), through the router."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.channels import JsonWebhookTarget, SlackWebhookTarget
from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import (
    DEDUP_KEY_COLUMN_CHARS,
    AlertDeliveryError,
    Channel,
    send_alert,
    stored_dedup_key,
)
from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from tests.alerts.conftest import delivery_rows, last_deliveries

FAST = RetryPolicy(timeout_seconds=2.0, max_attempts=2, base_delay_seconds=0.0, max_delay_seconds=0.0)


@pytest.fixture
def store(db_url: str) -> MetricsStore:
    engine = sa.create_engine(db_url)
    yield MetricsStore(engine)
    engine.dispose()


def _alert(severity: str = "critical", action: str = "trigger", key: str = "mlprod:test:etl:load") -> Alert:
    return Alert(title=f"{severity} load failed", severity=severity, action=action, dedup_key=key)


def _record(store: MetricsStore, alert: Alert, channel: str, delivered: bool = True, **row) -> None:
    key = stored_dedup_key(alert.dedup_key, alert.action, alert.severity)
    row = {"attempts": 1, "error": "" if delivered else "HTTP 500", **row}
    store.record_alert_delivery(dedup_key=key, channel=channel, delivered=delivered, **row)


def _open(store: MetricsStore, channel: str, key: str = "mlprod:test:etl:load") -> bool:
    seen = last_deliveries(store, key, channel)
    trigger = max((at for (action, _), at in seen.items() if action == "trigger"), default=None)
    resolve = max((at for (action, _), at in seen.items() if action == "resolve"), default=None)
    return trigger is not None and (resolve is None or resolve <= trigger)


# -- store columns -------------------------------------------------------------------------------


def test_stored_key_is_alert_key_action_and_severity():
    assert (
        stored_dedup_key("mlprod:test:etl:load", "trigger", "critical")
        == "mlprod:test:etl:load|trigger|critical"
    )
    assert stored_dedup_key("a|trigger|info|b", "trigger", "critical") == "a|trigger|info|b|trigger|critical"


def test_long_alert_key_is_hashed_to_fit_the_column():
    long_key = "mlprod:" + "x" * 248
    value = stored_dedup_key(long_key, "resolve", "critical")
    assert len(value) <= DEDUP_KEY_COLUMN_CHARS
    assert value.endswith("|resolve|critical")
    assert value != stored_dedup_key("mlprod:" + "y" * 248, "resolve", "critical")


# -- the history over the metrics store -------------------------------------------------------------


def test_deliveries_are_per_channel_action_and_severity(store):
    _record(store, _alert(), "slack_ml")
    assert set(last_deliveries(store, _alert().dedup_key, "slack_ml")) == {("trigger", "critical")}
    assert last_deliveries(store, _alert().dedup_key, "pagerduty") == {}
    assert last_deliveries(store, "mlprod:other", "slack_ml") == {}


def test_failed_results_are_history_not_dedup(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("busy", status=503)
    alert = _alert()
    identity = RunIdentity("etl", "manual__1", "load")
    with pytest.raises(AlertDeliveryError):
        send_alert(alert, _channels(httpserver)[:1], store=store, identity=identity)
    assert last_deliveries(store, alert.dedup_key, "slack_ml") == {}
    rows = delivery_rows(store, alert)
    assert [(r["channel"], r["delivered"], r["attempts"], r["status_code"], r["error"]) for r in rows] == [
        ("slack_ml", False, 2, 503, "HTTP 503 SERVICE UNAVAILABLE: busy")
    ]
    assert rows[0]["run_pk"] is not None


# -- send_alert with a store -----------------------------------------------------------------------


def _channels(httpserver: HTTPServer, **policies: RetryPolicy) -> list[Channel]:
    return [
        Channel("slack_ml", SlackWebhookTarget(httpserver.url_for("/slack")), policies.get("slack_ml", FAST)),
        Channel("hook", JsonWebhookTarget(httpserver.url_for("/hook")), policies.get("hook", FAST)),
    ]


def test_dispatch_records_every_result_and_dedups_from_the_store(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("ok")
    httpserver.expect_request("/hook").respond_with_data("down", status=500)
    alert = _alert()

    first = send_alert(alert, _channels(httpserver), store=store)
    assert first.delivered_channels == ["slack_ml"]
    assert first.failed_channels == ["hook"]
    assert len(httpserver.log) == 3  # one Slack post, two webhook attempts

    second = send_alert(alert, _channels(httpserver), store=store)
    assert second.suppressed_channels == ["slack_ml"]
    assert second.failed_channels == ["hook"]  # a failed channel is tried again
    assert len(httpserver.log) == 5

    rows = delivery_rows(store, alert)
    assert [(r["channel"], r["delivered"], r["attempts"]) for r in rows] == [
        ("slack_ml", True, 1),
        ("hook", False, 2),
        ("hook", False, 2),
    ]


def test_each_channel_uses_its_own_retry_policy(httpserver: HTTPServer):
    httpserver.expect_request("/slack").respond_with_data("busy", status=503)
    httpserver.expect_request("/hook").respond_with_data("busy", status=503)
    one_try = RetryPolicy(timeout_seconds=2.0, max_attempts=1)
    three_tries = RetryPolicy(timeout_seconds=2.0, max_attempts=3, base_delay_seconds=0.0)
    with pytest.raises(AlertDeliveryError) as caught:
        send_alert(_alert(), _channels(httpserver, slack_ml=one_try, hook=three_tries))
    attempts = {result.channel: result.attempts for result in caught.value.report.results}
    assert attempts == {"slack_ml": 1, "hook": 3}


def test_all_failed_is_recorded_then_raised_naming_each_channel(httpserver: HTTPServer, store, caplog):
    httpserver.expect_request("/slack").respond_with_data("nope", status=404)
    httpserver.expect_request("/hook").respond_with_data("down", status=500)
    alert = _alert()
    with caplog.at_level(logging.ERROR), pytest.raises(AlertDeliveryError) as caught:
        send_alert(alert, _channels(httpserver), store=store)
    message = str(caught.value)
    assert "'slack_ml'" in message
    assert "HTTP 404" in message
    assert "'hook'" in message
    assert "HTTP 500" in message
    rows = delivery_rows(store, alert)
    assert sorted((r["channel"], r["delivered"]) for r in rows) == [("hook", False), ("slack_ml", False)]
    assert alert.title in caplog.text  # the alert text is logged so it is not lost


def test_unusable_channel_is_a_failure_not_a_silent_drop(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("ok")
    channels = [
        *_channels(httpserver)[:1],
        Channel("pd_oncall", error="connection 'pd_oncall' is not defined"),
    ]
    rule = {"critical": ["slack_ml", "pd_oncall"]}
    report = send_alert(_alert(), channels, rule=rule, store=store)
    assert report.delivered_channels == ["slack_ml"]
    assert report.failed_channels == ["pd_oncall"]
    failed = next(r for r in report.results if r.failed)
    assert failed.kind == "unusable"
    assert "not defined" in failed.error


def test_rule_routes_by_severity_and_falls_back_to_the_log(httpserver: HTTPServer, caplog):
    httpserver.expect_request("/slack").respond_with_data("ok")
    rule = {"critical": ["slack_ml"]}
    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        report = send_alert(_alert("warning"), _channels(httpserver), rule=rule)
    assert report.delivered_channels == ["log"]
    assert len(httpserver.log) == 0
    assert "warning load failed" in caplog.text


def test_rule_naming_an_unknown_channel_is_refused(httpserver: HTTPServer):
    with pytest.raises(ConfigurationError, match="unknown channel"):
        send_alert(_alert(), _channels(httpserver), rule={"critical": ["nowhere"]})


# -- a resolve ends the dedup window of its trigger ---------------------------------------------


def test_stored_resolve_ends_the_window_of_its_trigger_and_vice_versa(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("ok")
    slack = _channels(httpserver)[:1]
    assert send_alert(_alert("critical"), slack, store=store).delivered_channels == ["slack_ml"]
    _record(store, _alert("info", action="resolve"), "elsewhere")  # another channel changes nothing
    assert send_alert(_alert("critical"), slack, store=store).suppressed_channels == ["slack_ml"]
    _record(store, _alert("info", action="resolve"), "slack_ml", delivered=False)  # a failed resolve neither
    assert send_alert(_alert("critical"), slack, store=store).suppressed_channels == ["slack_ml"]
    assert send_alert(_alert("info", action="resolve"), slack, store=store).delivered_channels == ["slack_ml"]
    assert send_alert(_alert("critical"), slack, store=store).delivered_channels == ["slack_ml"]
    assert send_alert(_alert("info", action="resolve"), slack, store=store).delivered_channels == ["slack_ml"]


def test_fail_pass_fail_through_the_store_pages_twice(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("ok")
    httpserver.expect_request("/hook").respond_with_data("ok")
    channels = _channels(httpserver)
    failed = _alert("critical")
    passed = _alert("info", action="resolve")

    first = send_alert(failed, channels, store=store)
    resolved = send_alert(passed, channels, store=store)
    again = send_alert(failed, channels, store=store)
    repeat = send_alert(failed, channels, store=store)

    assert first.delivered_channels == ["slack_ml", "hook"]
    assert resolved.delivered_channels == ["slack_ml", "hook"]
    assert again.delivered_channels == ["slack_ml", "hook"]
    assert repeat.suppressed_channels == ["slack_ml", "hook"]
    assert len(httpserver.log) == 6


# -- a resolve goes only where a trigger is open --------------------------------------------------


def test_open_trigger_in_the_store_is_the_latest_delivered_row(store):
    assert not _open(store, "pd_oncall")
    _record(store, _alert("critical"), "pd_oncall", delivered=False)  # a failed trigger opens nothing
    assert not _open(store, "pd_oncall")
    _record(store, _alert("warning"), "pd_oncall")
    assert _open(store, "pd_oncall")
    assert not _open(store, "slack_ml")
    assert not _open(store, "pd_oncall", "mlprod:other")
    _record(store, _alert("info", action="resolve"), "pd_oncall")
    assert not _open(store, "pd_oncall")
    _record(store, _alert("critical"), "pd_oncall")
    assert _open(store, "pd_oncall")


def test_open_trigger_of_a_long_alert_key_uses_the_hashed_column(store):
    long_key = "mlprod:" + "x" * 248
    _record(store, _alert(key=long_key), "slack_ml")
    assert _open(store, "slack_ml", long_key)
    assert not _open(store, "slack_ml", "mlprod:" + "y" * 248)


def test_resolve_through_the_store_reaches_only_channels_with_an_open_trigger(
    httpserver: HTTPServer, store, caplog
):
    httpserver.expect_request("/slack").respond_with_data("ok")
    httpserver.expect_request("/hook").respond_with_data("ok")
    rule = {"critical": ["slack_ml", "hook"], "warning": ["slack_ml"], "info": ["log"]}
    passed = _alert("info", action="resolve")

    def send(alert: Alert):
        return send_alert(alert, _channels(httpserver), rule=rule, store=store)

    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        quiet = send(passed)  # a pass with no failure before it
    assert httpserver.log == []
    assert quiet.delivered_channels == ["log"]
    assert {r.channel: r.reason for r in quiet.results if r.status == "suppressed"} == {
        "slack_ml": "no open trigger",
        "hook": "no open trigger",
    }
    assert "[RESOLVED] info load failed" in caplog.text

    failed = send(_alert("warning"))
    resolved = send(passed)
    closed = send(passed)

    assert failed.delivered_channels == ["slack_ml"]
    assert resolved.delivered_channels == ["slack_ml"]
    # the hook never got the trigger; the log had this resolve within the window (the quiet pass)
    assert {r.channel: r.reason for r in resolved.results if r.status == "suppressed"} == {
        "hook": "no open trigger",
        "log": "already sent within the dedup window",
    }
    assert closed.delivered_channels == []
    assert closed.suppressed_channels == ["slack_ml", "hook", "log"]
    assert [request.path for request, _ in httpserver.log] == ["/slack", "/slack"]
    rows = delivery_rows(store, passed)
    assert sorted(r["channel"] for r in rows) == ["log", "slack_ml"]  # suppressed: not recorded

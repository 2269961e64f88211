"""Dedup state and delivery history in the metrics store, and dispatch with per-channel policies."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.dedup import DedupStore, InMemoryDedupStore
from airflow_provider_mlprod.alerts.delivery import DeliveryResult, RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import (
    AlertDeliveryError,
    AlertRouter,
    ChannelSpec,
    dispatch_alert,
)
from airflow_provider_mlprod.alerts.slack import SlackWebhookTarget
from airflow_provider_mlprod.alerts.store_dedup import (
    DEDUP_KEY_COLUMN_CHARS,
    MetricsStoreDedup,
    store_columns,
    stored_dedup_key,
)
from airflow_provider_mlprod.alerts.webhook import JsonWebhookTarget
from airflow_provider_mlprod.exceptions import ConfigurationError, StoreError
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore

FAST = RetryPolicy(timeout_seconds=2.0, max_attempts=2, base_delay_seconds=0.0, max_delay_seconds=0.0)
WINDOW = timedelta(hours=1)


@pytest.fixture
def store(db_url: str) -> MetricsStore:
    engine = sa.create_engine(db_url)
    yield MetricsStore(engine)
    engine.dispose()


def _alert(severity: str = "critical", action: str = "trigger", key: str = "mlprod:test:etl:load") -> Alert:
    return Alert(title=f"{severity} load failed", severity=severity, action=action, dedup_key=key)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- key mapping ---------------------------------------------------------------------------------


def test_router_key_maps_to_dedup_key_and_channel_columns():
    key = AlertRouter.dedup_store_key(_alert(), "slack_ml")
    assert store_columns(key) == ("mlprod:test:etl:load|trigger|critical", "slack_ml")


def test_alert_key_containing_bars_is_split_at_the_channel():
    key = AlertRouter.dedup_store_key(_alert(key="a|trigger|info|b"), "team")
    assert store_columns(key) == ("a|trigger|info|b|trigger|critical", "team")


def test_long_alert_key_is_hashed_to_fit_the_column():
    long_key = "mlprod:" + "x" * 248
    value = stored_dedup_key(long_key, "resolve", "critical")
    assert len(value) <= DEDUP_KEY_COLUMN_CHARS
    assert value.endswith("|resolve|critical")
    assert value != stored_dedup_key("mlprod:" + "y" * 248, "resolve", "critical")


@pytest.mark.parametrize("bad_key", ["no-separators", "k|trigger|critical|", "k|fire|critical|slack"])
def test_malformed_router_key_is_a_store_error(bad_key):
    with pytest.raises(StoreError, match="channel"):
        store_columns(bad_key)


# -- the DedupStore over the metrics store ---------------------------------------------------------


def test_is_a_dedup_store(store):
    assert isinstance(MetricsStoreDedup(store), DedupStore)


def test_delivered_key_is_seen_within_the_window_only(store):
    dedup = MetricsStoreDedup(store)
    key = AlertRouter.dedup_store_key(_alert(), "slack_ml")
    assert not dedup.seen_recently(key, WINDOW, _now())
    dedup.record(key, _now())
    assert dedup.seen_recently(key, WINDOW, _now())
    assert not dedup.seen_recently(key, WINDOW, _now() + timedelta(hours=2))
    assert not dedup.seen_recently(key, WINDOW, _now() - timedelta(hours=2))


def test_dedup_is_per_channel_action_and_severity(store):
    dedup = MetricsStoreDedup(store)
    dedup.record(AlertRouter.dedup_store_key(_alert(), "slack_ml"), _now())
    for other in (
        AlertRouter.dedup_store_key(_alert(), "pagerduty"),
        AlertRouter.dedup_store_key(_alert(action="resolve"), "slack_ml"),
        AlertRouter.dedup_store_key(_alert(severity="warning"), "slack_ml"),
    ):
        assert not dedup.seen_recently(other, WINDOW, _now())


def test_failed_results_are_history_not_dedup(store):
    identity = RunIdentity("etl", "manual__1", "load")
    dedup = MetricsStoreDedup(store, identity=identity)
    alert = _alert()
    key = AlertRouter.dedup_store_key(alert, "slack_ml")
    dedup.record_result(
        key,
        DeliveryResult("slack_ml", "slack", "failed", attempts=3, status_code=503, error="HTTP 503"),
    )
    dedup.record_result(key, DeliveryResult("slack_ml", "slack", "suppressed"))
    assert not dedup.seen_recently(key, WINDOW, _now())
    rows = dedup.deliveries_of(alert)
    assert [(r["channel"], r["delivered"], r["attempts"], r["status_code"], r["error"]) for r in rows] == [
        ("slack_ml", False, 3, 503, "HTTP 503")
    ]
    assert rows[0]["run_pk"] is not None


def test_unreachable_store_raises_store_error(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gone.db'}")
    dedup = MetricsStoreDedup(MetricsStore(engine))
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE mlprod_alert_deliveries"))
    key = AlertRouter.dedup_store_key(_alert(), "slack_ml")
    with pytest.raises(StoreError, match="lookup failed"):
        dedup.seen_recently(key, WINDOW, _now())
    with pytest.raises(StoreError, match="'slack_ml'"):
        dedup.record(key, _now())


# -- dispatch_alert ------------------------------------------------------------------------------


def _channels(httpserver: HTTPServer, **policies: RetryPolicy) -> list[ChannelSpec]:
    return [
        ChannelSpec(
            "slack_ml", SlackWebhookTarget(httpserver.url_for("/slack")), policies.get("slack_ml", FAST)
        ),
        ChannelSpec("hook", JsonWebhookTarget(httpserver.url_for("/hook")), policies.get("hook", FAST)),
    ]


def test_dispatch_records_every_result_and_dedups_from_the_store(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("ok")
    httpserver.expect_request("/hook").respond_with_data("down", status=500)
    alert = _alert()

    first = dispatch_alert(alert, _channels(httpserver), metrics_store=store, sleep=lambda _: None)
    assert first.delivered_channels == ["slack_ml"]
    assert first.failed_channels == ["hook"]
    assert len(httpserver.log) == 3  # one Slack post, two webhook attempts

    second = dispatch_alert(alert, _channels(httpserver), metrics_store=store, sleep=lambda _: None)
    assert second.suppressed_channels == ["slack_ml"]
    assert second.failed_channels == ["hook"]  # a failed channel is tried again
    assert len(httpserver.log) == 5

    rows = MetricsStoreDedup(store).deliveries_of(alert)
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
        dispatch_alert(
            _alert(),
            _channels(httpserver, slack_ml=one_try, hook=three_tries),
            sleep=lambda _: None,
        )
    attempts = {result.channel: result.attempts for result in caught.value.report.results}
    assert attempts == {"slack_ml": 1, "hook": 3}


def test_all_failed_is_recorded_then_raised_naming_each_channel(httpserver: HTTPServer, store, caplog):
    httpserver.expect_request("/slack").respond_with_data("nope", status=404)
    httpserver.expect_request("/hook").respond_with_data("down", status=500)
    alert = _alert()
    with caplog.at_level(logging.ERROR), pytest.raises(AlertDeliveryError) as caught:
        dispatch_alert(alert, _channels(httpserver), metrics_store=store, sleep=lambda _: None)
    message = str(caught.value)
    assert "'slack_ml'" in message
    assert "HTTP 404" in message
    assert "'hook'" in message
    assert "HTTP 500" in message
    rows = MetricsStoreDedup(store).deliveries_of(alert)
    assert sorted((r["channel"], r["delivered"]) for r in rows) == [("hook", False), ("slack_ml", False)]
    assert alert.title in caplog.text  # the alert text is logged so it is not lost


def test_unusable_channel_is_a_failure_not_a_silent_drop(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("ok")
    report = dispatch_alert(
        _alert(),
        _channels(httpserver)[:1],
        rule={"critical": ["slack_ml", "pd_oncall"]},
        metrics_store=store,
        unusable_channels={"pd_oncall": "connection 'pd_oncall' is not defined"},
    )
    assert report.delivered_channels == ["slack_ml"]
    assert report.failed_channels == ["pd_oncall"]
    failed = next(r for r in report.results if r.failed)
    assert failed.kind == "unusable"
    assert "not defined" in failed.error


def test_rule_routes_by_severity_and_falls_back_to_the_log(httpserver: HTTPServer, caplog):
    httpserver.expect_request("/slack").respond_with_data("ok")
    rule = {"critical": ["slack_ml"]}
    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        report = dispatch_alert(_alert("warning"), _channels(httpserver), rule=rule)
    assert report.delivered_channels == ["log"]
    assert len(httpserver.log) == 0
    assert "warning load failed" in caplog.text


def test_in_memory_dedup_store_is_honoured_without_a_metrics_store(httpserver: HTTPServer):
    httpserver.expect_request("/slack").respond_with_data("ok")
    httpserver.expect_request("/hook").respond_with_data("ok")
    memory = InMemoryDedupStore()
    dispatch_alert(_alert(), _channels(httpserver), dedup_store=memory)
    report = dispatch_alert(_alert(), _channels(httpserver), dedup_store=memory)
    assert report.suppressed_channels == ["slack_ml", "hook"]
    assert len(httpserver.log) == 2


@pytest.mark.parametrize(
    ("channels", "match"),
    [
        ([("a|b", SlackWebhookTarget("https://hooks.example/x"), FAST)], "without '|'"),
        (
            [
                ("same", SlackWebhookTarget("https://hooks.example/x"), FAST),
                ("same", SlackWebhookTarget("https://hooks.example/y"), FAST),
            ],
            "more than once",
        ),
    ],
)
def test_bad_channel_names_are_refused(channels, match):
    with pytest.raises(ConfigurationError, match=match):
        dispatch_alert(_alert(), channels)


def test_rule_naming_an_unknown_channel_is_refused(httpserver: HTTPServer):
    with pytest.raises(ConfigurationError, match="unknown channel"):
        dispatch_alert(_alert(), _channels(httpserver), rule={"critical": ["nowhere"]})


# -- a resolve ends the dedup window of its trigger ---------------------------------------------


def test_stored_resolve_ends_the_window_of_its_trigger_and_vice_versa(store):
    dedup = MetricsStoreDedup(store)
    trigger = AlertRouter.dedup_store_key(_alert("critical"), "pd_oncall")
    resolve = AlertRouter.dedup_store_key(_alert("info", action="resolve"), "pd_oncall")
    elsewhere = AlertRouter.dedup_store_key(_alert("info", action="resolve"), "slack_ml")

    dedup.record(trigger, _now())
    assert dedup.seen_recently(trigger, WINDOW, _now())
    dedup.record(elsewhere, _now())  # a resolve on another channel changes nothing here
    assert dedup.seen_recently(trigger, WINDOW, _now())
    dedup.record(resolve, _now())
    assert not dedup.seen_recently(trigger, WINDOW, _now())
    assert dedup.seen_recently(resolve, WINDOW, _now())
    dedup.record(trigger, _now())
    assert dedup.seen_recently(trigger, WINDOW, _now())
    assert not dedup.seen_recently(resolve, WINDOW, _now())


def test_failed_resolve_does_not_end_the_window(store):
    dedup = MetricsStoreDedup(store)
    trigger = AlertRouter.dedup_store_key(_alert("critical"), "pd_oncall")
    resolve = AlertRouter.dedup_store_key(_alert("info", action="resolve"), "pd_oncall")
    dedup.record(trigger, _now())
    dedup.record_result(
        resolve, DeliveryResult("pd_oncall", "pagerduty", "failed", attempts=1, error="HTTP 500")
    )
    assert dedup.seen_recently(trigger, WINDOW, _now())


def test_fail_pass_fail_through_the_store_pages_twice(httpserver: HTTPServer, store):
    httpserver.expect_request("/slack").respond_with_data("ok")
    httpserver.expect_request("/hook").respond_with_data("ok")
    channels = _channels(httpserver)
    failed = _alert("critical")
    passed = _alert("info", action="resolve")

    first = dispatch_alert(failed, channels, metrics_store=store)
    resolved = dispatch_alert(passed, channels, metrics_store=store)
    again = dispatch_alert(failed, channels, metrics_store=store)
    repeat = dispatch_alert(failed, channels, metrics_store=store)

    assert first.delivered_channels == ["slack_ml", "hook"]
    assert resolved.delivered_channels == ["slack_ml", "hook"]
    assert again.delivered_channels == ["slack_ml", "hook"]
    assert repeat.suppressed_channels == ["slack_ml", "hook"]
    assert len(httpserver.log) == 6


# -- a resolve goes only where a trigger is open --------------------------------------------------


def test_open_trigger_in_the_store_is_the_latest_delivered_row(store):
    dedup = MetricsStoreDedup(store)
    alert_key = _alert().dedup_key
    assert not dedup.has_open_trigger(alert_key, "pd_oncall")
    dedup.record_result(  # a failed trigger opens nothing
        AlertRouter.dedup_store_key(_alert("critical"), "pd_oncall"),
        DeliveryResult("pd_oncall", "pagerduty", "failed", attempts=1, error="HTTP 400"),
    )
    assert not dedup.has_open_trigger(alert_key, "pd_oncall")
    dedup.record(AlertRouter.dedup_store_key(_alert("warning"), "pd_oncall"), _now())
    assert dedup.has_open_trigger(alert_key, "pd_oncall")
    assert not dedup.has_open_trigger(alert_key, "slack_ml")
    assert not dedup.has_open_trigger("mlprod:other", "pd_oncall")
    dedup.record(AlertRouter.dedup_store_key(_alert("info", action="resolve"), "pd_oncall"), _now())
    assert not dedup.has_open_trigger(alert_key, "pd_oncall")
    dedup.record(AlertRouter.dedup_store_key(_alert("critical"), "pd_oncall"), _now())
    assert dedup.has_open_trigger(alert_key, "pd_oncall")


def test_open_trigger_of_a_long_alert_key_uses_the_hashed_column(store):
    dedup = MetricsStoreDedup(store)
    long_key = "mlprod:" + "x" * 248
    dedup.record(AlertRouter.dedup_store_key(_alert(key=long_key), "slack_ml"), _now())
    assert dedup.has_open_trigger(long_key, "slack_ml")
    assert not dedup.has_open_trigger("mlprod:" + "y" * 248, "slack_ml")


def test_resolve_through_the_store_reaches_only_channels_with_an_open_trigger(
    httpserver: HTTPServer, store, caplog
):
    httpserver.expect_request("/slack").respond_with_data("ok")
    httpserver.expect_request("/hook").respond_with_data("ok")
    rule = {"critical": ["slack_ml", "hook"], "warning": ["slack_ml"], "info": ["log"]}
    passed = _alert("info", action="resolve")

    def send(alert: Alert):
        return dispatch_alert(alert, _channels(httpserver), rule=rule, metrics_store=store)

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
    rows = MetricsStoreDedup(store).deliveries_of(passed)
    assert sorted(r["channel"] for r in rows) == ["log", "slack_ml"]  # suppressed: not recorded

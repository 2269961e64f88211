"""Routing by severity, dedup, and the all-channels-failed rule, against a real local server."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.dedup import DedupStore, InMemoryDedupStore
from airflow_provider_mlprod.alerts.log_channel import LogTarget
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.pagerduty import PagerDutyTarget
from airflow_provider_mlprod.alerts.routing import AlertDeliveryError, AlertRouter
from airflow_provider_mlprod.alerts.slack import SlackWebhookTarget
from airflow_provider_mlprod.alerts.webhook import JsonWebhookTarget
from airflow_provider_mlprod.exceptions import ConfigurationError, DeliveryError, StoreError

RULE = {"critical": ["oncall", "team"], "warning": ["team"], "info": ["log"]}


class SteppingClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def _router(httpserver: HTTPServer, fast_options, **kwargs) -> AlertRouter:
    channels = {
        "oncall": PagerDutyTarget("R0UTING0KEY0123456789abcdef0123", events_url=httpserver.url_for("/pd")),
        "team": SlackWebhookTarget(httpserver.url_for("/slack")),
    }
    return AlertRouter(channels, RULE, options=fast_options, **kwargs)


def _alert(severity: str = "critical", **kwargs) -> Alert:
    return Alert(title=f"{severity} alert", severity=severity, dedup_key="mlprod:test", **kwargs)


def test_critical_goes_to_pagerduty_and_slack(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")

    report = _router(httpserver, fast_options).dispatch(_alert("critical"))

    assert report.delivered_channels == ["oncall", "team"]
    assert sorted(request.path for request, _ in httpserver.log) == ["/pd", "/slack"]
    assert report.to_dict()["failed"] == []


def test_warning_goes_to_slack_only(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    report = _router(httpserver, fast_options).dispatch(_alert("warning"))
    assert report.delivered_channels == ["team"]
    assert [request.path for request, _ in httpserver.log] == ["/slack"]


def test_info_goes_to_the_builtin_log_channel(
    httpserver: HTTPServer, fast_options, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_mlprod.alerts")
    report = _router(httpserver, fast_options).dispatch(_alert("info"))
    assert report.delivered_channels == ["log"]
    assert httpserver.log == []
    assert any(record.getMessage().startswith("[INFO] info alert") for record in caplog.records)


def test_no_channels_defaults_to_log_for_every_severity() -> None:
    router = AlertRouter({})
    for severity in ("info", "warning", "critical"):
        assert router.channels_for(severity) == ["log"]
        assert router.dispatch(_alert(severity)).delivered_channels == ["log"]


def test_without_rule_every_channel_gets_every_alert(httpserver: HTTPServer) -> None:
    router = AlertRouter({"a": LogTarget("x.a"), "b": LogTarget("x.b")})
    assert router.channels_for("info") == ["a", "b"]
    assert router.channels_for("critical") == ["a", "b"]


def test_severity_missing_from_rule_falls_back_to_log(httpserver: HTTPServer, fast_options) -> None:
    router = AlertRouter({"team": SlackWebhookTarget(httpserver.url_for("/slack"))}, {"critical": ["team"]})
    assert router.channels_for("warning") == ["log"]
    assert router.channels_for("info") == ["log"]


@pytest.mark.parametrize(
    ("channels", "rule", "message"),
    [
        ({}, {"critical": ["nowhere"]}, "unknown channel"),
        ({}, {"fatal": ["log"]}, "rule key 'fatal'"),
        ({}, {"critical": "log"}, "not a string"),
        ({"https://hooks.example/x": LogTarget()}, None, "looks like a URL"),
        ({"": LogTarget()}, None, "name is empty"),
        ({"odd": object()}, None, "not a known channel kind"),
    ],
)
def test_bad_routing_config_is_rejected(channels: dict, rule: dict | None, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AlertRouter(channels, rule)


def test_bad_dedup_window_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="dedup_window"):
        AlertRouter({}, dedup_window=timedelta(0))


def test_same_key_within_window_is_sent_once(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    clock = SteppingClock()
    store = InMemoryDedupStore()
    assert isinstance(store, DedupStore)
    router = _router(
        httpserver, fast_options, dedup_store=store, dedup_window=timedelta(minutes=30), clock=clock
    )

    first = router.dispatch(_alert("warning"))
    clock.now += timedelta(minutes=10)
    second = router.dispatch(_alert("warning"))
    clock.now += timedelta(minutes=25)
    third = router.dispatch(_alert("warning"))

    assert first.delivered_channels == ["team"]
    assert second.suppressed_channels == ["team"]
    assert second.results[0].attempts == 0
    assert third.delivered_channels == ["team"]
    assert len(httpserver.log) == 2


def test_failed_channel_is_not_recorded_so_a_retry_resends_only_there(
    httpserver: HTTPServer, fast_options
) -> None:
    httpserver.expect_ordered_request("/pd").respond_with_data("no", status=400)
    httpserver.expect_ordered_request("/slack").respond_with_data("ok")
    httpserver.expect_ordered_request("/pd").respond_with_json({"status": "success"}, status=202)
    store = InMemoryDedupStore()
    router = _router(httpserver, fast_options, dedup_store=store)

    partial = router.dispatch(_alert("critical"))
    retried = router.dispatch(_alert("critical"))

    assert (partial.delivered_channels, partial.failed_channels) == (["team"], ["oncall"])
    assert partial.results[0].error == "HTTP 400 BAD REQUEST: no"
    assert (retried.delivered_channels, retried.suppressed_channels) == (["oncall"], ["team"])
    httpserver.check_assertions()


def test_resolve_is_not_suppressed_by_the_trigger(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    router = _router(httpserver, fast_options, dedup_store=InMemoryDedupStore())
    router.dispatch(_alert("warning"))
    resolved = router.dispatch(_alert("warning", action="resolve"))
    assert resolved.delivered_channels == ["team"]


def test_every_channel_failing_raises_delivery_error_naming_each(
    httpserver: HTTPServer, fast_options, closed_port_url: str
) -> None:
    httpserver.expect_request("/slack").respond_with_data("no_service", status=404)
    store = InMemoryDedupStore()
    channels = {
        "oncall": PagerDutyTarget("R0UTING0KEY0123456789abcdef0123", events_url=closed_port_url),
        "team": SlackWebhookTarget(httpserver.url_for("/slack")),
    }
    router = AlertRouter(channels, RULE, options=fast_options, dedup_store=store)

    with pytest.raises(DeliveryError) as caught:
        router.dispatch(_alert("critical"))

    error = caught.value
    assert isinstance(error, AlertDeliveryError)
    message = str(error)
    assert "'critical alert' was not delivered on any channel" in message
    assert "channel 'oncall' (pagerduty): connection failed (ConnectionError) after 3 attempt(s)" in message
    assert "channel 'team' (slack): HTTP 404 NOT FOUND: no_service after 1 attempt(s)" in message
    assert error.report.failed_channels == ["oncall", "team"]
    assert store.keys() == []


def test_partial_failure_returns_report_with_failed_marked(
    httpserver: HTTPServer, fast_options, closed_port_url: str
) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    channels = {
        "oncall": PagerDutyTarget("R0UTING0KEY0123456789abcdef0123", events_url=closed_port_url),
        "team": SlackWebhookTarget(httpserver.url_for("/slack")),
    }
    report = AlertRouter(channels, RULE, options=fast_options).dispatch(_alert("critical"))
    data = report.to_dict()
    assert data["delivered"] == ["team"]
    assert data["failed"] == ["oncall"]
    failed = next(result for result in data["results"] if result["channel"] == "oncall")
    assert (failed["status"], failed["delivered"], failed["attempts"]) == ("failed", False, 3)


class BrokenStore:
    """A dedup store whose backend is down."""

    def seen_recently(self, key: str, window: timedelta, now: datetime) -> bool:
        raise StoreError("metrics store unreachable")

    def record(self, key: str, sent_at: datetime) -> None:
        raise StoreError("metrics store unreachable")


def test_unusable_dedup_store_still_sends(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    router = _router(httpserver, fast_options, dedup_store=BrokenStore())
    assert router.dispatch(_alert("warning")).delivered_channels == ["team"]


def test_webhook_channel_in_router(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    router = AlertRouter({"hook": JsonWebhookTarget(httpserver.url_for("/hook"))}, options=fast_options)
    report = router.dispatch(_alert("info"))
    assert report.delivered_channels == ["hook"]

"""Routing by severity, dedup, and the all-channels-failed rule, against a real local server."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.dedup import DedupStore, InMemoryDedupStore
from airflow_provider_mlprod.alerts.delivery import DeliveryOptions, RetryPolicy
from airflow_provider_mlprod.alerts.log_channel import LogTarget
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.pagerduty import PagerDutyTarget
from airflow_provider_mlprod.alerts.routing import DUPLICATE, NO_OPEN_TRIGGER, AlertDeliveryError, AlertRouter
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
    # Channels are sent concurrently: no order between /pd and /slack, only the first /pd fails.
    httpserver.expect_oneshot_request("/pd").respond_with_data("no", status=400)
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")
    store = InMemoryDedupStore()
    router = _router(httpserver, fast_options, dedup_store=store)

    partial = router.dispatch(_alert("critical"))
    retried = router.dispatch(_alert("critical"))

    assert (partial.delivered_channels, partial.failed_channels) == (["team"], ["oncall"])
    assert partial.results[0].error == "HTTP 400 BAD REQUEST: no"
    assert (retried.delivered_channels, retried.suppressed_channels) == (["oncall"], ["team"])
    assert sorted(request.path for request, _ in httpserver.log) == ["/pd", "/pd", "/slack"]
    httpserver.check_assertions()


def test_resolve_is_not_suppressed_by_the_trigger(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")
    router = _router(httpserver, fast_options, dedup_store=InMemoryDedupStore())
    router.dispatch(_alert("warning"))
    resolved = router.dispatch(_alert("warning", action="resolve"))
    assert resolved.delivered_channels == ["team", "log"]
    # oncall never had the trigger: not a dedup suppression, just nothing to close there
    assert [(r.channel, r.reason) for r in resolved.results if r.status == "suppressed"] == [
        ("oncall", "no open trigger")
    ]


def test_a_new_failure_after_a_resolve_pages_again_within_the_window(
    httpserver: HTTPServer, fast_options
) -> None:
    # fail -> pass -> fail inside one dedup window: the second failure must page again.
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")
    clock = SteppingClock()
    router = _router(httpserver, fast_options, dedup_store=InMemoryDedupStore(), clock=clock)

    first = router.dispatch(_alert("critical"))
    clock.now += timedelta(minutes=20)
    resolved = router.dispatch(_alert("info", action="resolve"))
    clock.now += timedelta(minutes=20)
    again = router.dispatch(_alert("critical"))
    clock.now += timedelta(minutes=5)
    repeat = router.dispatch(_alert("critical"))
    clock.now += timedelta(minutes=5)
    resolved_again = router.dispatch(_alert("info", action="resolve"))

    assert first.delivered_channels == ["oncall", "team"]
    assert resolved.delivered_channels == ["oncall", "team", "log"]
    assert again.delivered_channels == ["oncall", "team"]
    assert again.suppressed_channels == []
    assert repeat.suppressed_channels == ["oncall", "team"]  # dedup still works within one state
    # the new trigger reopened the incident on oncall and team; the log saw no trigger since its resolve
    assert resolved_again.delivered_channels == ["oncall", "team"]
    assert resolved_again.suppressed_channels == ["log"]
    actions = [
        json.loads(request.get_data())["event_action"]
        for request, _ in httpserver.log
        if request.path == "/pd"
    ]
    assert actions == ["trigger", "resolve", "trigger", "resolve"]


def test_in_memory_store_ignores_an_older_opposite_action() -> None:
    store = InMemoryDedupStore()
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    trigger = AlertRouter.dedup_store_key(_alert("critical"), "team")
    resolve = AlertRouter.dedup_store_key(_alert("info", action="resolve"), "team")
    store.record(resolve, now - timedelta(minutes=30))
    store.record(trigger, now - timedelta(minutes=10))
    assert store.seen_recently(trigger, timedelta(hours=1), now)
    assert not store.seen_recently(resolve, timedelta(hours=1), now)
    assert store.seen_recently("not-a-router-key", timedelta(hours=1), now) is False


def test_pass_with_no_prior_failure_posts_nothing_but_logs(
    httpserver: HTTPServer, fast_options, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")
    router = _router(httpserver, fast_options, dedup_store=InMemoryDedupStore())

    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        report = router.dispatch(_alert("info", action="resolve"))

    assert httpserver.log == []  # neither PagerDuty nor Slack was called
    assert report.delivered_channels == ["log"]
    assert report.failed_channels == []
    suppressed = {r.channel: (r.reason, r.attempts) for r in report.results if r.status == "suppressed"}
    assert suppressed == {"oncall": (NO_OPEN_TRIGGER, 0), "team": (NO_OPEN_TRIGGER, 0)}
    assert report.to_dict()["results"][0]["reason"] == "no open trigger"
    assert any(record.getMessage().startswith("[RESOLVED] info alert") for record in caplog.records)
    assert "channel 'oncall' has no open trigger" in caplog.text


def test_resolve_reaches_exactly_the_channels_that_delivered_the_trigger(
    httpserver: HTTPServer, fast_options
) -> None:
    # PagerDuty refuses the trigger (400, not retried), Slack takes it: only Slack holds an incident.
    httpserver.expect_request("/pd").respond_with_data("bad routing key", status=400)
    httpserver.expect_request("/slack").respond_with_data("ok")
    clock = SteppingClock()
    store = InMemoryDedupStore()
    router = _router(httpserver, fast_options, dedup_store=store, clock=clock)

    failed = router.dispatch(_alert("critical"))
    clock.now += timedelta(minutes=5)
    resolved = router.dispatch(_alert("info", action="resolve"))
    clock.now += timedelta(minutes=5)
    passed_again = router.dispatch(_alert("info", action="resolve"))

    assert (failed.delivered_channels, failed.failed_channels) == (["team"], ["oncall"])
    assert resolved.delivered_channels == ["team", "log"]
    assert [(r.channel, r.reason) for r in resolved.results if r.status == "suppressed"] == [
        ("oncall", NO_OPEN_TRIGGER)
    ]
    # the incident is closed everywhere: the next pass posts nothing; the log had it within the window
    assert passed_again.delivered_channels == []
    reasons = {r.channel: r.reason for r in passed_again.results}
    assert reasons == {"oncall": NO_OPEN_TRIGGER, "team": NO_OPEN_TRIGGER, "log": DUPLICATE}
    slack = [json.loads(request.get_data()) for request, _ in httpserver.log if request.path == "/slack"]
    assert len(slack) == 2  # the trigger and its one resolve
    assert (
        len([request for request, _ in httpserver.log if request.path == "/pd"]) == 1
    )  # the refused trigger


def test_open_trigger_is_per_alert_and_channel_and_any_severity() -> None:
    store = InMemoryDedupStore()
    at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert isinstance(store, DedupStore)
    assert not store.has_open_trigger("mlprod:test", "team")
    store.record(AlertRouter.dedup_store_key(_alert("warning"), "team"), at)
    assert store.has_open_trigger("mlprod:test", "team")
    assert not store.has_open_trigger("mlprod:test", "oncall")
    assert not store.has_open_trigger("mlprod:other", "team")
    store.record(
        AlertRouter.dedup_store_key(_alert("info", action="resolve"), "team"), at + timedelta(minutes=1)
    )
    assert not store.has_open_trigger("mlprod:test", "team")
    store.record(AlertRouter.dedup_store_key(_alert("critical"), "team"), at + timedelta(minutes=2))
    assert store.has_open_trigger("mlprod:test", "team")


class UnsureStore(InMemoryDedupStore):
    """A dedup store whose open-trigger lookup fails."""

    def has_open_trigger(self, alert_key: str, channel: str) -> bool:
        raise StoreError("metrics store unreachable")


def test_resolve_is_sent_when_the_store_cannot_tell(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")
    router = _router(httpserver, fast_options, dedup_store=UnsureStore())
    report = router.dispatch(_alert("info", action="resolve"))
    assert report.delivered_channels == ["oncall", "team", "log"]  # a resolve too many beats one lost


def test_resolve_goes_to_every_channel_of_the_rule(httpserver: HTTPServer, fast_options) -> None:
    # Without a dedup store nothing tells which channel holds an incident: the README rule sends info
    # to the log only, yet a pass (severity info, action resolve) must still close the PagerDuty
    # incident a critical trigger opened.
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")
    router = _router(httpserver, fast_options)
    assert router.channels_for("info", "resolve") == ["oncall", "team", "log"]
    assert router.channels_for("info") == ["log"]

    report = router.dispatch(_alert("info", action="resolve"))

    assert report.delivered_channels == ["oncall", "team", "log"]
    [pd_request] = [request for request, _ in httpserver.log if request.path == "/pd"]
    assert json.loads(pd_request.get_data())["event_action"] == "resolve"


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


# -- per-channel options, unusable channels, history --------------------------------------------


def test_each_channel_gets_its_own_options_or_retry_policy(
    httpserver: HTTPServer, fast_options, recorded_sleeps: list[float]
) -> None:
    httpserver.expect_request("/pd").respond_with_data("busy", status=503)
    httpserver.expect_request("/slack").respond_with_data("busy", status=503)
    own_sleeps: list[float] = []
    router = _router(
        httpserver,
        fast_options,
        options_by_channel={
            "oncall": RetryPolicy(timeout_seconds=2.0, max_attempts=2, base_delay_seconds=0.0),
            "team": DeliveryOptions(
                policy=RetryPolicy(timeout_seconds=2.0, max_attempts=4, base_delay_seconds=0.0),
                sleep=own_sleeps.append,
            ),
        },
    )
    assert router.options_for("oncall").sleep == fast_options.sleep  # a policy keeps the shared sleep
    assert router.options_for("log") is fast_options
    with pytest.raises(AlertDeliveryError) as caught:
        router.dispatch(_alert("critical"))
    attempts = {result.channel: result.attempts for result in caught.value.report.results}
    assert attempts == {"oncall": 2, "team": 4}
    assert len(recorded_sleeps) == 1  # oncall's one retry wait went to the shared sleep
    assert len(own_sleeps) == 3  # team's three waits went to its own


@pytest.mark.parametrize(
    ("options_by_channel", "message"),
    [
        ({"nowhere": RetryPolicy()}, "options given for unknown channel 'nowhere'"),
        ({"team": {"max_attempts": 2}}, "must be DeliveryOptions or a RetryPolicy"),
    ],
)
def test_bad_channel_options_are_rejected(httpserver: HTTPServer, fast_options, options_by_channel, message):
    with pytest.raises(ConfigurationError, match=message):
        _router(httpserver, fast_options, options_by_channel=options_by_channel)


def test_unusable_channel_is_routed_as_a_failure(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    router = AlertRouter(
        {"team": SlackWebhookTarget(httpserver.url_for("/slack"))},
        {"critical": ["oncall", "team"]},
        options=fast_options,
        unusable_channels={"oncall": "connection 'oncall' has no routing key"},
    )
    report = router.dispatch(_alert("critical"))
    assert report.delivered_channels == ["team"]
    [failed] = [result for result in report.results if result.failed]
    assert (failed.channel, failed.kind, failed.attempts) == ("oncall", "unusable", 0)
    assert failed.error == "connection 'oncall' has no routing key"
    with pytest.raises(ConfigurationError, match="both configured and unusable"):
        AlertRouter({"team": LogTarget()}, unusable_channels={"team": "broken"})


class RecordingHistory:
    """A delivery history that keeps what it was given, and can also act as the dedup store."""

    def __init__(self) -> None:
        self.results: list[tuple[str, str]] = []

    def record_result(self, key: str, result) -> None:
        self.results.append((key.rsplit("|", 1)[-1], result.status))

    def seen_recently(self, key: str, window: timedelta, now: datetime) -> bool:
        return any(key.endswith("|" + channel) and status == "delivered" for channel, status in self.results)

    def record(self, key: str, sent_at: datetime) -> None:
        self.results.append((key.rsplit("|", 1)[-1], "recorded by dedup"))


def test_history_gets_delivered_and_failed_results_before_the_error(
    httpserver: HTTPServer, fast_options, closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    history = RecordingHistory()
    channels = {"team": SlackWebhookTarget(closed_port_url)}
    router = AlertRouter(
        channels, options=fast_options, history=history, unusable_channels={"oncall": "not defined"}
    )
    with caplog.at_level(logging.ERROR), pytest.raises(AlertDeliveryError):
        router.dispatch(_alert("warning", summary="the text that must not be lost"))
    assert history.results == [("team", "failed"), ("oncall", "failed")]
    assert "the text that must not be lost" in caplog.text


def test_history_that_is_the_dedup_store_is_written_once(httpserver: HTTPServer, fast_options) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    history = RecordingHistory()
    memory = InMemoryDedupStore()
    router = _router(httpserver, fast_options, dedup_store=history, history=history)
    router.dispatch(_alert("warning"))
    again = router.dispatch(_alert("warning"))
    assert history.results == [("team", "delivered")]  # the suppressed repeat is not a delivery
    assert again.suppressed_channels == ["team"]
    separate = _router(httpserver, fast_options, dedup_store=memory, history=RecordingHistory())
    separate.dispatch(_alert("warning"))
    assert len(memory.keys()) == 1  # a separate dedup store still records the delivery


# -- a channel raising an unexpected exception -----------------------------------------------------


def _raising_sleep(seconds: float) -> None:
    raise RuntimeError("vault token hvs.SECRET0TOKEN leaked into this message")


def test_unexpected_exception_in_one_channel_does_not_stop_the_others(
    httpserver: HTTPServer, fast_options, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/pd").respond_with_data("busy", status=503)
    httpserver.expect_request("/slack").respond_with_data("ok")
    history = RecordingHistory()
    router = _router(
        httpserver,
        fast_options,
        history=history,
        options_by_channel={"oncall": DeliveryOptions(policy=fast_options.policy, sleep=_raising_sleep)},
    )
    with caplog.at_level(logging.WARNING):
        report = router.dispatch(_alert("critical"))

    assert report.delivered_channels == ["team"]
    [failed] = [result for result in report.results if result.failed]
    assert (failed.channel, failed.kind, failed.error) == ("oncall", "pagerduty", "RuntimeError")
    assert history.results == [("oncall", "failed"), ("team", "delivered")]
    assert "SECRET0TOKEN" not in caplog.text
    assert "SECRET0TOKEN" not in json.dumps(report.to_dict())


def test_unexpected_exception_on_the_only_channel_is_logged_recorded_and_raised(
    httpserver: HTTPServer, fast_options, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/pd").respond_with_data("busy", status=503)
    history = RecordingHistory()
    router = AlertRouter(
        {"oncall": PagerDutyTarget("R0UTING0KEY0123456789abcdef0123", events_url=httpserver.url_for("/pd"))},
        options=DeliveryOptions(policy=fast_options.policy, sleep=_raising_sleep),
        history=history,
    )
    with caplog.at_level(logging.ERROR), pytest.raises(AlertDeliveryError) as caught:
        router.dispatch(_alert("critical", summary="the text that must not be lost"))
    assert "channel 'oncall' (pagerduty): RuntimeError" in str(caught.value)
    assert "SECRET0TOKEN" not in str(caught.value)
    assert history.results == [("oncall", "failed")]
    assert "reached no channel" in caplog.text
    assert "the text that must not be lost" in caplog.text


def test_a_hanging_channel_delays_no_other_and_the_alert_ends_at_its_deadline(httpserver) -> None:
    import threading
    import time

    from pytest_httpserver import HTTPServer

    from airflow_provider_mlprod.alerts.delivery import RetryPolicy
    from airflow_provider_mlprod.alerts.routing import ChannelSpec, dispatch_alert
    from airflow_provider_mlprod.alerts.slack import SlackWebhookTarget
    from airflow_provider_mlprod.alerts.webhook import JsonWebhookTarget

    release = threading.Event()
    hanging = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    hanging.expect_request("/hang").respond_with_handler(lambda request: release.wait(30) and None)
    hanging.start()
    received: dict[str, float] = {}

    def record(name):
        def handler(request):
            from werkzeug import Response

            received[name] = time.monotonic()
            return Response("ok")

        return handler

    httpserver.expect_request("/a").respond_with_handler(record("a"))
    httpserver.expect_request("/b").respond_with_handler(record("b"))
    deadline = 2.0
    channels = [
        ChannelSpec(
            "hang",
            JsonWebhookTarget(hanging.url_for("/hang")),
            RetryPolicy(deadline, 1, total_seconds=deadline),
        ),
        ChannelSpec("a", SlackWebhookTarget(httpserver.url_for("/a"))),
        ChannelSpec("b", JsonWebhookTarget(httpserver.url_for("/b"))),
    ]
    try:
        started = time.monotonic()
        report = dispatch_alert(Alert(title="fan-out", severity="critical"), channels)
        total = time.monotonic() - started
    finally:
        release.set()
        hanging.clear()
        hanging.stop()

    assert report.delivered_channels == ["a", "b"]
    assert report.failed_channels == ["hang"]
    assert max(received.values()) - started < 1.0  # not after the hanging channel
    assert deadline <= total < deadline + 1.0

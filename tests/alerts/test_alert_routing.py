"""Routing by severity, dedup, open triggers and the all-channels-failed rule, against a real local
server and a real metrics store (SQLite; time is moved by ageing the store's rows)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.channels import (
    JsonWebhookTarget,
    LogTarget,
    PagerDutyTarget,
    SlackWebhookTarget,
)
from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import (
    DUPLICATE,
    NO_OPEN_TRIGGER,
    AlertDeliveryError,
    Channel,
    routed_channels,
    send_alert,
)
from airflow_provider_mlprod.exceptions import ConfigurationError, DeliveryError, StoreError
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from tests.alerts.conftest import delivery_rows, last_deliveries

RULE = {"critical": ["oncall", "team"], "warning": ["team"], "info": ["log"]}
ROUTING_KEY = "R0UTING0KEY0123456789abcdef0123"


@pytest.fixture
def store(sqlite_url: str) -> MetricsStore:
    engine = sa.create_engine(sqlite_url)
    yield MetricsStore(engine)
    engine.dispose()


def age(store: MetricsStore, minutes: float) -> None:
    """Move every recorded delivery and suppression ``minutes`` into the past."""
    with store.engine.begin() as connection:
        for table, column in (
            (schema.alert_deliveries, "sent_at"),
            (schema.alert_suppressions, "suppressed_at"),
        ):
            for row_id, at in connection.execute(sa.select(table.c.id, table.c[column])).all():
                moved = {column: at - timedelta(minutes=minutes)}
                connection.execute(table.update().where(table.c.id == row_id).values(moved))


def _channels(httpserver: HTTPServer, policy: RetryPolicy, **policies: RetryPolicy) -> list[Channel]:
    return [
        Channel(
            "oncall",
            PagerDutyTarget(ROUTING_KEY, events_url=httpserver.url_for("/pd")),
            policies.get("oncall", policy),
        ),
        Channel("team", SlackWebhookTarget(httpserver.url_for("/slack")), policies.get("team", policy)),
    ]


def _send(httpserver: HTTPServer, policy: RetryPolicy, alert: Alert, **kwargs):
    return send_alert(alert, _channels(httpserver, policy), rule=RULE, **kwargs)


def _alert(severity: str = "critical", **kwargs) -> Alert:
    return Alert(title=f"{severity} alert", severity=severity, dedup_key="mlprod:test", **kwargs)


def _ok(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pd").respond_with_json({"status": "success"}, status=202)
    httpserver.expect_request("/slack").respond_with_data("ok")


def test_critical_goes_to_pagerduty_and_slack(httpserver: HTTPServer, fast_policy) -> None:
    _ok(httpserver)
    report = _send(httpserver, fast_policy, _alert("critical"))
    assert report.delivered_channels == ["oncall", "team"]
    assert sorted(request.path for request, _ in httpserver.log) == ["/pd", "/slack"]
    assert report.to_dict()["failed"] == []


def test_warning_goes_to_slack_only(httpserver: HTTPServer, fast_policy) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    report = _send(httpserver, fast_policy, _alert("warning"))
    assert report.delivered_channels == ["team"]
    assert [request.path for request, _ in httpserver.log] == ["/slack"]


def test_info_goes_to_the_builtin_log_channel(
    httpserver: HTTPServer, fast_policy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_mlprod.alerts")
    report = _send(httpserver, fast_policy, _alert("info"))
    assert report.delivered_channels == ["log"]
    assert httpserver.log == []
    assert any(record.getMessage().startswith("[INFO] info alert") for record in caplog.records)


def test_no_channels_defaults_to_log_for_every_severity() -> None:
    for severity in ("info", "warning", "critical"):
        assert routed_channels(None, [], severity) == ["log"]
        assert send_alert(_alert(severity), []).delivered_channels == ["log"]


def test_without_rule_every_channel_gets_every_alert() -> None:
    assert routed_channels(None, ["a", "b"], "info") == ["a", "b"]
    report = send_alert(_alert("critical"), [Channel("a", LogTarget("x.a")), Channel("b", LogTarget("x.b"))])
    assert report.delivered_channels == ["a", "b"]


def test_rule_given_as_json_text_routes_like_the_mapping() -> None:
    assert routed_channels('{"critical": ["team"]}', ["team", "other"], "critical") == ["team"]
    assert routed_channels('{"critical": ["team"]}', ["team"], "info") == ["log"]


def test_severity_missing_from_rule_falls_back_to_log() -> None:
    assert routed_channels({"critical": ["team"]}, ["team"], "warning") == ["log"]
    assert routed_channels({"critical": ["team"]}, ["team"], "info") == ["log"]


@pytest.mark.parametrize(
    ("channels", "rule", "message"),
    [
        ([], {"critical": ["nowhere"]}, "unknown channel"),
        ([], {"fatal": ["log"]}, "routing key 'fatal'"),
        ([], {"critical": "log"}, "list of connection ids"),
        ([Channel("a", LogTarget()), Channel("a", LogTarget())], None, "configured more than once"),
    ],
)
def test_bad_routing_config_is_rejected(channels: list, rule: dict | None, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        send_alert(_alert(), channels, rule=rule)


@pytest.mark.parametrize(
    ("name", "target", "message"),
    [
        ("https://hooks.example/x", LogTarget(), "looks like a URL"),
        ("", LogTarget(), "name is empty"),
        ("odd", object(), "not a known channel kind"),
    ],
)
def test_bad_channels_are_rejected(name: str, target: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Channel(name, target)


def test_bad_dedup_window_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="dedup_window"):
        send_alert(_alert(), [], window=timedelta(0))


def test_same_key_within_window_is_sent_once(httpserver: HTTPServer, fast_policy, store) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    window = timedelta(minutes=30)

    first = _send(httpserver, fast_policy, _alert("warning"), store=store, window=window)
    age(store, 10)
    second = _send(httpserver, fast_policy, _alert("warning"), store=store, window=window)
    age(store, 25)
    third = _send(httpserver, fast_policy, _alert("warning"), store=store, window=window)

    assert first.delivered_channels == ["team"]
    assert second.suppressed_channels == ["team"]
    assert (second.results[0].attempts, second.results[0].reason) == (0, DUPLICATE)
    assert third.delivered_channels == ["team"]
    assert len(httpserver.log) == 2


def test_failed_channel_is_not_recorded_so_a_retry_resends_only_there(
    httpserver: HTTPServer, fast_policy, store
) -> None:
    # Channels are sent concurrently: no order between /pd and /slack, only the first /pd fails.
    httpserver.expect_oneshot_request("/pd").respond_with_data("no", status=400)
    _ok(httpserver)

    partial = _send(httpserver, fast_policy, _alert("critical"), store=store)
    retried = _send(httpserver, fast_policy, _alert("critical"), store=store)

    assert (partial.delivered_channels, partial.failed_channels) == (["team"], ["oncall"])
    assert partial.results[0].error == "HTTP 400 BAD REQUEST: no"
    assert (retried.delivered_channels, retried.suppressed_channels) == (["oncall"], ["team"])
    assert sorted(request.path for request, _ in httpserver.log) == ["/pd", "/pd", "/slack"]
    httpserver.check_assertions()


def test_resolve_is_not_suppressed_by_the_trigger(httpserver: HTTPServer, fast_policy, store) -> None:
    _ok(httpserver)
    _send(httpserver, fast_policy, _alert("warning"), store=store)
    resolved = _send(httpserver, fast_policy, _alert("warning", action="resolve"), store=store)
    assert resolved.delivered_channels == ["team", "log"]
    # oncall never had the trigger: not a dedup suppression, just nothing to close there
    assert [(r.channel, r.reason) for r in resolved.results if r.status == "suppressed"] == [
        ("oncall", NO_OPEN_TRIGGER)
    ]


def test_a_new_failure_after_a_resolve_pages_again_within_the_window(
    httpserver: HTTPServer, fast_policy, store
) -> None:
    # fail -> pass -> fail inside one dedup window: the second failure must page again.
    _ok(httpserver)

    first = _send(httpserver, fast_policy, _alert("critical"), store=store)
    age(store, 20)
    resolved = _send(httpserver, fast_policy, _alert("info", action="resolve"), store=store)
    age(store, 20)
    again = _send(httpserver, fast_policy, _alert("critical"), store=store)
    age(store, 5)
    repeat = _send(httpserver, fast_policy, _alert("critical"), store=store)
    age(store, 5)
    resolved_again = _send(httpserver, fast_policy, _alert("info", action="resolve"), store=store)

    assert first.delivered_channels == ["oncall", "team"]
    assert resolved.delivered_channels == ["oncall", "team", "log"]
    assert again.delivered_channels == ["oncall", "team"]
    assert again.suppressed_channels == []
    assert repeat.suppressed_channels == ["oncall", "team"]  # dedup still works within one state
    # the new trigger reopened the incident on oncall and team; the log saw no trigger since its resolve
    assert resolved_again.delivered_channels == ["oncall", "team"]
    assert resolved_again.suppressed_channels == ["log"]
    actions = [json.loads(r.get_data())["event_action"] for r, _ in httpserver.log if r.path == "/pd"]
    assert actions == ["trigger", "resolve", "trigger", "resolve"]


def test_pass_with_no_prior_failure_posts_nothing_but_logs(
    httpserver: HTTPServer, fast_policy, store, caplog: pytest.LogCaptureFixture
) -> None:
    _ok(httpserver)
    with caplog.at_level(logging.INFO, logger="airflow_provider_mlprod.alerts"):
        report = _send(httpserver, fast_policy, _alert("info", action="resolve"), store=store)

    assert httpserver.log == []  # neither PagerDuty nor Slack was called
    assert report.delivered_channels == ["log"]
    assert report.failed_channels == []
    suppressed = {r.channel: (r.reason, r.attempts) for r in report.results if r.status == "suppressed"}
    assert suppressed == {"oncall": (NO_OPEN_TRIGGER, 0), "team": (NO_OPEN_TRIGGER, 0)}
    assert report.to_dict()["results"][0]["reason"] == "no open trigger"
    assert any(record.getMessage().startswith("[RESOLVED] info alert") for record in caplog.records)
    assert "channel 'oncall' has no open trigger" in caplog.text


def test_resolve_reaches_exactly_the_channels_that_delivered_the_trigger(
    httpserver: HTTPServer, fast_policy, store
) -> None:
    # PagerDuty refuses the trigger (400, not retried), Slack takes it: only Slack holds an incident.
    httpserver.expect_request("/pd").respond_with_data("bad routing key", status=400)
    httpserver.expect_request("/slack").respond_with_data("ok")

    failed = _send(httpserver, fast_policy, _alert("critical"), store=store)
    age(store, 5)
    resolved = _send(httpserver, fast_policy, _alert("info", action="resolve"), store=store)
    age(store, 5)
    passed_again = _send(httpserver, fast_policy, _alert("info", action="resolve"), store=store)

    assert (failed.delivered_channels, failed.failed_channels) == (["team"], ["oncall"])
    assert resolved.delivered_channels == ["team", "log"]
    assert [(r.channel, r.reason) for r in resolved.results if r.status == "suppressed"] == [
        ("oncall", NO_OPEN_TRIGGER)
    ]
    # the incident is closed everywhere: the next pass posts nothing; the log had it within the window
    assert passed_again.delivered_channels == []
    assert {r.channel: r.reason for r in passed_again.results} == {
        "oncall": NO_OPEN_TRIGGER,
        "team": NO_OPEN_TRIGGER,
        "log": DUPLICATE,
    }
    assert len([r for r, _ in httpserver.log if r.path == "/slack"]) == 2  # the trigger and its resolve
    assert len([r for r, _ in httpserver.log if r.path == "/pd"]) == 1  # the refused trigger


def test_open_trigger_is_per_alert_and_channel_and_any_severity(store) -> None:
    def open_on(channel: str, key: str = "mlprod:test") -> bool:
        seen = last_deliveries(store, key, channel)
        trigger = max((at for (action, _), at in seen.items() if action == "trigger"), default=None)
        resolve = max((at for (action, _), at in seen.items() if action == "resolve"), default=None)
        return trigger is not None and (resolve is None or resolve <= trigger)

    send_alert(_alert("warning"), [Channel("team", LogTarget())], store=store)
    assert open_on("team")
    assert not open_on("oncall")
    assert not open_on("team", "mlprod:other")
    age(store, 2)
    send_alert(_alert("info", action="resolve"), [Channel("team", LogTarget())], store=store)
    assert not open_on("team")
    age(store, 2)
    send_alert(_alert("critical"), [Channel("team", LogTarget())], store=store)
    assert open_on("team")


class UnreadableStore(MetricsStore):
    """A store whose lookups fail (it went away after it was opened)."""

    def last_alert_deliveries(self, dedup_keys, channel):
        raise StoreError("metrics store unreachable")


def test_resolve_is_sent_when_the_store_cannot_tell(httpserver: HTTPServer, fast_policy, store) -> None:
    _ok(httpserver)
    unsure = UnreadableStore(store.engine)
    report = _send(httpserver, fast_policy, _alert("info", action="resolve"), store=unsure)
    assert report.delivered_channels == ["oncall", "team", "log"]  # a resolve too many beats one lost


def test_resolve_goes_to_every_channel_of_the_rule(httpserver: HTTPServer, fast_policy) -> None:
    # Without a store nothing tells which channel holds an incident: the README rule sends info to
    # the log only, yet a pass (severity info, action resolve) must still close the PagerDuty incident.
    _ok(httpserver)
    assert routed_channels(RULE, ["oncall", "team"], "info", "resolve") == ["oncall", "team", "log"]
    assert routed_channels(RULE, ["oncall", "team"], "info") == ["log"]

    report = _send(httpserver, fast_policy, _alert("info", action="resolve"))

    assert report.delivered_channels == ["oncall", "team", "log"]
    [pd_request] = [request for request, _ in httpserver.log if request.path == "/pd"]
    assert json.loads(pd_request.get_data())["event_action"] == "resolve"


def test_every_channel_failing_raises_delivery_error_naming_each(
    httpserver: HTTPServer, fast_policy, closed_port_url: str, store
) -> None:
    httpserver.expect_request("/slack").respond_with_data("no_service", status=404)
    channels = [
        Channel("oncall", PagerDutyTarget(ROUTING_KEY, events_url=closed_port_url), fast_policy),
        Channel("team", SlackWebhookTarget(httpserver.url_for("/slack")), fast_policy),
    ]

    with pytest.raises(DeliveryError) as caught:
        send_alert(_alert("critical"), channels, rule=RULE, store=store)

    error = caught.value
    assert isinstance(error, AlertDeliveryError)
    message = str(error)
    assert "'critical alert' was not delivered on any channel" in message
    assert "channel 'oncall' (pagerduty): connection failed (ConnectionError) after 3 attempt(s)" in message
    assert "channel 'team' (slack): HTTP 404 NOT FOUND: no_service after 1 attempt(s)" in message
    assert error.report.failed_channels == ["oncall", "team"]
    assert error.transient  # the refused connection may pass later
    rows = delivery_rows(store, _alert("critical"))
    assert sorted((row["channel"], row["delivered"]) for row in rows) == [("oncall", False), ("team", False)]
    assert last_deliveries(store, "mlprod:test", "team") == {}  # failures never count for dedup


def test_partial_failure_returns_report_with_failed_marked(
    httpserver: HTTPServer, fast_policy, closed_port_url: str
) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    channels = [
        Channel("oncall", PagerDutyTarget(ROUTING_KEY, events_url=closed_port_url), fast_policy),
        Channel("team", SlackWebhookTarget(httpserver.url_for("/slack")), fast_policy),
    ]
    data = send_alert(_alert("critical"), channels, rule=RULE).to_dict()
    assert data["delivered"] == ["team"]
    assert data["failed"] == ["oncall"]
    failed = next(result for result in data["results"] if result["channel"] == "oncall")
    assert (failed["status"], failed["delivered"], failed["attempts"]) == ("failed", False, 3)


def test_unusable_store_still_sends(httpserver: HTTPServer, fast_policy, tmp_path) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gone.db'}")
    store = MetricsStore(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE mlprod_alert_deliveries"))
    assert _send(httpserver, fast_policy, _alert("warning"), store=store).delivered_channels == ["team"]


def test_webhook_channel_in_router(httpserver: HTTPServer, fast_policy) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    report = send_alert(
        _alert("info"), [Channel("hook", JsonWebhookTarget(httpserver.url_for("/hook")), fast_policy)]
    )
    assert report.delivered_channels == ["hook"]


# -- per-channel policies, unusable channels, history --------------------------------------------


def test_each_channel_gets_its_own_retry_policy(httpserver: HTTPServer, fast_policy, recorded_sleeps) -> None:
    httpserver.expect_request("/pd").respond_with_data("busy", status=503)
    httpserver.expect_request("/slack").respond_with_data("busy", status=503)
    own_sleeps: list[float] = []
    channels = _channels(
        httpserver,
        fast_policy,
        oncall=replace(fast_policy, max_attempts=2, base_delay_seconds=0.0),
        team=replace(fast_policy, max_attempts=4, base_delay_seconds=0.0, sleep=own_sleeps.append),
    )
    with pytest.raises(AlertDeliveryError) as caught:
        send_alert(_alert("critical"), channels, rule=RULE)
    attempts = {result.channel: result.attempts for result in caught.value.report.results}
    assert attempts == {"oncall": 2, "team": 4}
    assert len(recorded_sleeps) == 1  # oncall's one retry wait
    assert len(own_sleeps) == 3  # team's three waits went to its own sleep


def test_unusable_channel_is_routed_as_a_failure(httpserver: HTTPServer, fast_policy) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    channels = [
        Channel("team", SlackWebhookTarget(httpserver.url_for("/slack")), fast_policy),
        Channel("oncall", error="connection 'oncall' has no routing key"),
    ]
    report = send_alert(_alert("critical"), channels, rule={"critical": ["oncall", "team"]})
    assert report.delivered_channels == ["team"]
    [failed] = [result for result in report.results if result.failed]
    assert (failed.channel, failed.kind, failed.attempts) == ("oncall", "unusable", 0)
    assert failed.error == "connection 'oncall' has no routing key"


def test_history_gets_delivered_and_failed_results_before_the_error(
    fast_policy, closed_port_url: str, store, caplog: pytest.LogCaptureFixture
) -> None:
    channels = [
        Channel("team", SlackWebhookTarget(closed_port_url), fast_policy),
        Channel("oncall", error="not defined"),
    ]
    alert = _alert("warning", summary="the text that must not be lost")
    with caplog.at_level(logging.ERROR), pytest.raises(AlertDeliveryError):
        send_alert(alert, channels, store=store)
    assert [(row["channel"], row["delivered"]) for row in delivery_rows(store, alert)] == [
        ("team", False),
        ("oncall", False),
    ]
    assert "the text that must not be lost" in caplog.text


def test_suppressed_repeats_are_not_deliveries(httpserver: HTTPServer, fast_policy, store) -> None:
    httpserver.expect_request("/slack").respond_with_data("ok")
    _send(httpserver, fast_policy, _alert("warning"), store=store)
    again = _send(httpserver, fast_policy, _alert("warning"), store=store)
    assert again.suppressed_channels == ["team"]
    rows = delivery_rows(store, _alert("warning"))
    assert [(row["channel"], row["delivered"]) for row in rows] == [("team", True)]


# -- a channel raising an unexpected exception -----------------------------------------------------


def _raising_sleep(seconds: float) -> None:
    raise RuntimeError("vault token hvs.SECRET0TOKEN leaked into this message")


def test_unexpected_exception_in_one_channel_does_not_stop_the_others(
    httpserver: HTTPServer, fast_policy, store, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/pd").respond_with_data("busy", status=503)
    httpserver.expect_request("/slack").respond_with_data("ok")
    channels = _channels(httpserver, fast_policy, oncall=replace(fast_policy, sleep=_raising_sleep))
    with caplog.at_level(logging.DEBUG):  # a secret logged at any level would be in the task log
        report = send_alert(_alert("critical"), channels, rule=RULE, store=store)

    assert report.delivered_channels == ["team"]
    [failed] = [result for result in report.results if result.failed]
    assert (failed.channel, failed.kind, failed.error) == ("oncall", "pagerduty", "RuntimeError")
    rows = delivery_rows(store, _alert("critical"))
    assert [(row["channel"], row["delivered"], row["error"]) for row in rows] == [
        ("oncall", False, "RuntimeError"),
        ("team", True, ""),
    ]
    assert "channel 'oncall' raised RuntimeError" in caplog.text  # the line about the exception
    assert "SECRET0TOKEN" not in caplog.text
    assert "SECRET0TOKEN" not in json.dumps(report.to_dict())


def test_unexpected_exception_on_the_only_channel_is_logged_recorded_and_raised(
    httpserver: HTTPServer, fast_policy, store, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/pd").respond_with_data("busy", status=503)
    target = PagerDutyTarget(ROUTING_KEY, events_url=httpserver.url_for("/pd"))
    alert = _alert("critical", summary="the text that must not be lost")
    with caplog.at_level(logging.ERROR), pytest.raises(AlertDeliveryError) as caught:
        send_alert(
            alert, [Channel("oncall", target, replace(fast_policy, sleep=_raising_sleep))], store=store
        )
    assert "channel 'oncall' (pagerduty): RuntimeError" in str(caught.value)
    assert "SECRET0TOKEN" not in str(caught.value)
    assert [row["channel"] for row in delivery_rows(store, alert)] == ["oncall"]
    assert "reached no channel" in caplog.text
    assert "the text that must not be lost" in caplog.text


def test_a_hanging_channel_delays_no_other_and_the_alert_ends_at_its_deadline(httpserver) -> None:
    import threading
    import time

    from werkzeug import Response

    release = threading.Event()
    hanging = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    hanging.expect_request("/hang").respond_with_handler(lambda request: release.wait(30) and None)
    hanging.start()
    received: dict[str, float] = {}

    def record(name):
        def handler(request):
            received[name] = time.monotonic()
            return Response("ok")

        return handler

    httpserver.expect_request("/a").respond_with_handler(record("a"))
    httpserver.expect_request("/b").respond_with_handler(record("b"))
    deadline = 2.0
    channels = [
        Channel(
            "hang",
            JsonWebhookTarget(hanging.url_for("/hang")),
            RetryPolicy(deadline, 1, total_seconds=deadline),
        ),
        Channel("a", SlackWebhookTarget(httpserver.url_for("/a"))),
        Channel("b", JsonWebhookTarget(httpserver.url_for("/b"))),
    ]
    try:
        started = time.monotonic()
        report = send_alert(Alert(title="fan-out", severity="critical"), channels)
        total = time.monotonic() - started
    finally:
        release.set()
        hanging.clear()
        hanging.stop()

    assert report.delivered_channels == ["a", "b"]
    assert report.failed_channels == ["hang"]
    assert max(received.values()) - started < 1.0  # not after the hanging channel
    assert deadline <= total < deadline + 1.0

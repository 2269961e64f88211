"""Alert channel connections: parsed into targets, with errors that name the connection, never the secret."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mlprod.alerts.channels import DEFAULT_EVENTS_URL
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import ConnectionConfigError
from airflow_provider_mlprod.hooks.alert_channels import (
    JsonWebhookChannelHook,
    PagerDutyChannelHook,
    SlackWebhookChannelHook,
    TeamsWebhookChannelHook,
    alert_channel_hook,
)

SECRET = "T0SECRET/B0SECRET/xoxoSECRETtoken"


def connection(monkeypatch, conn_id: str, **fields) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


def test_slack_connection(monkeypatch):
    url = f"https://hooks.slack.com/services/{SECRET}"
    conn_id = connection(
        monkeypatch, "ml_slack", conn_type="mlprod_slack", password=url, extra={"timeout": 3}
    )
    hook = alert_channel_hook(conn_id)
    assert isinstance(hook, SlackWebhookChannelHook)
    assert hook.get_target().url == url
    assert hook.get_retry_policy().timeout_seconds == 3
    assert SECRET not in repr(hook.get_target())


@pytest.mark.parametrize(
    ("host", "password", "expected"),
    [
        (None, f"https://hooks.slack.com/services/{SECRET}", f"https://hooks.slack.com/services/{SECRET}"),
        (None, SECRET, f"https://hooks.slack.com/services/{SECRET}"),
        ("hooks.example.com/services/", f"/{SECRET}", f"https://hooks.example.com/services/{SECRET}"),
    ],
)
def test_airflow_slackwebhook_connections_are_accepted(monkeypatch, host, password, expected):
    conn_id = connection(monkeypatch, "af_slack", conn_type="slackwebhook", host=host, password=password)
    assert alert_channel_hook(conn_id).get_target().url == expected


def test_teams_connection(monkeypatch):
    url = "https://prod-1.westus.logic.azure.com/workflows/abc?sig=" + SECRET
    conn_id = connection(monkeypatch, "ml_teams", conn_type="mlprod_teams", password=url)
    hook = alert_channel_hook(conn_id)
    assert isinstance(hook, TeamsWebhookChannelHook)
    assert hook.get_target().url == url


def test_webhook_connection_with_signing_secret_and_headers(monkeypatch):
    conn_id = connection(
        monkeypatch,
        "ml_hook",
        conn_type="mlprod_webhook",
        password="https://alerts.example.com/in",
        extra={"signing_secret": SECRET, "headers": '{"X-Team": "ml"}', "max_attempts": 2},
    )
    hook = alert_channel_hook(conn_id)
    assert isinstance(hook, JsonWebhookChannelHook)
    target = hook.get_target()
    assert (target.signing_secret, dict(target.headers)) == (SECRET, {"X-Team": "ml"})
    assert hook.get_retry_policy().max_attempts == 2


def test_pagerduty_connection(monkeypatch):
    conn_id = connection(monkeypatch, "oncall", conn_type="mlprod_pagerduty", password=SECRET)
    hook = alert_channel_hook(conn_id)
    assert isinstance(hook, PagerDutyChannelHook)
    assert (hook.get_target().routing_key, hook.get_target().events_url) == (SECRET, DEFAULT_EVENTS_URL)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"conn_type": "mlprod_slack"}, "'c': has no webhook URL; put it in the connection's password field"),
        ({"conn_type": "mlprod_pagerduty"}, "'c': has no integration \\(routing\\) key"),
        (
            {"conn_type": "mlprod_teams", "password": f"ftp://x/{SECRET}"},
            "'c': teams target: webhook URL must be",
        ),
        (
            {"conn_type": "mlprod_webhook", "password": "https://h/x", "extra": {"headers": "{" + SECRET}},
            "'c': extra field 'headers' is not valid JSON",
        ),
        (
            {"conn_type": "mlprod_webhook", "password": "https://h/x", "extra": {"headers": {"a": 1}}},
            "'c': extra field 'headers' must be a JSON object of strings",
        ),
        (
            {"conn_type": "mlprod_webhook", "password": "https://h/x", "extra": {"timeout": "soon"}},
            "'c': extra field 'timeout' must be a number",
        ),
        (
            {"conn_type": "mlprod_pagerduty", "password": SECRET, "extra": {"events_url": "nope"}},
            "'c': pagerduty target: events_url must be",
        ),
    ],
)
def test_bad_channel_connections_are_named_without_the_secret(monkeypatch, fields, message):
    connection(monkeypatch, "c", **fields)

    def build():
        hook = alert_channel_hook("c")
        return hook.get_target(), hook.get_retry_policy()

    with pytest.raises(ConnectionConfigError, match=message) as info:
        build()
    assert SECRET not in str(info.value)


def test_missing_and_non_alert_connections_are_named(monkeypatch):
    with pytest.raises(ConnectionConfigError, match="connection 'absent': is not defined"):
        alert_channel_hook("absent")
    connection(monkeypatch, "db", conn_type="postgres", host="h", password=SECRET)
    with pytest.raises(
        ConnectionConfigError, match="'db': has type 'postgres', which is not an alert channel"
    ) as info:
        alert_channel_hook("db")
    assert SECRET not in str(info.value)
    with pytest.raises(
        ConnectionConfigError, match="'db': has type 'postgres', expected one of 'mlprod_teams'"
    ):
        TeamsWebhookChannelHook("db").get_target()


def test_hook_sends_to_a_real_server(monkeypatch, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    conn_id = connection(
        monkeypatch,
        "live",
        conn_type="mlprod_webhook",
        password=httpserver.url_for("/hook"),
        extra={"timeout": 2},
    )
    alert = Alert(title="Batch rejected", severity="critical", summary="3 expectations failed", dedup_key="k")
    result = alert_channel_hook(conn_id).send(alert)
    assert (result.status, result.channel, result.attempts) == ("delivered", "live", 1)
    (request, _response) = httpserver.log[0]
    assert request.get_json()["title"] == "Batch rejected"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_attempts": "inf"}, "max_attempts"),
        ({"max_attempts": float("inf")}, "max_attempts"),
        ({"timeout": "Infinity"}, "timeout"),
        ({"timeout": "nan"}, "timeout"),
        ({"total_timeout": "Infinity"}, "total_timeout"),
        ({"total_timeout": "soon"}, "total_timeout"),
        ({"total_timeout": 0}, "total_timeout"),
        ({"total_timeout": -1}, "total_timeout"),
    ],
)
def test_non_finite_numbers_in_the_extra_are_a_connection_error(monkeypatch, extra, field):
    connection(monkeypatch, "c", conn_type="mlprod_webhook", password="https://h.example/x", extra=extra)
    with pytest.raises(ConnectionConfigError, match=f"'c': extra field '{field}' must be"):
        alert_channel_hook("c").get_retry_policy()


def test_total_timeout_in_the_extra_reaches_the_retry_policy(monkeypatch):
    connection(
        monkeypatch,
        "c",
        conn_type="mlprod_webhook",
        password="https://h.example/x",
        extra={"timeout": 5, "total_timeout": "12.5"},
    )
    policy = alert_channel_hook("c").get_retry_policy()
    assert (policy.timeout_seconds, policy.total_seconds) == (5, 12.5)
    connection(monkeypatch, "d", conn_type="mlprod_webhook", password="https://h.example/x")
    assert alert_channel_hook("d").get_retry_policy().total_seconds == 60.0


def test_webhook_header_that_is_not_latin1_is_a_connection_error(monkeypatch):
    connection(
        monkeypatch,
        "c",
        conn_type="mlprod_webhook",
        password=f"https://h.example/{SECRET}",
        extra={"headers": {"X-Team": "équipe ☃ " + SECRET}},
    )
    with pytest.raises(ConnectionConfigError, match=r"'c': .*header 'X-Team'.* not latin-1") as info:
        alert_channel_hook("c").get_target()
    assert SECRET not in str(info.value)

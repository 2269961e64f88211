"""Hooks of the Slack, Teams, JSON webhook and PagerDuty alert connections: each turns one into a
channel target and its retry policy. The secret (webhook URL, routing key) lives only in the password
field, the webhook signing secret in a password-type extra field; no message ever contains either."""

from __future__ import annotations

import json
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook

from airflow_provider_mlprod.alerts.channels import (
    DEFAULT_EVENTS_URL,
    JsonWebhookTarget,
    PagerDutyTarget,
    SlackWebhookTarget,
    TeamsWebhookTarget,
    send_to_target,
)
from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.exceptions import ConfigurationError, ConnectionConfigError
from airflow_provider_mlprod.hooks.connections import (
    connection_extra,
    get_connection,
    optional_number,
    require_conn_type,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_mlprod.alerts.delivery import DeliveryResult
    from airflow_provider_mlprod.alerts.message import Alert

SLACK_DEFAULT_BASE_URL = "https://hooks.slack.com/services"


class AlertChannelHook(BaseHook):
    """Base of the alert channel hooks: connection ``alert_conn_id`` -> a target and a retry policy."""

    conn_name_attr = "alert_conn_id"
    accepted_conn_types: ClassVar[tuple[str, ...]] = ()
    secret_label: ClassVar[str] = "webhook URL"

    def __init__(self, alert_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alert_conn_id = alert_conn_id

    @cached_property
    def connection(self) -> Connection:
        conn = get_connection(self.alert_conn_id)
        require_conn_type(conn, self.accepted_conn_types)
        return conn

    @cached_property
    def extra(self) -> dict[str, Any]:
        return connection_extra(self.connection)

    def secret(self) -> str:
        if not (value := (self.connection.password or "").strip()):
            raise ConfigurationError(f"has no {self.secret_label}; put it in the connection's password field")
        return value

    def get_target(self) -> Any:
        try:
            return self._build_target()
        except ConfigurationError as exc:
            raise ConnectionConfigError(self.alert_conn_id, str(exc)) from None

    def get_retry_policy(self) -> RetryPolicy:
        """Timeouts and attempts from the extra fields ``timeout``, ``total_timeout``, ``max_attempts``."""
        default = RetryPolicy()
        number = partial(optional_number, self.connection, self.extra)
        if (attempts := number("max_attempts", default.max_attempts)) != int(attempts):
            raise ConnectionConfigError(
                self.alert_conn_id, "extra field 'max_attempts' must be a whole number"
            )
        return RetryPolicy(
            timeout_seconds=number("timeout", default.timeout_seconds),
            max_attempts=int(attempts),
            total_seconds=number("total_timeout", default.total_seconds),
        )

    def send(self, alert: Alert) -> DeliveryResult:
        """Send ``alert`` on this channel alone, with retries; the result is named by the conn id."""
        target, policy = self.get_target(), self.get_retry_policy()
        return send_to_target(target, alert, channel=self.alert_conn_id, policy=policy)


class SlackWebhookChannelHook(AlertChannelHook):
    """A Slack incoming webhook. Also accepts Airflow's own ``slackwebhook`` connections."""

    conn_type = "mlprodslack"
    default_conn_name = "mlprod_slack_default"
    hook_name = "Slack incoming webhook (mlprod alerts)"
    accepted_conn_types = ("mlprod_slack", "mlprodslack", "slackwebhook")

    def _build_target(self) -> Any:
        secret = self.secret()
        if not secret.startswith(("http://", "https://")):
            # slackwebhook connections may hold only the token part, with the base URL in host.
            base = (self.connection.host or SLACK_DEFAULT_BASE_URL).rstrip("/")
            base = base if base.startswith(("http://", "https://")) else f"https://{base}"
            secret = f"{base}/{secret.lstrip('/')}"
        return SlackWebhookTarget(url=secret)


class TeamsWebhookChannelHook(AlertChannelHook):
    """A Microsoft Teams workflow webhook (Adaptive Card messages)."""

    conn_type = "mlprodteams"
    default_conn_name = "mlprod_teams_default"
    hook_name = "Microsoft Teams workflow webhook (mlprod alerts)"
    accepted_conn_types = ("mlprod_teams", "mlprodteams")  # the old name: accepted for one release

    def _build_target(self) -> Any:
        return TeamsWebhookTarget(url=self.secret())


class JsonWebhookChannelHook(AlertChannelHook):
    """A generic JSON webhook, optionally signed with HMAC-SHA256 (extra ``signing_secret``)."""

    conn_type = "mlprodwebhook"
    default_conn_name = "mlprod_webhook_default"
    hook_name = "JSON webhook (mlprod alerts)"
    accepted_conn_types = ("mlprod_webhook", "mlprodwebhook")

    def _build_target(self) -> Any:
        headers = self.extra.get("headers") or {}
        try:
            headers = json.loads(headers) if isinstance(headers, str) else headers
        except ValueError:
            raise ConfigurationError("extra field 'headers' is not valid JSON") from None
        if not isinstance(headers, dict) or not all(isinstance(value, str) for value in headers.values()):
            raise ConfigurationError("extra field 'headers' must be a JSON object of strings")
        signing_secret = self.extra.get("signing_secret") or None
        if signing_secret is not None and not isinstance(signing_secret, str):
            raise ConfigurationError("extra field 'signing_secret' must be a string")
        return JsonWebhookTarget(url=self.secret(), signing_secret=signing_secret, headers=headers)


class PagerDutyChannelHook(AlertChannelHook):
    """PagerDuty Events API v2: the integration (routing) key in the password field."""

    conn_type = "mlprodpagerduty"
    default_conn_name = "mlprod_pagerduty_default"
    hook_name = "PagerDuty Events API v2 (mlprod alerts)"
    accepted_conn_types = ("mlprod_pagerduty", "mlprodpagerduty")  # the old name: accepted for one release
    secret_label = "integration (routing) key"

    def _build_target(self) -> Any:
        events_url = self.extra.get("events_url") or DEFAULT_EVENTS_URL
        return PagerDutyTarget(routing_key=self.secret(), events_url=events_url)


#: Connection type -> hook, for the hooks defined above.
ALERT_CHANNEL_HOOKS: dict[str, type[AlertChannelHook]] = {
    conn_type: hook for hook in AlertChannelHook.__subclasses__() for conn_type in hook.accepted_conn_types
}


def alert_channel_hook(alert_conn_id: str) -> AlertChannelHook:
    conn_type = (get_connection(alert_conn_id).conn_type or "").replace("-", "_")
    if (hook_class := ALERT_CHANNEL_HOOKS.get(conn_type)) is None:
        known = ", ".join(repr(t) for t in sorted(ALERT_CHANNEL_HOOKS))
        problem = f"has type {conn_type!r}, which is not an alert channel; expected one of {known}"
        raise ConnectionConfigError(alert_conn_id, problem)
    return hook_class(alert_conn_id)

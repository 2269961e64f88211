"""The registry of channel kinds, and :func:`send_to_target`, the one send every channel goes through.

Each row says how a kind's target becomes a request: its payload builder, endpoint, headers (per
attempt, to re-sign) and secrets. :func:`send_to_target` builds the payload and posts it with
:func:`~airflow_provider_mlprod.alerts.delivery.post_with_retries`; the ``log`` kind writes the
alert's text to a logger (the task log) instead. Adding a channel is one module and one row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlprod.alerts import pagerduty, slack, teams, webhook
from airflow_provider_mlprod.alerts.delivery import DeliveryResult, RetryPolicy, post_with_retries
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import ConfigurationError


@dataclass(frozen=True)
class LogTarget:
    """A Python logger to write alerts to (the task log under Airflow); the default channel."""

    logger_name: str = "airflow_provider_mlprod.alerts"


ChannelTarget = (
    slack.SlackWebhookTarget
    | teams.TeamsWebhookTarget
    | webhook.JsonWebhookTarget
    | pagerduty.PagerDutyTarget
    | LogTarget
)
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


@dataclass(frozen=True)
class ChannelKind:
    """One row of the registry.

    :param build_payload: ``(target, alert) -> JSON-safe payload`` (text for ``log``).
    :param severity_map: alert severity -> the channel's own level.
    :param url: ``target -> endpoint`` (a secret); ``None`` for ``log``.
    :param headers: ``(target, alert, body) -> headers`` for each attempt.
    :param secrets: ``target -> strings`` kept out of results and logs besides the URL.
    """

    kind: str
    target_type: type
    build_payload: Callable[[Any, Alert], Any]
    severity_map: Mapping[str, Any]
    description: str
    url: Callable[[Any], str] | None = lambda target: target.url
    headers: Callable[[Any, Alert, bytes], Mapping[str, str]] = lambda target, alert, body: JSON_HEADERS
    secrets: Callable[[Any], list[str | None]] = lambda target: []


CHANNEL_KINDS: dict[str, ChannelKind] = {
    row.kind: row
    for row in (
        ChannelKind(
            "slack",
            slack.SlackWebhookTarget,
            slack.build_slack_payload,
            slack.SEVERITY_MAP,
            "Slack incoming webhook, Block Kit message",
        ),
        ChannelKind(
            "teams",
            teams.TeamsWebhookTarget,
            teams.build_teams_payload,
            teams.SEVERITY_MAP,
            "Microsoft Teams workflow webhook, Adaptive Card",
        ),
        ChannelKind(
            "webhook",
            webhook.JsonWebhookTarget,
            webhook.build_webhook_payload,
            webhook.SEVERITY_MAP,
            "generic JSON webhook, optional HMAC-SHA256 signature, Idempotency-Key header",
            headers=lambda target, alert, body: {
                **webhook.signed_headers(target, body),
                webhook.IDEMPOTENCY_HEADER: alert.idempotency_key,
            },
            secrets=lambda target: [target.signing_secret, *target.headers.values()],
        ),
        ChannelKind(
            "pagerduty",
            pagerduty.PagerDutyTarget,
            pagerduty.build_pagerduty_payload,
            pagerduty.SEVERITY_MAP,
            "PagerDuty Events API v2, trigger and resolve",
            url=lambda target: target.events_url,
            secrets=lambda target: [target.routing_key],
        ),
        ChannelKind(
            "log",
            LogTarget,
            lambda target, alert: alert.to_text(),
            {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR},
            "Python logger (the task log); the default channel",
            url=None,
        ),
    )
}


def channel_kind_of(target: object) -> ChannelKind:
    """The registry row of ``target``'s type; :class:`ConfigurationError` if none matches."""
    for row in CHANNEL_KINDS.values():
        if type(target) is row.target_type:
            return row
    raise ConfigurationError(
        f"alert channel target of type {type(target).__name__} is not a known channel kind "
        f"({', '.join(sorted(CHANNEL_KINDS))})"
    )


def send_to_target(
    target: ChannelTarget, alert: Alert, *, channel: str | None = None, policy: RetryPolicy | None = None
) -> DeliveryResult:
    """Build ``alert``'s payload for ``target`` and deliver it; never raises for network or HTTP failures.

    :param channel: the channel's name in the result (default: the kind).
    """
    row = channel_kind_of(target)
    channel = channel or row.kind
    payload = row.build_payload(target, alert)
    if row.url is None:
        logging.getLogger(target.logger_name).log(row.severity_map[alert.severity], "%s", payload)
        return DeliveryResult(channel=channel, kind=row.kind, status="delivered", attempts=1)
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return post_with_retries(
        channel=channel,
        kind=row.kind,
        url=row.url(target),
        body=body,
        headers=lambda: row.headers(target, alert, body),
        secrets=row.secrets(target),
        policy=policy,
    )

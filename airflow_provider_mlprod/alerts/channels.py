"""The registry of alert channel kinds, and the one sender every channel goes through.

Each channel module (``slack``, ``teams``, ``webhook``, ``pagerduty``, ``log_channel``) holds a target
dataclass and a payload builder; its :class:`ChannelKind` entry says where the payload goes (``url``),
with which headers and which strings are secrets. :func:`send_to_target` builds the payload with the
registry and posts it once through :func:`~airflow_provider_mlprod.alerts.delivery.post_with_retries`
(retries, deadline, redaction); the log channel writes it to a logger instead. Adding a channel is
adding one module and one entry in :data:`CHANNEL_KINDS`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlprod.alerts import log_channel, pagerduty, slack, teams, webhook
from airflow_provider_mlprod.alerts.delivery import DeliveryOptions, DeliveryResult, post_with_retries
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import ConfigurationError

ChannelTarget = (
    slack.SlackWebhookTarget
    | teams.TeamsWebhookTarget
    | webhook.JsonWebhookTarget
    | pagerduty.PagerDutyTarget
    | log_channel.LogTarget
)

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def _json_headers(target: Any, alert: Alert, body: bytes) -> Mapping[str, str]:
    return JSON_HEADERS


@dataclass(frozen=True)
class ChannelKind:
    """One channel kind.

    :param kind: the kind's name (``slack``, ``teams``, ``webhook``, ``pagerduty``, ``log``).
    :param target_type: the config dataclass of a target of this kind.
    :param build_payload: ``(target, alert) -> payload`` (a JSON-safe dict, or text for ``log``).
    :param severity_map: alert severity -> the channel's own level (emoji, card color, PagerDuty
        severity, logging level).
    :param description: one line for docs and connection forms.
    :param url: ``target -> endpoint`` (a secret); ``None`` for the log channel, which posts nothing.
    :param headers: ``(target, alert, body) -> headers``, called for each attempt (to re-sign).
    :param secrets: ``target -> strings`` kept out of results and logs besides the URL.
    """

    kind: str
    target_type: type
    build_payload: Callable[[Any, Alert], Any]
    severity_map: Mapping[str, Any]
    description: str
    url: Callable[[Any], str] | None = None
    headers: Callable[[Any, Alert, bytes], Mapping[str, str]] = _json_headers
    secrets: Callable[[Any], list[str | None]] = lambda target: []


CHANNEL_KINDS: dict[str, ChannelKind] = {
    entry.kind: entry
    for entry in (
        ChannelKind(
            slack.KIND,
            slack.SlackWebhookTarget,
            slack.build_slack_payload,
            slack.SEVERITY_MAP,
            "Slack incoming webhook, Block Kit message",
            url=lambda target: target.url,
        ),
        ChannelKind(
            teams.KIND,
            teams.TeamsWebhookTarget,
            teams.build_teams_payload,
            teams.SEVERITY_MAP,
            "Microsoft Teams workflow webhook, Adaptive Card",
            url=lambda target: target.url,
        ),
        ChannelKind(
            webhook.KIND,
            webhook.JsonWebhookTarget,
            webhook.build_webhook_payload,
            webhook.SEVERITY_MAP,
            "generic JSON webhook, optional HMAC-SHA256 signature, Idempotency-Key header",
            url=lambda target: target.url,
            headers=lambda target, alert, body: {
                **webhook.signed_headers(target, body),
                webhook.IDEMPOTENCY_HEADER: alert.idempotency_key,
            },
            secrets=lambda target: [target.signing_secret, *target.headers.values()],
        ),
        ChannelKind(
            pagerduty.KIND,
            pagerduty.PagerDutyTarget,
            pagerduty.build_pagerduty_payload,
            pagerduty.SEVERITY_MAP,
            "PagerDuty Events API v2, trigger and resolve",
            url=lambda target: target.events_url,
            secrets=lambda target: [target.routing_key],
        ),
        ChannelKind(
            log_channel.KIND,
            log_channel.LogTarget,
            log_channel.build_log_payload,
            log_channel.SEVERITY_MAP,
            "Python logger (the task log); the default channel",
        ),
    )
}


def channel_kind_of(target: object) -> ChannelKind:
    """Return the registry entry for ``target``'s type; :class:`ConfigurationError` if none matches."""
    for entry in CHANNEL_KINDS.values():
        if type(target) is entry.target_type:
            return entry
    raise ConfigurationError(
        f"alert channel target of type {type(target).__name__} is not a known channel kind "
        f"({', '.join(sorted(CHANNEL_KINDS))})"
    )


def payload_body(payload: Any) -> bytes:
    """The bytes sent for a JSON payload: compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def send_to_target(
    target: ChannelTarget,
    alert: Alert,
    *,
    channel: str | None = None,
    options: DeliveryOptions | None = None,
) -> DeliveryResult:
    """Build ``alert``'s payload for ``target`` and deliver it; ``channel`` names it in the result.

    Never raises for a network or HTTP failure (see :func:`post_with_retries`).
    """
    entry = channel_kind_of(target)
    channel = channel or entry.kind
    payload = entry.build_payload(target, alert)
    if entry.url is None:
        logging.getLogger(target.logger_name).log(entry.severity_map[alert.severity], "%s", payload)
        return DeliveryResult(channel=channel, kind=entry.kind, status="delivered", attempts=1)
    body = payload_body(payload)
    return post_with_retries(
        channel=channel,
        kind=entry.kind,
        url=entry.url(target),
        body=body,
        headers=lambda: entry.headers(target, alert, body),
        secrets=entry.secrets(target),
        options=options,
    )

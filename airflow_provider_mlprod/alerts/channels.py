"""The registry of alert channel kinds: kind -> target type, payload formatter, sender, severity map.

Adding a channel is adding one module (target dataclass, ``build_*_payload``, ``send_*``,
``SEVERITY_MAP``) and one entry in :data:`CHANNEL_KINDS`. :func:`send_to_target` dispatches on the
target's type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlprod.alerts import log_channel, pagerduty, slack, teams, webhook
from airflow_provider_mlprod.alerts.delivery import DeliveryOptions, DeliveryResult
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import ConfigurationError

ChannelTarget = (
    slack.SlackWebhookTarget
    | teams.TeamsWebhookTarget
    | webhook.JsonWebhookTarget
    | pagerduty.PagerDutyTarget
    | log_channel.LogTarget
)


@dataclass(frozen=True)
class ChannelKind:
    """One channel kind.

    :param kind: the kind's name (``slack``, ``teams``, ``webhook``, ``pagerduty``, ``log``).
    :param target_type: the config dataclass of a target of this kind.
    :param build_payload: ``(target, alert) -> payload`` (a JSON-safe dict, or text for ``log``).
    :param send: ``(target, alert, *, channel, options) -> DeliveryResult``.
    :param severity_map: alert severity -> the channel's own level (emoji, card color, PagerDuty
        severity, logging level).
    :param description: one line for docs and connection forms.
    """

    kind: str
    target_type: type
    build_payload: Callable[[Any, Alert], Any]
    send: Callable[..., DeliveryResult]
    severity_map: Mapping[str, Any]
    description: str


CHANNEL_KINDS: dict[str, ChannelKind] = {
    entry.kind: entry
    for entry in (
        ChannelKind(
            kind=slack.KIND,
            target_type=slack.SlackWebhookTarget,
            build_payload=slack.build_slack_payload,
            send=slack.send_slack,
            severity_map=slack.SEVERITY_MAP,
            description="Slack incoming webhook, Block Kit message",
        ),
        ChannelKind(
            kind=teams.KIND,
            target_type=teams.TeamsWebhookTarget,
            build_payload=teams.build_teams_payload,
            send=teams.send_teams,
            severity_map=teams.SEVERITY_MAP,
            description="Microsoft Teams workflow webhook, Adaptive Card",
        ),
        ChannelKind(
            kind=webhook.KIND,
            target_type=webhook.JsonWebhookTarget,
            build_payload=webhook.build_webhook_payload,
            send=webhook.send_webhook,
            severity_map=webhook.SEVERITY_MAP,
            description="generic JSON webhook, optional HMAC-SHA256 signature",
        ),
        ChannelKind(
            kind=pagerduty.KIND,
            target_type=pagerduty.PagerDutyTarget,
            build_payload=pagerduty.build_pagerduty_payload,
            send=pagerduty.send_pagerduty,
            severity_map=pagerduty.SEVERITY_MAP,
            description="PagerDuty Events API v2, trigger and resolve",
        ),
        ChannelKind(
            kind=log_channel.KIND,
            target_type=log_channel.LogTarget,
            build_payload=log_channel.build_log_payload,
            send=log_channel.send_log,
            severity_map=log_channel.SEVERITY_MAP,
            description="Python logger (the task log); the default channel",
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


def send_to_target(
    target: ChannelTarget,
    alert: Alert,
    *,
    channel: str | None = None,
    options: DeliveryOptions | None = None,
) -> DeliveryResult:
    """Send ``alert`` to one target through its channel kind; ``channel`` names it in the result."""
    entry = channel_kind_of(target)
    return entry.send(target, alert, channel=channel or entry.kind, options=options)

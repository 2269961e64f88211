"""Microsoft Teams workflow-webhook channel: an alert as an Adaptive Card in a message.

Payload (the "Post to a channel when a webhook request is received" workflow)::

    {"type": "message",
     "attachments": [{
       "contentType": "application/vnd.microsoft.card.adaptive",
       "contentUrl": null,
       "content": {
         "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
         "type": "AdaptiveCard", "version": "1.4",
         "body": [TextBlock title, TextBlock severity, TextBlock summary, FactSet facts, TextBlock ids],
         "actions": [{"type": "Action.OpenUrl", "title": "<label>", "url": "<link>"}, ...]}}]}

Severity maps onto the TextBlock ``color`` (``Attention``, ``Warning``, ``Accent``; ``Good`` for a
resolve). Long texts are cut so a card stays well below Teams' ~28 KB message limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import (
    DeliveryOptions,
    DeliveryResult,
    post_with_retries,
    require_http_url,
)
from airflow_provider_mlprod.alerts.message import Alert, truncate_text

KIND = "teams"

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"

#: Alert severity -> Adaptive Card TextBlock color.
SEVERITY_MAP: dict[str, str] = {"info": "Accent", "warning": "Warning", "critical": "Attention"}
RESOLVED_COLOR = "Good"

SUMMARY_TEXT_MAX = 3000
FACT_TITLE_MAX = 200
FACT_VALUE_MAX = 1000
MAX_FACTS = 40
MAX_ACTIONS = 6


@dataclass(frozen=True)
class TeamsWebhookTarget:
    """A Teams workflow webhook. The URL carries a signature, so ``repr`` does not show it.

    :param url: the HTTP POST URL of the workflow trigger.
    """

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, KIND)


def build_adaptive_card(alert: Alert) -> dict[str, Any]:
    """Build the Adaptive Card (schema version :data:`ADAPTIVE_CARD_VERSION`) for ``alert``."""
    resolved = alert.action == "resolve"
    color = RESOLVED_COLOR if resolved else SEVERITY_MAP[alert.severity]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": truncate_text(alert.title, SUMMARY_TEXT_MAX),
            "size": "Large",
            "weight": "Bolder",
            "color": color,
            "wrap": True,
        },
        {
            "type": "TextBlock",
            "text": "Resolved" if resolved else f"Severity: {alert.severity}",
            "color": color,
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
        },
    ]
    if alert.summary:
        body.append(
            {"type": "TextBlock", "text": truncate_text(alert.summary, SUMMARY_TEXT_MAX), "wrap": True}
        )
    facts = list(alert.rendered_facts.items())
    if facts:
        shown = [
            {"title": truncate_text(key, FACT_TITLE_MAX), "value": truncate_text(value, FACT_VALUE_MAX)}
            for key, value in facts[:MAX_FACTS]
        ]
        if len(facts) > MAX_FACTS:
            shown.append({"title": "…", "value": f"{len(facts) - MAX_FACTS} more facts not shown"})
        body.append({"type": "FactSet", "facts": shown})
    footer = " · ".join(part for part in (alert.run_context, f"source {alert.source}") if part)
    body.append({"type": "TextBlock", "text": footer, "isSubtle": True, "size": "Small", "wrap": True})
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    actions = [
        {"type": "Action.OpenUrl", "title": link.label, "url": link.url} for link in alert.links[:MAX_ACTIONS]
    ]
    if actions:
        card["actions"] = actions
    return card


def build_teams_payload(target: TeamsWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """Build the workflow message holding the card (``target`` is unused; kept for a uniform signature)."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": ADAPTIVE_CARD_CONTENT_TYPE,
                "contentUrl": None,
                "content": build_adaptive_card(alert),
            }
        ],
    }


def send_teams(
    target: TeamsWebhookTarget,
    alert: Alert,
    *,
    channel: str = KIND,
    options: DeliveryOptions | None = None,
) -> DeliveryResult:
    """POST ``alert`` to the Teams workflow with retries; the result names ``channel``, never the URL."""
    body = json.dumps(build_teams_payload(target, alert)).encode("utf-8")
    return post_with_retries(
        channel=channel,
        kind=KIND,
        url=target.url,
        body=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
        options=options,
    )

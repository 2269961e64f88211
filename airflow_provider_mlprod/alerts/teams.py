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
resolve). Long texts are cut so a card stays well below Teams' ~28 KB message limit: after the
card is built, while its JSON payload is larger than :data:`PAYLOAD_MAX_BYTES`, it is built again
with tighter limits (shorter fact values, fewer facts, a shorter summary, fewer links), down to
title, summary and footer only, and a note at the end says the card was shortened.

User text (title, summary, fact names and values, footer) is escaped for the Markdown that cards
render (:func:`escape_markdown`), so it cannot inject links, bold text or lists.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import require_http_url
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
FOOTER_TEXT_MAX = 1000
#: Largest JSON payload sent, in bytes (Teams refuses messages above about 28 KB).
PAYLOAD_MAX_BYTES = 25_000
#: Shown at the end of a card that was shortened to fit.
SHRUNK_NOTE = "Shortened to fit the Teams message size limit; the task log has the full alert."


@dataclass(frozen=True)
class CardLimits:
    """How much of an alert a card shows: text lengths, fact and link counts."""

    text_max: int = SUMMARY_TEXT_MAX
    fact_title_max: int = FACT_TITLE_MAX
    fact_value_max: int = FACT_VALUE_MAX
    max_facts: int = MAX_FACTS
    max_actions: int = MAX_ACTIONS


#: Limits tried in order until the payload fits in :data:`PAYLOAD_MAX_BYTES`.
SHRINK_STEPS: tuple[CardLimits, ...] = (
    CardLimits(),
    CardLimits(fact_value_max=400),
    CardLimits(fact_title_max=100, fact_value_max=200, max_facts=30),
    CardLimits(text_max=1500, fact_title_max=100, fact_value_max=100, max_facts=20),
    CardLimits(text_max=800, fact_title_max=60, fact_value_max=60, max_facts=10, max_actions=3),
    CardLimits(text_max=300, fact_title_max=40, fact_value_max=40, max_facts=5, max_actions=1),
    CardLimits(text_max=200, max_facts=0, max_actions=0),
)


@dataclass(frozen=True)
class TeamsWebhookTarget:
    """A Teams workflow webhook. The URL carries a signature, so ``repr`` does not show it.

    :param url: the HTTP POST URL of the workflow trigger.
    """

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, KIND)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]~])")
_LINE_START_MARKUP = re.compile(r"^(\s*)([-+#>]|\d+\.)", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Escape user text for the Markdown subset Adaptive Cards render (bold, italic, code, links,
    lists, headings, quotes): a backslash before each emphasis or link character and before list,
    heading and quote markers at a line start, so ``[x](https://evil)`` or ``**x**`` shows as
    written instead of as a link or bold text. Other text, parentheses included, is unchanged."""

    def marker(match: re.Match[str]) -> str:
        indent, mark = match.groups()
        return indent + (mark[:-1] + "\\." if mark.endswith(".") else "\\" + mark)

    return _LINE_START_MARKUP.sub(marker, _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def _cut(text: str, limit: int) -> str:
    """Cut plain text to ``limit`` characters, then escape it (a cut never splits an escape)."""
    return escape_markdown(truncate_text(text, limit))


def build_adaptive_card(alert: Alert, limits: CardLimits | None = None) -> dict[str, Any]:
    """Build the Adaptive Card (schema version :data:`ADAPTIVE_CARD_VERSION`) for ``alert``.

    :param limits: how much to show; default the largest (:data:`SHRINK_STEPS` ``[0]``). Use
        :func:`build_teams_payload` for a payload that fits Teams' size limit.
    """
    limits = limits or SHRINK_STEPS[0]
    resolved = alert.action == "resolve"
    color = RESOLVED_COLOR if resolved else SEVERITY_MAP[alert.severity]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _cut(alert.title, limits.text_max),
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
        body.append({"type": "TextBlock", "text": _cut(alert.summary, limits.text_max), "wrap": True})
    facts = list(alert.rendered_facts.items())
    if facts:
        shown = [
            {
                "title": _cut(key, limits.fact_title_max),
                "value": _cut(value, limits.fact_value_max),
            }
            for key, value in facts[: limits.max_facts]
        ]
        if len(facts) > limits.max_facts:
            shown.append({"title": "…", "value": f"{len(facts) - limits.max_facts} more facts not shown"})
        body.append({"type": "FactSet", "facts": shown})
    footer = " · ".join(part for part in (alert.run_context, f"source {alert.source}") if part)
    body.append(
        {
            "type": "TextBlock",
            "text": _cut(footer, FOOTER_TEXT_MAX),
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    actions = [
        {"type": "Action.OpenUrl", "title": truncate_text(link.label, 100), "url": link.url}
        for link in alert.links[: limits.max_actions]
    ]
    if actions:
        card["actions"] = actions
    return card


def build_teams_payload(target: TeamsWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """Build the workflow message holding the card, shrunk until its JSON is at most
    :data:`PAYLOAD_MAX_BYTES` (``target`` is unused; kept for a uniform signature)."""
    for step, limits in enumerate(SHRINK_STEPS):
        card = build_adaptive_card(alert, limits)
        if step:
            card["body"].append(
                {"type": "TextBlock", "text": SHRUNK_NOTE, "isSubtle": True, "size": "Small", "wrap": True}
            )
        payload = {
            "type": "message",
            "attachments": [
                {
                    "contentType": ADAPTIVE_CARD_CONTENT_TYPE,
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }
        if payload_bytes(payload) <= PAYLOAD_MAX_BYTES:
            break
    return payload


def payload_bytes(payload: dict[str, Any]) -> int:
    """Size of ``payload`` as :func:`send_teams` sends it."""
    return len(json.dumps(payload).encode("utf-8"))

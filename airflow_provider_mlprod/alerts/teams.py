"""Microsoft Teams workflow webhook: an alert as an Adaptive Card (1.4) in a ``message``.

Severity is the title colour (``Attention``, ``Warning``, ``Accent``; ``Good`` for a resolve). A card
whose JSON exceeds :data:`PAYLOAD_MAX_BYTES` (Teams refuses ~28 KB) is rebuilt with tighter limits
(:data:`SHRINK_STEPS`) and ends with :data:`SHRUNK_NOTE`. User text is escaped for the Markdown
cards render, so it cannot inject links, bold text, lists or headings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import require_http_url
from airflow_provider_mlprod.alerts.message import Alert, truncate_text

KIND = "teams"
SEVERITY_MAP: dict[str, str] = {"info": "Accent", "warning": "Warning", "critical": "Attention"}
PAYLOAD_MAX_BYTES = 25_000
SHRUNK_NOTE = "Shortened to fit the Teams message size limit; the task log has the full alert."
#: (text, fact title, fact value, facts, links) limits, tried in order until the payload fits.
SHRINK_STEPS: tuple[tuple[int, int, int, int, int], ...] = (
    (3000, 200, 1000, 40, 6),
    (3000, 200, 400, 40, 6),
    (3000, 100, 200, 30, 6),
    (1500, 100, 100, 20, 6),
    (800, 60, 60, 10, 3),
    (300, 40, 40, 5, 1),
    (200, 200, 1000, 0, 0),
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]~])")
_LINE_START_MARKUP = re.compile(r"^(\s*)([-+#>]|\d+\.)", re.MULTILINE)


@dataclass(frozen=True)
class TeamsWebhookTarget:
    """A Teams workflow webhook; its URL carries a signature, so ``repr`` hides it."""

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, KIND)


def escape_markdown(text: str) -> str:
    """Backslash-escape emphasis and link characters, and list, heading and quote markers at a line
    start, so ``[x](https://evil)`` or ``**x**`` shows as written."""

    def marker(match: re.Match[str]) -> str:
        indent, mark = match.groups()
        return indent + (mark[:-1] + "\\." if mark.endswith(".") else "\\" + mark)

    return _LINE_START_MARKUP.sub(marker, _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def _text(text: str, limit: int, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": escape_markdown(truncate_text(text, limit)), "wrap": True, **style}


def _card(
    alert: Alert, text_max: int, title_max: int, value_max: int, max_facts: int, max_links: int
) -> dict:
    color = "Good" if alert.action == "resolve" else SEVERITY_MAP[alert.severity]
    status = "Resolved" if alert.action == "resolve" else f"Severity: {alert.severity}"
    body = [
        _text(alert.title, text_max, size="Large", weight="Bolder", color=color),
        _text(status, text_max, color=color, isSubtle=True, spacing="None"),
        *([_text(alert.summary, text_max)] if alert.summary else []),
    ]
    facts = list(alert.rendered_facts.items())
    if facts:
        shown = [
            {
                "title": escape_markdown(truncate_text(key, title_max)),
                "value": escape_markdown(truncate_text(value, value_max)),
            }
            for key, value in facts[:max_facts]
        ]
        if len(facts) > max_facts:
            shown.append({"title": "…", "value": f"{len(facts) - max_facts} more facts not shown"})
        body.append({"type": "FactSet", "facts": shown})
    footer = " · ".join(part for part in (alert.run_context, f"source {alert.source}") if part)
    body.append(_text(footer, 1000, isSubtle=True, size="Small"))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    actions = [
        {"type": "Action.OpenUrl", "title": truncate_text(link.label, 100), "url": link.url}
        for link in alert.links[:max_links]
    ]
    return {**card, "actions": actions} if actions else card


def build_teams_payload(target: TeamsWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """The workflow message holding the card, shrunk until its JSON fits :data:`PAYLOAD_MAX_BYTES`."""
    for step, limits in enumerate(SHRINK_STEPS):
        card = _card(alert, *limits)
        if step:
            card["body"].append(
                {"type": "TextBlock", "text": SHRUNK_NOTE, "isSubtle": True, "size": "Small", "wrap": True}
            )
        attachment = {
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": card,
        }
        payload = {"type": "message", "attachments": [attachment]}
        if len(json.dumps(payload).encode("utf-8")) <= PAYLOAD_MAX_BYTES:
            break
    return payload

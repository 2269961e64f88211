"""Slack incoming webhook: an alert as a Block Kit message (header, summary, fact fields, context,
link buttons) with a ``text`` fallback, inside Slack's limits, user text escaped for mrkdwn.

A message that leaves out part of the alert (a cut title, summary or fact, facts over
:data:`MAX_FACTS`) says so in its context line (:data:`SHORTENED_NOTE`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import require_http_url
from airflow_provider_mlprod.alerts.message import Alert, truncate_text

log = logging.getLogger(__name__)

KIND = "slack"
SEVERITY_MAP: dict[str, str] = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}
HEADER_TEXT_MAX, SECTION_TEXT_MAX, FIELD_TEXT_MAX, FIELDS_PER_SECTION = 150, 3000, 2000, 10
BUTTON_TEXT_MAX, BUTTON_URL_MAX, BUTTONS_MAX, MAX_FACTS = 75, 3000, 25, 40
SHORTENED_NOTE = "_Shortened to fit Slack's limits; the task log has the full alert._"


@dataclass(frozen=True)
class SlackWebhookTarget:
    """A Slack incoming webhook; the URL is the secret and ``repr`` hides it."""

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, KIND)


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate_mrkdwn(text: str, limit: int) -> str:
    """:func:`truncate_text` for escaped mrkdwn: a cut never splits an ``&amp;``/``&lt;``/``&gt;``."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    return (cut[:amp] if amp != -1 and ";" not in cut[amp:] else cut) + "…"


def _mrkdwn(text: str, limit: int = SECTION_TEXT_MAX) -> dict[str, str]:
    return {"type": "mrkdwn", "text": truncate_mrkdwn(text, limit)}


def build_slack_payload(target: SlackWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """The Block Kit message for ``alert``."""
    emoji = ":white_check_mark:" if alert.action == "resolve" else SEVERITY_MAP[alert.severity]
    summary = f"*{alert.label}*" + (f"  {escape_mrkdwn(alert.summary)}" if alert.summary else "")
    header = {
        "type": "plain_text",
        "text": truncate_text(f"{emoji} {alert.title}", HEADER_TEXT_MAX),
        "emoji": True,
    }
    facts = [
        _mrkdwn(f"*{escape_mrkdwn(key)}*\n{escape_mrkdwn(value)}", FIELD_TEXT_MAX)
        for key, value in list(alert.rendered_facts.items())[:MAX_FACTS]
    ]
    if len(alert.facts) > MAX_FACTS:
        facts[-1] = _mrkdwn(f"*…*\n{len(alert.facts) - MAX_FACTS + 1} more facts not shown")
    shortened = (
        len(alert.title) + 2 > HEADER_TEXT_MAX
        or len(summary) > SECTION_TEXT_MAX
        or len(alert.facts) > MAX_FACTS
        or any(
            len(escape_mrkdwn(key)) + len(escape_mrkdwn(value)) + 3 > FIELD_TEXT_MAX
            for key, value in alert.rendered_facts.items()
        )
    )
    context = [escape_mrkdwn(alert.run_context)] if alert.run_context else []
    context += [f"source `{escape_mrkdwn(alert.source)}`", *([SHORTENED_NOTE] if shortened else [])]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": header},
        {"type": "section", "text": _mrkdwn(summary)},
        *(
            {"type": "section", "fields": facts[at : at + FIELDS_PER_SECTION]}
            for at in range(0, len(facts), FIELDS_PER_SECTION)
        ),
        {"type": "context", "elements": [_mrkdwn(text) for text in context]},
    ]
    buttons = []
    for index, link in enumerate(alert.links):
        if len(link.url) > BUTTON_URL_MAX:
            log.warning(
                "slack: link %r is longer than %d characters and is left out", link.label, BUTTON_URL_MAX
            )
            continue
        text = {"type": "plain_text", "text": truncate_text(link.label, BUTTON_TEXT_MAX)}
        buttons.append({"type": "button", "text": text, "url": link.url, "action_id": f"mlprod_link_{index}"})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:BUTTONS_MAX]})
    fallback = f"[{alert.label}] {escape_mrkdwn(alert.title)}"
    fallback += f": {escape_mrkdwn(alert.summary)}" if alert.summary else ""
    return {"text": truncate_mrkdwn(fallback, SECTION_TEXT_MAX), "blocks": blocks}

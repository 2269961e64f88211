"""Slack incoming-webhook channel: an alert as a Block Kit message with a plain ``text`` fallback.

Payload (https://api.slack.com/reference/block-kit/blocks)::

    {"text": "<fallback for notifications>",
     "blocks": [
       {"type": "header", "text": {"type": "plain_text", "text": "<emoji> <title>", "emoji": true}},
       {"type": "section", "text": {"type": "mrkdwn", "text": "*CRITICAL* <summary>"}},
       {"type": "section", "fields": [{"type": "mrkdwn", "text": "*<fact>*\\n<value>"}, ...]},
       {"type": "context", "elements": [{"type": "mrkdwn", "text": "dag … · run … · task …"}]},
       {"type": "actions", "elements": [{"type": "button", "text": {...}, "url": "<link>"}, ...]}]}

Slack's limits are respected: header text 150 characters, section text 3000, 10 fields of at most
2000 characters per section, button text 75, button URL 3000, 25 buttons. Facts beyond
:data:`MAX_FACTS` are counted in a closing field instead of shown, and a message that leaves out
part of the alert says so in its context line (:data:`SHORTENED_NOTE`). Text is escaped for mrkdwn
(``&``, ``<``, ``>``), the ``text`` fallback included; a cut never splits an escaped entity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import require_http_url
from airflow_provider_mlprod.alerts.message import Alert, truncate_text

log = logging.getLogger(__name__)

KIND = "slack"

#: Alert severity -> emoji shown before the header, and the label in the summary section.
SEVERITY_MAP: dict[str, str] = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}
RESOLVED_EMOJI = ":white_check_mark:"

HEADER_TEXT_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_PER_SECTION = 10
BUTTON_TEXT_MAX = 75
BUTTON_URL_MAX = 3000
BUTTONS_MAX = 25
FALLBACK_TEXT_MAX = 3000
#: Added to the context line of a message that leaves out part of the alert.
SHORTENED_NOTE = "_Shortened to fit Slack's limits; the task log has the full alert._"
#: Facts shown as fields (four sections of ten, the last field of the last one may count the rest).
MAX_FACTS = 40


@dataclass(frozen=True)
class SlackWebhookTarget:
    """A Slack incoming webhook. The URL is the secret: it is not shown by ``repr``.

    :param url: ``https://hooks.slack.com/services/...``.
    """

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, KIND)


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate_mrkdwn(text: str, limit: int) -> str:
    """:func:`truncate_text` for escaped mrkdwn: the cut never splits an ``&amp;``, ``&lt;`` or
    ``&gt;`` entity (a partial entity would show as raw text)."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def build_slack_payload(target: SlackWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """Build the Block Kit message for ``alert`` (``target`` is unused; kept for a uniform signature)."""
    emoji = RESOLVED_EMOJI if alert.action == "resolve" else SEVERITY_MAP[alert.severity]
    label = "RESOLVED" if alert.action == "resolve" else alert.severity.upper()
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate_text(f"{emoji} {alert.title}", HEADER_TEXT_MAX),
                "emoji": True,
            },
        },
    ]
    summary = f"*{label}*" + (f"  {escape_mrkdwn(alert.summary)}" if alert.summary else "")
    blocks.append(
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate_mrkdwn(summary, SECTION_TEXT_MAX)}}
    )
    blocks.extend(_fact_sections(alert))
    context = [f"source `{escape_mrkdwn(alert.source)}`"]
    if alert.run_context:
        context.insert(0, escape_mrkdwn(alert.run_context))
    if _shortened(alert, summary):
        context.append(SHORTENED_NOTE)
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": truncate_mrkdwn(text, SECTION_TEXT_MAX)} for text in context
            ],
        }
    )
    buttons = _link_buttons(alert)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    fallback = f"[{label}] {escape_mrkdwn(alert.title)}" + (
        f": {escape_mrkdwn(alert.summary)}" if alert.summary else ""
    )
    return {"text": truncate_mrkdwn(fallback, FALLBACK_TEXT_MAX), "blocks": blocks}


def _shortened(alert: Alert, summary: str) -> bool:
    """Whether the message leaves out part of the alert (a cut title, summary or fact, or facts)."""
    return (
        len(alert.title) + 2 > HEADER_TEXT_MAX
        or len(summary) > SECTION_TEXT_MAX
        or len(alert.facts) > MAX_FACTS
        or any(
            len(escape_mrkdwn(key)) + len(escape_mrkdwn(value)) + 3 > FIELD_TEXT_MAX
            for key, value in alert.rendered_facts.items()
        )
    )


def _fact_sections(alert: Alert) -> list[dict[str, Any]]:
    items = list(alert.rendered_facts.items())
    fields = [
        {
            "type": "mrkdwn",
            "text": truncate_mrkdwn(f"*{escape_mrkdwn(key)}*\n{escape_mrkdwn(value)}", FIELD_TEXT_MAX),
        }
        for key, value in items[:MAX_FACTS]
    ]
    if len(items) > MAX_FACTS:
        fields[-1] = {"type": "mrkdwn", "text": f"*…*\n{len(items) - MAX_FACTS + 1} more facts not shown"}
    return [
        {"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]}
        for start in range(0, len(fields), FIELDS_PER_SECTION)
    ]


def _link_buttons(alert: Alert) -> list[dict[str, Any]]:
    buttons = []
    for index, link in enumerate(alert.links):
        if len(link.url) > BUTTON_URL_MAX:
            log.warning(
                "slack: link %r is longer than %d characters and is left out", link.label, BUTTON_URL_MAX
            )
            continue
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": truncate_text(link.label, BUTTON_TEXT_MAX)},
                "url": link.url,
                "action_id": f"mlprod_link_{index}",
            }
        )
    return buttons[:BUTTONS_MAX]

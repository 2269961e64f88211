"""Per channel kind a target (``repr`` hides secrets) and a payload builder; the registry; the send."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import (
    DeliveryResult,
    RetryPolicy,
    post_with_retries,
    require_http_url,
)
from airflow_provider_mlprod.alerts.message import SEVERITIES, Alert, truncate_text
from airflow_provider_mlprod.exceptions import ConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogTarget:
    """A Python logger to write alerts to (the task log under Airflow); the default channel."""

    logger_name: str = "airflow_provider_mlprod.alerts"


# -- Slack incoming webhook: Block Kit ------------------------------------------------------------

SLACK_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
HEADER_TEXT_MAX, SECTION_TEXT_MAX, FIELD_TEXT_MAX, FIELDS_PER_SECTION = 150, 3000, 2000, 10
BUTTON_TEXT_MAX, BUTTON_URL_MAX, BUTTONS_MAX, SLACK_MAX_FACTS = 75, 3000, 25, 40
SHORTENED_NOTE = "_Shortened to fit Slack's limits; the task log has the full alert._"


@dataclass(frozen=True)
class SlackWebhookTarget:
    """A Slack incoming webhook; the URL is the secret and ``repr`` hides it."""

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, "slack")


def escape_mrkdwn(text: str) -> str:
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
    """Block Kit blocks and a ``text`` fallback, escaped for mrkdwn; a cut one ends with a shortened note."""
    emoji = ":white_check_mark:" if alert.action == "resolve" else SLACK_EMOJI[alert.severity]
    summary = f"*{alert.label}*" + (f"  {escape_mrkdwn(alert.summary)}" if alert.summary else "")
    headline = f"{emoji} {alert.title}"
    header = {"type": "plain_text", "text": truncate_text(headline, HEADER_TEXT_MAX), "emoji": True}
    shown = list(alert.rendered_facts.items())[:SLACK_MAX_FACTS]
    fields = [f"*{escape_mrkdwn(key)}*\n{escape_mrkdwn(value)}" for key, value in shown]
    cut = len(header["text"]) < len(headline) or len(summary) > SECTION_TEXT_MAX
    shortened = cut or len(alert.facts) > SLACK_MAX_FACTS or any(len(f) > FIELD_TEXT_MAX for f in fields)
    facts = [_mrkdwn(text, FIELD_TEXT_MAX) for text in fields]
    if len(alert.facts) > SLACK_MAX_FACTS:
        facts[-1] = _mrkdwn(f"*…*\n{len(alert.facts) - SLACK_MAX_FACTS + 1} more facts not shown")
    context = [escape_mrkdwn(alert.run_context)] if alert.run_context else []
    context += [f"source `{escape_mrkdwn(alert.source)}`", *([SHORTENED_NOTE] if shortened else [])]
    sections = [facts[at : at + FIELDS_PER_SECTION] for at in range(0, len(facts), FIELDS_PER_SECTION)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": header},
        {"type": "section", "text": _mrkdwn(summary)},
        *({"type": "section", "fields": section} for section in sections),
        {"type": "context", "elements": [_mrkdwn(text) for text in context]},
    ]
    buttons = []
    for index, link in enumerate(alert.links):
        if len(link.url) > BUTTON_URL_MAX:
            log.warning("slack: link %r is over %d characters; left out", link.label, BUTTON_URL_MAX)
            continue
        text = {"type": "plain_text", "text": truncate_text(link.label, BUTTON_TEXT_MAX)}
        buttons.append({"type": "button", "text": text, "url": link.url, "action_id": f"mlprod_link_{index}"})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:BUTTONS_MAX]})
    fallback = f"[{alert.label}] {escape_mrkdwn(alert.title)}"
    fallback += f": {escape_mrkdwn(alert.summary)}" if alert.summary else ""
    return {"text": truncate_mrkdwn(fallback, SECTION_TEXT_MAX), "blocks": blocks}


# -- Microsoft Teams workflow webhook: Adaptive Card -----------------------------------------------

TEAMS_COLORS: dict[str, str] = {"info": "Accent", "warning": "Warning", "critical": "Attention"}
TEAMS_PAYLOAD_MAX_BYTES = 25_000
ADAPTIVE_CARD = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard"}
ADAPTIVE_CARD.update(version="1.4", msteams={"width": "Full"})
SHRUNK_NOTE = "Shortened to fit the Teams message size limit; the task log has the full alert."
#: (text, fact title, fact value, facts, links) limits, tried in order until the payload fits.
TEAMS_SHRINK_STEPS: tuple[tuple[int, int, int, int, int], ...] = (
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
_LINE_BREAK = re.compile(r"[\r\n]")  # in a header value: header injection


@dataclass(frozen=True)
class TeamsWebhookTarget:
    """A Teams workflow webhook; its URL carries a signature, so ``repr`` hides it."""

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, "teams")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown (emphasis, links, line-start markers): ``[x](https://evil)`` stays text."""

    def marker(match: re.Match[str]) -> str:
        indent, mark = match.groups()
        return indent + (mark[:-1] + "\\." if mark.endswith(".") else "\\" + mark)

    return _LINE_START_MARKUP.sub(marker, _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def _md(text: str, limit: int) -> str:
    return escape_markdown(truncate_text(text, limit))


def _text_block(text: str, limit: int, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": _md(text, limit), "wrap": True, **style}


def _card(alert: Alert, text_max: int, title_max: int, value_max: int, max_facts: int, links: int) -> dict:
    color = "Good" if alert.action == "resolve" else TEAMS_COLORS[alert.severity]
    status = "Resolved" if alert.action == "resolve" else f"Severity: {alert.severity}"
    body = [
        _text_block(alert.title, text_max, size="Large", weight="Bolder", color=color),
        _text_block(status, text_max, color=color, isSubtle=True, spacing="None"),
        *([_text_block(alert.summary, text_max)] if alert.summary else []),
    ]
    facts = list(alert.rendered_facts.items())
    if facts:
        shown = [{"title": _md(k, title_max), "value": _md(v, value_max)} for k, v in facts[:max_facts]]
        if len(facts) > max_facts:
            shown.append({"title": "…", "value": f"{len(facts) - max_facts} more facts not shown"})
        body.append({"type": "FactSet", "facts": shown})
    footer = " · ".join(part for part in (alert.run_context, f"source {alert.source}") if part)
    body.append(_text_block(footer, 1000, isSubtle=True, size="Small"))
    card: dict[str, Any] = {**ADAPTIVE_CARD, "body": body}
    actions = [
        {"type": "Action.OpenUrl", "title": truncate_text(link.label, 100), "url": link.url}
        for link in alert.links[:links]
    ]
    return {**card, "actions": actions} if actions else card


def build_teams_payload(target: TeamsWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """An Adaptive Card (1.4), escaped for Markdown, rebuilt with :data:`TEAMS_SHRINK_STEPS` until its JSON
    fits :data:`TEAMS_PAYLOAD_MAX_BYTES` (Teams refuses ~28 KB), then ending with :data:`SHRUNK_NOTE`."""
    for step, limits in enumerate(TEAMS_SHRINK_STEPS):
        card = _card(alert, *limits)
        if step:
            card["body"].append(_text_block(SHRUNK_NOTE, 1000, isSubtle=True, size="Small"))
        attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None}
        payload = {"type": "message", "attachments": [{**attachment, "content": card}]}
        if len(json.dumps(payload).encode("utf-8")) <= TEAMS_PAYLOAD_MAX_BYTES:
            break
    return payload


# -- PagerDuty Events API v2 ----------------------------------------------------------------------

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
EVENT_MAX_BYTES = 500_000
#: (custom_details summary, fact value, fact count) limits tried in order until the event fits.
PAGERDUTY_SHRINK_STEPS: tuple[tuple[int, int, int], ...] = (
    (10**9, 10**9, 10**9),
    (100_000, 10_000, 1_000),
    (20_000, 2_000, 200),
    (5_000, 500, 50),
    (1_000, 100, 10),
)


@dataclass(frozen=True)
class PagerDutyTarget:
    """A PagerDuty integration (``repr`` hides the routing key); ``severity_map``: {"warning": "error"}."""

    routing_key: str = field(repr=False)
    events_url: str = DEFAULT_EVENTS_URL
    severity_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.routing_key, str) or not self.routing_key.strip():
            raise ConfigurationError("pagerduty target: routing_key is empty")
        require_http_url(self.events_url, "pagerduty", what="events_url")
        for severity, mapped in self.severity_map.items():
            if severity not in SEVERITIES or mapped not in PAGERDUTY_SEVERITIES:
                raise ConfigurationError(
                    f"pagerduty target: severity_map {severity!r} -> {mapped!r} must map one of {SEVERITIES} "
                    f"to one of {PAGERDUTY_SEVERITIES}"
                )


def build_pagerduty_payload(target: PagerDutyTarget, alert: Alert) -> dict[str, Any]:
    """The Events API v2 event (a resolve has only the key fields). Over :data:`EVENT_MAX_BYTES` (the API
    refuses 512 KB) the details and links are cut step by step and ``custom_details.truncated`` says so."""
    event: dict[str, Any] = {"routing_key": target.routing_key, "dedup_key": alert.dedup_key}
    event["event_action"] = alert.action
    if alert.action == "resolve":
        return event
    headline = f"{alert.title}: {alert.summary}" if alert.summary else alert.title
    ids = {"dag_id": alert.dag_id, "run_id": alert.run_id, "task_id": alert.task_id}
    payload: dict[str, Any] = {
        "summary": truncate_text(" ".join(headline.split()), 1024),
        "source": truncate_text(alert.source, 255),
        "severity": target.severity_map.get(alert.severity, alert.severity),
        "timestamp": alert.created_at.isoformat(),
        "class": "mlprod-alert",
        **({"component": alert.task_id} if alert.task_id else {}),
        **({"group": alert.dag_id} if alert.dag_id else {}),
    }
    event.update(client="airflow-provider-mlprod", payload=payload)
    for summary_max, value_max, max_facts in PAGERDUTY_SHRINK_STEPS:
        facts = list(alert.rendered_facts.items())[:max_facts]
        links = [link for link in alert.links if len(link.url) <= value_max][:max_facts]
        event["links"] = [{"href": link.url, "text": truncate_text(link.label, value_max)} for link in links]
        if not links:
            del event["links"]
        details = {"summary": truncate_text(alert.summary, summary_max), **ids}
        details["facts"] = {truncate_text(key, 200): truncate_text(value, value_max) for key, value in facts}
        if summary_max != PAGERDUTY_SHRINK_STEPS[0][0]:
            details["truncated"] = (
                f"shortened to fit PagerDuty's {EVENT_MAX_BYTES // 1000} KB event limit: summary at most "
                f"{summary_max} characters, fact values {value_max}, {len(facts)} of {len(alert.facts)} "
                f"facts, {len(links)} of {len(alert.links)} links; the task log has the full alert"
            )
        payload["custom_details"] = details
        if len(json.dumps(event).encode("utf-8")) <= EVENT_MAX_BYTES:
            break
    return event


# -- generic JSON webhook: Alert.to_dict(), Idempotency-Key, optional HMAC-SHA256 signature ---------

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
SIGNATURE_HEADER = "X-Mlprod-Signature"
TIMESTAMP_HEADER = "X-Mlprod-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RESERVED_HEADERS = frozenset(("content-type", "x-mlprod-signature", "x-mlprod-timestamp", "idempotency-key"))


@dataclass(frozen=True)
class JsonWebhookTarget:
    """A JSON endpoint; ``repr`` hides URL, signing secret and headers (they may hold tokens)."""

    url: str = field(repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, "webhook")
        if self.signing_secret is not None and not self.signing_secret:
            raise ConfigurationError("webhook target: signing_secret is empty; use None to send unsigned")
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ConfigurationError("webhook target: header names and values must be strings")
            if name.lower() in RESERVED_HEADERS:
                raise ConfigurationError(f"webhook target: header {name!r} is set by the channel itself")
            if not name.strip() or not name.isascii() or _LINE_BREAK.search(name):
                raise ConfigurationError("webhook target: a header name is empty or not ASCII")
            if max(map(ord, value), default=0) > 0xFF or _LINE_BREAK.search(value):  # never quote a token
                raise ConfigurationError(f"webhook target: header {name!r} is not latin-1 text on one line")


def compute_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body`` keyed with ``signing_secret``."""
    digest = hmac.new(signing_secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(signing_secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Check a received signature in constant time; non-ASCII input is a mismatch, not an error."""
    readable = all(isinstance(text, str) and text.isascii() for text in (signature, timestamp))
    return readable and hmac.compare_digest(compute_signature(signing_secret, timestamp, body), signature)


def signed_headers(target: JsonWebhookTarget, body: bytes, idempotency_key: str) -> dict[str, str]:
    """The headers of one attempt, with ``Idempotency-Key``; a signing target adds ``X-Mlprod-Timestamp``
    (unix seconds) and ``X-Mlprod-Signature: sha256=hex(HMAC_SHA256(secret, timestamp + "." + body))``,
    fresh per attempt. A receiver checks it with :func:`verify_signature` and refuses old timestamps."""
    headers = {**JSON_HEADERS, **target.headers, IDEMPOTENCY_HEADER: idempotency_key}
    if target.signing_secret:
        timestamp = headers[TIMESTAMP_HEADER] = str(int(time.time()))
        headers[SIGNATURE_HEADER] = compute_signature(target.signing_secret, timestamp, body)
    return headers


ChannelTarget = SlackWebhookTarget | TeamsWebhookTarget | JsonWebhookTarget | PagerDutyTarget | LogTarget
LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


@dataclass(frozen=True)
class ChannelKind:
    """One row of the registry: ``build_payload(target, alert)`` (text for ``log``), ``url(target)``
    (a secret; ``None`` for ``log``), ``headers(target, alert, body)`` per attempt, and ``secrets(target)``
    kept out of results and logs besides the URL."""

    kind: str
    target_type: type
    build_payload: Callable[[Any, Alert], Any]
    url: Callable[[Any], str] | None = lambda target: target.url
    headers: Callable[[Any, Alert, bytes], Mapping[str, str]] = lambda target, alert, body: JSON_HEADERS
    secrets: Callable[[Any], list[str | None]] = lambda target: []


CHANNEL_KINDS: dict[str, ChannelKind] = {
    row.kind: row
    for row in (
        ChannelKind("slack", SlackWebhookTarget, build_slack_payload),
        ChannelKind("teams", TeamsWebhookTarget, build_teams_payload),
        ChannelKind(
            "webhook",
            JsonWebhookTarget,
            lambda target, alert: alert.to_dict(),
            headers=lambda target, alert, body: signed_headers(target, body, alert.idempotency_key),
            secrets=lambda target: [target.signing_secret, *target.headers.values()],
        ),
        ChannelKind(
            "pagerduty",
            PagerDutyTarget,
            build_pagerduty_payload,
            url=lambda target: target.events_url,
            secrets=lambda target: [target.routing_key],
        ),
        ChannelKind("log", LogTarget, lambda target, alert: alert.to_text(), url=None),
    )
}


def channel_kind_of(target: object) -> ChannelKind:
    if row := next((row for row in CHANNEL_KINDS.values() if type(target) is row.target_type), None):
        return row
    kinds = ", ".join(sorted(CHANNEL_KINDS))
    raise ConfigurationError(
        f"alert channel target of type {type(target).__name__} is not a known channel kind ({kinds})"
    )


def send_to_target(
    target: ChannelTarget, alert: Alert, *, channel: str | None = None, policy: RetryPolicy | None = None
) -> DeliveryResult:
    """Send ``alert`` to ``target`` as ``channel`` (default: its kind); no raise on network or HTTP errors."""
    row = channel_kind_of(target)
    channel = channel or row.kind
    payload = row.build_payload(target, alert)
    if row.url is None:
        logging.getLogger(target.logger_name).log(LOG_LEVELS[alert.severity], "%s", payload)
        return DeliveryResult(channel=channel, kind=row.kind, status="delivered", attempts=1)
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body = body.encode("utf-8", "replace")  # a lone surrogate (a file name's bad byte) becomes "?"
    return post_with_retries(
        channel=channel,
        kind=row.kind,
        url=row.url(target),
        body=body,
        headers=lambda: row.headers(target, alert, body),
        secrets=row.secrets(target),
        policy=policy,
    )

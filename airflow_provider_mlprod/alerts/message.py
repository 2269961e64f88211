"""The alert message every channel renders: title, severity, summary, facts, links and run ids.

An :class:`Alert` is channel-neutral. Each channel module turns it into its own payload (Slack Block
Kit, Teams Adaptive Card, PagerDuty event, generic JSON, log text). ``Alert.to_dict()`` is JSON-safe
and is the body of the generic webhook channel.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlprod.exceptions import SpecError

#: Severity levels, lowest first.
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")

#: Event actions. ``resolve`` closes what an earlier ``trigger`` with the same dedup key opened
#: (PagerDuty); other channels show it as an ordinary message.
ACTIONS: tuple[str, ...] = ("trigger", "resolve")

FactValue = str | int | float | bool | None

#: Longest dedup key kept as given (PagerDuty's limit); a longer one is replaced by its SHA-256.
DEDUP_KEY_MAX_CHARS = 255


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AlertLink:
    """A labelled link shown with an alert (report, task log, dashboard).

    :param label: short button or link text, e.g. ``"Report"``.
    :param url: an ``http://`` or ``https://`` address; it is shown to readers, so it must not
        carry a secret.
    """

    label: str
    url: str

    def __post_init__(self) -> None:
        if not self.label or not self.label.strip():
            raise SpecError("alert link: label is empty")
        if not self.url.startswith(("http://", "https://")):
            raise SpecError(f"alert link {self.label!r}: url must start with http:// or https://")

    def to_dict(self) -> dict[str, str]:
        """Return the link as a JSON-safe dict with keys ``label`` and ``url``."""
        return {"label": self.label, "url": self.url}


def truncate_text(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def render_fact_value(value: FactValue) -> str:
    """Render one fact value as text: floats to 4 significant digits, ``None`` as ``"n/a"``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: Longest text :func:`readable_fact` tries to read as a literal.
_LITERAL_MAX_CHARS = 20_000


def readable_fact(value: Any) -> FactValue:
    """A fact value as an alert shows it: scalars are kept; a mapping or a sequence, or its Python or
    JSON text (what a Jinja template renders a dict or list to), becomes ``"key value, ..."`` text;
    the text ``None`` is no value."""
    if isinstance(value, str):
        text = value.strip()
        if text == "None":
            return None
        if not text.startswith(("{", "[", "(")) or len(text) > _LITERAL_MAX_CHARS:
            return value
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            try:
                value = json.loads(text)
            except ValueError:
                return text
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {render_fact_value(readable_fact(item))}" for key, item in value.items())
    if isinstance(value, list | tuple | set):
        return ", ".join(render_fact_value(readable_fact(item)) for item in value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class Alert:
    """One alert, independent of the channel that carries it.

    :param title: one-line headline, e.g. ``"Validation failed: orders (3 of 12 expectations)"``.
    :param severity: ``"info"``, ``"warning"`` or ``"critical"``.
    :param summary: a few lines of plain text saying what happened.
    :param facts: ordered key -> value pairs (the key numbers); values are rendered as text.
    :param links: labelled links (report, task log).
    :param dag_id: DAG id of the run that raised the alert, if any.
    :param run_id: run id, if any.
    :param task_id: task id, if any.
    :param dedup_key: stable key of "the same alert"; repeats within the dedup window are sent once
        and PagerDuty groups events by it. Derived from title and ids when not given; a key longer
        than :data:`DEDUP_KEY_MAX_CHARS` is replaced by ``sha256:<hex digest>`` (never refused).
    :param action: ``"trigger"`` (default) or ``"resolve"``.
    :param source: what raised the alert (PagerDuty ``source``); defaults to ``dag_id.task_id``.
    :param created_at: timezone-aware creation time; defaults to now (UTC).
    """

    title: str
    severity: str
    summary: str = ""
    facts: Mapping[str, FactValue] = field(default_factory=dict)
    links: Sequence[AlertLink] = ()
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    dedup_key: str = ""
    action: str = "trigger"
    source: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise SpecError("alert: title is empty")
        if self.severity not in SEVERITIES:
            raise SpecError(f"alert {self.title!r}: severity {self.severity!r} is not one of {SEVERITIES}")
        if self.action not in ACTIONS:
            raise SpecError(f"alert {self.title!r}: action {self.action!r} is not one of {ACTIONS}")
        if self.created_at.tzinfo is None:
            raise SpecError(f"alert {self.title!r}: created_at must be timezone-aware")
        for key, value in self.facts.items():
            if not isinstance(key, str) or not key:
                raise SpecError(f"alert {self.title!r}: fact key {key!r} is not a non-empty string")
            if not isinstance(value, str | int | float | bool | type(None)):
                raise SpecError(
                    f"alert {self.title!r}: fact {key!r} has type {type(value).__name__}; "
                    "use str, int, float, bool or None"
                )
        links = tuple(self.links)
        for link in links:
            if not isinstance(link, AlertLink):
                raise SpecError(f"alert {self.title!r}: links must be AlertLink objects")
        object.__setattr__(self, "links", links)
        object.__setattr__(self, "facts", dict(self.facts))
        if not self.dedup_key:
            object.__setattr__(self, "dedup_key", self._derived_dedup_key())
        if len(self.dedup_key) > DEDUP_KEY_MAX_CHARS:
            object.__setattr__(self, "dedup_key", "sha256:" + _sha256(self.dedup_key))
        if not self.source:
            ids = ".".join(part for part in (self.dag_id, self.task_id) if part)
            object.__setattr__(self, "source", ids or "airflow-provider-mlprod")

    def _derived_dedup_key(self) -> str:
        return "mlprod:" + _sha256("\x1f".join((self.title, self.dag_id or "", self.task_id or "")))[:32]

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt and every task try that sends this alert of this run: a digest of
        the dedup key, action, severity and run id (creation time when there is no run id)."""
        run = self.run_id or self.created_at.isoformat()
        return _sha256("\x1f".join((self.dedup_key, self.action, self.severity, run)))

    @property
    def rendered_facts(self) -> dict[str, str]:
        """The facts with every value rendered as text, in their original order."""
        return {key: render_fact_value(value) for key, value in self.facts.items()}

    @property
    def run_context(self) -> str:
        """``dag / run / task`` ids as one line, or an empty string when none is set."""
        parts = [
            f"{label} {value}"
            for label, value in (("dag", self.dag_id), ("run", self.run_id), ("task", self.task_id))
            if value
        ]
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return the alert as a JSON-safe dict (the generic webhook body)."""
        return {
            "title": self.title,
            "severity": self.severity,
            "action": self.action,
            "summary": self.summary,
            "facts": self.rendered_facts,
            "links": [link.to_dict() for link in self.links],
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "dedup_key": self.dedup_key,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
        }

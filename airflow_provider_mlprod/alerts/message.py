"""The channel-neutral alert: title, severity, summary, facts, links and run ids, and its plain text."""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_mlprod.exceptions import SpecError

#: Severity levels, lowest first.
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
#: ``resolve`` closes what a ``trigger`` with the same dedup key opened.
ACTIONS: tuple[str, ...] = ("trigger", "resolve")
#: Longest dedup key kept as given (PagerDuty's limit); a longer one is replaced by its SHA-256.
DEDUP_KEY_MAX_CHARS = 255
#: The same alert is sent once per channel within this window, unless a notifier or operator says otherwise.
DEFAULT_DEDUP_WINDOW = timedelta(hours=1)
FactValue = str | int | float | bool | None


def sha256(text: str) -> str:
    """Hex SHA-256 of ``text`` (UTF-8; a lone surrogate, as from a file name, is hashed as it is)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class AlertLink:
    """A labelled ``http(s)`` link shown with an alert (report, run, task log); never a secret."""

    label: str
    url: str

    def __post_init__(self) -> None:
        if not self.label or not self.label.strip():
            raise SpecError("alert link: label is empty")
        if not self.url.startswith(("http://", "https://")):
            raise SpecError(f"alert link {self.label!r}: url must start with http:// or https://")


def truncate_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def render_fact_value(value: FactValue) -> str:
    """One fact value as text: floats to 4 significant digits, ``None`` as ``n/a``, bools as yes/no."""
    if value is None or isinstance(value, bool):
        return {None: "n/a", True: "yes", False: "no"}[value]
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def readable_fact(value: Any) -> FactValue:
    """A fact as shown: a mapping or list (or the Python or JSON text of one) as ``key value, ...``."""
    if isinstance(value, str):
        text = value.strip()
        if text == "None":
            return None
        if not text.startswith(("{", "[", "(")) or len(text) > 20_000:
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
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


@dataclass(frozen=True)
class Alert:
    """One alert, independent of the channel that carries it.

    :param dedup_key: what makes two alerts "the same" (dedup, PagerDuty incidents); derived from
        title, dag and task when empty; a key over :data:`DEDUP_KEY_MAX_CHARS` becomes ``sha256:<hex>``.
    :param source: what raised it (PagerDuty ``source``); default ``dag_id.task_id``.
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
            if not isinstance(value, FactValue):
                raise SpecError(
                    f"alert {self.title!r}: fact {key!r} has type {type(value).__name__}; "
                    "use str, int, float, bool or None"
                )
        if not all(isinstance(link, AlertLink) for link in self.links):
            raise SpecError(f"alert {self.title!r}: links must be AlertLink objects")
        named = f"{self.title}\x1f{self.dag_id or ''}\x1f{self.task_id or ''}"
        key = self.dedup_key or "mlprod:" + sha256(named)[:32]
        key = "sha256:" + sha256(key) if len(key) > DEDUP_KEY_MAX_CHARS else key
        ids = ".".join(part for part in (self.dag_id, self.task_id) if part)
        object.__setattr__(self, "links", tuple(self.links))
        object.__setattr__(self, "facts", dict(self.facts))
        object.__setattr__(self, "dedup_key", key)
        object.__setattr__(self, "source", self.source or ids or "airflow-provider-mlprod")

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt and task try of this alert in this run (or of this creation time)."""
        run = self.run_id or self.created_at.isoformat()
        return sha256("\x1f".join((self.dedup_key, self.action, self.severity, run)))

    @property
    def rendered_facts(self) -> dict[str, str]:
        return {key: render_fact_value(value) for key, value in self.facts.items()}

    @property
    def label(self) -> str:
        return "RESOLVED" if self.action == "resolve" else self.severity.upper()

    @property
    def run_context(self) -> str:
        ids = (("dag", self.dag_id), ("run", self.run_id), ("task", self.task_id))
        return " · ".join(f"{label} {value}" for label, value in ids if value)

    def to_dict(self) -> dict[str, Any]:
        """The alert as a JSON-safe dict (the generic webhook body)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.update(facts=self.rendered_facts, links=[asdict(link) for link in self.links])
        return {**data, "created_at": self.created_at.isoformat()}

    def to_text(self) -> str:
        """The alert as a few lines of plain text (the task-log channel)."""
        lines = [f"[{self.label}] {self.title}", *([self.summary] if self.summary else [])]
        lines += [f"  {key}: {value}" for key, value in self.rendered_facts.items()]
        lines += [f"  {link.label}: {link.url}" for link in self.links]
        trailer = [part for part in (self.run_context, f"source {self.source}") if part]
        return "\n".join([*lines, " · ".join([*trailer, f"dedup key {self.dedup_key}"])])

"""Golden-set scoring: a model's answers on a fixed set of inputs, matched against expected answers.

A golden item is ``{"id": ..., "input": ..., "expected": ..., "match": <kind>, ...}`` (or
``expected_json``, the expected answer as JSON text, for tables and CSV files whose columns hold text
only); match kinds:

================  ==========================  ===========================================================
match             expected                    passes when the answer ...
================  ==========================  ===========================================================
``exact``         string                      equals ``expected`` (after ``str()`` of the answer)
``normalized``    string                      equals it after case folding, Unicode NFKC, collapsing
                                              whitespace and stripping surrounding punctuation/space
``regex``         string (a valid regex)      contains a match (``re.search``)
``contains``      string                      contains ``expected`` (case-sensitive)
``numeric``       number                      is a number (not a boolean) within ``abs_tol`` or ``rel_tol``
``json_field``    any JSON value + ``field``  is JSON whose ``field`` (dotted path, list indexes as
                                              digits) equals ``expected``
================  ==========================  ===========================================================

Every item is validated before any answer is requested: an empty golden set, a duplicate id, an
unknown match kind, an expected answer of the wrong type or an invalid regex raise ``SpecError``
naming the item. An item without an answer fails.

:func:`golden_gate` decides the gate: the candidate's pass rate must reach ``min_pass_rate`` and may
not fall more than ``max_drop`` below the champion's pass rate on the SAME golden set (same
:func:`golden_set_fingerprint`).

Public API: :func:`load_golden_set`, :func:`score_answers`, :func:`golden_gate`,
:func:`golden_set_fingerprint`, :class:`GoldenItem`, :class:`GoldenScore`, :class:`GoldenVerdict`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import SpecError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from airflow_provider_mlprod.sql.source import SqlSource

MAX_GOLDEN_ROWS = 100_000
"""Rows of a SQL golden set read at most (one more is fetched to notice an excess)."""

MATCH_KINDS = ("exact", "normalized", "regex", "contains", "numeric", "json_field")
_ITEM_KEYS = {"id", "input", "expected", "expected_json", "match", "field", "abs_tol", "rel_tol"}
_STRIP = string.punctuation + string.whitespace


@dataclass(frozen=True)
class GoldenItem:
    """One validated golden item."""

    id: str
    input: Any
    expected: Any
    match: str
    field: tuple[str, ...] = ()
    abs_tol: float = 0.0
    rel_tol: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "input": self.input,
            "expected": self.expected,
            "match": self.match,
            "field": ".".join(self.field),
            "abs_tol": self.abs_tol,
            "rel_tol": self.rel_tol,
        }


def normalize_text(text: str) -> str:
    """Case-folded NFKC text with whitespace collapsed and surrounding punctuation stripped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(_STRIP)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _item(position: int, raw: Any) -> GoldenItem:
    if not isinstance(raw, Mapping):
        raise SpecError(f"golden item #{position}: must be a dict, got {type(raw).__name__}")
    item_id = raw.get("id", position)
    where = f"golden item {item_id!r}"
    unknown = sorted(set(raw) - _ITEM_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if ("expected" in raw) == ("expected_json" in raw):
        raise SpecError(f"{where}: give exactly one of expected or expected_json")
    if "expected_json" in raw:  # typed answers from a text column (a table, a CSV)
        try:
            expected = json.loads(raw["expected_json"])
        except (TypeError, ValueError):
            raise SpecError(f"{where}: expected_json is not valid JSON") from None
    else:
        expected = raw["expected"]
    match = raw.get("match", "exact")
    if match not in MATCH_KINDS:
        raise SpecError(f"{where}: unknown match {match!r}; use one of {', '.join(MATCH_KINDS)}")
    path: tuple[str, ...] = ()
    abs_tol = rel_tol = 0.0
    if match in ("exact", "normalized", "regex", "contains") and not isinstance(expected, str):
        raise SpecError(
            f"{where}: match {match!r} needs a string expected answer, got {type(expected).__name__}"
        )
    if match == "regex":
        try:
            re.compile(expected)
        except re.error as exc:
            raise SpecError(f"{where}: invalid regex {expected!r}: {exc}") from None
        from airflow_provider_mlprod.outputs.checks import check_backtracking

        check_backtracking(expected, where)
    if match == "numeric":
        if not _is_number(expected):
            raise SpecError(f"{where}: match 'numeric' needs a finite number expected, got {expected!r}")
        for key in ("abs_tol", "rel_tol"):
            value = raw.get(key, 0.0)
            if not _is_number(value) or value < 0:
                raise SpecError(f"{where}: {key} must be a non-negative number, got {value!r}")
        abs_tol, rel_tol = float(raw.get("abs_tol", 0.0)), float(raw.get("rel_tol", 0.0))
    if match == "json_field":
        dotted = raw.get("field")
        if not isinstance(dotted, str) or not dotted:
            raise SpecError(f"{where}: match 'json_field' needs 'field' (a dotted path such as 'a.b.0')")
        path = tuple(dotted.split("."))
    return GoldenItem(str(item_id), raw.get("input"), expected, match, path, abs_tol, rel_tol)


def golden_rows_from_sql(engine: sa.Engine, source: SqlSource) -> list[dict[str, Any]]:
    """The rows of a SQL golden set (null fields left out), read in one read-only snapshot.

    :raises InputDataError: the query fails (naming it and its connection) or returns more than
        :data:`MAX_GOLDEN_ROWS` rows; a lost connection is retryable (``sql.errors``).
    """
    from airflow_provider_mlprod.exceptions import InputDataError
    from airflow_provider_mlprod.sql.errors import database_errors
    from airflow_provider_mlprod.sql.session import read_only_snapshot

    statement = source.statement() if source.query is not None else source.selectable([], "golden").select()
    with database_errors(source.conn_id), read_only_snapshot(engine) as connection:
        result = source.run(connection, lambda: connection.execute(statement))
        rows = source.run(connection, lambda: result.mappings().fetchmany(MAX_GOLDEN_ROWS + 1))
    if len(rows) > MAX_GOLDEN_ROWS:
        raise InputDataError(f"{source.where} returns more than {MAX_GOLDEN_ROWS} golden items")
    return [{key: value for key, value in row.items() if value is not None} for row in rows]


def load_golden_set(items: Sequence[Mapping[str, Any]]) -> tuple[GoldenItem, ...]:
    """Validate the golden set (before any answer is produced); ``SpecError`` names the bad item."""
    if isinstance(items, Mapping) or not isinstance(items, Sequence) or len(items) == 0:
        raise SpecError("the golden set is empty: give at least one item with an expected answer")
    built = tuple(_item(position, raw) for position, raw in enumerate(items))
    ids = [item.id for item in built]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SpecError(f"golden set: duplicate item id(s) {', '.join(duplicates)}")
    return built


def golden_set_fingerprint(items: Sequence[GoldenItem]) -> str:
    """SHA-256 of the golden set's canonical JSON: two scores compare only on the same fingerprint."""
    canonical = json.dumps([item.to_dict() for item in items], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _field(document: Any, path: Sequence[str]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(document, list) and key.isdigit() and int(key) < len(document):
            document = document[int(key)]
        elif isinstance(document, dict) and key in document:
            document = document[key]
        else:
            return False, None
    return True, document


def matches(item: GoldenItem, answer: Any) -> bool:
    """Whether ``answer`` passes ``item``; a missing answer (None) fails."""
    if answer is None:
        return False
    if item.match == "numeric":
        if isinstance(answer, bool) or (isinstance(answer, str) and "_" in answer):
            return False  # True is not the number 1, nor "1_0" the number 10
        try:
            number = float(answer)
        except (TypeError, ValueError):
            return False
        return math.isfinite(number) and math.isclose(
            number, item.expected, rel_tol=item.rel_tol, abs_tol=item.abs_tol
        )
    if item.match == "json_field":
        try:
            document = json.loads(answer) if isinstance(answer, (str, bytes)) else answer
        except ValueError:
            return False
        found, value = _field(document, item.field)
        # True == 1 in Python, not in JSON: a boolean matches only a boolean
        same_kind = isinstance(value, bool) == isinstance(item.expected, bool)
        return found and same_kind and value == item.expected
    text = answer if isinstance(answer, str) else str(answer)
    if item.match == "exact":
        return text == item.expected
    if item.match == "normalized":
        return normalize_text(text) == normalize_text(item.expected)
    if item.match == "regex":
        return re.search(item.expected, text) is not None
    return item.expected in text


@dataclass(frozen=True)
class GoldenScore:
    """A model's result on a golden set."""

    fingerprint: str
    items: int
    passed: int
    failures: tuple[dict[str, Any], ...] = field(default=())

    @property
    def pass_rate(self) -> float:
        return self.passed / self.items

    def to_dict(self, max_failures: int = 20) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "items": self.items,
            "passed": self.passed,
            "pass_rate": self.pass_rate,
            "failures": list(self.failures[:max_failures]),
        }


def score_answers(items: Sequence[GoldenItem], answers: Mapping[str, Any]) -> GoldenScore:
    """Score ``answers`` (item id -> answer) on ``items``; an item without an answer fails."""
    passed, failures = 0, []
    for item in items:
        answer = answers.get(item.id)
        if matches(item, answer):
            passed += 1
        else:
            shown = answer if answer is None or isinstance(answer, (int, float)) else str(answer)[:300]
            failures.append({"id": item.id, "match": item.match, "expected": item.expected, "answer": shown})
    return GoldenScore(golden_set_fingerprint(items), len(items), passed, tuple(failures))


@dataclass(frozen=True)
class GoldenVerdict:
    """The gate's decision and why."""

    passed: bool
    reasons: tuple[str, ...]
    candidate: GoldenScore
    champion_pass_rate: float | None
    min_pass_rate: float
    max_drop: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "candidate": self.candidate.to_dict(),
            "champion_pass_rate": self.champion_pass_rate,
            "min_pass_rate": self.min_pass_rate,
            "max_drop": self.max_drop,
        }


def golden_gate(
    candidate: GoldenScore, *, min_pass_rate: float, champion_pass_rate: float | None, max_drop: float = 0.0
) -> GoldenVerdict:
    """Pass when the candidate reaches ``min_pass_rate`` and is at most ``max_drop`` below the champion."""
    for name, value in (("min_pass_rate", min_pass_rate), ("max_drop", max_drop)):
        if not _is_number(value) or not 0 <= value <= 1:
            raise SpecError(f"golden gate: {name} must be in [0, 1], got {value!r}")
    reasons = []
    if candidate.pass_rate < min_pass_rate:
        reasons.append(f"pass rate {candidate.pass_rate:.4f} is below min_pass_rate {min_pass_rate}")
    if champion_pass_rate is not None and candidate.pass_rate < champion_pass_rate - max_drop - 1e-12:
        reasons.append(
            f"pass rate {candidate.pass_rate:.4f} is more than {max_drop} below the champion's "
            f"{champion_pass_rate:.4f} on the same golden set"
        )
    return GoldenVerdict(not reasons, tuple(reasons), candidate, champion_pass_rate, min_pass_rate, max_drop)

"""Read a model's metrics from where training left them: a JSON document or a SQL result.

Both return ``{metric name: value}`` with the values as given; the gate decides whether a value is
usable (and fails closed when it is not), so nothing here coerces or drops a value silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mlprod.exceptions import InputDataError


def metrics_from_json_text(text: str, source: str, key: str | None = None) -> dict[str, Any]:
    """Parse a JSON metrics document; ``key`` selects a nested object (dots for deeper levels)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InputDataError(f"metrics file {source!r} is not valid JSON: {exc}") from None
    return metrics_from_mapping(document, source, key)


def metrics_from_mapping(document: Any, source: str, key: str | None = None) -> dict[str, Any]:
    """Select the metrics object in ``document`` (optionally under a dotted ``key``)."""
    selected = document
    for part in key.split(".") if key else ():
        if not isinstance(selected, Mapping) or part not in selected:
            raise InputDataError(f"metrics from {source!r} have no key {key!r}")
        selected = selected[part]
    if not isinstance(selected, Mapping):
        raise InputDataError(
            f"metrics from {source!r} must be an object of name to value, got {type(selected).__name__}"
        )
    if not selected:
        raise InputDataError(f"metrics from {source!r} are empty")
    return {str(name): value for name, value in selected.items()}


def metrics_from_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], source: str) -> dict[str, Any]:
    """Metrics from a SQL result: one row with a column per metric, or ``(name, value)`` rows.

    A result with exactly the two columns ``name`` and ``value`` (any case) is read as one metric per
    row; any other shape must be exactly one row, read as one metric per column.
    """
    lowered = [str(column).lower() for column in columns]
    if lowered == ["name", "value"]:
        if not rows:
            raise InputDataError(f"metrics query {source!r} returned no rows")
        names = [str(row[0]) for row in rows]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InputDataError(f"metrics query {source!r} returned metric(s) {duplicates} more than once")
        return {str(row[0]): row[1] for row in rows}
    if len(rows) != 1:
        raise InputDataError(
            f"metrics query {source!r} must return exactly one row (a column per metric) or "
            f"(name, value) rows; it returned {len(rows)} rows"
        )
    return {str(column): value for column, value in zip(columns, rows[0], strict=True)}

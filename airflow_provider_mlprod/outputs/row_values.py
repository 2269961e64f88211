"""Per-row values that several SQL predicates read, computed once per row.

PostgreSQL evaluates each function call of an expression on its own: ``strpos(lower(t), 'a') > 0 OR
strpos(lower(t), 'b') > 0`` lowers the text twice, and a 400-character ``lower()`` costs as much as a
substring search. A SQL form wraps such a value in :class:`RowValue`; :func:`hoist_row_values` moves
every distinct one into ``LEFT JOIN LATERAL (SELECT <value> AS v0, ...) AS mlprod_row_values ON true``
and the predicates read its columns. PostgreSQL pulls that subquery up into the scan (the values become
placeholders computed once per row, in each parallel worker: the aggregate still runs in parallel,
which a correlated subquery in the select list would prevent). Elsewhere, and where a statement is not
hoisted, a ``RowValue`` is its expression, computed where it stands: same result, no sharing.

Public API: :class:`RowValue`, :func:`hoist_row_values`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

LATERAL_NAME = "mlprod_row_values"


class RowValue(ColumnElement[Any]):
    """A per-row value (``lower(text)``) that several predicates of one statement read."""

    __visit_name__ = "mlprod_row_value"
    inherit_cache = True
    _traverse_internals = [("value", visitors.InternalTraversal.dp_clauseelement)]

    def __init__(self, expression: ColumnElement[Any]) -> None:
        self.value = expression
        self.type = expression.type

    @property
    def _from_objects(self) -> list[Any]:
        return self.value._from_objects


@compiles(RowValue)
def _compile_row_value(element: RowValue, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.value, **kw)


def _free_name(source: sa.FromClause) -> str:
    """``LATERAL_NAME``, or it with a number when ``source`` (a table of that name) already uses it:
    PostgreSQL refuses two FROM items of one name (``table name ... specified more than once``)."""
    taken = {getattr(item, "name", None) for item in (source, *source._from_objects)}
    return next(name for i in range(len(taken) + 1) if (name := f"{LATERAL_NAME}{i or ''}") not in taken)


def hoist_row_values(
    source: sa.FromClause, expressions: Sequence[ColumnElement[Any] | None], dialect_name: str
) -> tuple[sa.FromClause, list[ColumnElement[Any] | None]]:
    """(FROM clause, expressions) computing each distinct :class:`RowValue` of ``expressions`` once per
    row of ``source`` on PostgreSQL; elsewhere, or without row values, ``source`` and ``expressions``.

    The join adds no row and removes none (one row per source row, a LEFT JOIN), so counts and
    samples over the returned FROM clause are those over ``source``.
    """
    if dialect_name != "postgresql":
        return source, list(expressions)
    values: list[ColumnElement[Any]] = []

    def position(value: RowValue) -> int:
        return next(i for i, known in enumerate(values) if known.compare(value.value))

    for expression in expressions:
        for element in () if expression is None else visitors.iterate(expression):
            if isinstance(element, RowValue) and not any(v.compare(element.value) for v in values):
                values.append(element.value)
    if not values:
        return source, list(expressions)
    lateral = (
        sa.select(*(value.label(f"v{i}") for i, value in enumerate(values)))
        .correlate(source)
        .lateral(_free_name(source))
    )

    def replace(element: Any) -> Any:
        return lateral.c[f"v{position(element)}"] if isinstance(element, RowValue) else None

    hoisted = [None if e is None else visitors.replacement_traverse(e, {}, replace) for e in expressions]
    return source.outerjoin(lateral, sa.true()), hoisted

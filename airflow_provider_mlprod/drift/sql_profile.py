"""Profiles computed inside a database: per-bin and per-category counts by ``GROUP BY``, no row fetched.

``profile_sql`` returns the same ``DatasetProfile`` as ``profile.profile_dataframe`` on the same data
and specs. For each numeric column one query groups the rows by a bucket expression (a nested
``CASE WHEN`` binary search over the bin edges, so each row costs about log2(bins) comparisons) and
returns per bucket the row count and the sum, sum of squares (around ``spec.shift``, for a stable
variance), min and max; null/NaN and +-inf rows get their own buckets. For each categorical column one
query groups by the value's text form (``CAST(column AS VARCHAR)``). Only these aggregates leave the
database.

Specs: pass ``reference_profile.spec()`` to profile a current batch on the reference's edges and
categories. Without edges, numeric columns get ``n_bins`` equal-width bins between the column's
finite min and max (one extra ``MIN``/``MAX`` query); without categories, the ``top_k`` most frequent
categories are kept (ties broken by text), the rest counted as "other".

Identifiers (schema, table, columns) must be plain names (letters, digits, ``_``, ``$``); anything
else (quotes, ``;``, comments, spaces, dots) is rejected before any SQL runs, and names are quoted by
SQLAlchemy. A ``query`` source must be a single ``SELECT`` (or ``WITH``) statement without ``;``.

Notes: categories are compared by their text form, so text and integer columns match pandas, while
float or boolean columns may print differently in SQL (``1.0`` vs ``1``, ``true`` vs ``True``).
PostgreSQL ``NaN`` counts as null, like NaN in pandas. Each column is read by its own query; if their
row counts differ (the table changed meanwhile), ``InputDataError`` is raised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import sqlalchemy as sa

from airflow_provider_mlprod.drift.profile import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    NUMERIC,
    CategoricalColumnProfile,
    ColumnProfile,
    ColumnSpec,
    DatasetProfile,
    NumericColumnProfile,
    categorical_profile_from_counts,
    category_text,
)
from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, SpecError
from airflow_provider_mlprod.validation.identifiers import check_identifier, split_table_name

MISSING_BUCKET = -1
INFINITE_BUCKET = -2
STREAM_ROWS = 10_000
QUERY_START = re.compile(r"\s*(select|with)\b", re.IGNORECASE)


def profile_sql(
    engine: sa.Engine,
    specs: Mapping[str, ColumnSpec],
    *,
    table: str | None = None,
    schema: str | None = None,
    query: str | None = None,
    n_bins: int = DEFAULT_BINS,
    top_k: int | None = DEFAULT_TOP_K,
) -> DatasetProfile:
    """Profile a table or query inside the database.

    :param engine: SQLAlchemy engine of the database.
    :param specs: ``{column: ColumnSpec}``, e.g. ``reference_profile.spec()``.
    :param table: table name, optionally ``"schema.table"``.
    :param schema: schema of ``table`` when not in its name.
    :param query: a ``SELECT`` whose result is profiled (instead of ``table``).
    :param n_bins: equal-width bins for numeric columns without edges.
    :param top_k: categories kept for categorical columns without a category list (``None``: all).
    :raises ConfigurationError: bad table/schema name, or not exactly one of ``table`` and ``query``.
    :raises SpecError: no column, or a column name that is not a plain identifier.
    :raises InputDataError: the database rejected a query, or the source changed while profiled.
    """
    if not specs:
        raise SpecError("profile_sql: no column to profile")
    for name, spec in specs.items():
        check_identifier(name, "column", SpecError)
        if not isinstance(spec, ColumnSpec):
            raise SpecError(f"column {name!r}: spec must be a ColumnSpec, got {type(spec).__name__}")
    source, label = _source(table, schema, query, list(specs))
    columns: dict[str, ColumnProfile] = {}
    row_counts: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            if table is not None:
                source = _typed_table(conn, source, label)
            for name, spec in specs.items():
                if spec.kind == NUMERIC:
                    columns[name] = _numeric_profile(conn, source, name, spec, n_bins)
                else:
                    columns[name] = _categorical_profile(conn, source, name, spec, top_k)
                row_counts[name] = columns[name].total
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise InputDataError(f"{label}: profile query failed: {reason}") from exc
    if len(set(row_counts.values())) > 1:
        raise InputDataError(f"{label}: row counts differ between columns {row_counts}; did the data change?")
    return DatasetProfile(row_count=next(iter(row_counts.values())), columns=columns)


def _source(
    table: str | None, schema: str | None, query: str | None, names: list[str]
) -> tuple[sa.FromClause, str]:
    if (table is None) == (query is None):
        raise ConfigurationError("profile_sql: give exactly one of table and query")
    if table is not None:
        schema, table = split_table_name(table, schema)
        source = sa.table(table, *(sa.column(name) for name in names), schema=schema)
        return source, f"table {table!r}" if schema is None else f"table {schema!r}.{table!r}"
    if not isinstance(query, str) or not QUERY_START.match(query):
        raise ConfigurationError("profile_sql: query must be a single SELECT (or WITH) statement")
    text = query.strip()
    if ";" in text:
        raise ConfigurationError("profile_sql: query must be a single statement without ';'")
    return sa.text(text).columns(*(sa.column(name) for name in names)).subquery("profiled_source"), "query"


def _typed_table(conn: sa.Connection, source: sa.TableClause, label: str) -> sa.TableClause:
    """The table with its column types read from the database (booleans then come back as booleans)."""
    try:
        found = {
            c["name"]: c["type"] for c in sa.inspect(conn).get_columns(source.name, schema=source.schema)
        }
    except sa.exc.NoSuchTableError:
        raise InputDataError(f"{label} does not exist") from None
    absent = [column.name for column in source.c if column.name not in found]
    if absent:
        raise InputDataError(f"{label} has no columns {absent} (it has {list(found)})")
    return sa.table(source.name, *(sa.column(c.name, found[c.name]) for c in source.c), schema=source.schema)


def _bin_index(value: sa.ColumnElement, edges: tuple[float, ...]) -> sa.ColumnElement:
    """SQL for the bin index of a finite value: 0 underflow, 1.. interior bins, len(edges) overflow."""
    if not edges:
        return sa.literal(0)
    last = len(edges) - 1

    def edges_at_or_below(low: int, high: int) -> sa.ColumnElement:
        # How many of edges[0..last-1] are <= value, known to be in [low, high]: a binary search.
        if low == high:
            return sa.literal(low)
        middle = (low + high + 1) // 2
        return sa.case(
            (value >= sa.literal(edges[middle - 1], sa.Double()), edges_at_or_below(middle, high)),
            else_=edges_at_or_below(low, middle - 1),
        )

    top = sa.literal(edges[-1], sa.Double())
    return sa.case(
        (value > top, sa.literal(last + 1)),
        (value == top, sa.literal(last)),
        else_=edges_at_or_below(0, last),
    )


def _numeric_profile(
    conn: sa.Connection, source: sa.FromClause, name: str, spec: ColumnSpec, n_bins: int
) -> NumericColumnProfile:
    value = sa.cast(source.c[name], sa.Double())
    missing = sa.or_(value.is_(None), value == sa.literal(math.nan, sa.Double()))
    infinite = sa.or_(value == sa.literal(math.inf, sa.Double()), value == sa.literal(-math.inf, sa.Double()))
    edges, shift = spec.edges, spec.shift
    if edges is None:
        edges, range_middle = _equal_width_edges(conn, source, value, missing, infinite, n_bins)
        shift = range_middle if shift is None else shift
    if shift is None:
        shift = (edges[0] + edges[-1]) / 2 if edges else 0.0
    bucket = sa.case(
        (missing, sa.literal(MISSING_BUCKET)),
        (infinite, sa.literal(INFINITE_BUCKET)),
        else_=_bin_index(value, edges),
    ).label("bucket")
    finite_value = _finite_or_null(value, missing, infinite)
    inner = sa.select(
        bucket,
        (finite_value - sa.literal(shift, sa.Double())).label("centred"),
        finite_value.label("finite"),
    ).select_from(source)
    inner = inner.subquery("bucketed")
    centred = inner.c.centred
    statement = sa.select(
        inner.c.bucket,
        sa.func.count().label("rows"),
        sa.func.sum(centred).label("sum"),
        sa.func.sum(centred * centred).label("sum_squares"),
        sa.func.min(inner.c.finite).label("low"),
        sa.func.max(inner.c.finite).label("high"),
    ).group_by(inner.c.bucket)
    counts = [0] * (len(edges) + 1)
    null_count = infinite_count = 0
    finite_count, total, total_squares = 0, 0.0, 0.0
    lows, highs = [], []
    atoms = spec.values
    for bucket_index, rows, bucket_sum, bucket_squares, low, high in conn.execute(statement):
        if bucket_index == MISSING_BUCKET:
            null_count += rows
        elif bucket_index == INFINITE_BUCKET:
            infinite_count += rows
        else:
            counts[int(bucket_index)] += rows
            finite_count += rows
            total += float(bucket_sum)
            total_squares += float(bucket_squares)
            lows.append(float(low))
            highs.append(float(high))
            if atoms is not None and not _on_atom(atoms, int(bucket_index), float(low), float(high)):
                atoms = None
    if finite_count:
        mean_offset = total / finite_count
        squares = max(total_squares - total * mean_offset, 0.0)
        mean, std = shift + mean_offset, math.sqrt(squares / finite_count)
        low, high = min(lows), max(highs)
    else:
        mean = std = low = high = None
    return NumericColumnProfile(
        edges=tuple(edges),
        counts=tuple(counts),
        null_count=null_count,
        infinite_count=infinite_count,
        count=finite_count,
        mean=mean,
        std=std,
        min=low,
        max=high,
        values=atoms,
    )


def _on_atom(atoms: tuple[float, ...], bucket: int, low: float, high: float) -> bool:
    """Whether a bucket's values all equal the reference value of its bin (bucket 0 is underflow)."""
    return 1 <= bucket <= len(atoms) and low == high == atoms[bucket - 1]


def _finite_or_null(
    value: sa.ColumnElement, missing: sa.ColumnElement, infinite: sa.ColumnElement
) -> sa.ColumnElement:
    """The value when finite, else NULL; a CASE chain, since ``NOT missing`` may be NULL (``x = NaN``)."""
    return sa.case((missing, sa.null()), (infinite, sa.null()), else_=value)


def _equal_width_edges(
    conn: sa.Connection,
    source: sa.FromClause,
    value: sa.ColumnElement,
    missing: sa.ColumnElement,
    infinite: sa.ColumnElement,
    n_bins: int,
) -> tuple[tuple[float, ...], float]:
    import numpy as np

    finite_value = _finite_or_null(value, missing, infinite)
    low, high = conn.execute(
        sa.select(sa.func.min(finite_value), sa.func.max(finite_value)).select_from(source)
    ).one()
    if low is None:
        return (), 0.0
    low, high = float(low), float(high)
    if low == high:
        return (low, low), low
    return tuple(float(e) for e in np.linspace(low, high, n_bins + 1)), (low + high) / 2


def _categorical_profile(
    conn: sa.Connection, source: sa.FromClause, name: str, spec: ColumnSpec, top_k: int | None
) -> CategoricalColumnProfile:
    """Count rows per value in the database, then per text form (``category_text``) in Python.

    Grouping by the value itself (not its SQL text) lets every engine hand back typed values (a
    boolean, a float, a decimal) that print alike, so ``true`` counts with pandas' ``True``.
    """
    value = source.c[name]
    inner = sa.select(value.label("category")).select_from(source).subquery("categorised")
    statement = sa.select(inner.c.category, sa.func.count()).group_by(inner.c.category)
    counts: dict[str, int] = {}
    null_count = 0
    for category, rows in conn.execute(statement.execution_options(yield_per=STREAM_ROWS)):
        if category is None or (isinstance(category, float) and math.isnan(category)):
            null_count += rows
        else:
            key = category_text(category)
            counts[key] = counts.get(key, 0) + rows
    return categorical_profile_from_counts(counts, null_count, spec.categories, top_k=top_k)

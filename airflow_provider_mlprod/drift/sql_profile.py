"""Profiles computed inside a database by one statement: per-bin and per-category counts, no row fetched.

``profile_sql`` returns the same ``DatasetProfile`` as ``profile.profile_dataframe`` on the same data
and specs. One statement returns, for every column at the same time, the row count per bucket
(numeric columns; null/NaN and +-inf rows get their own buckets) or per category, and the count,
sum, sum of squares (around ``spec.shift``, for a stable variance), min and max of the finite values.
Each source row is unpivoted into one row per column and a single hash aggregate groups them by
(column, bucket, category). Only these aggregates leave the database. The
reads run in ``sql.session.read_only_snapshot`` (one snapshot, read-only), and the user's ``query``
is checked once, by ``sql.source.SqlSource`` (one read-only SELECT), and runs once.

Measured (``bench/drift.py``, a shared 2-core machine under load 7-15, so absolute times are
inflated): on PostgreSQL 15 with 10,000,000 rows x 25 columns, two alternating runs each, the
``unnest_keys`` statement took 123-163 s against 486-514 s for 0.1.0's one ``GROUP BY`` per column
(best-of ratio 3.95x), with 1.4 MB of memory growth. Server CPU seconds of one serial backend
(``max_parallel_workers_per_gather = 0``, load-independent) at 200,000 rows: per column 6.2-6.4 s;
``unnest_keys`` 2.7-2.8 s (2.2 s without the moments, 3.1 s grouping categories by text instead of
code); ``LATERAL (VALUES ...)`` unpivot of the same keys 6.9-7.1 s; ``LATERAL unnest`` in ``FROM``
2.8-3.2 s (its function scan materialises each row's set); pairs of columns per key 3.4 s;
``lateral_split_moments`` (the previous default) 7.8-7.9 s. At 2,000,000 rows: per column 62 s,
``unnest_keys`` 24-29 s (JIT on: 24 s, off: 29 s).

SQL shape per dialect (chosen by measurement, see ``bench/drift.py``):

- PostgreSQL (``unnest_keys``, see ``_unnest_sql``): per source row one integer key per column
  (``width_bucket`` on thresholds that also separate -inf, +inf and NaN, so no ``CASE`` per
  value), unnested in lockstep with the numeric values from ``SELECT unnest(ARRAY[...])``, and one
  hash aggregate per key: the row count and per-bucket mean, variance, min and max, merged per
  column in Python. The table is read once; the parallel workers aggregate partially (see
  ``_price_unnested_rows``). The older shapes stay selectable for comparison;
- DuckDB (``aggregate_maps``): one row of per-column ``histogram(value, boundaries)`` maps and
  moments, see ``_maps_sql`` and ``duckdb_profile``;
- other databases (SQLite, ...): ``FROM source CROSS JOIN (0, 1, ...) keys`` with one
  ``CASE keys.k`` per output column and a ``CASE`` binary search over the edges (about log2(bins)
  comparisons per value).

Specs: pass ``reference_profile.spec()`` to profile a current batch on the reference's edges and
categories. Without edges, numeric columns get ``n_bins`` equal-width bins between the column's finite
min and max: one more statement, in the same snapshot, reads the ranges of all such columns at once.
When every bucket of such a column then holds one value (per-bucket min equals max; at most
``n_bins`` distinct values: ratings, flags), each value gets its own bin as in ``profile``'s
reference edges, and the profile keeps the values (exact tests, ``homogeneity`` up to 5 values).
Without categories, the ``top_k`` most frequent categories are kept (ties broken by text), the rest
counted as "other".

Category text: booleans are counted as ``true``/``false`` and numbers declared categorical as
``profile.category_text`` prints them, when the column types are known (table sources: read from the
database). For a ``query`` source the types are unknown: the database's text of a value is counted
as the reference's category when it is that category in another print (``1``/``0`` for ``true``/
``false`` in SQLite, ``1.0`` or ``1e+20`` for ``1`` and ``1e20``; see ``_category_label``).
Datetime columns of a table are numeric: epoch seconds; in a query, convert them to numbers in the
SQL (SQLite keeps datetimes as text: text that is not a number in a numeric column raises
``InputDataError`` instead of being cast to its leading digits). PostgreSQL ``NaN`` counts as null,
like NaN in pandas.

Identifiers (schema, table, columns) must be plain names (``sql.identifiers``); anything else is
rejected before any SQL runs, and names are quoted by the dialect. A query returning a column name
twice (in SQLite also ``a`` and ``A``) is refused before any row is read (``_check_query_names``).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from airflow_provider_mlprod.drift.profile import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    NUMERIC,
    ColumnProfile,
    ColumnSpec,
    DatasetProfile,
    NumericColumnProfile,
    categorical_profile_from_counts,
    category_text,
    check_unique_names,
    value_edges,
)
from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, SpecError
from airflow_provider_mlprod.sql.errors import is_final_database_error
from airflow_provider_mlprod.sql.identifiers import check_identifier
from airflow_provider_mlprod.sql.session import read_only_snapshot
from airflow_provider_mlprod.sql.source import SqlSource

MISSING_BUCKET = -1
INFINITE_BUCKET = -2
MOMENTS_BUCKET = -3
TEXT_BUCKET = -4
"""SQLite: a value of a numeric column that is text and not a number (CAST would make it 0 or its
leading digits, e.g. 2026 for the datetime text '2026-01-01 10:00:00')."""
REAL_MARK = "\x1f"
"""SQLite: the category text of a REAL value starts with this character (see ``_category``)."""
NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
STREAM_ROWS = 10_000
SOURCE_ALIAS = "profiled_source"
Runner = Callable[[str], Iterable[Sequence[Any]]]
"""Runs one SQL statement in the profiling snapshot and yields its rows."""


@dataclass(frozen=True)
class _Column:
    """One profiled column: its name, spec, position in the scan, and what its SQL type says."""

    name: str
    spec: ColumnSpec
    key: int
    sql_type: Any = None
    open_edges: bool = False
    """Edges made here (equal-width, ``_with_edges``): a reference column, whose distinct values get
    a bin each when every bucket holds one value (``_numeric_profile``)."""

    @property
    def python_type(self) -> type | None:
        try:
            return None if self.sql_type is None else self.sql_type.python_type
        except NotImplementedError:
            return None


def profile_sql(
    engine: sa.Engine,
    specs: Mapping[str, ColumnSpec],
    *,
    table: str | None = None,
    schema: str | None = None,
    query: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    source: SqlSource | None = None,
    n_bins: int = DEFAULT_BINS,
    top_k: int | None = DEFAULT_TOP_K,
    shape: str | None = None,
) -> DatasetProfile:
    """Profile a table or query inside the database, all columns in one scan.

    :param engine: SQLAlchemy engine of the database.
    :param specs: ``{column: ColumnSpec}``, e.g. ``reference_profile.spec()``.
    :param table: table name, optionally ``"schema.table"``.
    :param schema: schema of ``table`` when not in its name.
    :param query: a ``SELECT`` whose result is profiled (instead of ``table``).
    :param parameters: values of the query's ``:name`` placeholders, bound by the driver (never
        interpolated into the SQL).
    :param source: or the table or query as a checked ``SqlSource`` (instead of the four above).
    :param n_bins: equal-width bins for numeric columns without edges.
    :param top_k: categories kept for categorical columns without a category list (``None``: all).
    :param shape: the SQL shape (``SHAPES``; default: ``default_shape`` of the dialect).
    :raises ConfigurationError: bad table/schema name or query, or not exactly one of table and query.
    :raises SpecError: no column, or a column name that is not a plain identifier.
    :raises InputDataError: a missing table or column, a query returning a column name twice, or a
        query the database rejected.
    """
    if not specs:
        raise SpecError("profile_sql: no column to profile")
    for name, spec in specs.items():
        check_identifier(name, "column", SpecError)
        if not isinstance(spec, ColumnSpec):
            raise SpecError(f"column {name!r}: spec must be a ColumnSpec, got {type(spec).__name__}")
    if source is None:
        try:
            source = SqlSource.from_arguments(table=table, schema=schema, query=query, parameters=parameters)
        except ConfigurationError as exc:
            if query is None:
                raise ConfigurationError(f"profile_sql: {exc}") from None
            raise ConfigurationError(f"profile_sql: {exc} (a single SELECT statement without ';')") from None
    elif any(value is not None for value in (table, schema, query, parameters)):
        raise ConfigurationError("profile_sql: give a source or table/schema/query/parameters, not both")
    table, schema, query = source.table, source.schema, source.query
    bound = source if query is not None else None
    if query is not None:
        label = "query"
    else:
        label = f"table {table!r}" if schema is None else f"table {schema!r}.{table!r}"
    try:
        with read_only_snapshot(engine) as conn:
            if bound is not None:
                _check_query_names(conn, bound)
            types = _column_types(conn, table, schema, list(specs), label) if table is not None else {}
            columns = [
                _Column(name, spec, key, types.get(name)) for key, (name, spec) in enumerate(specs.items())
            ]
            source = _source_sql(conn.dialect, table, schema, query)

            def run(statement: str) -> Iterable[Sequence[Any]]:
                # a client-side cursor: a server-side one makes PostgreSQL plan for the first rows
                # (cursor_tuple_fraction) and sort the unpivoted rows instead of hashing them.
                # sa.text escapes '%' for drivers with format-style parameters (psycopg2).
                clause = sa.text(statement)
                return conn.execute(bound.bind(clause) if bound is not None else clause)

            columns = _with_edges(conn.dialect, run, source, columns, n_bins)
            if conn.dialect.name == "postgresql" and (shape or default_shape("postgresql")) == "unnest_keys":
                _price_unnested_rows(conn, len(columns))
            return _scan(conn.dialect, run, source, columns, top_k, shape)
    except sa.exc.DBAPIError as exc:
        if not is_final_database_error(exc):
            raise
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if query is not None and "cannot cast type" in reason and "to double precision" in reason:
            reason += (
                "; a query's numeric columns must be numbers: give datetimes as epoch seconds, "
                "e.g. EXTRACT(EPOCH FROM col)"
            )
        raise InputDataError(f"{label}: profile query failed: {reason}") from exc


def _column_types(
    conn: sa.Connection, table: str, schema: str | None, names: list[str], label: str
) -> dict[str, Any]:
    try:
        found = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(table, schema=schema)}
    except sa.exc.NoSuchTableError:
        raise InputDataError(f"{label} does not exist") from None
    absent = [name for name in names if name not in found]
    if absent:
        raise InputDataError(f"{label} has no columns {absent} (it has {list(found)})")
    return {name: found[name] for name in names}


SQLITE_RENAMED = re.compile(r".+:\d+", re.DOTALL)
"""How SQLite names a repeated name in ``SELECT * FROM (query)``: ``a``, ``a:1``, ``a:2``..."""


def _check_query_names(conn: sa.Connection, source: SqlSource) -> None:
    """Refuse a query returning a column name twice, before any row is read.

    The names come from an empty result of the query (``WHERE 1 = 0``: planned, no row read). A
    repeated name is ambiguous in PostgreSQL, and SQLite would read its first column for both. SQLite
    renames a repeated name in that result (``a``, ``a:1``; also ``a``, ``A:1``: it compares names
    ignoring case), so when a name looks renamed, the names of the query's own result decide (a
    column may be called ``a:1``); that computes the query's first row, nothing more.
    """
    result = conn.execute(
        source.bind(sa.text(f"SELECT * FROM ({source.query}\n) AS {SOURCE_ALIAS} WHERE 1 = 0"))
    )
    names = list(result.keys())
    result.close()
    if conn.dialect.name != "sqlite":
        check_unique_names(names, "query")
        return
    if any(SQLITE_RENAMED.fullmatch(name) for name in names):
        result = conn.execute(source.statement())
        names = list(result.keys())
        result.close()
    check_unique_names(names, "query", case_blind="SQLite")


def _source_sql(dialect: sa.Dialect, table: str | None, schema: str | None, query: str | None) -> str:
    quote = dialect.identifier_preparer.quote
    if query is not None:
        return f"({query}) AS {SOURCE_ALIAS}"
    name = quote(table) if schema is None else f"{quote(schema)}.{quote(table)}"
    return f"{name} AS {SOURCE_ALIAS}"


# --- SQL fragments ----------------------------------------------------------------------------------


def _float(value: float) -> str:
    return repr(float(value))


def _value(dialect: sa.Dialect, column: _Column) -> str:
    """The column as a double, datetimes as epoch seconds."""
    ref = f"{SOURCE_ALIAS}.{dialect.identifier_preparer.quote(column.name)}"
    temporal = column.python_type is not None and issubclass(column.python_type, _temporal_types())
    if temporal:
        if dialect.name == "postgresql":
            return f"CAST(EXTRACT(EPOCH FROM {ref}) AS DOUBLE PRECISION)"
        if dialect.name == "sqlite":  # whole seconds exactly (julianday's double was off by ~50 us)
            seconds = f"CAST(strftime('%s', {ref}) AS INTEGER)"
            fraction = f"(CAST(strftime('%f', {ref}) AS REAL) - CAST(strftime('%S', {ref}) AS INTEGER))"
            return f"({seconds} + {fraction})"
        return f"CAST(epoch({ref}) AS DOUBLE PRECISION)"
    return f"CAST({ref} AS DOUBLE PRECISION)"


def _text_in_numbers(dialect: sa.Dialect, column: _Column) -> str:
    """SQLite: the ``WHEN`` that sends text which is not a number to ``TEXT_BUCKET`` (other databases
    fail on such a cast). Digits, signs, points, exponents and spaces pass; so does no text with a
    sign after a digit or point (a date) or nothing but spaces."""
    if dialect.name != "sqlite" or (
        column.python_type is not None and issubclass(column.python_type, _temporal_types())
    ):
        return ""
    ref = f"{SOURCE_ALIAS}.{dialect.identifier_preparer.quote(column.name)}"
    return (
        f"WHEN typeof({ref}) = 'text' AND ({ref} GLOB '*[^0-9.eE+ -]*' OR {ref} GLOB '*[0-9.][+-]*' "
        f"OR trim({ref}) = '') THEN {TEXT_BUCKET} "
    )


def _temporal_types() -> tuple[type, ...]:
    import datetime

    return (datetime.date, datetime.datetime)


def _missing(dialect: sa.Dialect, value: str) -> str:
    if dialect.name == "postgresql":
        return f"({value} IS NULL OR {value} = CAST('NaN' AS DOUBLE PRECISION))"
    if dialect.name == "duckdb":
        return f"({value} IS NULL OR isnan({value}))"
    return f"({value} IS NULL)"  # SQLite stores NaN as NULL


def _infinite(dialect: sa.Dialect, value: str) -> str:
    if dialect.name == "postgresql":
        return f"({value} IN (CAST('Infinity' AS DOUBLE PRECISION), CAST('-Infinity' AS DOUBLE PRECISION)))"
    if dialect.name == "duckdb":
        return f"isinf({value})"
    return f"({value} IN (9e999, -9e999))"


SHAPES = (
    "unnest_keys",
    "lateral_split_moments",
    "lateral_width_bucket",
    "lateral_case",
    "cross_join_case",
    "aggregate_maps",
)
"""SQL shapes of the one-scan statement; ``default_shape`` picks one per dialect."""


def default_shape(dialect_name: str) -> str:
    """The measured fastest shape for a dialect (``bench/drift.py --postgres-rows``)."""
    if dialect_name == "duckdb":
        return "aggregate_maps"
    return "unnest_keys" if dialect_name == "postgresql" else "cross_join_case"


def _bin_index(value: str, edges: tuple[float, ...], width_bucket: bool) -> str:
    """SQL for the bin of a finite value: 0 underflow, 1.. interior bins, len(edges) overflow."""
    if not edges:
        return "0"
    last = len(edges) - 1
    top = _float(edges[-1])
    if width_bucket:
        array = ", ".join(_float(e) for e in edges)
        return (
            f"CASE WHEN {value} = {top} THEN {last} "
            f"ELSE width_bucket({value}, CAST(ARRAY[{array}] AS DOUBLE PRECISION[])) END"
        )

    def at_or_below(low: int, high: int) -> str:
        # how many of edges[0..last-1] are <= value, known to be in [low, high]: a binary search
        if low == high:
            return str(low)
        middle = (low + high + 1) // 2
        return (
            f"CASE WHEN {value} >= {_float(edges[middle - 1])} THEN {at_or_below(middle, high)} "
            f"ELSE {at_or_below(low, middle - 1)} END"
        )

    return (
        f"CASE WHEN {value} > {top} THEN {last + 1} WHEN {value} = {top} THEN {last} "
        f"ELSE {at_or_below(0, last)} END"
    )


def _category(dialect: sa.Dialect, column: _Column) -> str:
    ref = f"{SOURCE_ALIAS}.{dialect.identifier_preparer.quote(column.name)}"
    if column.python_type is bool:
        return f"CASE WHEN {ref} THEN 'true' WHEN NOT {ref} THEN 'false' END"
    if dialect.name == "sqlite":  # its text of a REAL keeps 15 digits: 0.30000000000000004 became 0.3
        return (
            f"CASE WHEN typeof({ref}) = 'real' THEN char({ord(REAL_MARK)}) || printf('%!.17g', {ref}) "
            f"ELSE CAST({ref} AS VARCHAR) END"
        )
    return f"CAST({ref} AS VARCHAR)"


def _bucket(dialect: sa.Dialect, column: _Column, width_bucket: bool) -> str:
    """A numeric value's bucket: ``MISSING_BUCKET`` (null, NaN), ``INFINITE_BUCKET`` or its bin."""
    value = _value(dialect, column)
    bin_index = _bin_index(value, column.spec.edges or (), width_bucket)
    return (
        f"CASE {_text_in_numbers(dialect, column)}WHEN {_missing(dialect, value)} THEN {MISSING_BUCKET} "
        f"WHEN {_infinite(dialect, value)} THEN {INFINITE_BUCKET} ELSE {bin_index} END"
    )


def _finite(dialect: sa.Dialect, column: _Column) -> str:
    """A numeric value if it is finite, else NULL."""
    value = _value(dialect, column)
    return f"CASE WHEN {_missing(dialect, value)} OR {_infinite(dialect, value)} THEN NULL ELSE {value} END"


def _inner_select(dialect: sa.Dialect, source: str, columns: list[_Column], shape: str) -> str:
    """Per source row: each numeric column's bucket and centred/finite value, each category's text."""
    parts = []
    for column in columns:
        if column.spec.kind == NUMERIC:
            parts.append(f"{_bucket(dialect, column, shape == 'lateral_width_bucket')} AS b_{column.key}")
            parts.append(f"{_finite(dialect, column)} AS f_{column.key}")
        else:
            parts.append(f"{_category(dialect, column)} AS t_{column.key}")
    return f"SELECT {', '.join(parts)} FROM {source}"


def _shift(column: _Column) -> float:
    spec = column.spec
    if spec.shift is not None:
        return spec.shift
    edges = spec.edges or ()
    return (edges[0] + edges[-1]) / 2 if edges else 0.0


def _split_moments_sql(dialect: sa.Dialect, source: str, columns: list[_Column]) -> str:
    """PostgreSQL: the histograms (count per column and bucket or category; numeric columns two by
    two, see ``_pairs``) unpivoted with ``LATERAL (VALUES ...)`` and ``width_bucket``, and the
    moments of every numeric column as plain aggregates over the same source, in one statement. A
    query source is a ``MATERIALIZED`` CTE, so it runs once; ``OFFSET 0`` keeps each row's bucket
    expressions from being evaluated once per column."""
    prefix = ""
    if source.startswith("("):
        prefix = f"WITH profiled AS MATERIALIZED {source.removesuffix(f' AS {SOURCE_ALIAS}')} "
        source = f"profiled AS {SOURCE_ALIAS}"
    parts, histogram_rows, moment_parts, moment_rows = [], [], [], []
    for column in columns:
        k = column.key
        if column.spec.kind == NUMERIC:
            parts.append(f"{_bucket(dialect, column, True)} AS b_{k}")
            finite = f"({_finite(dialect, column)})"
            centred = f"({finite} - {_float(_shift(column))})"
            atoms = column.spec.values
            off = (
                f"count(*) FILTER (WHERE {finite} <> ALL(CAST(ARRAY[{', '.join(_float(a) for a in atoms)}] "
                "AS DOUBLE PRECISION[])))"
                if atoms
                else "count(*)"
            )
            moment_parts.append(
                f"{off} AS o_{k}, sum({centred}) AS s_{k}, sum({centred} * {centred}) AS q_{k}, "
                f"min({finite}) AS l_{k}, max({finite}) AS h_{k}"
            )
            moment_rows.append(f"({k}, m.o_{k}, m.s_{k}, m.q_{k}, m.l_{k}, m.h_{k})")
        else:
            parts.append(f"{_category(dialect, column)} AS t_{k}")
            histogram_rows.append(f"({k}, CAST(NULL AS INTEGER), s.t_{k})")
    for number, (first, second, width) in enumerate(_pairs(columns)):
        if second is None:
            histogram_rows.append(f"({first.key}, s.b_{first.key}, CAST(NULL AS VARCHAR))")
        else:  # two numeric columns per unpivoted row: their joint bucket, split again in Python
            joint = f"(s.b_{first.key} + 2) * {width} + (s.b_{second.key} + 2)"
            histogram_rows.append(f"({-1 - number}, {joint}, CAST(NULL AS VARCHAR))")
    nulls = "CAST(NULL AS DOUBLE PRECISION)"
    statement = (
        f"SELECT v.k, v.b, v.t, count(*), {nulls}, {nulls}, {nulls}, {nulls} "
        f"FROM (SELECT {', '.join(parts)} FROM {source} OFFSET 0) AS s "
        f"CROSS JOIN LATERAL (VALUES {', '.join(histogram_rows)}) AS v(k, b, t) GROUP BY v.k, v.b, v.t"
    )
    if moment_rows:
        statement += (
            f" UNION ALL SELECT v.k, {MOMENTS_BUCKET}, CAST(NULL AS VARCHAR), v.o, v.s, v.q, v.l, v.h "
            f"FROM (SELECT {', '.join(moment_parts)} FROM {source}) AS m "
            f"CROSS JOIN LATERAL (VALUES {', '.join(moment_rows)}) AS v(k, o, s, q, l, h)"
        )
    return prefix + statement


def _pairs(columns: list[_Column]) -> list[tuple[_Column, _Column | None, int]]:
    """Numeric columns two by two (a last odd one alone), with the joint bucket's base: each pair
    is one unpivoted row whose bucket is ``(b1 + 2) * width + (b2 + 2)``, halving the rows the
    aggregate hashes, for at most ``width^2`` (about 10,000) groups per pair."""
    numeric = [c for c in columns if c.spec.kind == NUMERIC]
    pairs: list[tuple[_Column, _Column | None, int]] = []
    for index in range(0, len(numeric), 2):
        first = numeric[index]
        second = numeric[index + 1] if index + 1 < len(numeric) else None
        width = 3 + max(len(first.spec.edges or ()), len(second.spec.edges or ()) if second else 0)
        pairs.append((first, second, width))
    return pairs


def _split_pairs(columns: list[_Column], rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    """Rows of ``_split_moments_sql`` with each joint bucket of a pair split into its two columns."""
    pairs = _pairs(columns)
    for row in rows:
        key = int(row[0])
        if key >= 0:
            yield row
            continue
        first, second, width = pairs[-1 - key]
        joint, count = int(row[1]), row[3]
        yield first.key, joint // width - 2, None, count, None, None, None, None
        yield second.key, joint % width - 2, None, count, None, None, None, None


def _maps_sql(dialect: Any, source: str, columns: list[_Column]) -> str:
    """DuckDB: one row of per-column aggregates over the source, no per-value ``CASE`` chain.

    A projection gives each numeric value once as finite-or-NULL and flags it null/NaN, infinite or
    off the reference's distinct values; then per column ``histogram(finite, boundaries)`` (DuckDB's
    own binary search, see ``_histogram_boundaries``), the flags' sums and the moments. Categorical
    columns: ``histogram(text)`` and the null count. (Aggregates with ``FILTER`` clauses were
    avoided: DuckDB 2.0 took time quadratic in their number, 28 s instead of 1 s for 20 columns.)
    """
    inner, parts = [], []
    for column in columns:
        k = column.key
        if column.spec.kind == NUMERIC:
            value = _value(dialect, column)
            inner.append(f"CASE WHEN isfinite({value}) THEN {value} END AS f_{k}")
            inner.append(f"CAST({value} IS NULL OR isnan({value}) AS INTEGER) AS n_{k}")
            inner.append(f"CAST(isinf({value}) AS INTEGER) AS i_{k}")
            centred = f"(s.f_{k} - {_float(_shift(column))})"
            atoms = column.spec.values
            if atoms:
                listed = ", ".join(f"'{a!r}'" for a in atoms)
                inner.append(
                    f"CAST(NOT list_contains(CAST([{listed}] AS DOUBLE[]), {value}) AS INTEGER) AS o_{k}"
                )
                off = f"sum(CASE WHEN s.f_{k} IS NOT NULL THEN s.o_{k} END)"
            else:
                off = f"count(s.f_{k})"
            edges = column.spec.edges or ()
            if edges:
                boundaries = ", ".join(f"'{b!r}'" for b in _histogram_boundaries(edges))
                histogram = f"histogram(s.f_{k}, CAST([{boundaries}] AS DOUBLE[]))"
            else:
                histogram = f"count(s.f_{k})"
            parts.append(
                f"{histogram}, sum(s.n_{k}), sum(s.i_{k}), {off}, sum({centred}), "
                f"sum({centred} * {centred}), min(s.f_{k}), max(s.f_{k})"
            )
        else:
            inner.append(f"{_category(dialect, column)} AS t_{k}")
            parts.append(f"histogram(s.t_{k}), count(*) - count(s.t_{k})")
    return f"SELECT {', '.join(parts)} FROM (SELECT {', '.join(inner)} FROM {source}) AS s"


def _histogram_boundaries(edges: tuple[float, ...]) -> list[float]:
    """Upper bounds of DuckDB's right-closed ``histogram`` bins that give the profile's bins: the
    float just below each edge but the last (values below ``e0``, then ``[e(i), e(i+1))``), then the
    last edge (the last interior bin is closed); larger values fall in DuckDB's "other" bin."""
    import numpy as np

    return [float(np.nextafter(edge, -math.inf)) for edge in edges[:-1]] + [float(edges[-1])]


def _rows_from_maps(columns: list[_Column], row: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    """The one row of ``_maps_sql`` as the (column, bucket, category, rows, moments...) rows."""
    position = 0
    for column in columns:
        k = column.key
        if column.spec.kind == NUMERIC:
            counts, nulls, infinite, off, total, squares, low, high = row[position : position + 8]
            position += 8
            # DuckDB's sum over no rows (an empty source) or over only NULLs is NULL, not 0
            nulls, infinite, off = nulls or 0, infinite or 0, off or 0
            edges = column.spec.edges or ()
            if not edges:
                yield k, 0, None, counts, None, None, None, None
            else:
                bucket_of = {bound: index for index, bound in enumerate(_histogram_boundaries(edges))}
                for bound, rows in (counts or {}).items():
                    bucket = bucket_of.get(bound, len(edges))  # DuckDB's "other" bin: the overflow
                    yield k, bucket, None, rows, None, None, None, None
            yield k, MISSING_BUCKET, None, nulls, None, None, None, None
            yield k, INFINITE_BUCKET, None, infinite, None, None, None, None
            yield k, MOMENTS_BUCKET, None, off, total, squares, low, high
        else:
            counts, nulls = row[position : position + 2]
            position += 2
            for category, rows in (counts or {}).items():
                yield k, None, category, rows, None, None, None, None
            if nulls:
                yield k, None, None, nulls, None, None, None, None


def _scan_sql(dialect: sa.Dialect, source: str, columns: list[_Column], shape: str | None = None) -> str:
    shape = shape or default_shape(dialect.name)
    if shape not in SHAPES:
        raise ConfigurationError(f"profile_sql: unknown SQL shape {shape!r}; known: {SHAPES}")
    if shape == "lateral_split_moments":
        return _split_moments_sql(dialect, source, columns)
    if shape == "aggregate_maps":
        return _maps_sql(dialect, source, columns)
    if shape == "unnest_keys":
        return _unnest_sql(dialect, source, columns)
    inner = _inner_select(dialect, source, columns, shape)
    null_int, null_float, null_text = (
        "CAST(NULL AS INTEGER)",
        "CAST(NULL AS DOUBLE PRECISION)",
        "CAST(NULL AS VARCHAR)",
    )
    rows = []
    for column in columns:
        k = column.key
        if column.spec.kind == NUMERIC:
            rows.append((str(k), f"s.b_{k}", f"(s.f_{k} - {_float(_shift(column))})", f"s.f_{k}", null_text))
        else:
            rows.append((str(k), null_int, null_float, null_float, f"s.t_{k}"))
    aggregates = "count(*), sum(v.c), sum(v.c * v.c), min(v.f), max(v.f)"
    if shape.startswith("lateral"):
        inner += " OFFSET 0"  # keep PostgreSQL from evaluating each row's expressions once per column
        values = ", ".join(f"({', '.join(row)})" for row in rows)
        return (
            f"SELECT v.k, v.b, v.t, {aggregates} FROM ({inner}) AS s "
            f"CROSS JOIN LATERAL (VALUES {values}) AS v(k, b, c, f, t) GROUP BY v.k, v.b, v.t"
        )
    keys = " UNION ALL ".join(f"SELECT {column.key} AS k" for column in columns)

    def pick(position: int, null: str) -> str:
        whens = " ".join(f"WHEN {row[0]} THEN {row[position]}" for row in rows if row[position] != null)
        return f"CASE keys.k {whens} ELSE {null} END" if whens else null

    unpivoted = (
        f"SELECT keys.k AS k, {pick(1, null_int)} AS b, {pick(2, null_float)} AS c, "
        f"{pick(3, null_float)} AS f, {pick(4, null_text)} AS t "
        f"FROM ({inner}) AS s CROSS JOIN ({keys}) AS keys"
    )
    return f"SELECT v.k, v.b, v.t, {aggregates} FROM ({unpivoted}) AS v GROUP BY v.k, v.b, v.t"


# --- PostgreSQL: one integer key per value, unnested in lockstep with the values ------------------

MAX_CODED_CATEGORIES = 64
"""Categorical columns with a category list up to this long are counted by integer code (the list's
position of the value); longer lists, and columns without a list, are grouped by their text."""
OTHER_CATEGORY = "\x00other"
"""Where integer-coded columns count the values outside their category list (never a category)."""


def _thresholds(edges: tuple[float, ...]) -> list[float]:
    """``width_bucket`` thresholds on which each outcome of a value is one bucket of the result.

    ``[-DBL_MAX, e0, ..., e(L-1), next float above eL, +inf, NaN]``: ``width_bucket`` (the number of
    thresholds at or below the value) gives 0 for -inf, 1 for values below ``e0``, ``i + 2`` for the
    interior bin ``i`` (the last one closed at ``eL``), ``L + 2`` above ``eL``, ``L + 3`` for +inf and
    ``L + 4`` for NaN (PostgreSQL orders NaN above everything). So a profile bucket is the result
    minus 1, and no ``CASE`` runs per value. Without edges every finite value is bucket 0.
    """
    import numpy as np

    if not edges:
        return [-sys.float_info.max, math.inf, math.nan]
    above = float(np.nextafter(edges[-1], math.inf))
    return [-sys.float_info.max, *edges[:-1], above, math.inf, math.nan]


def _float_array(values: Sequence[float]) -> str:
    def literal(value: float) -> str:
        if math.isnan(value):
            return "'NaN'"
        if math.isinf(value):
            return "'Infinity'" if value > 0 else "'-Infinity'"
        return _float(value)

    return f"CAST(ARRAY[{', '.join(literal(v) for v in values)}] AS DOUBLE PRECISION[])"


def _coded(column: _Column) -> bool:
    """Whether a categorical column is counted by integer code: a short category list, a text column
    whose database text is its category text (booleans' ``True``/``true`` are not)."""
    categories = column.spec.categories
    return (
        categories is not None
        and len(categories) <= MAX_CODED_CATEGORIES
        and column.python_type is str
        and not {"true", "false", OTHER_CATEGORY} & set(categories)
    )


def _key_width(columns: list[_Column]) -> int:
    """The stride of the integer keys: more than any column's bucket or category code."""
    widest = 0
    for column in columns:
        if column.spec.kind == NUMERIC:
            widest = max(widest, len(_thresholds(column.spec.edges or ())))
        elif _coded(column):
            widest = max(widest, len(column.spec.categories))
    return widest + 2


def _unnest_sql(dialect: sa.Dialect, source: str, columns: list[_Column]) -> str:
    """PostgreSQL: each source row unnested into one row per column, in one scan.

    Each row's keys (``column * width + bucket`` from ``width_bucket`` on ``_thresholds``; for a coded
    categorical column ``column * width + position in its list``, 0 for other values), its numeric
    values and, for the other categorical columns, their text, become three arrays unnested in
    lockstep (numeric columns first), and one hash aggregate groups them by key (and text): per
    group the row count and ``avg``/``var_pop`` (one shared transition, Youngs-Cramer), ``min`` and
    ``max`` of the value, merged per column in Python (Chan's formula). Null, NaN and +-inf land in
    groups of their own, so no per-value ``CASE`` is needed. A query source is a ``MATERIALIZED``
    CTE, so it runs once.
    """
    prefix = ""
    if source.startswith("("):
        prefix = f"WITH profiled AS MATERIALIZED {source.removesuffix(f' AS {SOURCE_ALIAS}')} "
        source = f"profiled AS {SOURCE_ALIAS}"
    width = _key_width(columns)
    big = width * len(columns) >= 2**31
    keys, values, texts = [], [], []
    for column in sorted(columns, key=lambda c: c.spec.kind != NUMERIC):
        base = f"CAST({column.key * width} AS BIGINT)" if big else str(column.key * width)
        if column.spec.kind == NUMERIC:
            value = _value(dialect, column)
            thresholds = _float_array(_thresholds(column.spec.edges or ()))
            keys.append(f"{base} + coalesce(width_bucket({value}, {thresholds}), {width - 1})")
            values.append(value)
        elif _coded(column):
            text = _category(dialect, column)
            categories = ", ".join(_text_literal(c) for c in column.spec.categories)
            position = f"array_position(CAST(ARRAY[{categories}] AS VARCHAR[]), {text})"
            missing = f"CASE WHEN {text} IS NULL THEN {width - 1} ELSE 0 END"
            keys.append(f"{base} + coalesce({position}, {missing})")
        else:
            keys.append(base)
            texts.append((len(keys) - 1, _category(dialect, column)))
    unnested = [f"unnest(ARRAY[{', '.join(keys)}]) AS x"]
    aggregates = "count(*)"
    if values:
        unnested.append(f"unnest(ARRAY[{', '.join(values)}]) AS v")
        aggregates += ", avg(u.v), var_pop(u.v), min(u.v), max(u.v)"
    else:
        aggregates += ", NULL, NULL, NULL, NULL"
    group = "u.x"
    if texts:  # text only at the positions of the text columns (NULL elsewhere)
        slots = ["CAST(NULL AS VARCHAR)"] * (texts[-1][0] + 1)
        for position, text in texts:
            slots[position] = text
        unnested.append(f"unnest(ARRAY[{', '.join(slots)}]) AS t")
        group += ", u.t"
    text_column = "u.t" if texts else "CAST(NULL AS VARCHAR)"
    return (
        f"{prefix}SELECT u.x, {text_column}, {aggregates} "
        f"FROM (SELECT {', '.join(unnested)} FROM {source}) AS u GROUP BY {group}"
    )


def _text_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _unnest_groups(columns: list[_Column], rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``_unnest_sql`` as (column key, kind, bucket or category, rows, mean, var, min, max):
    kind ``"bucket"`` (a numeric bucket, ``MISSING_BUCKET`` or ``INFINITE_BUCKET``) or ``"text"``."""
    width = _key_width(columns)
    by_key = {column.key: column for column in columns}
    for x, text, rows_in_group, mean, variance, low, high in rows:
        key, code = divmod(int(x), width)
        column = by_key[key]
        if column.spec.kind == NUMERIC:
            last = len(_thresholds(column.spec.edges or ())) - 1
            if code == width - 1 or code == last + 1:  # SQL NULL, or NaN: counted as nulls
                bucket = MISSING_BUCKET
            elif code in (0, last):
                bucket = INFINITE_BUCKET
            else:
                bucket = code - 1
            yield key, "bucket", bucket, rows_in_group, mean, variance, low, high
        elif _coded(column):
            if code == width - 1:
                label = None
            else:
                label = OTHER_CATEGORY if code == 0 else column.spec.categories[code - 1]
            yield key, "label", label, rows_in_group, None, None, None, None
        else:
            yield key, "text", text, rows_in_group, None, None, None, None


# --- running it -------------------------------------------------------------------------------------


def _with_edges(dialect: Any, run: Runner, source: str, columns: list[_Column], n_bins: int) -> list[_Column]:
    """Columns whose numeric spec lacks edges get equal-width edges from one range statement."""
    import numpy as np

    open_columns = [c for c in columns if c.spec.kind == NUMERIC and c.spec.edges is None]
    if not open_columns:
        return columns
    parts = []
    for column in open_columns:
        finite = _finite(dialect, column)
        parts.append(f"min({finite}), max({finite})")
    bounds = next(iter(run(f"SELECT {', '.join(parts)} FROM {source}")))
    result = {c.key: c for c in columns}
    for index, column in enumerate(open_columns):
        low, high = bounds[2 * index], bounds[2 * index + 1]
        if low is None:
            edges, shift = (), 0.0
        elif float(low) == float(high):
            edges, shift = (float(low), float(low)), float(low)
        else:
            low, high = float(low), float(high)
            if not math.isfinite(high - low):
                raise InputDataError(
                    f"column {column.name!r}: values too large to summarise (their range overflows)"
                )
            edges, shift = tuple(float(e) for e in np.linspace(low, high, n_bins + 1)), (low + high) / 2
        spec = ColumnSpec(
            NUMERIC, edges=edges, shift=column.spec.shift if column.spec.shift is not None else shift
        )
        result[column.key] = _Column(column.name, spec, column.key, column.sql_type, open_edges=True)
    return [result[c.key] for c in columns]


@dataclass
class _NumericTally:
    counts: list[int]
    null_count: int = 0
    infinite_count: int = 0
    finite_count: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float | None = None
    high: float | None = None
    on_values: bool = True
    mean: float | None = None
    """Set by ``_merge_group`` (the ``unnest_keys`` shape): the mean and the sum of squared
    deviations of the finite values merged so far; ``total``/``squares`` are then unused."""
    deviations: float = 0.0
    single: dict[int, float] = field(default_factory=dict)
    """Buckets whose finite values are all one value (from the per-bucket min and max), and that value."""
    mixed: bool = False
    """Whether a bucket held several values, or a shape gave no per-bucket min and max."""

    def counted_apart(self, bucket: int, rows: int) -> bool:
        """Count a group of null/NaN or infinite values; False for a group of finite values."""
        if bucket == MISSING_BUCKET:
            self.null_count += rows
        elif bucket == INFINITE_BUCKET:
            self.infinite_count += rows
        else:
            return False
        return True

    def widen(self, column: _Column, bucket: int, low: float, high: float) -> None:
        """Take in the range of a group of finite values in ``bucket``, and whether it lies on an atom."""
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        if low != high or self.single.get(bucket, low) != low:
            self.mixed = True
        else:
            self.single[bucket] = low
        atoms = column.spec.values
        if atoms is None or not (1 <= bucket <= len(atoms) and low == high == atoms[bucket - 1]):
            self.on_values = False


def _scan(
    dialect: Any, run: Runner, source: str, columns: list[_Column], top_k: int | None, shape: str | None
) -> DatasetProfile:
    """Run the one-scan statement through ``run`` and build the profiles from its rows."""
    numeric: dict[int, _NumericTally] = {}
    categories: dict[int, dict[str, int]] = {}
    nulls: dict[int, int] = {}
    for column in columns:
        if column.spec.kind == NUMERIC:
            numeric[column.key] = _NumericTally([0] * (len(column.spec.edges) + 1))
        else:
            categories[column.key], nulls[column.key] = {}, 0
    by_key = {column.key: column for column in columns}
    vocabularies = {  # untyped (a query's) and float columns: read in the reference's category text
        column.key: frozenset(column.spec.categories)
        for column in columns
        if column.spec.kind != NUMERIC
        and column.python_type in (None, float)
        and column.spec.categories is not None
    }
    shape = shape or default_shape(dialect.name)
    statement = _scan_sql(dialect, source, columns, shape)
    result = run(statement)
    if shape == "unnest_keys":
        for key, kind, bucket, rows, mean, variance, low, high in _unnest_groups(columns, result):
            if kind == "bucket":
                _merge_group(numeric[key], by_key[key], bucket, rows, mean, variance, low, high)
            elif bucket is None:
                nulls[key] += rows
            else:
                label = (
                    bucket if kind == "label" else _category_label(bucket, by_key[key], vocabularies.get(key))
                )
                if label is None:  # a float NaN: null, as in pandas
                    nulls[key] += rows
                else:
                    categories[key][label] = categories[key].get(label, 0) + rows
        result = ()
    elif shape == "lateral_split_moments":
        result = _split_pairs(columns, result)
    elif shape == "aggregate_maps":
        result = _rows_from_maps(columns, next(iter(result)))
    for key, bucket, text, rows, bucket_sum, bucket_squares, low, high in result:
        key = int(key)
        if key in numeric:
            _tally(numeric[key], by_key[key], bucket, rows, bucket_sum, bucket_squares, low, high)
        elif text is None:
            nulls[key] += rows
        else:
            label = _category_label(text, by_key[key], vocabularies.get(key))
            if label is None:  # a float NaN: null, as in pandas
                nulls[key] += rows
                continue
            categories[key][label] = categories[key].get(label, 0) + rows
    profiles: dict[str, ColumnProfile] = {}
    for column in columns:
        if column.spec.kind == NUMERIC:
            profiles[column.name] = _numeric_profile(numeric[column.key], column)
        else:
            profiles[column.name] = categorical_profile_from_counts(
                categories[column.key], nulls[column.key], column.spec.categories, top_k=top_k
            )
    totals = {profile.total for profile in profiles.values()}
    return DatasetProfile(row_count=totals.pop() if totals else 0, columns=profiles)


def _tally(
    tally: _NumericTally,
    column: _Column,
    bucket: Any,
    rows: int,
    bucket_sum: Any,
    squares: Any,
    low: Any,
    high: Any,
) -> None:
    bucket = int(bucket)
    if bucket == TEXT_BUCKET:
        raise InputDataError(
            f"column {column.name!r} is compared as numbers but {rows} of its values are text that is "
            "not a number (SQLite keeps datetimes as text): convert it in the query, e.g. "
            "(julianday(col) - 2440587.5) * 86400 for epoch seconds"
        )
    if tally.counted_apart(bucket, rows):
        return
    if bucket == MOMENTS_BUCKET:  # the split shape: moments of all finite values, ``rows`` off the atoms
        if low is not None:
            tally.total, tally.squares = float(bucket_sum), float(squares)
            tally.low, tally.high = float(low), float(high)
        tally.on_values = tally.on_values and rows == 0 and column.spec.values is not None
        return
    tally.counts[bucket] += rows
    tally.finite_count += rows
    if bucket_sum is None:  # the split shape: counts only, the moments row follows
        tally.mixed = True
        return
    tally.total += float(bucket_sum)
    tally.squares += float(squares)
    tally.widen(column, bucket, float(low), float(high))


def _price_unnested_rows(conn: sa.Connection, per_source_row: int) -> None:
    """Make PostgreSQL's planner aggregate in its parallel workers (for this transaction only).

    PostgreSQL 15 prices the rows a ``Gather`` passes as the source's rows, not the ``unnest``-ed ones
    (``per_source_row`` times more), so it gathers every unnested row into the leader and aggregates
    there, single-threaded. Scaling ``parallel_tuple_cost`` by that factor prices the gathered rows
    right, and the workers then aggregate partially and pass only their groups.
    """
    setting = (
        "SELECT set_config('parallel_tuple_cost', "
        f"CAST(CAST(current_setting('parallel_tuple_cost') AS DOUBLE PRECISION) * {int(per_source_row)} "
        "AS VARCHAR), true)"
    )
    conn.exec_driver_sql(setting)


def _merge_group(
    tally: _NumericTally,
    column: _Column,
    bucket: int,
    rows: int,
    mean: Any,
    variance: Any,
    low: Any,
    high: Any,
) -> None:
    """Add one group of ``_unnest_sql`` (a bucket of one column) to its tally: counts, then the
    group's mean and variance merged by Chan's formula, min and max, and whether it lies on an atom."""
    if tally.counted_apart(bucket, rows):
        return
    tally.counts[bucket] += rows
    low, high = float(low), float(high)
    # a group of one value has no spread: its mean is that value and no rounding may suggest otherwise
    mean, deviations = (low, 0.0) if low == high else (float(mean), float(variance) * rows)
    if tally.mean is None:
        tally.mean, tally.deviations = mean, deviations
    else:
        delta = mean - tally.mean
        merged = tally.finite_count + rows
        tally.mean += delta * rows / merged
        tally.deviations += deviations + delta * delta * tally.finite_count * rows / merged
    tally.finite_count += rows
    tally.widen(column, bucket, low, high)


def _numeric_profile(tally: _NumericTally, column: _Column) -> NumericColumnProfile:
    shift = _shift(column)
    if tally.finite_count and tally.mean is not None:
        mean, std = tally.mean, math.sqrt(max(tally.deviations, 0.0) / tally.finite_count)
    elif tally.finite_count:
        mean_offset = tally.total / tally.finite_count
        squares = max(tally.squares - tally.total * mean_offset, 0.0)
        mean, std = shift + mean_offset, math.sqrt(squares / tally.finite_count)
    else:
        mean = std = None
    if tally.finite_count and not (math.isfinite(mean) and math.isfinite(std)):
        raise InputDataError(f"column {column.name!r}: values too large to summarise (mean or std overflows)")
    if column.open_edges and tally.single and not tally.mixed:
        discrete = _discrete_profile(tally, mean, std)
        if discrete is not None:
            return discrete
    return NumericColumnProfile(
        edges=tuple(column.spec.edges),
        counts=tuple(tally.counts),
        null_count=tally.null_count,
        infinite_count=tally.infinite_count,
        count=tally.finite_count,
        mean=mean,
        std=std,
        min=tally.low,
        max=tally.high,
        values=column.spec.values if tally.on_values and column.spec.values is not None else None,
    )


def _discrete_profile(tally: _NumericTally, mean: float, std: float) -> NumericColumnProfile | None:
    """A reference column whose every bucket held one value: one bin per distinct value, as
    ``profile.reference_edges`` gives raw data of at most ``n_bins`` distinct values (``None`` when
    neighbouring values leave no float between them for an edge)."""
    import numpy as np

    distinct = np.asarray(sorted(tally.single.values()), dtype=np.float64)
    counts = [tally.counts[bucket] for bucket, _ in sorted(tally.single.items(), key=lambda item: item[1])]
    if (edges := value_edges(distinct)) is None:
        return None
    return NumericColumnProfile(
        edges=edges,
        counts=(0, *counts, 0),
        null_count=tally.null_count,
        infinite_count=tally.infinite_count,
        count=tally.finite_count,
        mean=mean,
        std=std,
        min=tally.low,
        max=tally.high,
        values=tuple(float(v) for v in distinct),
    )


def _category_label(text: Any, column: _Column, vocabulary: frozenset[str] | None = None) -> str | None:
    """The category text of a value the database printed, as ``category_text`` prints the value.

    Columns of unknown type (a query's) and float columns are read against the reference's
    ``vocabulary``: a text not in it that is the reference's category in another print (SQLite's
    ``1``/``0`` for booleans, ``1.0`` or ``1.0e+20`` for the numbers ``1`` and ``1e20``, a float32
    that SQLite widened to a double) is counted as that category. A float NaN is null (``None``),
    as in pandas; infinities are ``inf``/``-inf`` on every engine.
    """
    text = str(text)
    if text.startswith(REAL_MARK):  # SQLite: a REAL printed with 17 digits, read back as the float
        try:
            label = category_text(float(text[1:]))
        except ValueError:
            label = category_text(text)
    elif column.python_type in (int, float, Decimal):
        try:
            label = category_text(Decimal(text))
        except (InvalidOperation, ValueError):
            return text
    else:
        label = category_text(text)
    if label == "nan" and (text.startswith(REAL_MARK) or column.python_type in (float, Decimal)):
        return None
    if vocabulary is None or label in vocabulary:
        return label
    if label == "NaN" and column.python_type is None:  # a query's float NaN (PostgreSQL's text)
        return None
    return _reference_label(label, vocabulary)


def _reference_label(label: str, vocabulary: frozenset[str]) -> str:
    """``label`` as the reference prints the same value, when one of its prints is in ``vocabulary``."""
    if label in ("0", "1") and vocabulary <= {"true", "false"}:
        return "true" if label == "1" else "false"
    if label.lstrip("+-").lower() in ("inf", "infinity"):
        infinite = "-inf" if label.startswith("-") else "inf"
        return infinite if infinite in vocabulary else label
    if not NUMBER_TEXT.fullmatch(label):
        return label
    number = category_text(Decimal(label))
    if number in vocabulary:
        return number
    import numpy as np

    value = float(label)
    narrow = np.float32(value)
    if math.isfinite(value) and float(narrow) == value and category_text(narrow) in vocabulary:
        return category_text(narrow)
    return label

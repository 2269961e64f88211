"""Profiles computed by DuckDB: tables, queries, and Parquet or CSV files at any fsspec location.

``profile_duckdb`` returns the same ``DatasetProfile`` as ``profile.profile_dataframe`` and
``sql_profile.profile_sql`` on the same data and specs, from one statement that reads the source once
and returns one row: per column a ``histogram`` map (bucket or category -> count) and the moments
(the ``aggregate_maps`` shape of ``sql_profile``; it was several times faster than unpivoting each
row). Files are read by DuckDB itself (``read_parquet`` / ``read_csv``): no row enters pandas or
Python.

Speed (``bench/drift.py --parquet-rows``, 2,000,000 rows x 25 columns, a 246 MB file, a shared
2-core machine under load 11-14): DuckDB was slower than pandas (63 s against 27 s) because its
statement binned each value with a ``CASE`` binary search and counted with ``FILTER`` aggregates,
whose cost DuckDB 2.0 grows with the square of their number (1 column 0.24 s of CPU, 20 columns
28 s). Binning with ``histogram(value, boundaries)`` over one projection, without ``FILTER``:
16.7-16.8 s against 12.0-14.9 s for pandas (read then profiled) in the same run; DuckDB's peak
memory growth (about 1.2 GB, against 0.9-1.1 GB for pandas) comes from the Parquet reader, which
decodes whole row groups (pyarrow writes up to a million rows per group) of every column per thread.

Why DuckDB's own Python API and not SQLAlchemy: duckdb-engine 0.17 runs statements on duckdb 2.0
with SQLAlchemy 2.1, but its table reflection queries ``pg_catalog.pg_collation``, which duckdb 2.0
does not have, so ``sqlalchemy.inspect(engine).get_columns`` fails. Column types come from
``DESCRIBE`` here instead.

Files at a remote location (``s3://``, ``gs://``, ...): pass the fsspec filesystem of the location
(``ObjectStoragePath.fs``) as ``filesystem``; it is registered on the connection, so DuckDB reads the
file through it. Local paths need none.

Requires the ``duckdb`` extra: ``pip install "airflow-provider-mlprod[duckdb]"``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_mlprod.drift.profile import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    ColumnSpec,
    DatasetProfile,
    check_unique_names,
)
from airflow_provider_mlprod.drift.sql_profile import (
    STREAM_ROWS,
    _Column,
    _scan,
    _with_edges,
)
from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, SpecError
from airflow_provider_mlprod.sql.identifiers import check_identifier, split_table_name
from airflow_provider_mlprod.sql.statements import check_select

FILE_READERS = {"parquet": "read_parquet", "csv": "read_csv"}
SHAPE = "aggregate_maps"


class _Preparer:
    @staticmethod
    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'


class _Dialect:
    """What the statement builder of ``sql_profile`` needs to know about DuckDB."""

    name = "duckdb"
    identifier_preparer = _Preparer()


@dataclass(frozen=True)
class _DuckType:
    """A DuckDB column type as the statement builder reads it (its Python type)."""

    name: str

    @property
    def python_type(self) -> type:
        upper = self.name.upper()
        if upper == "BOOLEAN":
            return bool
        if upper.startswith(("TIMESTAMP", "DATE")):
            return datetime.datetime
        if upper.startswith(("DECIMAL", "NUMERIC")):
            return Decimal
        if upper in ("DOUBLE", "FLOAT", "REAL"):
            return float
        if upper in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                     "UINTEGER", "UBIGINT", "UHUGEINT"):  # fmt: skip
            return int
        raise NotImplementedError(upper)


def profile_duckdb(
    connection: Any,
    specs: Mapping[str, ColumnSpec],
    *,
    table: str | None = None,
    schema: str | None = None,
    query: str | None = None,
    file: str | None = None,
    file_format: str | None = None,
    filesystem: Any = None,
    n_bins: int = DEFAULT_BINS,
    top_k: int | None = DEFAULT_TOP_K,
) -> DatasetProfile:
    """Profile a DuckDB table, query or a Parquet/CSV file in one scan.

    :param connection: a ``duckdb.DuckDBPyConnection``.
    :param specs: ``{column: ColumnSpec}``, e.g. ``reference_profile.spec()``.
    :param table: table name, optionally ``"schema.table"``.
    :param schema: schema of ``table`` when not in its name.
    :param query: a ``SELECT`` whose result is profiled.
    :param file: a Parquet or CSV file (local path, or a path of ``filesystem``).
    :param file_format: ``parquet`` or ``csv`` (default: from the file's suffix).
    :param filesystem: the fsspec filesystem holding ``file`` when it is not local.
    :param n_bins: equal-width bins for numeric columns without edges.
    :param top_k: categories kept for categorical columns without a category list (``None``: all).
    :raises ConfigurationError: not exactly one source, a bad name, query or file format.
    :raises InputDataError: a missing table, file or column, or a statement DuckDB rejected.
    """
    import duckdb

    if not specs:
        raise SpecError("profile_duckdb: no column to profile")
    for name, spec in specs.items():
        check_identifier(name, "column", SpecError)
        if not isinstance(spec, ColumnSpec):
            raise SpecError(f"column {name!r}: spec must be a ColumnSpec, got {type(spec).__name__}")
    given = [
        name for name, value in (("table", table), ("query", query), ("file", file)) if value is not None
    ]
    if len(given) != 1:
        raise ConfigurationError(f"profile_duckdb: give exactly one of table, query and file; got {given}")
    source, label = _source(connection, table, schema, query, file, file_format, filesystem)
    try:
        if query is not None:  # DuckDB renames a query's duplicate names (a, a_1) and reads the first
            names = connection.sql(check_select(query, "profile_duckdb: query")).columns
            check_unique_names(names, "query", case_blind="DuckDB")
        described = connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        types = {row[0]: _DuckType(row[1]) for row in described}
        absent = [name for name in specs if name not in types]
        if absent:
            raise InputDataError(f"{label} has no columns {absent} (it has {list(types)})")
        columns = [_Column(name, spec, key, types[name]) for key, (name, spec) in enumerate(specs.items())]
        dialect = _Dialect()

        def run(statement: str) -> Iterable[Sequence[Any]]:
            return _rows(connection.execute(statement))

        columns = _with_edges(dialect, run, source, columns, n_bins)
        return _scan(dialect, run, source, columns, top_k, SHAPE)
    except duckdb.Error as exc:
        reason = str(exc).strip().splitlines()[0]
        raise InputDataError(f"{label}: profile query failed: {reason}") from exc


def _source(
    connection: Any,
    table: str | None,
    schema: str | None,
    query: str | None,
    file: str | None,
    file_format: str | None,
    filesystem: Any,
) -> tuple[str, str]:
    quote = _Preparer.quote
    alias = "profiled_source"
    if table is not None:
        schema, table = split_table_name(table, schema)
        name = quote(table) if schema is None else f"{quote(schema)}.{quote(table)}"
        return f"{name} AS {alias}", f"table {table!r}" if schema is None else f"table {schema!r}.{table!r}"
    if query is not None:
        return f"({check_select(query, 'profile_duckdb: query')}) AS {alias}", "query"
    file_format = (file_format or str(file).rsplit(".", 1)[-1]).lower()
    if file_format not in FILE_READERS:
        raise ConfigurationError(
            f"file {file!r}: format {file_format!r} is not one of {sorted(FILE_READERS)}; give file_format"
        )
    location = str(file)
    if filesystem is not None:
        connection.register_filesystem(filesystem)
        protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]
        if "://" not in location:
            location = f"{protocol}://{location}"
    literal = "'" + location.replace("'", "''") + "'"
    reader = FILE_READERS[file_format]
    options = ", header = true" if file_format == "csv" else ""
    return f"{reader}({literal}{options}) AS {alias}", f"file {str(file)!r}"


def _rows(result: Any) -> Iterator[Sequence[Any]]:
    while True:
        batch = result.fetchmany(STREAM_ROWS)
        if not batch:
            return
        yield from batch

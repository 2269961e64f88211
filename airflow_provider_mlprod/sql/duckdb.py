"""SQLAlchemy Core statements read from DuckDB through DuckDB's own Python API.

:class:`DuckDBConnection` wraps a ``duckdb.DuckDBPyConnection`` and offers the part of SQLAlchemy's
``Connection`` interface that the provider's readers use (``dialect.name``, ``execute`` and, on its
result, ``one``, ``scalar``, ``scalars``, ``all``, ``keys`` and ``partitions``), so engine code that
builds its statements with SQLAlchemy Core (``outputs.runner``) reads a DuckDB database unchanged.

Statements are compiled by SQLAlchemy's PostgreSQL compiler with ``?`` placeholders (DuckDB reads the
PostgreSQL spelling of what Core statements use here: ``CASE``, ``IN``, ``LIMIT``, casts, function
calls); every value is bound as a DuckDB parameter, never pasted into the text.

Why not SQLAlchemy with duckdb-engine: see :mod:`airflow_provider_mlprod.drift.duckdb_profile` (its table
reflection fails on duckdb 2.0); column names come from ``DESCRIBE`` here instead.

Errors: a ``duckdb.Error`` becomes an ``InputDataError`` naming the source and the first line of DuckDB's
message (a missing table or column, a bad query: final), or a retryable ``DatabaseUnavailableError`` for a
file lock held by another process or an interrupted statement.

Public API: :class:`DuckDBConnection`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect

from airflow_provider_mlprod.exceptions import InputDataError
from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError
from airflow_provider_mlprod.sql.identifiers import split_table_name

STREAM_ROWS = 50_000
"""Rows fetched from DuckDB at a time when a result is read in partitions."""


@dataclass(frozen=True)
class _DuckDBDialect:
    """What callers read from ``connection.dialect``: its name and the DuckDB version."""

    name: str
    server_version_info: tuple[int, ...]


def _compiler_dialect() -> sa.Dialect:
    dialect = PGDialect(paramstyle="qmark")
    dialect.supports_statement_cache = False
    return dialect


class DuckDBResult:
    """The rows of one statement, read lazily from DuckDB."""

    def __init__(self, cursor: Any, keys: Sequence[str]) -> None:
        self._cursor = cursor
        self._keys = list(keys)

    def keys(self) -> list[str]:
        return list(self._keys)

    def all(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._cursor.fetchall()]

    def one(self) -> tuple[Any, ...]:
        rows = self._cursor.fetchmany(2)
        if len(rows) != 1:
            raise sa.exc.MultipleResultsFound() if rows else sa.exc.NoResultFound()
        return tuple(rows[0])

    def scalar(self) -> Any:
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def scalars(self) -> Iterator[Any]:
        for partition in self.partitions(STREAM_ROWS):
            for row in partition:
                yield row[0]

    def partitions(self, size: int | None = None) -> Iterator[list[tuple[Any, ...]]]:
        while True:
            rows = self._cursor.fetchmany(size or STREAM_ROWS)
            if not rows:
                return
            yield [tuple(row) for row in rows]


class DuckDBConnection:
    """A DuckDB connection that runs SQLAlchemy Core statements (see the module docstring).

    :param connection: a ``duckdb.DuckDBPyConnection`` (the caller opens and closes it).
    :param where: what the connection is, for messages (``connection 'warehouse'``).
    """

    def __init__(self, connection: Any, where: str = "DuckDB database") -> None:
        import duckdb

        self.raw = connection
        self.where = where
        version = tuple(int(part) for part in duckdb.__version__.split(".")[:3] if part.isdigit())
        self.dialect = _DuckDBDialect("duckdb", version)
        self._compiler = _compiler_dialect()

    def compile(self, statement: sa.Executable) -> tuple[str, list[Any]]:
        """The SQL text of ``statement`` for DuckDB and its parameters in placeholder order."""
        compiled = statement.compile(dialect=self._compiler, compile_kwargs={"render_postcompile": True})
        names = compiled.positiontup or []
        return compiled.string, [compiled.params[name] for name in names]

    def execution_options(self, **_: Any) -> DuckDBConnection:
        """Accepted for SQLAlchemy's interface; DuckDB results are always read in partitions."""
        return self

    def execute(self, statement: sa.Executable, execution_options: Any = None) -> DuckDBResult:
        """Run ``statement`` (a Core SELECT or text); its values are bound, not pasted
        (``execution_options`` accepted as by :meth:`execution_options`)."""
        text, parameters = self.compile(statement)
        cursor = self._run(lambda: self.raw.cursor().execute(text, parameters))
        return DuckDBResult(cursor, [column[0] for column in cursor.description or ()])

    def column_names(self, source: sa.FromClause) -> list[str]:
        """The column names of a FROM clause, read by ``DESCRIBE`` without fetching rows."""
        text, parameters = self.compile(sa.select(sa.text("*")).select_from(source))
        described = self._run(lambda: self.raw.cursor().execute(f"DESCRIBE {text}", parameters).fetchall())
        return [row[0] for row in described]

    def table(self, name: str, schema: str | None = None) -> sa.TableClause:
        """A Core table of ``name`` (``schema.table`` or with ``schema``) with the columns DuckDB describes.

        :raises ConfigurationError: a name that is not a plain identifier.
        :raises InputDataError: the table does not exist.
        """
        schema, name = split_table_name(name, schema)
        columns = self.column_names(sa.table(name, schema=schema))
        return sa.table(name, *[sa.column(column) for column in columns], schema=schema)

    def _run(self, read: Any) -> Any:
        import duckdb

        try:
            return read()
        except duckdb.Error as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            transient = isinstance(exc, duckdb.InterruptException) or (
                isinstance(exc, duckdb.IOException) and "lock" in detail.lower()
            )
            if transient:
                raise DatabaseUnavailableError(
                    f"{self.where} is unavailable, a retry may succeed: {detail}"
                ) from None
            raise InputDataError(f"{self.where}: {detail}") from None

"""A SQL batch: a table (optionally in a schema) or a query, with the few statements run on it directly.

Table and schema names are checked to be plain identifiers when the source is built, before any SQL
runs. A query is the user's own SQL (as in Airflow's SQL operators) and is used as a subquery.
Only the column names (``WHERE 1 = 0``) and the row count are read here; the expectations themselves
run through GX's SQL datasource.

Public API: :class:`SqlSource`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.sql.errors import is_final_database_error
from airflow_provider_mlprod.sql.identifiers import check_identifier_length, split_table_name
from airflow_provider_mlprod.sql.session import read_only_snapshot
from airflow_provider_mlprod.sql.statements import check_select

QUERY_LABEL_LENGTH = 120
"""Characters of a query shown in messages and summaries."""


@dataclass(frozen=True)
class SqlSource:
    """A table or a query to validate.

    :param table: the table name, or None for a query.
    :param schema: the table's schema, if any.
    :param query: the SELECT, or None for a table.
    """

    table: str | None = None
    schema: str | None = None
    query: str | None = None

    @classmethod
    def from_arguments(cls, *, table: str | None, schema: str | None, query: str | None) -> SqlSource:
        """Build a source from exactly one of ``table`` and ``query``, checking names before any SQL."""
        if (table is None) == (query is None):
            raise ConfigurationError("give exactly one of table and query to validate a SQL source")
        if query is not None:
            if schema is not None:
                raise ConfigurationError("schema applies to a table; a query names its own tables")
            return cls(query=check_select(query))
        schema, table = split_table_name(table, schema)
        return cls(table=table, schema=schema)

    @property
    def label(self) -> str:
        """The source as shown in messages and summaries: ``table 'sales.orders'`` or ``query '...'``."""
        if self.query is not None:
            text = " ".join(self.query.split())
            short = text if len(text) <= QUERY_LABEL_LENGTH else text[:QUERY_LABEL_LENGTH] + "…"
            return f"query {short!r}"
        return f"table {self.qualified_table!r}"

    @property
    def qualified_table(self) -> str:
        """``schema.table`` or ``table``."""
        return f"{self.schema}.{self.table}" if self.schema else str(self.table)

    def selectable(self, columns: list[str], alias: str) -> sa.FromClause:
        """The source as a SQLAlchemy FROM clause exposing ``columns``, under ``alias``."""
        column_objects = [sa.column(name) for name in columns]
        if self.query is not None:
            return sa.text(f"{self.query}\n").columns(*column_objects).subquery(alias)
        return sa.table(self.table, *column_objects, schema=self.schema).alias(alias)

    def column_names(self, engine: sa.Engine) -> list[str]:
        """The source's column names, read without fetching rows.

        :raises InputDataError: the table does not exist or the query fails.
        """
        if self.query is None:
            check_identifier_length(engine.dialect, (self.schema, "schema"), (self.table, "table"))
            inspector = sa.inspect(engine)
            if not inspector.has_table(self.table, schema=self.schema):
                raise InputDataError(f"table {self.qualified_table!r} does not exist")
            return [column["name"] for column in inspector.get_columns(self.table, schema=self.schema)]
        probe = sa.text(f"SELECT * FROM ({self.query}\n) AS mlprod_probe WHERE 1 = 0")
        with read_only_snapshot(engine) as connection:  # failing to connect propagates (retryable)
            try:
                return list(connection.execute(probe).keys())
            except sa.exc.DBAPIError as exc:
                if not is_final_database_error(exc):
                    raise  # the connection dropped, a timeout or a lock: a retry may succeed
                raise InputDataError(f"{self.label} fails: {_first_line(exc.orig)}") from None

    def row_count(self, engine: sa.Engine) -> int:
        """The number of rows of the source, counted in the database."""
        statement = sa.select(sa.func.count()).select_from(self.selectable([], "mlprod_count"))
        with read_only_snapshot(engine) as connection:  # failing to connect propagates (retryable)
            try:
                return int(connection.execute(statement).scalar_one())
            except sa.exc.DBAPIError as exc:
                if not is_final_database_error(exc):
                    raise  # the connection dropped, a timeout or a lock: a retry may succeed
                raise InputDataError(f"{self.label} cannot be counted: {_first_line(exc.orig)}") from None


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0][:300] if text else type(exc).__name__

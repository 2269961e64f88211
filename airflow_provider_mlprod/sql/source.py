"""A SQL source as a value: which connection, which table or query, its bind parameters and hook parameters.

:class:`SqlSource` is what validation, monitoring and the metrics readers (and any module that reads a
table or a user's query) take instead of a dozen loose arguments. It is checked when built, before any
SQL runs:

- exactly one of ``table`` (optionally ``schema.table`` or with ``schema``) and ``query``; table and
  schema names must be plain identifiers;
- a query must be one read-only ``SELECT`` (:func:`~airflow_provider_mlprod.sql.statements.check_select`);
- ``parameters`` are the query's bind parameters, written ``:name`` in the SQL and bound by SQLAlchemy
  for every dialect (the driver receives them apart from the text, so a value can never become SQL).
  Every ``:name`` of the query needs a parameter and every parameter must be used; values are scalars
  (text, numbers, booleans, None, dates and datetimes; a datetime with an offset is converted to UTC);
- ``hook_params`` go to the connection's Airflow hook when the engine is built (shell side, see
  ``airflow_provider_mlprod.hooks.sql_sources.engine_for_source``).

The source builds SQLAlchemy FROM clauses (:meth:`SqlSource.selectable`) and reads its column names
and row count on a connection the caller opened, typically one
:func:`~airflow_provider_mlprod.sql.session.read_only_snapshot`, so that every read of one source sees
one snapshot. Database errors are classified by
:func:`~airflow_provider_mlprod.sql.errors.classify_database_error`: final ones name the source and the
connection, transient ones stay retryable.

Public API: :class:`SqlSource`, :class:`ArgumentNames`, :func:`check_argument_shape`,
:data:`QUERY_LABEL_LENGTH`.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError, classify_database_error
from airflow_provider_mlprod.sql.identifiers import (
    check_identifier,
    check_identifier_length,
    split_table_name,
)
from airflow_provider_mlprod.sql.statements import check_select

QUERY_LABEL_LENGTH = 120
"""Characters of a query shown in messages and summaries."""

TEXT_PLACEHOLDER = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)", re.UNICODE)
"""What SQLAlchemy's ``text()`` reads as a ``:name`` placeholder (its own rule)."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The integers every driver binds (SQLite INTEGER, PostgreSQL bigint)."""

PARAMETER_TYPES = (str, int, float, bool, decimal.Decimal, datetime.date, datetime.datetime, datetime.time)
"""Types a bind parameter's value may have (None too)."""


@dataclass(frozen=True)
class ArgumentNames:
    """How a caller calls the arguments that build a :class:`SqlSource`, so messages use its words.

    An operator with a second source prefixes them (``reference_table``, ``reference_query``...); an
    argument the caller does not take is None (a query-only operator has no ``table``).
    """

    conn_id: str = "sql_conn_id"
    table: str | None = "table"
    schema: str | None = "schema"
    query: str = "query"
    parameters: str = "parameters"
    hook_params: str = "hook_params"

    @classmethod
    def prefixed(cls, prefix: str) -> ArgumentNames:
        """The default names with ``prefix`` (``"reference_"`` gives ``reference_sql_conn_id``...)."""
        return cls(*(prefix + name for name in astuple(cls())))


def check_argument_shape(
    names: ArgumentNames,
    *,
    table: object = None,
    schema: object = None,
    query: object = None,
    parameters: object = None,
    hook_params: object = None,
) -> None:
    """Check which arguments of a SQL source are given together (their values are checked when built).

    Exactly one of table and query; ``schema`` only with a table; ``parameters`` only with a query;
    ``parameters`` and ``hook_params`` mappings (or, before rendering, a template text).

    :raises ConfigurationError: naming the arguments by ``names``.
    """
    if table is not None and names.table is None:
        raise ConfigurationError(f"a table applies to no SQL source here; give {names.query}")
    if (table is None) == (query is None):
        if names.table is None:
            raise ConfigurationError(f"give {names.query} for the SQL source")
        raise ConfigurationError(f"give exactly one of {names.table} and {names.query} for a SQL source")
    if query is not None and schema is not None:
        raise ConfigurationError(f"{names.schema} applies to a table; {names.query} names its own tables")
    if table is not None and parameters:
        shown = sorted(parameters) if isinstance(parameters, Mapping) else parameters
        raise ConfigurationError(
            f"{names.parameters} {shown} apply to a query; {names.table} {table!r} has no placeholders"
        )
    for role, value, kind in (
        (names.parameters, parameters, "a mapping of name to value"),
        (names.hook_params, hook_params, "a mapping"),
    ):
        if value is not None and not isinstance(value, Mapping) and not _is_template(value):
            raise ConfigurationError(f"{role} must be {kind}, got {type(value).__name__}")


def _is_template(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@dataclass(frozen=True)
class SqlSource:
    """A table or a query on a SQL connection; build it with :meth:`from_arguments` (which checks it).

    :param conn_id: the Airflow connection id (None when the caller brings its own engine).
    :param table: the table name, or None for a query.
    :param schema: the table's schema, if any.
    :param query: the SELECT, or None for a table.
    :param parameters: the query's bind parameters (``:name`` in the SQL).
    :param hook_params: arguments for the connection's Airflow hook.
    """

    conn_id: str | None = None
    table: str | None = None
    schema: str | None = None
    query: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    hook_params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_arguments(
        cls,
        *,
        table: str | None = None,
        schema: str | None = None,
        query: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        conn_id: str | None = None,
        hook_params: Mapping[str, Any] | None = None,
        role: str = "query",
        names: ArgumentNames | None = None,
    ) -> SqlSource:
        """Build a source from exactly one of ``table`` and ``query``, checking everything before any SQL.

        :param role: what the query is called in messages (``"predictions_query"``, ``"metrics_sql"``...).
        :param names: the caller's names of all the arguments, for messages (default: ``table``,
            ``schema``, ``parameters``, ``hook_params`` and ``role`` for the query).
        :raises ConfigurationError: both or neither of table and query, a hostile name, a query that is not
            one read-only SELECT, parameters that do not match the query's ``:name`` placeholders.
        """
        names = names or ArgumentNames(query=role)
        check_argument_shape(
            names, table=table, schema=schema, query=query, parameters=parameters, hook_params=hook_params
        )
        if conn_id is not None and (not isinstance(conn_id, str) or not conn_id):
            raise ConfigurationError(
                f"connection id {conn_id!r} must be a non-empty string ({names.conn_id})"
            )
        hook_params = _check_hook_params(hook_params, names.hook_params)
        if query is not None:
            checked = check_select(query, names.query)
            bound = _check_parameters(checked, parameters, names.query, names.parameters)
            return cls(conn_id=conn_id, query=checked, parameters=bound, hook_params=hook_params)
        schema, table = split_table_name(table, schema)
        return cls(conn_id=conn_id, table=table, schema=schema, hook_params=hook_params)

    @property
    def label(self) -> str:
        """The source as shown in messages and summaries: ``table 'sales.orders'`` or ``query '...'``."""
        if self.query is not None:
            text = " ".join(self.query.split())
            short = text if len(text) <= QUERY_LABEL_LENGTH else text[:QUERY_LABEL_LENGTH] + "…"
            return f"query {short!r}"
        return f"table {self.qualified_table!r}"

    @property
    def where(self) -> str:
        """The label with the connection, for messages: ``table 'orders' on connection 'warehouse'``."""
        return f"{self.label} on connection {self.conn_id!r}" if self.conn_id else self.label

    @property
    def qualified_table(self) -> str:
        """``schema.table`` or ``table``."""
        return f"{self.schema}.{self.table}" if self.schema else str(self.table)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description for summaries (the query shortened, parameters as given)."""
        return {
            "conn_id": self.conn_id,
            "table": self.qualified_table if self.table is not None else None,
            "query": self.label if self.query is not None else None,
            "parameters": {name: _json_safe(value) for name, value in self.parameters.items()},
        }

    def statement(self, *, typed: bool = False) -> sa.TextClause:
        """The query as a SQLAlchemy text clause with its parameters bound (query sources only).

        Text values are bound untyped, so the database reads ``'4'`` as the type its context needs
        (a templated parameter is text; ``id >= :first`` must still compare integers), as it does for a
        quoted literal; other values keep their Python type. ``typed`` binds every value with its type
        (needed to render them as literals).
        """
        if self.query is None:
            raise ConfigurationError(f"{self.label} is a table, not a query")
        return self._bound(sa.text(f"{self.query}\n"), typed=typed)

    def bind(self, clause: sa.TextClause) -> sa.TextClause:
        """``clause`` (a statement that embeds this query) with the query's parameters bound."""
        return self._bound(clause)

    def _bound(self, clause: sa.TextClause, *, typed: bool = False) -> sa.TextClause:
        if not self.parameters:
            return clause
        if typed:
            return clause.bindparams(**self.parameters)
        return clause.bindparams(
            *(
                sa.bindparam(name, value, type_=sa.types.NullType() if isinstance(value, str) else None)
                for name, value in self.parameters.items()
            )
        )

    def selectable(self, columns: list[str], alias: str) -> sa.FromClause:
        """The source as a SQLAlchemy FROM clause exposing ``columns``, under ``alias``."""
        column_objects = [sa.column(name) for name in columns]
        if self.query is not None:
            return self.statement().columns(*column_objects).subquery(alias)
        return sa.table(self.table, *column_objects, schema=self.schema).alias(alias)

    def rendered_query(self, dialect: sa.Dialect) -> str:
        """The query with its parameters rendered as SQL literals by ``dialect`` (quotes escaped).

        For a library that accepts only SQL text (GX's query asset). The result is checked again to be
        one read-only SELECT; the provider's own reads bind the parameters instead. A ``%`` comes back
        as written (not doubled for the driver): the library compiles the text for its driver itself.
        """
        if self.query is None:
            raise ConfigurationError(f"{self.label} is a table, not a query")
        compiled = self.statement(typed=True).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        text = str(compiled).rstrip("\n")
        if dialect.paramstyle in ("pyformat", "format"):
            text = text.replace("%%", "%")  # compiled for a driver that doubles '%'; nothing is bound now
        # GX reads the text with SQLAlchemy's text() again (more than once): a ':word' that a value or an
        # escaped '\\:' brought in would become a placeholder there, so it is refused here, by name
        found = TEXT_PLACEHOLDER.search(text)
        if found:
            raise ConfigurationError(
                f"{self.label}: with its parameters rendered, the text holds {found.group(0)!r} inside a "
                "value or quoted text, which GX would read as a placeholder; avoid ':' before a word there"
            )
        return check_select(text, "query with its parameters rendered")

    def check_names(self, dialect: sa.Dialect) -> None:
        """Refuse a table or schema name the database would truncate."""
        if self.query is None:
            check_identifier_length(dialect, (self.schema, "schema"), (self.table, "table"))

    def column_names(self, connection: sa.Connection) -> list[str]:
        """The source's column names, read without fetching rows.

        :raises InputDataError: the table does not exist or the query fails (naming the connection).
        :raises DatabaseUnavailableError: a transient failure (retryable).
        """
        self.check_names(connection.dialect)
        if self.query is None:
            inspector = sa.inspect(connection)
            if not self.run(connection, lambda: inspector.has_table(self.table, schema=self.schema)):
                raise InputDataError(f"{self.where} does not exist")
            columns = self.run(connection, lambda: inspector.get_columns(self.table, schema=self.schema))
            return [column["name"] for column in columns]
        probe = self._bound(sa.text(f"SELECT * FROM ({self.query}\n) AS mlprod_probe WHERE 1 = 0"))
        result = self.run(connection, lambda: connection.execute(probe))
        return list(result.keys())

    def row_count(self, connection: sa.Connection) -> int:
        """The number of rows of the source, counted in the database."""
        statement = sa.select(sa.func.count()).select_from(self.selectable([], "mlprod_count"))
        return int(self.run(connection, lambda: connection.execute(statement).scalar_one()))

    def run(self, connection: sa.Connection, read: Any) -> Any:
        """Call ``read()``; a database error becomes a final error naming the source, or a retryable one."""
        try:
            return read()
        except (sa.exc.DBAPIError, sa.exc.StatementError, sa.exc.NoSuchTableError) as exc:
            if isinstance(exc, sa.exc.NoSuchTableError):
                raise InputDataError(f"{self.where} does not exist") from None
            classified = classify_database_error(exc, self.conn_id)
            if isinstance(classified, DatabaseUnavailableError):
                raise classified from exc
            detail = _first_line(getattr(exc, "orig", None) or exc)
            raise InputDataError(f"{self.where} fails: {detail}") from None


def _check_parameters(
    query: str, parameters: Mapping[str, Any] | None, role: str, argument: str = "parameters"
) -> dict[str, Any]:
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise ConfigurationError(
            f"{argument} of {role} must be a mapping of name to value, got {type(parameters).__name__}"
        )
    placeholders = set(sa.text(query).compile().params)
    given = {}
    for name, value in parameters.items():
        check_identifier(name, f"parameter name of {role}")
        if value is not None and not isinstance(value, PARAMETER_TYPES):
            raise ConfigurationError(
                f"parameter {name!r} of {role} is a {type(value).__name__}; give a single value (text, "
                "number, boolean, date or datetime): use one parameter per value"
            )
        _check_parameter_value(name, value, role)
        if isinstance(value, datetime.datetime) and value.utcoffset() is not None:
            # SQLite (and other dialects without a zone-aware type) would drop the offset and compare the
            # local wall clock; database timestamps without offset are UTC here, as everywhere in the provider
            value = value.astimezone(datetime.timezone.utc)
        given[name] = value
    missing = sorted(placeholders - set(given))
    if missing:
        wanted = ", ".join(f"{name!r}: ..." for name in missing)
        raise ConfigurationError(
            f"{role} uses {', '.join(':' + name for name in missing)} but {argument} give no value for "
            f"{'it' if len(missing) == 1 else 'them'}; pass {argument}={{{wanted}}} (a ':' before a word "
            "inside quoted text is read as a placeholder too: write it as '\\:')"
        )
    unused = sorted(set(given) - placeholders)
    cast = next((name for name in unused if re.search(rf"(?<![:\w\x5c]):{re.escape(name)}::", query)), None)
    if cast is not None:
        raise ConfigurationError(
            f"{role} writes :{cast}:: (a cast right after a placeholder), not read as a placeholder; "
            f"write CAST(:{cast} AS type) instead"
        )
    if unused:
        raise ConfigurationError(
            f"{argument} {unused} are not used by {role}: write them as :name in the SQL, or remove them"
        )
    return given


def _check_parameter_value(name: str, value: object, role: str) -> None:
    """Refuse a value no driver binds faithfully, before any SQL runs (the drivers fail late and raw).

    An integer outside 64 bits (sqlite3 raises ``OverflowError``, psycopg "bigint out of range"), a NaN
    (PostgreSQL sorts it above every number, SQLite reads it as NULL: a comparison silently selects
    nothing) and a NUL character (PostgreSQL text cannot hold it; psycopg2 raises ``ValueError``).
    """
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        shown = str(value) if len(str(value)) <= 30 else f"{str(value)[:20]}… ({len(str(value))} digits)"
        raise ConfigurationError(
            f"parameter {name!r} of {role} is {shown}, outside the 64-bit integer range databases bind; "
            "pass it as a decimal.Decimal or as text"
        )
    if isinstance(value, (float, decimal.Decimal)) and value != value:
        raise ConfigurationError(
            f"parameter {name!r} of {role} is NaN, which databases compare differently (PostgreSQL: above "
            "every number; SQLite: NULL); give a number or None"
        )
    if isinstance(value, str) and "\x00" in value:
        raise ConfigurationError(
            f"parameter {name!r} of {role} holds a NUL character (\\x00), which SQL text cannot hold"
        )


def _check_hook_params(hook_params: Mapping[str, Any] | None, role: str = "hook_params") -> dict[str, Any]:
    if hook_params is None:
        return {}
    if not isinstance(hook_params, Mapping):
        raise ConfigurationError(f"{role} must be a mapping, got {type(hook_params).__name__}")
    try:
        json.dumps(dict(hook_params), sort_keys=True)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{role} must hold JSON values (text, numbers, lists, mappings)") from None
    return dict(hook_params)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0][:300] if text else type(exc).__name__

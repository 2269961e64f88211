"""The checks that SQL identifiers (tables, schemas, columns) are plain names, done before any SQL runs.

Identifiers reach SQL text (a table name cannot be a bound parameter), so only names made of letters,
digits, ``_`` and ``$``, not starting with a digit, are accepted. Quotes, ``;``, comment markers,
spaces and dots inside a name are rejected with an error that names the offending identifier.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_provider_mlprod.exceptions import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}")


def check_identifier(name: object, role: str, error_class: type[Exception] = ConfigurationError) -> str:
    """Return ``name`` when it is a plain SQL identifier; raise naming it and its role otherwise.

    :param name: the identifier to check.
    :param role: what the identifier is, for the message (``"table"``, ``"key column"``...).
    :param error_class: the exception class to raise (``ConfigurationError`` by default).
    """
    if not isinstance(name, str) or not PLAIN_IDENTIFIER.fullmatch(name):
        raise error_class(
            f"{role} {name!r} is not a plain SQL identifier (letters, digits, '_' and '$', not starting "
            "with a digit); quotes, ';', comments, spaces and dots are rejected"
        )
    return name


def split_table_name(table: str, schema: str | None) -> tuple[str | None, str]:
    """Split ``"schema.table"`` (or take ``schema`` apart) and check both parts; return (schema, table).

    :param table: a table name, optionally qualified by one schema (``"sales.orders"``).
    :param schema: the schema, when given separately; it may not be combined with a qualified table.
    """
    if not isinstance(table, str) or not table:
        raise ConfigurationError(f"table {table!r} must be a non-empty name")
    if "." in table:
        if schema is not None:
            raise ConfigurationError(f"table {table!r} is qualified, so schema {schema!r} must not be given")
        schema, _, table = table.partition(".")
    if schema is not None:
        check_identifier(schema, "schema")
    check_identifier(table, "table")
    return schema, table


def check_identifier_length(
    dialect: Dialect, *names: tuple[str | None, str], error_class: type[Exception] = ConfigurationError
) -> None:
    """Refuse a name longer than the database keeps, before it is silently truncated.

    PostgreSQL cuts identifiers at 63 bytes: a longer quarantine table would be created under the cut
    name, and the next try, looking for the full name, would fail with ``DuplicateTable``.

    :param dialect: the SQLAlchemy dialect of the database (its ``max_identifier_length``).
    :param names: ``(name, role)`` pairs; a None name is skipped.
    """
    limit = getattr(dialect, "max_identifier_length", None)
    if not limit:
        return
    for name, role in names:
        if name is not None and len(name.encode("utf-8")) > limit:
            raise error_class(
                f"{role} {name!r} is {len(name.encode('utf-8'))} bytes long; {dialect.name} keeps only "
                f"{limit}: choose a shorter name"
            )

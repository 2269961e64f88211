"""Low-level writes shared by the store's record types: run rows, upserts, JSON columns, clock."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Table, and_, select

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.identity import RunIdentity


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """A datetime read back from the store as timezone-aware UTC (SQLite returns naive values)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def to_json(value: Any, what: str) -> str:
    """Serialise ``value`` for a JSON column; NaN, inf and non-JSON types are an error naming ``what``."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from None


def from_json(text: str | None) -> Any:
    """Parse a JSON column."""
    return json.loads(text) if text else None


def finite_float(value: Any, what: str) -> float:
    """``value`` as a finite float, or StoreError naming ``what``."""
    if isinstance(value, bool):
        raise StoreError(f"{what} must be a number, got a boolean")
    try:
        number = float(value)
    except OverflowError:
        raise StoreError(f"{what} must be finite, got a number too large for a float") from None
    except (TypeError, ValueError):
        raise StoreError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise StoreError(f"{what} must be finite, got {number}")
    return number


def run_pk(connection: Connection, identity: RunIdentity) -> int:
    """Primary key of the run row for ``identity``, created on first use."""
    key = identity.to_dict()
    return upsert(connection, schema.runs, {**key, "first_seen_at": utcnow()}, tuple(key), update=())


def upsert(
    connection: Connection,
    table: Table,
    values: Mapping[str, Any],
    key: Sequence[str],
    update: Sequence[str] | None = None,
) -> int:
    """Insert ``values`` or, when a row with the same ``key`` columns exists, update it; return its id.

    :param update: columns to overwrite on conflict; ``None`` means every non-key column, ``()`` none.
    """
    columns_to_update = [c for c in values if c not in key] if update is None else list(update)
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(table).values(**values)
        if columns_to_update:
            statement = statement.on_conflict_do_update(
                index_elements=list(key),
                set_={column: statement.excluded[column] for column in columns_to_update},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(key))
        connection.execute(statement)
    else:  # portable fallback; correct inside the caller's transaction
        condition = and_(*(table.c[column] == values[column] for column in key))
        if connection.execute(select(table.c.id).where(condition)).first() is None:
            connection.execute(table.insert().values(**values))
        elif columns_to_update:
            connection.execute(
                table.update().where(condition).values({c: values[c] for c in columns_to_update})
            )
    condition = and_(*(table.c[column] == values[column] for column in key))
    return connection.execute(select(table.c.id).where(condition)).scalar_one()


def next_revision(connection: Connection) -> int:
    """The next number of the store's revision sequence, which orders verdicts and events.

    The counter row stays locked until the caller's transaction ends, so revisions are handed out in
    commit order: a later revision was always committed after an earlier one. No worker clock is
    involved; timestamps are for display only.
    """
    sequence = schema.revision_sequence
    return connection.execute(
        sequence.update()
        .where(sequence.c.id == 1)
        .values(value=sequence.c.value + 1)
        .returning(sequence.c.value)
    ).scalar_one()

"""Versioned migrations of the metrics store schema.

The store records its schema version in ``mlprod_schema_version``. ``ensure_schema`` applies, in
order and in one transaction, every migration newer than that version; concurrent callers wait on a
lock (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so the first use by many tasks
at once creates the schema exactly once. A store written by a newer release is refused rather than
misread.

A later release changes the schema by appending a ``Migration`` (``ALTER``/``CREATE`` statements for
that step) and updating ``store.schema`` to match; released migrations are never edited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from threading import Lock
from weakref import WeakSet

from sqlalchemy import Connection, Engine, inspect, select, text

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store import schema

_ADVISORY_LOCK_KEY = 7_337_001  # any constant shared by every process of this provider


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its version, what it does, and the function that applies it."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial_schema(connection: Connection) -> None:
    tables = [table for table in schema.metadata.sorted_tables if table is not schema.schema_version]
    schema.metadata.create_all(connection, tables=tables, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "initial schema", _initial_schema),)
LATEST_VERSION = MIGRATIONS[-1].version

_ready_lock = Lock()
_ready_engines: WeakSet[Engine] = WeakSet()


def ensure_schema(engine: Engine) -> int:
    """Create or upgrade the store schema to ``LATEST_VERSION``; return the version found before."""
    if engine in _ready_engines:
        return LATEST_VERSION
    with _ready_lock, engine.begin() as connection:
        _take_migration_lock(connection)
        schema.schema_version.create(connection, checkfirst=True)
        current = connection.execute(select(schema.schema_version.c.version)).scalars().all()
        found = max(current, default=0)
        if found > LATEST_VERSION:
            raise StoreError(
                f"the metrics store has schema version {found}, newer than the {LATEST_VERSION} this "
                "release of airflow-provider-mlprod supports; upgrade the provider"
            )
        for migration in MIGRATIONS:
            if migration.version > found:
                migration.apply(connection)
                connection.execute(
                    schema.schema_version.insert().values(
                        version=migration.version,
                        description=migration.description,
                        applied_at=datetime.now(timezone.utc),
                    )
                )
        _ready_engines.add(engine)
    return found


def schema_version(engine: Engine) -> int:
    """The store's current schema version (0 when it has none yet)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(schema.schema_version.name):
            return 0
        versions = connection.execute(select(schema.schema_version.c.version)).scalars().all()
    return max(versions, default=0)


def _take_migration_lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})

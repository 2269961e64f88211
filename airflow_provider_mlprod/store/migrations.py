"""Versioned migrations of the metrics store schema: fixed DDL, frozen once released.

The store records its schema version in ``mlprod_schema_version``. ``ensure_schema`` applies, in
order and in one transaction, every migration newer than that version. Concurrent first users wait
on the database's own lock (a transaction-scoped advisory lock on PostgreSQL, scoped to the current
schema; ``BEGIN IMMEDIATE`` on SQLite), never on a lock of this process, so the schema is created
exactly once and a hung store never delays another. A store written by a newer release is refused
rather than misread.

Each migration is a list of SQL statements written out in full, not derived from ``store.schema``:
what a released version created never changes when the tables are later extended. A change to the
schema appends a ``Migration`` with its own statements and updates ``store.schema`` to match
(``tests/store/test_migrations.py`` checks that a store migrated from every historical version has
exactly the tables and columns of ``store.schema``). Statements use two placeholders for the types
that differ between the supported databases: ``{id}`` (an auto-incrementing integer key) and
``{ts}`` (a timestamp with time zone).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from weakref import WeakSet

from sqlalchemy import Connection, Engine, inspect, select, text

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.engine import read_connection

_ADVISORY_LOCK_KEY = 7_337_001  # any constant shared by every process of this provider

_TYPES = {
    "sqlite": {"id": "INTEGER", "ts": "DATETIME"},
    "postgresql": {"id": "SERIAL", "ts": "TIMESTAMP WITH TIME ZONE"},
}


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its version, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]

    def apply(self, connection: Connection) -> None:
        """Run the statements on ``connection`` (inside the caller's transaction)."""
        types = _TYPES[connection.dialect.name]
        for statement in self.statements:
            connection.exec_driver_sql(statement.format(**types))


_SCHEMA_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS mlprod_schema_version (
    version {id} NOT NULL,
    description VARCHAR(250) NOT NULL,
    applied_at {ts} NOT NULL,
    PRIMARY KEY (version)
)"""

# Version 1: the schema of airflow-provider-mlprod 0.1.0, as it created it.
_V1 = (
    """CREATE TABLE mlprod_runs (
    id {id} NOT NULL,
    dag_id VARCHAR(250) NOT NULL,
    run_id VARCHAR(250) NOT NULL,
    task_id VARCHAR(250) NOT NULL,
    map_index INTEGER DEFAULT '-1' NOT NULL,
    first_seen_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_runs_identity UNIQUE (dag_id, run_id, task_id, map_index)
)""",
    """CREATE TABLE mlprod_alert_deliveries (
    id {id} NOT NULL,
    dedup_key VARCHAR(250) NOT NULL,
    channel VARCHAR(250) NOT NULL,
    delivered BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT DEFAULT '' NOT NULL,
    run_pk INTEGER,
    sent_at {ts} NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE SET NULL
)""",
    """CREATE TABLE mlprod_aliases (
    model_name VARCHAR(250) NOT NULL,
    alias VARCHAR(250) NOT NULL,
    version VARCHAR(250) NOT NULL,
    revision INTEGER NOT NULL,
    run_pk INTEGER,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (model_name, alias),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE SET NULL
)""",
    """CREATE TABLE mlprod_drift_results (
    id {id} NOT NULL,
    run_pk INTEGER NOT NULL,
    dataset VARCHAR(250) DEFAULT '' NOT NULL,
    dataset_drift BOOLEAN NOT NULL,
    share_drifted FLOAT NOT NULL,
    summary_json TEXT NOT NULL,
    recorded_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_drift_per_run UNIQUE (run_pk, dataset),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE CASCADE
)""",
    """CREATE TABLE mlprod_metrics (
    id {id} NOT NULL,
    run_pk INTEGER NOT NULL,
    name VARCHAR(250) NOT NULL,
    value FLOAT NOT NULL,
    model_name VARCHAR(250) DEFAULT '' NOT NULL,
    model_version VARCHAR(250) DEFAULT '' NOT NULL,
    dataset VARCHAR(250) DEFAULT '' NOT NULL,
    recorded_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_metrics_per_run UNIQUE (run_pk, name, model_name, model_version, dataset),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE CASCADE
)""",
    """CREATE TABLE mlprod_model_events (
    id {id} NOT NULL,
    model_name VARCHAR(250) NOT NULL,
    version VARCHAR(250) NOT NULL,
    event VARCHAR(32) NOT NULL,
    alias VARCHAR(250) DEFAULT '' NOT NULL,
    previous_version VARCHAR(250) DEFAULT '' NOT NULL,
    run_pk INTEGER,
    detail_json TEXT DEFAULT '{{}}' NOT NULL,
    at {ts} NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE SET NULL
)""",
    """CREATE TABLE mlprod_models (
    id {id} NOT NULL,
    name VARCHAR(250) NOT NULL,
    version VARCHAR(250) NOT NULL,
    artifact_uri TEXT NOT NULL,
    metrics_json TEXT DEFAULT '{{}}' NOT NULL,
    training_data TEXT DEFAULT '' NOT NULL,
    status VARCHAR(32) NOT NULL,
    run_pk INTEGER,
    created_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_models_version UNIQUE (name, version),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE SET NULL
)""",
    """CREATE TABLE mlprod_profiles (
    id {id} NOT NULL,
    name VARCHAR(250) NOT NULL,
    profile_json TEXT NOT NULL,
    run_pk INTEGER,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_profiles_name UNIQUE (name),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE SET NULL
)""",
    """CREATE TABLE mlprod_validation_results (
    id {id} NOT NULL,
    run_pk INTEGER NOT NULL,
    suite VARCHAR(250) DEFAULT '' NOT NULL,
    dataset VARCHAR(250) DEFAULT '' NOT NULL,
    success BOOLEAN NOT NULL,
    evaluated INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    failed_critical INTEGER NOT NULL,
    failed_warning INTEGER NOT NULL,
    rows_checked INTEGER,
    summary_json TEXT NOT NULL,
    recorded_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_validation_per_run UNIQUE (run_pk, suite, dataset),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE CASCADE
)""",
    """CREATE TABLE mlprod_blessings (
    id {id} NOT NULL,
    model_id INTEGER NOT NULL,
    run_pk INTEGER NOT NULL,
    passed BOOLEAN NOT NULL,
    baseline_version VARCHAR(250) DEFAULT '' NOT NULL,
    summary_json TEXT NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_blessings_per_run UNIQUE (model_id, run_pk),
    FOREIGN KEY(model_id) REFERENCES mlprod_models (id) ON DELETE CASCADE,
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE CASCADE
)""",
    """CREATE TABLE mlprod_drift_columns (
    id {id} NOT NULL,
    drift_result_id INTEGER NOT NULL,
    column_name VARCHAR(250) NOT NULL,
    test VARCHAR(250) NOT NULL,
    statistic FLOAT,
    threshold FLOAT,
    drifted BOOLEAN NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_drift_column UNIQUE (drift_result_id, column_name),
    FOREIGN KEY(drift_result_id) REFERENCES mlprod_drift_results (id) ON DELETE CASCADE
)""",
)

# Version 2: release safety. Gate verdicts per alias, gate name and kind; artifact digests; a store
# revision sequence that orders verdicts and events; versioned reference profiles; the store id.
# Blessings of 0.1.0 become verdicts of kind "metrics" for alias "champion" named after their task.
_V2 = (
    "ALTER TABLE mlprod_models ADD COLUMN artifact_digest VARCHAR(250) DEFAULT '' NOT NULL",
    "ALTER TABLE mlprod_model_events ADD COLUMN revision INTEGER DEFAULT 0 NOT NULL",
    "UPDATE mlprod_model_events SET revision = id",
    "CREATE INDEX ix_mlprod_model_events_alias ON mlprod_model_events (model_name, alias, revision)",
    """CREATE TABLE mlprod_verdicts (
    id {id} NOT NULL,
    model_id INTEGER NOT NULL,
    run_pk INTEGER NOT NULL,
    alias VARCHAR(250) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    gate_name VARCHAR(250) NOT NULL,
    passed BOOLEAN NOT NULL,
    baseline_version VARCHAR(250) DEFAULT '' NOT NULL,
    spec_hash VARCHAR(80) DEFAULT '' NOT NULL,
    artifact_digest VARCHAR(250) DEFAULT '' NOT NULL,
    summary_json TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_verdicts_per_run UNIQUE (model_id, run_pk, alias, gate_name),
    FOREIGN KEY(model_id) REFERENCES mlprod_models (id) ON DELETE CASCADE,
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE CASCADE
)""",
    "CREATE INDEX ix_mlprod_verdicts_gate ON mlprod_verdicts (model_id, alias, kind, gate_name, revision)",
    """INSERT INTO mlprod_verdicts (model_id, run_pk, alias, kind, gate_name, passed, baseline_version,
    summary_json, revision, created_at)
SELECT b.model_id, b.run_pk, 'champion', 'metrics', r.task_id, b.passed, b.baseline_version,
    b.summary_json, b.id, b.created_at
FROM mlprod_blessings b JOIN mlprod_runs r ON r.id = b.run_pk""",
    """CREATE TABLE mlprod_revision (
    id INTEGER NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (id)
)""",
    """INSERT INTO mlprod_revision (id, value)
SELECT 1, (SELECT COALESCE(MAX(id), 0) FROM mlprod_blessings)
    + (SELECT COALESCE(MAX(id), 0) FROM mlprod_model_events)""",
    """CREATE TABLE mlprod_profile_versions (
    id {id} NOT NULL,
    name VARCHAR(250) NOT NULL,
    version INTEGER NOT NULL,
    profile_json TEXT NOT NULL,
    run_pk INTEGER,
    as_of {ts},
    created_at {ts} NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_mlprod_profile_versions UNIQUE (name, version),
    FOREIGN KEY(run_pk) REFERENCES mlprod_runs (id) ON DELETE SET NULL
)""",
    """INSERT INTO mlprod_profile_versions (name, version, profile_json, run_pk, as_of, created_at)
SELECT name, 1, profile_json, run_pk, NULL, updated_at FROM mlprod_profiles""",
    """CREATE TABLE mlprod_store_info (
    name VARCHAR(64) NOT NULL,
    value VARCHAR(250) NOT NULL,
    PRIMARY KEY (name)
)""",
)

_V3 = (
    # The newest verdicts of a version (latest_blessing, the model-health view) and a metric's history
    # (metric_history, the trends) are read by index, not by sorting every row the store ever kept.
    "CREATE INDEX ix_mlprod_verdicts_model_revision ON mlprod_verdicts (model_id, revision)",
    "CREATE INDEX ix_mlprod_metrics_history ON mlprod_metrics (name, model_name, recorded_at)",
)

# Version 4: alerts suppressed as repeats, counted in the next reminder.
_V4 = (
    """CREATE TABLE mlprod_alert_suppressions (
    id {id} NOT NULL,
    dedup_key VARCHAR(250) NOT NULL,
    channel VARCHAR(250) NOT NULL,
    suppressed_at {ts} NOT NULL,
    PRIMARY KEY (id)
)""",
    """CREATE INDEX ix_mlprod_alert_suppressions_key
    ON mlprod_alert_suppressions (dedup_key, channel, suppressed_at)""",
)

# Version 5: an alert's last deliveries per channel (read before every send) by index, not by a scan
# of every delivery the store ever kept.
_V5 = (
    """CREATE INDEX ix_mlprod_alert_deliveries_key
    ON mlprod_alert_deliveries (dedup_key, channel, sent_at)""",
)

# Version 6: who is sending an alert on a channel right now, so that one process sends it and the
# others see it in progress (a row lives from the claim to the recorded delivery, or until it expires).
_V6 = (
    """CREATE TABLE mlprod_alert_claims (
    dedup_key VARCHAR(250) NOT NULL,
    channel VARCHAR(250) NOT NULL,
    owner VARCHAR(64) NOT NULL,
    claimed_until {ts} NOT NULL,
    PRIMARY KEY (dedup_key, channel)
)""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _V1),
    Migration(2, "release safety: verdicts per gate, digests, revisions, profile history", _V2),
    Migration(3, "indexes for the newest verdicts and metric histories", _V3),
    Migration(4, "alert repeats suppressed within the cooldown", _V4),
    Migration(5, "index for an alert's last deliveries per channel", _V5),
    Migration(6, "claims of alerts being sent, one sender per alert and channel", _V6),
)
LATEST_VERSION = MIGRATIONS[-1].version

_ready_engines: WeakSet[Engine] = WeakSet()


def ensure_schema(engine: Engine, *, target: int = LATEST_VERSION) -> int:
    """Create or upgrade the store schema to ``target`` (default: the latest); return the version found.

    ``target`` below the latest exists to build stores of earlier releases in tests.
    """
    if target == LATEST_VERSION and engine in _ready_engines:
        return LATEST_VERSION
    dialect = engine.dialect.name
    if dialect not in _TYPES:
        raise StoreError(
            f"the metrics store supports SQLite and PostgreSQL databases, not {dialect!r}; "
            "point the store connection at one of those"
        )
    with engine.begin() as connection:
        _take_migration_lock(connection)
        connection.exec_driver_sql(_SCHEMA_VERSION_TABLE.format(**_TYPES[dialect]))
        current = connection.execute(select(schema.schema_version.c.version)).scalars().all()
        found = max(current, default=0)
        if found > LATEST_VERSION:
            raise StoreError(
                f"the metrics store has schema version {found}, newer than the {LATEST_VERSION} this "
                "release of airflow-provider-mlprod supports; upgrade the provider"
            )
        for migration in MIGRATIONS:
            if found < migration.version <= target:
                migration.apply(connection)
                connection.execute(
                    schema.schema_version.insert().values(
                        version=migration.version,
                        description=migration.description,
                        applied_at=datetime.now(timezone.utc),
                    )
                )
        if target >= 2:
            info = schema.store_info
            if connection.execute(select(info.c.value).where(info.c.name == "store_id")).first() is None:
                connection.execute(info.insert().values(name="store_id", value=uuid.uuid4().hex))
    if target == LATEST_VERSION:
        _ready_engines.add(engine)
    return found


def schema_version(engine: Engine) -> int:
    """The store's current schema version (0 when it has none yet)."""
    with read_connection(engine) as connection:
        if not inspect(connection).has_table(schema.schema_version.name):
            return 0
        versions = connection.execute(select(schema.schema_version.c.version)).scalars().all()
    return max(versions, default=0)


def store_id(engine: Engine) -> str:
    """The id of the store behind ``engine``: a random id written when its schema was created.

    Two tasks that report the same store id used the same database, whatever URL they reached it by.
    """
    ensure_schema(engine)
    with read_connection(engine) as connection:
        info = schema.store_info
        return connection.execute(select(info.c.value).where(info.c.name == "store_id")).scalar_one()


def _take_migration_lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
            {"key": _ADVISORY_LOCK_KEY},
        )

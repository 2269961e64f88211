"""Schema creation and versioning of the metrics store: frozen migrations, first use by many processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import uuid

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    ensure_schema,
    schema_version,
    store_id,
)
from airflow_provider_mlprod.store.registry import ModelRegistry


def test_first_use_creates_every_table_and_records_the_version(db_url):
    engine = create_store_engine(db_url)
    assert schema_version(engine) == 0
    assert ensure_schema(engine) == 0
    assert schema_version(engine) == LATEST_VERSION
    tables = set(sa.inspect(engine).get_table_names())
    assert {table.name for table in schema.metadata.sorted_tables} <= tables


def test_history_reads_have_their_indexes(db_url):
    engine = create_store_engine(db_url)
    ensure_schema(engine)
    inspector = sa.inspect(engine)
    indexes = {
        index["name"]: index["column_names"]
        for table in ("mlprod_verdicts", "mlprod_metrics", "mlprod_alert_deliveries")
        for index in inspector.get_indexes(table)
    }
    assert indexes["ix_mlprod_verdicts_model_revision"] == ["model_id", "revision"]
    assert indexes["ix_mlprod_metrics_history"] == ["name", "model_name", "recorded_at"]
    assert indexes["ix_mlprod_alert_deliveries_key"] == ["dedup_key", "channel", "sent_at"]


def test_second_use_applies_nothing(db_url):
    ensure_schema(create_store_engine(db_url))
    fresh_engine = create_store_engine(db_url, connect_timeout=7)  # another engine on the same store
    assert ensure_schema(fresh_engine) == LATEST_VERSION
    with fresh_engine.connect() as connection:
        rows = connection.execute(sa.select(schema.schema_version.c.version)).scalars().all()
    assert rows == [migration.version for migration in MIGRATIONS]


def _columns(engine: sa.Engine) -> dict[str, dict[str, bool]]:
    inspector = sa.inspect(engine)
    return {
        table: {column["name"]: column["nullable"] for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
    }


@pytest.mark.parametrize("start", range(LATEST_VERSION))
def test_a_store_of_every_released_version_migrates_to_the_current_schema(db_url, start):
    """Build the store each release created, with data in it, then upgrade: the tables then match
    ``store.schema`` column for column, and records of the old release survive."""
    engine = create_store_engine(db_url)
    ensure_schema(engine, target=start)
    assert schema_version(engine) == start
    if start == 1:  # a 0.1.0 store with a blessed version and a reference profile
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO mlprod_runs (dag_id, run_id, task_id, map_index, first_seen_at) "
                "VALUES ('train', 'r1', 'gate', -1, '2024-01-01 00:00:00')"
            )
            connection.exec_driver_sql(
                "INSERT INTO mlprod_models (name, version, artifact_uri, metrics_json, training_data, "
                "status, run_pk, created_at) SELECT 'churn', '1', 'file:///m/1', '{}', '', 'blessed', id, "
                "'2024-01-01 00:00:00' FROM mlprod_runs"
            )
            connection.exec_driver_sql(
                "INSERT INTO mlprod_blessings (model_id, run_pk, passed, baseline_version, summary_json, "
                "created_at) SELECT id, run_pk, true, '', '{}', '2024-01-01 00:00:00' FROM mlprod_models"
            )
            connection.exec_driver_sql(
                "INSERT INTO mlprod_profiles (name, profile_json, run_pk, updated_at) "
                "SELECT 'orders', '{\"rows\": 5}', id, '2024-01-01 00:00:00' FROM mlprod_runs"
            )
    assert ensure_schema(engine) == start
    assert schema_version(engine) == LATEST_VERSION
    found = _columns(engine)
    for table in schema.metadata.sorted_tables:
        expected = {column.name: column.nullable for column in table.columns}
        assert found[table.name] == expected, table.name
    if start == 1:
        registry = ModelRegistry(engine)
        verdict = registry.latest_blessing("churn", "1")
        assert (verdict.passed, verdict.alias, verdict.kind, verdict.gate_name) == (
            True,
            "champion",
            "metrics",
            "gate",
        )
        # the sequence continues above the migrated rows: a new verdict orders after the old one
        registry.record_blessing(
            RunIdentity("train", "r2", "gate"),
            name="churn",
            version="1",
            passed=False,
            baseline_version=None,
            summary={},
        )
        assert registry.latest_blessing("churn", "1").passed is False
        from airflow_provider_mlprod.store.metrics_store import MetricsStore

        assert MetricsStore(engine).load_profile("orders") == {"rows": 5}


def test_migration_one_is_the_schema_of_0_1_0_not_the_current_one(db_url):
    engine = create_store_engine(db_url)
    ensure_schema(engine, target=1)
    columns = _columns(engine)
    assert "artifact_digest" not in columns["mlprod_models"]
    assert "mlprod_verdicts" not in columns
    assert set(columns["mlprod_blessings"]) == {
        "id",
        "model_id",
        "run_pk",
        "passed",
        "baseline_version",
        "summary_json",
        "created_at",
    }


def test_store_from_a_newer_release_is_refused(db_url):
    engine = create_store_engine(db_url)
    ensure_schema(engine)
    with engine.begin() as connection:
        connection.execute(
            schema.schema_version.insert().values(
                version=LATEST_VERSION + 1, description="future", applied_at=sa.func.now()
            )
        )
    with pytest.raises(StoreError, match=f"schema version {LATEST_VERSION + 1}, newer than"):
        ensure_schema(create_store_engine(db_url, statement_timeout=5))


def test_each_store_has_its_own_id(db_url, tmp_path):
    engine = create_store_engine(db_url)
    assert store_id(engine) == store_id(create_store_engine(db_url, connect_timeout=3))
    other = create_store_engine(f"sqlite:///{tmp_path / 'other.db'}")
    assert store_id(engine) != store_id(other)


def test_a_store_whose_migration_lock_is_held_does_not_delay_another_store(tmp_path):
    """No lock of this process is held while waiting for a database: a hung store delays no other."""
    hung_path, healthy_path = tmp_path / "hung.db", tmp_path / "healthy.db"
    hung = create_store_engine(f"sqlite:///{hung_path}")
    blocker = sqlite3.connect(hung_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process would hold the write lock the same way
    waiting = threading.Thread(target=ensure_schema, args=(hung,), daemon=True)
    waiting.start()
    try:
        waiting.join(0.5)
        assert waiting.is_alive()  # the hung store's migration waits for its database
        ensure_schema(create_store_engine(f"sqlite:///{healthy_path}"))
        assert waiting.is_alive()  # ...while the healthy store was migrated meanwhile
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        waiting.join(30)
    assert schema_version(hung) == LATEST_VERSION


def _first_use(url: str, barrier, errors, index: int) -> None:
    try:
        barrier.wait(30)
        registry = ModelRegistry(create_store_engine(url))
        registry.register(
            RunIdentity("train", f"r{index}", "register"), name="churn", version=str(index), artifact_uri="u"
        )
        registry.get_version("churn", str(index))
    except BaseException as exc:  # reported to the parent, which fails the test
        errors.put(f"process {index}: {type(exc).__name__}: {exc}")


def _race_first_use(url: str, processes: int) -> list[str]:
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_first_use, args=(url, barrier, errors, i)) for i in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    found += [f"process exited with {w.exitcode}" for w in workers if w.exitcode not in (0, None)]
    return found


def test_first_use_of_a_new_sqlite_store_by_ten_processes_never_fails(tmp_path):
    for round_no in range(50):
        url = f"sqlite:///{tmp_path / f'round{round_no}.db'}"
        assert _race_first_use(url, 10) == [], f"round {round_no}"
        engine = create_store_engine(url)
        with engine.connect() as connection:
            versions = connection.execute(sa.select(schema.schema_version.c.version)).scalars().all()
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert versions == [migration.version for migration in MIGRATIONS]
        assert len(ModelRegistry(engine).events("churn")) == 10


def test_first_use_of_a_new_postgres_store_by_ten_processes_never_fails(postgres_server_url):
    admin = sa.create_engine(postgres_server_url)
    try:
        for round_no in range(10):
            name = f"mlprod_test_race_{uuid.uuid4().hex[:10]}"
            with admin.begin() as connection:
                connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
            url = sa.make_url(postgres_server_url).update_query_dict({"options": f"-csearch_path={name}"})
            url_text = url.render_as_string(hide_password=False)
            try:
                assert _race_first_use(url_text, 10) == [], f"round {round_no}"
                engine = create_store_engine(url_text)
                with engine.connect() as connection:
                    versions = connection.execute(sa.select(schema.schema_version.c.version)).scalars().all()
                assert versions == [migration.version for migration in MIGRATIONS]
                assert len(ModelRegistry(engine).events("churn")) == 10
                engine.dispose()
            finally:
                with admin.begin() as connection:
                    connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        admin.dispose()

"""Schema creation and versioning of the metrics store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.migrations import LATEST_VERSION, ensure_schema, schema_version


def test_first_use_creates_every_table_and_records_the_version(db_url):
    engine = create_store_engine(db_url)
    assert schema_version(engine) == 0
    assert ensure_schema(engine) == 0
    assert schema_version(engine) == LATEST_VERSION
    tables = set(sa.inspect(engine).get_table_names())
    assert {table.name for table in schema.metadata.sorted_tables} <= tables


def test_second_use_applies_nothing(db_url):
    ensure_schema(create_store_engine(db_url))
    fresh_engine = create_store_engine(db_url)
    assert ensure_schema(fresh_engine) == LATEST_VERSION
    with fresh_engine.connect() as connection:
        rows = connection.execute(sa.select(schema.schema_version.c.version)).scalars().all()
    assert rows == [1]


def test_concurrent_first_use_creates_the_schema_once(db_url):
    def first_use(_):
        return ensure_schema(create_store_engine(db_url))

    with ThreadPoolExecutor(max_workers=6) as pool:
        found = list(pool.map(first_use, range(6)))
    assert found.count(0) == 1
    assert schema_version(create_store_engine(db_url)) == LATEST_VERSION


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
        ensure_schema(create_store_engine(db_url))

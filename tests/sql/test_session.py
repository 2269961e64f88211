"""The session barrier: user SQL that got past the parser still cannot write, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.sql.session import read_only_snapshot


@pytest.fixture
def engine(db_url):
    engine = (
        sa.create_engine(db_url, pool_size=1, max_overflow=0)
        if "postgres" in db_url
        else (sa.create_engine(db_url))
    )
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE victim (id INTEGER)")
        connection.exec_driver_sql("INSERT INTO victim VALUES (1)")
    yield engine
    engine.dispose()


def _victim_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT count(*) FROM victim").scalar_one()


def test_a_smuggled_commit_cannot_leave_the_read_only_session(engine):
    hostile = "SELECT 1 AS x; COMMIT; DROP TABLE victim"
    with pytest.raises(sa.exc.DBAPIError), read_only_snapshot(engine) as connection:
        connection.exec_driver_sql(hostile)  # psycopg sends it as one simple query; sqlite3 refuses it
    assert _victim_rows(engine) == 1


@pytest.mark.parametrize("statement", ["DELETE FROM victim", "CREATE TABLE intruder (id INTEGER)"])
def test_writes_are_refused(engine, statement):
    with pytest.raises(sa.exc.DBAPIError), read_only_snapshot(engine) as connection:
        connection.exec_driver_sql(statement)
    assert _victim_rows(engine) == 1
    assert not sa.inspect(engine).has_table("intruder")


def test_the_pooled_connection_is_writable_again_afterwards(engine):
    with read_only_snapshot(engine) as connection:
        connection.exec_driver_sql("SELECT count(*) FROM victim").scalar_one()
    with engine.begin() as connection:  # the same pooled connection (pool of one on PostgreSQL)
        connection.exec_driver_sql("INSERT INTO victim VALUES (2)")
    assert _victim_rows(engine) == 2


def test_reads_share_one_snapshot(engine):
    with read_only_snapshot(engine) as connection:
        before = connection.exec_driver_sql("SELECT count(*) FROM victim").scalar_one()
        writer = sa.create_engine(engine.url.render_as_string(hide_password=False))
        try:
            with writer.begin() as other:  # another session commits a row between two reads
                other.exec_driver_sql("INSERT INTO victim VALUES (3)")
        except sa.exc.OperationalError:  # SQLite: the snapshot's shared lock holds the writer off
            pass
        finally:
            writer.dispose()
        after = connection.exec_driver_sql("SELECT count(*) FROM victim").scalar_one()
    assert before == after == 1


def test_a_session_lock_taken_by_a_query_is_released_before_the_connection_is_reused(postgres_url):
    # pg_advisory_lock in a user's SELECT survives the rollback; the store serialises promotions on
    # advisory locks, so a pooled connection must not keep one after the read
    engine = sa.create_engine(postgres_url, pool_size=1, max_overflow=0)
    other = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    try:
        with read_only_snapshot(engine) as connection:
            connection.exec_driver_sql("SELECT pg_advisory_lock(4242)").all()
        with engine.connect() as connection:  # the pooled connection is still open
            assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
            with other.connect() as contender:
                assert contender.exec_driver_sql("SELECT pg_try_advisory_lock(4242)").scalar_one() is True
    finally:
        other.dispose()
        engine.dispose()

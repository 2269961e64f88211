"""One classifier for database errors: retryable or final, always naming the connection, on real servers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConnectionConfigError, InputDataError
from airflow_provider_mlprod.operators.outcome import FINAL_ERRORS
from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError, database_errors
from airflow_provider_mlprod.sql.session import read_only_snapshot

SECRET = "s3cret-pw"


def _error_of(action) -> BaseException:
    """The error ``action()`` raises through ``database_errors('warehouse')``; fails when none is raised."""
    try:
        with database_errors("warehouse"):
            action()
    except Exception as exc:
        return exc
    pytest.fail("no error was raised")


def _raise_from(url: str, statement: str | None = None) -> BaseException:
    engine = sa.create_engine(url)

    def run() -> None:
        with engine.connect() as connection:
            if statement:
                connection.exec_driver_sql(statement)

    try:
        return _error_of(run)
    finally:
        engine.dispose()


def _check(error: BaseException, expected: type[Exception], final: bool, fragment: str) -> None:
    assert type(error) is expected, repr(error)
    assert isinstance(error, FINAL_ERRORS) is final
    assert "'warehouse'" in str(error)
    assert fragment in str(error).lower()
    assert SECRET not in str(error)


def test_a_refused_connection_is_retryable_and_names_the_connection():
    error = _raise_from(f"postgresql+psycopg://mlprod:{SECRET}@127.0.0.1:1/nothing")
    _check(error, DatabaseUnavailableError, False, "refused")


def test_an_unknown_database_or_role_is_final(postgres_server_url):
    url = sa.make_url(postgres_server_url)
    error = _raise_from(url.set(database="no_such_database_xyz").render_as_string(hide_password=False))
    _check(error, ConnectionConfigError, True, "no_such_database_xyz")
    error = _raise_from(url.set(username="no_such_role_xyz", password=SECRET).render_as_string(False))
    _check(error, ConnectionConfigError, True, "no_such_role_xyz")


@pytest.mark.parametrize(
    ("statement", "fragment"),
    [("SELEC 1", "syntax"), ("SELECT * FROM no_such_table", "no_such_table"), ("SELECT nope FROM t", "nope")],
)
def test_syntax_and_missing_objects_are_final(db_url, statement, fragment):
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    engine.dispose()
    _check(_raise_from(db_url, statement), InputDataError, True, fragment)


def test_a_write_refused_by_the_read_only_session_is_final(db_url):
    engine = sa.create_engine(db_url)

    def write() -> None:
        with read_only_snapshot(engine) as connection:
            connection.exec_driver_sql("CREATE TABLE intruder (id INTEGER)")

    try:
        _check(_error_of(write), InputDataError, True, "read")
    finally:
        engine.dispose()


def test_a_lock_timeout_or_a_busy_database_is_retryable(db_url):
    holder = sa.create_engine(db_url)
    waiter = sa.create_engine(db_url, connect_args={"timeout": 0} if db_url.startswith("sqlite") else {})
    with holder.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    try:
        with holder.connect() as locker:
            if db_url.startswith("sqlite"):
                locker.exec_driver_sql("BEGIN EXCLUSIVE")
                statement = "SELECT * FROM t"
            else:
                locker.exec_driver_sql("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                statement = "SELECT * FROM t"

            def read() -> None:
                with waiter.connect() as connection:
                    if not db_url.startswith("sqlite"):
                        connection.exec_driver_sql("SET lock_timeout = '50ms'")
                    connection.exec_driver_sql(statement)

            error = _error_of(read)
            locker.rollback()
    finally:
        holder.dispose()
        waiter.dispose()
    _check(error, DatabaseUnavailableError, False, "lock")


def test_a_statement_timeout_is_retryable(postgres_url):
    engine = sa.create_engine(postgres_url)

    def sleep() -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("SET statement_timeout = '50ms'")
            connection.exec_driver_sql("SELECT pg_sleep(5)")

    try:
        _check(_error_of(sleep), DatabaseUnavailableError, False, "timeout")
    finally:
        engine.dispose()

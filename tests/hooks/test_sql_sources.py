"""Any Airflow SQL connection becomes a SQLAlchemy URL and Engine."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConnectionConfigError
from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection, sqlalchemy_url_for_connection


def test_sqlite_connection(monkeypatch, tmp_path):
    db_file = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db_file)}))
    engine = engine_for_connection("warehouse")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    assert db_file.exists()
    with engine.connect() as connection:  # a data source keeps its own settings (no store pragmas)
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "delete"


def test_postgres_connection(monkeypatch, postgres_server_url):
    url = sa.make_url(postgres_server_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": url.host,
                "port": url.port,
                "login": url.username,
                "schema": url.database,
            }
        ),
    )
    assert sqlalchemy_url_for_connection("pg_warehouse").get_backend_name() == "postgresql"
    with engine_for_connection("pg_warehouse").connect() as connection:
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1


def test_missing_connection_is_named():
    with pytest.raises(ConnectionConfigError, match="connection 'nowhere': is not defined"):
        sqlalchemy_url_for_connection("nowhere")


def test_unknown_connection_type_is_named(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ODD", json.dumps({"conn_type": "no_such_type", "host": "h"}))
    with pytest.raises(
        ConnectionConfigError, match="connection 'odd': type 'no_such_type' has no usable hook"
    ):
        sqlalchemy_url_for_connection("odd")


def test_the_engine_is_built_by_the_hook_once_per_connection_and_hook_params(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")})
    )
    first = engine_for_connection("warehouse")
    assert engine_for_connection("warehouse") is first
    assert engine_for_connection("warehouse", hook_params={"schema": "main"}) is not first
    # a connection changed under the same id gets an engine on the new database
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "b.db")})
    )
    assert engine_for_connection("warehouse").url.database.endswith("b.db")

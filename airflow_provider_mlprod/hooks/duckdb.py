"""DuckDBHook: a DuckDB database (a file, or in memory) reached through an Airflow connection.

Connection type ``mlprodduckdb``: ``host`` is the database file (empty: an in-memory database, for
profiling Parquet/CSV files); the extra may hold ``config`` (DuckDB settings, e.g. ``{"threads": 2,
"memory_limit": "1GB"}``) and ``read_only`` (default true for a file). Needs the ``duckdb`` extra.
The drift operator profiles ``sql_conn_id`` sources of this type with ``drift.duckdb_profile``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_mlprod.exceptions import ConnectionConfigError
from airflow_provider_mlprod.hooks.connections import connection_extra, get_connection

DUCKDB_CONN_TYPE = "mlprodduckdb"
IN_MEMORY = ":memory:"


def is_duckdb_connection(conn_id: str) -> bool:
    """Whether the Airflow connection ``conn_id`` is a DuckDB connection."""
    return get_connection(conn_id).conn_type == DUCKDB_CONN_TYPE


class DuckDBHook(BaseHook):
    """Open a DuckDB connection described by an Airflow connection.

    :param duckdb_conn_id: the Airflow connection id (type ``mlprodduckdb``).
    """

    conn_name_attr = "duckdb_conn_id"
    default_conn_name = "duckdb_default"
    conn_type = DUCKDB_CONN_TYPE
    hook_name = "DuckDB (mlprod)"

    def __init__(self, duckdb_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.duckdb_conn_id = duckdb_conn_id

    def get_conn(self) -> Any:
        """A new ``duckdb.DuckDBPyConnection``; close it when done."""
        conn = get_connection(self.duckdb_conn_id)
        if conn.conn_type != DUCKDB_CONN_TYPE:
            raise ConnectionConfigError(
                self.duckdb_conn_id,
                f"type {conn.conn_type!r} is not a DuckDB connection ({DUCKDB_CONN_TYPE})",
            )
        extra = connection_extra(conn)
        database = conn.host or IN_MEMORY
        config = extra.get("config") or {}
        if not isinstance(config, dict):
            raise ConnectionConfigError(self.duckdb_conn_id, "extra 'config' must be a JSON object")
        read_only = bool(extra.get("read_only", database != IN_MEMORY))
        try:
            import duckdb
        except ImportError:
            raise ConnectionConfigError(
                self.duckdb_conn_id, 'needs duckdb: pip install "airflow-provider-mlprod[duckdb]"'
            ) from None
        try:
            return duckdb.connect(database, read_only=read_only, config={k: v for k, v in config.items()})
        except duckdb.Error as exc:
            reason = str(exc).strip().splitlines()[0]
            raise ConnectionConfigError(self.duckdb_conn_id, f"DuckDB cannot open it: {reason}") from None

    def test_connection(self) -> tuple[bool, str]:
        """Open the database and run ``SELECT 1``."""
        try:
            connection = self.get_conn()
            try:
                connection.execute("SELECT 1").fetchone()
            finally:
                connection.close()
        except Exception as exc:
            return False, str(exc)
        return True, "DuckDB connection works"

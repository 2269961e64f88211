"""Turn any Airflow SQL connection (postgres, sqlite, mysql, ...) into a SQLAlchemy URL or Engine.

Data sources reuse the connections users already have: whatever hook the connection type maps to
must be a common-sql ``DbApiHook``; its ``sqlalchemy_url`` (or, for hooks that do not build one,
its URI) becomes the URL the engine code works with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_mlprod.exceptions import ConfigurationError, ConnectionConfigError
from airflow_provider_mlprod.hooks.connections import get_connection
from airflow_provider_mlprod.store.engine import create_source_engine, parse_store_url

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from sqlalchemy import URL, Engine


def sqlalchemy_url_for_connection(conn_id: str) -> URL:
    """The SQLAlchemy URL of the SQL connection ``conn_id``."""
    return sqlalchemy_url_of(get_connection(conn_id))


def sqlalchemy_url_of(conn: Connection) -> URL:
    """The SQLAlchemy URL of a SQL connection object."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    try:
        hook = conn.get_hook()
    except Exception as exc:  # unknown conn type, provider not installed, bad fields
        raise ConnectionConfigError(
            conn.conn_id,
            f"type {conn.conn_type!r} has no usable hook ({type(exc).__name__}); is its provider installed?",
        ) from None
    if not isinstance(hook, DbApiHook):
        raise ConnectionConfigError(
            conn.conn_id, f"type {conn.conn_type!r} is not a SQL connection (its hook is not a DbApiHook)"
        )
    try:
        url = hook.sqlalchemy_url
    except NotImplementedError:
        url = hook.get_uri()
    try:
        return parse_store_url(url)
    except ConfigurationError as exc:
        raise ConnectionConfigError(conn.conn_id, str(exc)) from None


def engine_for_connection(conn_id: str) -> Engine:
    """A SQLAlchemy Engine on the SQL connection ``conn_id``."""
    try:
        return create_source_engine(sqlalchemy_url_for_connection(conn_id))
    except ConfigurationError as exc:
        raise ConnectionConfigError(conn_id, str(exc)) from None

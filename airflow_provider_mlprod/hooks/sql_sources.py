"""Turn any Airflow SQL connection (postgres, sqlite, mysql, ...) into a SQLAlchemy URL or Engine.

Data sources reuse the connections users already have: whatever hook the connection type maps to
must be a common-sql ``DbApiHook``. Engines come from the hook's ``get_sqlalchemy_engine()`` (with
``hook_params``), cached once per process per connection; the URL (``sqlalchemy_url``, or the hook's URI)
is for code that needs a connection string (GX's SQL datasource).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import ConfigurationError, ConnectionConfigError
from airflow_provider_mlprod.hooks.connections import get_connection
from airflow_provider_mlprod.store.engine import parse_store_url

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from sqlalchemy import URL, Engine

    from airflow_provider_mlprod.sql.source import SqlSource


def sqlalchemy_url_for_connection(conn_id: str) -> URL:
    """The SQLAlchemy URL of the SQL connection ``conn_id``."""
    return sqlalchemy_url_of(get_connection(conn_id))


def sqlalchemy_url_of(conn: Connection) -> URL:
    """The SQLAlchemy URL of a SQL connection object."""
    hook = sql_hook_of(conn)
    try:
        url = hook.sqlalchemy_url
    except NotImplementedError:
        url = hook.get_uri()
    try:
        return parse_store_url(url)
    except ConfigurationError as exc:
        raise ConnectionConfigError(conn.conn_id, str(exc)) from None


def sql_hook_of(conn: Connection, hook_params: Mapping[str, Any] | None = None) -> Any:
    """The connection's common-sql ``DbApiHook``, built with ``hook_params``."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    try:
        hook = conn.get_hook(hook_params=dict(hook_params or {}))
    except Exception as exc:  # unknown conn type, provider not installed, bad fields
        raise ConnectionConfigError(
            conn.conn_id,
            f"type {conn.conn_type!r} has no usable hook ({type(exc).__name__}); is its provider installed?",
        ) from None
    if not isinstance(hook, DbApiHook):
        raise ConnectionConfigError(
            conn.conn_id, f"type {conn.conn_type!r} is not a SQL connection (its hook is not a DbApiHook)"
        )
    return hook


_ENGINES: dict[tuple[str, str, str], Engine] = {}
"""Engines built in this process, by connection id, connection URI and hook parameters."""


def engine_for_connection(conn_id: str, hook_params: Mapping[str, Any] | None = None) -> Engine:
    """A SQLAlchemy Engine on the SQL connection ``conn_id``, built by its Airflow hook, once per process.

    The hook's ``get_sqlalchemy_engine()`` keeps what it adds (engine arguments from the connection's
    extra, key-pair authentication, driver fallbacks); ``hook_params`` go to the hook's constructor.
    The engine is cached by connection id, the connection's URI (so a changed connection gets a new
    engine) and ``hook_params``; ``dispose()`` on it only closes its pooled connections.
    """
    conn = get_connection(conn_id)
    key = (conn_id, conn.get_uri(), json.dumps(dict(hook_params or {}), sort_keys=True, default=str))
    engine = _ENGINES.get(key)
    if engine is None:
        hook = sql_hook_of(conn, hook_params)
        try:
            engine = hook.get_sqlalchemy_engine(
                engine_kwargs={} if conn.conn_type == "sqlite" else {"pool_pre_ping": True}
            )
        except (ImportError, NotImplementedError, ValueError) as exc:
            raise ConnectionConfigError(
                conn_id, f"its hook cannot build a SQLAlchemy engine ({type(exc).__name__})"
            ) from None
        _ENGINES[key] = engine
    return engine


def engine_for_source(source: SqlSource) -> Engine:
    """The engine of a :class:`~airflow_provider_mlprod.sql.source.SqlSource`: its connection, built by its
    Airflow hook with the source's ``hook_params`` (cached like :func:`engine_for_connection`)."""
    if not source.conn_id:
        raise ConnectionConfigError(None, f"{source.label} names no connection")
    return engine_for_connection(source.conn_id, source.hook_params or None)

"""MetricsStoreHook: the connection to the metrics store, or the embedded SQLite file without one."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_mlprod import config
from airflow_provider_mlprod.exceptions import ConfigurationError, ConnectionConfigError
from airflow_provider_mlprod.hooks.connections import (
    connection_exists,
    connection_extra,
    get_connection,
)
from airflow_provider_mlprod.store.engine import (
    create_store_engine,
    describe_url,
    embedded_store_url,
    parse_store_url,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from sqlalchemy import URL, Engine

    from airflow_provider_mlprod.store.metrics_store import MetricsStore
    from airflow_provider_mlprod.store.registry import ModelRegistry

STORE_CONN_TYPE = "mlprodstore"
STORE_CONN_TYPES = (STORE_CONN_TYPE, "mlprod_store")  # the old name is accepted for one release


class MetricsStoreHook(BaseHook):
    """Give an Engine on the metrics store.

    The store is, in order: the connection ``store_conn_id`` (argument, else ``[mlprod] store_conn_id``);
    when that is left at its default id ``mlprod_store_default`` and no such connection exists, the
    embedded SQLite file (``[mlprod] embedded_store_path``, by default ``$AIRFLOW_HOME/mlprod/metrics.db``).
    A connection id given explicitly must exist.

    The connection is either of type ``mlprod_store`` (extra ``sqlalchemy_url``; the password field, if
    set, is merged into the URL so the secret stays out of the extra) or any Airflow SQL connection.

    :param store_conn_id: connection id of the store; ``None`` reads ``[mlprod] store_conn_id``.
    """

    conn_name_attr = "store_conn_id"
    default_conn_name = "mlprod_store_default"
    conn_type = STORE_CONN_TYPE
    hook_name = "ML metrics store (mlprod)"

    def __init__(self, store_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store_conn_id = store_conn_id

    @cached_property
    def url(self) -> URL:
        """The store's SQLAlchemy URL (may hold a password: never log it, use ``location``)."""
        conn_id = self.store_conn_id or config.store_conn_id()
        if not conn_id or (conn_id == config.default_store_conn_id() and not connection_exists(conn_id)):
            return embedded_store_url(config.embedded_store_path())
        return store_url_of(get_connection(conn_id))

    @property
    def location(self) -> str:
        """Where the store is, safe to show: a file path or a URL without its password."""
        return describe_url(self.url)

    def get_conn(self) -> Engine:
        """The store's Engine (created once per hook)."""
        return self.engine

    @cached_property
    def engine(self) -> Engine:
        """The store's Engine (created once per hook)."""
        try:
            return create_store_engine(self.url)
        except ConfigurationError as exc:
            raise ConnectionConfigError(self.store_conn_id or config.store_conn_id(), str(exc)) from None

    def metrics_store(self) -> MetricsStore:
        """Results and history in this store (schema created on first use)."""
        from airflow_provider_mlprod.store.metrics_store import MetricsStore

        return MetricsStore(self.engine)

    def registry(self) -> ModelRegistry:
        """The model registry in this store (schema created on first use)."""
        from airflow_provider_mlprod.store.registry import ModelRegistry

        return ModelRegistry(self.engine)

    def test_connection(self) -> tuple[bool, str]:
        """Connect and run ``SELECT 1``; used by the UI's Test button."""
        from sqlalchemy import text

        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"cannot reach the metrics store at {self.location}: {type(exc).__name__}"
        return True, f"connected to the metrics store at {self.location}"


def store_url_of(conn: Connection) -> URL:
    """The SQLAlchemy URL a store connection points at."""
    if (conn.conn_type or "").replace("-", "_") not in STORE_CONN_TYPES:
        from airflow_provider_mlprod.hooks.sql_sources import sqlalchemy_url_of

        return sqlalchemy_url_of(conn)
    raw_url = connection_extra(conn).get("sqlalchemy_url")
    if not raw_url:
        raise ConnectionConfigError(
            conn.conn_id, "has no SQLAlchemy URL; set the extra field 'sqlalchemy_url'"
        )
    try:
        url = parse_store_url(str(raw_url))
    except ConfigurationError as exc:
        raise ConnectionConfigError(conn.conn_id, str(exc)) from None
    if conn.password and url.password is None:
        url = url.set(password=conn.password)
    return url

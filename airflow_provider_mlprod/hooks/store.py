"""MetricsStoreHook: the connection to the metrics store, or the embedded SQLite file where that is safe."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_mlprod import config
from airflow_provider_mlprod.exceptions import ConfigurationError, ConnectionConfigError, MlprodError
from airflow_provider_mlprod.hooks.connections import (
    connection_exists,
    connection_extra,
    get_connection,
)
from airflow_provider_mlprod.hooks.placement import single_machine
from airflow_provider_mlprod.store.engine import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_STATEMENT_TIMEOUT_SECONDS,
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
    embedded SQLite file (``[mlprod] embedded_store_path``, by default ``$AIRFLOW_HOME/mlprod/metrics.db``),
    but only where every task shares one machine: the task runs on the LocalExecutor or under
    ``dag.test()``, or ``[mlprod] embedded_store = true``. Anywhere else the hook fails, naming the
    missing connection, rather than letting each worker keep a champion of its own. A connection id
    given explicitly must exist. A connection to a SQLite file is refused where the embedded store
    would be (a task on several machines), unless ``[mlprod] embedded_store = true``.

    The connection is either of type ``mlprodstore`` (extra ``sqlalchemy_url``; the password field, if
    set, is merged into the URL so the secret stays out of the extra) or any Airflow SQL connection.
    Its extra may set ``connect_timeout`` and ``statement_timeout`` in seconds (defaults 10 and 60).

    :param store_conn_id: connection id of the store; ``None`` reads ``[mlprod] store_conn_id``.
    :param executor: the executor running the task (default: the running task's own, else
        ``[core] executor``; a Celery worker's task is on the CeleryExecutor); decides whether a
        SQLite store (embedded or through the connection) may be used.
    """

    conn_name_attr = "store_conn_id"
    default_conn_name = "mlprod_store_default"
    conn_type = STORE_CONN_TYPE
    hook_name = "ML metrics store (mlprod)"

    def __init__(self, store_conn_id: str | None = None, executor: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store_conn_id = store_conn_id
        self.executor = executor
        self._timeouts = (DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_STATEMENT_TIMEOUT_SECONDS)

    @cached_property
    def url(self) -> URL:
        """The store's SQLAlchemy URL (may hold a password: never log it, use ``location``)."""
        conn_id = self.store_conn_id or config.store_conn_id()
        if not conn_id or (conn_id == config.default_store_conn_id() and not connection_exists(conn_id)):
            _check_embedded_store_allowed(conn_id or config.default_store_conn_id(), self.executor)
            return embedded_store_url(config.embedded_store_path())
        conn = get_connection(conn_id)
        self._timeouts = store_timeouts_of(conn)
        url = store_url_of(conn)
        if url.get_backend_name() == "sqlite":
            _check_sqlite_store_allowed(conn_id, url, self.executor)
        return url

    @property
    def location(self) -> str:
        """Where the store is, safe to show: a file path or a URL without its password."""
        return describe_url(self.url)

    def get_conn(self) -> Engine:
        """The store's Engine (created once per hook)."""
        return self.engine

    @cached_property
    def engine(self) -> Engine:
        """The store's Engine (one per process and store, shared by every hook on it)."""
        url = self.url
        connect_timeout, statement_timeout = self._timeouts
        try:
            engine = create_store_engine(
                url, connect_timeout=connect_timeout, statement_timeout=statement_timeout
            )
        except ConfigurationError as exc:
            raise ConnectionConfigError(self.store_conn_id or config.store_conn_id(), str(exc)) from None
        return engine  # operators log the store they use (see describe()); CLI output stays clean

    @cached_property
    def store_id(self) -> str:
        """The id of the store (random, written when its schema was created): safe to show and log."""
        from airflow_provider_mlprod.store.migrations import store_id

        return store_id(self.engine)

    def describe(self) -> dict[str, str]:
        """Which store this is, for a task's summary: its id and location, without any secret."""
        return {"store_id": self.store_id, "store": self.location}

    def metrics_store(self) -> MetricsStore:
        """Results and history in this store (schema created on first use)."""
        from airflow_provider_mlprod.store.metrics_store import MetricsStore

        return MetricsStore(self.engine)

    def registry(self) -> ModelRegistry:
        """The model registry in this store (schema created on first use)."""
        from airflow_provider_mlprod.store.registry import ModelRegistry

        return ModelRegistry(self.engine)

    def test_connection(self) -> tuple[bool, str]:
        """Connect and run ``SELECT 1``; used by the UI's Test button and ``airflow mlprod store check``.

        A connection that is missing or misconfigured is a failed test naming it, not an exception.
        """
        from sqlalchemy import text

        try:
            location = self.location
            engine = self.engine
        except MlprodError as exc:
            return False, str(exc)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"cannot reach the metrics store at {location}: {type(exc).__name__}"
        return True, f"connected to the metrics store at {location}"


def store_timeouts_of(conn: Connection) -> tuple[float, float]:
    """Connect and statement timeouts in seconds from the connection's extra, else the defaults."""
    extra = connection_extra(conn)
    values = []
    for key, default in (
        ("connect_timeout", DEFAULT_CONNECT_TIMEOUT_SECONDS),
        ("statement_timeout", DEFAULT_STATEMENT_TIMEOUT_SECONDS),
    ):
        raw = extra.get(key, default)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = -1.0
        if isinstance(raw, bool) or not value > 0 or value == float("inf"):
            raise ConnectionConfigError(
                conn.conn_id, f"extra field {key!r} must be a positive number of seconds, got {raw!r}"
            )
        values.append(value)
    return values[0], values[1]


def _check_embedded_store_allowed(conn_id: str, executor: str | None) -> None:
    policy = config.embedded_store_policy()
    if policy == "true":
        return
    if policy == "false":
        raise ConnectionConfigError(
            conn_id,
            "is not defined and [mlprod] embedded_store = false: create the store connection "
            "(an mlprodstore connection with a sqlalchemy_url, or any SQL connection)",
        )
    shared, executor = single_machine(executor)
    if shared:
        return
    raise ConnectionConfigError(
        conn_id,
        f"is not defined, and the embedded SQLite store is only used by the LocalExecutor; this task runs "
        f"on {executor}, whose workers would each keep a store (and a champion) of their own. Create "
        "the store connection pointing at a shared database, or set [mlprod] embedded_store = true if "
        "every worker shares the file",
    )


def _check_sqlite_store_allowed(conn_id: str, url: URL, executor: str | None) -> None:
    """Refuse a store connection to a SQLite file where tasks run on several machines."""
    if config.embedded_store_policy() == "true":
        return
    shared, executor = single_machine(executor)
    if shared:
        return
    raise ConnectionConfigError(
        conn_id,
        f"points at {describe_url(url)}, and this task runs on {executor}, whose workers "
        "would each keep that file (a store and a champion) on their own disk. Point the connection at a "
        "shared database such as PostgreSQL, or set [mlprod] embedded_store = true if every worker "
        "shares the file",
    )


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

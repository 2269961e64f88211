"""Create SQLAlchemy engines for the metrics store, with sane settings for SQLite and servers.

A store engine is created once per process and URL (``create_store_engine`` returns the same Engine
for the same URL and timeouts), so a notifier or an operator that opens the store many times reuses
one connection pool. After ``fork`` a child process gets engines of its own.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from airflow_provider_mlprod.exceptions import ConfigurationError

SQLITE_BUSY_TIMEOUT_SECONDS = 30
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 60

_READ_ONLY = "mlprod_read_only"
_CACHED_ENGINES = 8  # idle pooled connections of engines no longer used are closed beyond this
_engines: OrderedDict[tuple, Engine] = OrderedDict()
_engines_lock = threading.Lock()  # guards the dict only; never held while connecting


def embedded_store_url(path: Path) -> URL:
    """URL of the embedded SQLite store at ``path``."""
    return URL.create("sqlite", database=str(Path(path).expanduser().resolve()))


def parse_store_url(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL; the error names the problem and never shows a password."""
    if isinstance(url, URL):
        return url
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("the SQLAlchemy URL is empty")
    try:
        return make_url(url.strip())
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigurationError(
            "the SQLAlchemy URL cannot be parsed; expected dialect[+driver]://user@host:port/database "
            "or sqlite:////absolute/path.db"
        ) from None


def create_store_engine(
    url: str | URL,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT_SECONDS,
    busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS,
) -> Engine:
    """The Engine of the metrics store at ``url``: created on first call in this process, then reused.

    SQLite files get their folder created, a busy timeout, WAL journaling (switched on once, retried
    while another process holds the file) and foreign keys. Write transactions (``engine.begin()``)
    take the write lock when they begin, so read-then-write sequences never interleave between
    processes; reads opened with :func:`read_connection` do not take it. Server databases get
    ``pool_pre_ping``, a connect timeout and (PostgreSQL) a statement timeout, in seconds.
    ``busy_timeout`` is how long a SQLite write waits for a lock another process holds.
    """
    parsed = parse_store_url(url)
    timeouts = (("connect_timeout", connect_timeout), ("statement_timeout", statement_timeout))
    for name, value in (*timeouts, ("busy_timeout", busy_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    key = (
        os.getpid(),
        parsed.render_as_string(hide_password=False),
        connect_timeout,
        statement_timeout,
        busy_timeout,
    )
    with _engines_lock:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
    if parsed.get_backend_name() == "sqlite":
        engine = _with_driver_errors(parsed, lambda u: _create_sqlite_engine(u, busy_timeout))
    else:
        engine = _with_driver_errors(
            parsed, lambda u: _create_server_engine(u, connect_timeout, statement_timeout)
        )
    with _engines_lock:
        engine = _engines.setdefault(key, engine)
        _engines.move_to_end(key)
        evicted = [_engines.popitem(last=False)[1] for _ in range(len(_engines) - _CACHED_ENGINES)]
    for old in evicted:
        old.dispose()  # idle connections close; ones in use stay valid until returned
    return engine


@contextmanager
def read_connection(engine: Engine):
    """A connection for reads only: on SQLite its transaction does not take the write lock."""
    with engine.connect() as connection:
        yield connection.execution_options(**{_READ_ONLY: True})


def create_source_engine(url: str | URL) -> Engine:
    """Create an Engine for a data source at ``url``, leaving the database's own settings alone."""
    parsed = parse_store_url(url)
    return _with_driver_errors(
        parsed, lambda u: create_engine(u, pool_pre_ping=u.get_backend_name() != "sqlite")
    )


def _with_driver_errors(url: URL, build) -> Engine:
    try:
        return build(url)
    except NoSuchModuleError:
        raise ConfigurationError(
            f"the SQLAlchemy URL names an unknown dialect or driver {url.drivername!r}"
        ) from None
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the database driver for {url.drivername!r} is not installed ({exc.name})"
        ) from None


def _create_server_engine(url: URL, connect_timeout: float, statement_timeout: float) -> Engine:
    backend = url.get_backend_name()
    connect_args = (
        {"connect_timeout": max(1, round(connect_timeout))} if backend in ("postgresql", "mysql") else {}
    )
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if backend == "postgresql":

        @event.listens_for(engine, "connect")
        def _statement_timeout(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET statement_timeout = {int(statement_timeout * 1000)}")
            cursor.close()
            dbapi_connection.commit()

    return engine


def _create_sqlite_engine(url: URL, busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if database.startswith("file:"):
        # A URI filename (``?uri=true``): SQLAlchemy passes the query (mode=...) to SQLite beside it.
        # Read-only and in-memory URIs create nothing; a plain Path of "file:/x/y.db" would make a
        # stray "file:" folder in the working directory.
        mode = url.query.get("mode") or parse_qs(urlsplit(database).query).get("mode", [""])[0]
        in_memory = in_memory or mode == "memory"
        database = "" if mode == "ro" else unquote(urlsplit(database).path)
    if not in_memory and database:
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
            raise ConfigurationError(
                f"the SQLite store's folder {str(folder)!r} cannot be created ({reason})"
            ) from None
    engine = create_engine(url, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record):
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if not in_memory:
            _switch_to_wal(dbapi_connection, busy_timeout)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection):
        # A write transaction takes the write lock when it starts: read-then-write sequences (upserts,
        # compare-and-swap, schema creation) then never interleave between processes. A read (see
        # read_connection) reads a WAL snapshot and waits for nobody.
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        _retry_while_locked(
            lambda: connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE"), busy_timeout
        )

    return engine


def _switch_to_wal(dbapi_connection, busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS) -> None:
    """Switch the file to WAL journaling; retried while another process holds a lock on it.

    Changing the journal mode needs an exclusive lock, which SQLite does not wait for through the busy
    timeout, so the first use of a new file by several processes at once would fail without a retry.
    WAL is persistent: once one connection switched, the others find it set and change nothing.
    """

    def switch() -> None:
        cursor = dbapi_connection.cursor()
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    _retry_while_locked(switch, busy_timeout)


def _retry_while_locked(action, busy_timeout: float) -> None:
    """Run ``action``, retried with jitter while SQLite reports the file locked, up to ``busy_timeout``.

    SQLite answers "database is locked" without calling its busy handler in some states (a journal-mode
    change or a WAL recovery under way in another process, as on the first use of a new file by many
    processes), so the busy timeout alone does not cover them.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            action()
            return
        except (sqlite3.OperationalError, sa_exc.OperationalError) as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def describe_url(url: URL) -> str:
    """A human-readable location of the store, with any password hidden."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}" if url.database else "in-memory SQLite"
    return url.render_as_string(hide_password=True)

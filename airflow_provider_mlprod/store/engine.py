"""Create SQLAlchemy engines for the metrics store, with sane settings for SQLite and servers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from airflow_provider_mlprod.exceptions import ConfigurationError

SQLITE_BUSY_TIMEOUT_SECONDS = 30


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
    except ArgumentError:
        raise ConfigurationError(
            "the SQLAlchemy URL cannot be parsed; expected dialect[+driver]://user@host:port/database "
            "or sqlite:////absolute/path.db"
        ) from None


def create_store_engine(url: str | URL) -> Engine:
    """Create an Engine for the metrics store at ``url``.

    SQLite files get their folder created, a busy timeout, WAL journaling and transactions that take
    the write lock when they begin, so that concurrent tasks wait for each other instead of failing or
    interleaving; foreign keys are enforced. Server databases get ``pool_pre_ping`` so a connection
    dropped by the server is replaced transparently.
    """
    parsed = parse_store_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _with_driver_errors(parsed, _create_sqlite_engine)
    return create_source_engine(parsed)


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


def _create_sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record):
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        # Take the write lock when the transaction starts: read-then-write sequences (upserts,
        # compare-and-swap, schema creation) then never interleave between processes.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def describe_url(url: URL) -> str:
    """A human-readable location of the store, with any password hidden."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}" if url.database else "in-memory SQLite"
    return url.render_as_string(hide_password=True)

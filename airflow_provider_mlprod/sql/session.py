"""Read-only sessions on one snapshot: the session barrier under user SQL.

``read_only_snapshot(engine)`` yields a Connection on which:

- PostgreSQL: the session is made read-only (``SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL
  REPEATABLE READ, READ ONLY``), so even a ``COMMIT;`` smuggled into the text only starts another
  read-only transaction; the reads run inside one ``REPEATABLE READ READ ONLY`` transaction, so they all
  see one snapshot. The session characteristics are reset, and session-level advisory locks a query
  took (``pg_advisory_lock``) released, before the connection returns to the pool.
- SQLite: ``PRAGMA query_only = ON`` refuses every write, and the reads run inside one explicit
  transaction (one snapshot); the pragma is reset to OFF before the connection returns to the pool.
- Other dialects: one transaction at REPEATABLE READ where the dialect supports it, with the parser and
  the driver as the remaining barriers.

Drivers and several statements: psycopg (3) with bound parameters uses the extended protocol, which
refuses several statements; without parameters it sends the text as one simple query. psycopg2 always
interpolates on the client and sends one simple query, parameters or not. A simple query that holds
``BEGIN READ WRITE`` leaves the read-only default, so on PostgreSQL the parser barrier
(:mod:`airflow_provider_mlprod.sql.statements`) is the one that must hold; the session stops what a
single statement can do (``DELETE``, DDL, ``nextval``, ``FOR UPDATE``). sqlite3's ``execute`` always refuses a
second statement ("You can only execute one statement at a time"). MySQL drivers refuse several
statements unless the client flag ``MULTI_STATEMENTS`` is set (off by default).

Writes that follow (the SQL quarantine) use their own ordinary transaction after this one has ended.

Libraries that open their own connections (GX's SQL datasource) get a read-only URL from
:func:`read_only_url`: PostgreSQL sessions start with ``default_transaction_read_only=on``; a SQLite file
is opened in read-only mode (``mode=ro``).

On PostgreSQL a snapshot can be shared with other sessions: :func:`export_snapshot` names the
snapshot of a read-only transaction, and inside :func:`sharing_snapshot` every transaction an engine
begins imports it (``SET TRANSACTION SNAPSHOT``), so a library's own connections (GX's expectation
queries) and the quarantine's write transaction read exactly the rows the first reads saw, for as long
as the exporting transaction stays open.

Public API: :func:`read_only_snapshot`, :func:`read_only_url`, :func:`export_snapshot`,
:func:`sharing_snapshot`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def read_only_snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a read-only transaction whose reads share one snapshot; rolled back at the end."""
    dialect = engine.dialect.name
    with engine.connect() as connection:
        if dialect == "postgresql":
            connection.exec_driver_sql(
                "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            )
            connection.commit()
            try:
                yield connection  # its first statement opens one REPEATABLE READ READ ONLY transaction
            finally:
                _reset(
                    connection,
                    "RESET default_transaction_read_only",
                    "RESET default_transaction_isolation",
                    "SELECT pg_advisory_unlock_all()",  # a user's session lock survives the rollback
                )
        elif dialect == "sqlite":
            connection.exec_driver_sql("PRAGMA query_only = ON")
            try:
                connection.exec_driver_sql("BEGIN")
                yield connection
            finally:
                _reset(connection, "PRAGMA query_only = OFF")
        else:
            try:
                snapshot = connection.execution_options(isolation_level="REPEATABLE READ")
            except sa.exc.ArgumentError:
                snapshot = connection
            try:
                yield snapshot
            finally:
                snapshot.rollback()


def read_only_url(url: sa.URL) -> sa.URL:
    """``url`` changed so that every session it opens is read-only (PostgreSQL, SQLite); others unchanged."""
    backend = url.get_backend_name()
    if backend == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2"):
        options = str(url.query.get("options") or "")
        if "default_transaction_read_only" not in options:
            options = f"{options} -c default_transaction_read_only=on".strip()
        return url.update_query_dict({"options": options})
    if backend == "sqlite" and url.database and url.database != ":memory:":
        database = url.database
        if not database.startswith("file:"):
            # as a URI, '?', '#' and '%' in a file name would start the query, a fragment (dropping
            # mode=ro: SQLite then creates an empty file) or an escape: quote them
            database = f"file:{urllib.parse.quote(database, safe='/:')}"
        query = dict(url.query)
        query.update({"mode": "ro", "uri": "true"})
        return url.set(database=database, query=query)
    return url


SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")
"""The shape of a PostgreSQL snapshot id (``00000003-0000001B-1``)."""


def export_snapshot(connection: sa.Connection) -> str | None:
    """The id of ``connection``'s snapshot on PostgreSQL (valid while its transaction lasts); else None.

    Call it on a :func:`read_only_snapshot` connection, whose transaction is REPEATABLE READ.
    """
    if connection.dialect.name != "postgresql":
        return None
    snapshot = str(connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    if not SNAPSHOT_ID.fullmatch(snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    return snapshot


@contextmanager
def sharing_snapshot(engine: sa.Engine, snapshot: str | None, *, read_only: bool = True) -> Iterator[None]:
    """Make every transaction ``engine`` begins meanwhile import ``snapshot`` (PostgreSQL).

    The transactions are REPEATABLE READ (and READ ONLY when ``read_only``). With ``snapshot`` None
    (other databases) nothing changes.
    """
    if snapshot is None:
        yield
        return
    if not SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"snapshot id {snapshot!r} is not a PostgreSQL snapshot id")
    characteristics = "REPEATABLE READ, READ ONLY" if read_only else "REPEATABLE READ"

    def import_snapshot(connection: sa.Connection) -> None:
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {characteristics}")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # an id checked above, not user text
        finally:
            cursor.close()

    sa.event.listen(engine, "begin", import_snapshot)
    try:
        yield
    finally:
        sa.event.remove(engine, "begin", import_snapshot)


def _reset(connection: sa.Connection, *statements: str) -> None:
    """End the read transaction and undo the session settings; a connection that cannot is discarded."""
    try:
        connection.rollback()
        raw = connection.connection.dbapi_connection
        raw.rollback()  # also ends a transaction SQLAlchemy did not open (SQLite's explicit BEGIN)
        cursor = raw.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
        raw.commit()
    except Exception:
        connection.invalidate()  # never hand a read-only or half-reset session back to the pool

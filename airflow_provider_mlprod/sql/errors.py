"""The one rule that says which database errors a retry can fix, with messages naming the connection.

Retryable (:class:`DatabaseUnavailableError`, which is not final, so Airflow retries): the connection was
refused, lost or invalidated; a timeout or cancelled statement; a lock or serialization failure or a
deadlock; too many connections; the server shutting down; SQLite's "database is locked".
Final (:class:`~airflow_provider_mlprod.exceptions.ConnectionConfigError` for an unknown role, database or
bad password; :class:`~airflow_provider_mlprod.exceptions.InputDataError` otherwise): syntax errors,
missing tables or columns, missing permission, read-only violations and other deterministic failures.

Messages name the connection id and keep only the first line of the driver's message, never the SQL's
bound parameters or the connection URL (which may hold a password).

Public API: :class:`DatabaseUnavailableError`, :func:`classify_database_error`,
:func:`is_final_database_error`,
:func:`database_errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConnectionConfigError, InputDataError, MlprodError

RETRYABLE_SQLSTATE_PREFIXES = ("08", "40", "53", "57", "58", "HY")
"""SQLSTATE classes a retry may fix: connection exception, transaction rollback (serialization failure,
deadlock), insufficient resources (too many connections), operator intervention (timeouts,
shutdown), system error; and the ODBC timeout class."""

RETRYABLE_SQLSTATES = frozenset({"55P03"})
"""Single codes a retry may fix: lock not available."""

CONFIGURATION_SQLSTATE_PREFIXES = ("28", "3D")
"""Invalid authorization (unknown role, bad password) and invalid catalog (unknown database)."""

CONFIGURATION_PHRASES = (
    "password authentication failed",
    "no password supplied",
    "authentication failed",
    'role "',
    'database "',
)
"""Connect-time driver messages (lower case) that mean a wrong setting, when the driver gives no SQLSTATE
(psycopg reports an unknown database as ``database "x" does not exist`` at connect time)."""

RETRYABLE_PHRASES = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "connection reset",
    "connection timed out",
    "timeout expired",
    "terminating connection",
    "too many connections",
    "database is locked",
    "database is busy",
    "lost connection",
    "could not translate host name",
)
"""Driver messages (lower case) that mean a transient failure when no SQLSTATE is given."""


class DatabaseUnavailableError(MlprodError):
    """The database could not answer this time (connection, timeout, lock); a retry may succeed."""


def classify_database_error(exc: BaseException, conn_id: str | None) -> MlprodError:
    """The provider error for a driver or SQLAlchemy error raised while using ``conn_id``.

    :param exc: the error raised by SQLAlchemy or the driver.
    :param conn_id: the Airflow connection id, named in the message.
    :returns: a :class:`DatabaseUnavailableError` (retryable), a ``ConnectionConfigError`` or an
        ``InputDataError`` (final), whose message names the connection.
    """
    if isinstance(exc, MlprodError):
        return exc
    where = f"connection {conn_id!r}" if conn_id else "database connection"
    original = getattr(exc, "orig", None) or exc
    detail = _first_line(original)
    sqlstate = str(getattr(original, "sqlstate", None) or getattr(original, "pgcode", None) or "")
    lowered = detail.lower()
    if sqlstate.startswith(CONFIGURATION_SQLSTATE_PREFIXES) or any(
        p in lowered for p in CONFIGURATION_PHRASES
    ):
        return ConnectionConfigError(conn_id, detail)
    transient = (
        (isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated)
        or isinstance(exc, (sa.exc.DisconnectionError, sa.exc.TimeoutError, TimeoutError, ConnectionError))
        or sqlstate in RETRYABLE_SQLSTATES
        or sqlstate.startswith(RETRYABLE_SQLSTATE_PREFIXES)
        or (not sqlstate and any(phrase in lowered for phrase in RETRYABLE_PHRASES))
    )
    if transient:
        return DatabaseUnavailableError(f"{where} is unavailable, a retry may succeed: {detail}")
    if not sqlstate and isinstance(exc, sa.exc.OperationalError) and not _is_sqlite(exc):
        # a connect failure without SQLSTATE (e.g. psycopg's "connection failed"): treat as transient
        return DatabaseUnavailableError(f"{where} is unavailable, a retry may succeed: {detail}")
    return InputDataError(f"{where}: {detail}")


def is_final_database_error(exc: BaseException) -> bool:
    """Whether a retry cannot fix ``exc`` (engine code re-raises the others for the caller to classify)."""
    return not isinstance(classify_database_error(exc, None), DatabaseUnavailableError)


@contextmanager
def database_errors(conn_id: str | None) -> Iterator[None]:
    """Re-raise SQLAlchemy and driver errors as classified by :func:`classify_database_error`."""
    try:
        yield
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise classify_database_error(exc, conn_id) from exc


def _is_sqlite(exc: sa.exc.OperationalError) -> bool:
    return type(exc.orig).__module__.startswith("sqlite3")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__

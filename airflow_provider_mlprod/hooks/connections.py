"""Read Airflow connections with errors that name the connection and never show a secret."""

from __future__ import annotations

import json
import math
from typing import Any

from airflow.sdk import BaseHook, Connection

from airflow_provider_mlprod.exceptions import ConnectionConfigError


def connection_exists(conn_id: str) -> bool:
    """Whether a connection with this id is defined (in the metadata DB, env or a secrets backend)."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


def get_connection(conn_id: str) -> Connection:
    """Return the connection ``conn_id`` or raise ConnectionConfigError saying it is not defined."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    if not conn_id or not isinstance(conn_id, str):
        raise ConnectionConfigError(conn_id or None, "no connection id given")
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConnectionConfigError(
            conn_id,
            "is not defined; create it in the UI (Admin > Connections), with `airflow connections add`, "
            f"or as the environment variable AIRFLOW_CONN_{conn_id.upper()}",
        ) from None


def connection_extra(conn: Connection) -> dict[str, Any]:
    """The connection's extra as a dict; malformed JSON is an error, not an empty dict.

    Fields defined in a connection form are stored either under their own name or, by older forms,
    as ``extra__<conn_type>__<name>``; both are returned under the plain name.
    """
    raw = conn.extra
    if raw in (None, ""):
        return {}
    try:
        extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError):
        # The text may hold a secret: describe the problem, never quote the text.
        raise ConnectionConfigError(conn.conn_id, "the extra field is not valid JSON") from None
    if not isinstance(extra, dict):
        raise ConnectionConfigError(conn.conn_id, "the extra field must be a JSON object")
    prefix = f"extra__{conn.conn_type}__"
    return {(key[len(prefix) :] if key.startswith(prefix) else key): value for key, value in extra.items()}


def require_conn_type(conn: Connection, accepted: tuple[str, ...]) -> None:
    """Raise unless the connection's type is one of ``accepted``."""
    conn_type = (conn.conn_type or "").replace("-", "_")
    if conn_type not in accepted:
        raise ConnectionConfigError(
            conn.conn_id,
            f"has type {conn.conn_type!r}, expected one of {', '.join(repr(t) for t in accepted)}",
        )


def optional_number(conn: Connection, extra: dict[str, Any], name: str, default: float) -> float:
    """A positive finite number from the extra, or ``default``; other values are an error naming it."""
    value = extra.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConnectionConfigError(conn.conn_id, f"extra field {name!r} must be a number") from None
    if not math.isfinite(number):
        raise ConnectionConfigError(conn.conn_id, f"extra field {name!r} must be a finite number")
    if not number > 0:
        raise ConnectionConfigError(conn.conn_id, f"extra field {name!r} must be greater than 0")
    return number

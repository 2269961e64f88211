"""The one timestamp parser: ISO 8601 text, a datetime or a date, read the same way everywhere.

A trailing ``Z`` is read as UTC on every supported Python (``datetime.fromisoformat`` accepts it only
from 3.11). Aware values are converted to UTC; naive values are read as UTC, or kept naive for callers
that compare them with naive database timestamps (``naive="keep"``).

Public API: :func:`parse_timestamp`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from airflow_provider_mlprod.exceptions import ConfigurationError

UTC = dt.timezone.utc


def parse_timestamp(value: object, role: str, *, naive: Literal["utc", "keep"] = "utc") -> dt.datetime:
    """Return ``value`` as a datetime in UTC.

    :param value: ISO 8601 text (``"2024-05-01T12:00:00Z"``, ``"2024-05-01"``), a datetime or a date.
    :param role: what the value is, for the message (``"newer_than"``, ``"window start"``...).
    :param naive: ``"utc"`` reads a value without offset as UTC; ``"keep"`` returns it naive.
    :raises ConfigurationError: the value is empty or not a timestamp.
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ConfigurationError(f"{role} {value!r} is not an ISO 8601 timestamp") from None
    else:
        raise ConfigurationError(
            f"{role} {value!r} is not a timestamp (expected ISO 8601 text or a datetime)"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC) if naive == "utc" else moment.replace(tzinfo=None)
    return moment.astimezone(UTC)

"""The time window an example run works on, whether the scheduler, the UI, the REST API or the CLI made it.

A scheduled run works on its data interval. A run triggered through the REST API or ``airflow dags
trigger`` may have no logical date and no data interval (``ds`` and ``logical_date`` are then absent from
the context), and a UI-triggered run of a cron schedule has an empty interval: such a manual run works on
the last whole UTC day before it was triggered. Manual windows are therefore whole days: two manual runs of
one day share a window (the second replaces what the first wrote), runs of different days never overlap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in UTC (aware datetimes)."""

    start: dt.datetime
    end: dt.datetime

    @property
    def start_iso(self) -> str:
        return self.start.isoformat()

    @property
    def end_iso(self) -> str:
        return self.end.isoformat()

    @property
    def start_sql(self) -> str:
        """The start as a naive UTC ``YYYY-MM-DD HH:MM:SS`` literal (how the examples store times)."""
        return self.start.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def end_sql(self) -> str:
        return self.end.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def label(self) -> str:
        """A short name of the window for titles, e.g. ``2026-03-01`` or ``2026-03-01T06:00/12:00``."""
        if self.end - self.start == DAY and self.start.time() == dt.time(0):
            return f"{self.start:%Y-%m-%d}"
        return f"{self.start:%Y-%m-%dT%H:%M}/{self.end:%Y-%m-%dT%H:%M}"

    def naive_utc(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)


def run_window(dag_run: Any) -> Window:
    """The window of ``dag_run`` (the context's ``dag_run``): its data interval, else the last whole day.

    ``dag_run`` needs ``data_interval_start``, ``data_interval_end`` (either may be None) and
    ``run_after``.
    """
    start = _utc(getattr(dag_run, "data_interval_start", None))
    end = _utc(getattr(dag_run, "data_interval_end", None))
    if start is not None and end is not None and start < end:
        return Window(start, end)
    anchor = _utc(getattr(dag_run, "run_after", None)) or end or _utc(getattr(dag_run, "logical_date", None))
    if anchor is None:
        raise ValueError(
            f"DAG run {getattr(dag_run, 'run_id', '?')!r} has neither a data interval nor run_after"
        )
    day_end = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(day_end - DAY, day_end)


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)

"""The window of an example run: scheduled, manual from the UI, or from the REST API with no logical date."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from airflow_provider_mlprod.examples.windows import run_window

UTC = dt.timezone.utc


def dag_run(start=None, end=None, run_after=None, logical_date=None):
    return SimpleNamespace(
        run_id="r",
        data_interval_start=start,
        data_interval_end=end,
        run_after=run_after,
        logical_date=logical_date,
    )


def test_a_scheduled_run_works_on_its_data_interval():
    start, end = dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 3, 2, tzinfo=UTC)
    window = run_window(dag_run(start, end, run_after=end))
    assert (window.start, window.end, window.label) == (start, end, "2026-03-01")


@pytest.mark.parametrize(
    "run",
    [
        dag_run(run_after=dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC)),  # REST / CLI: no logical date
        dag_run(  # UI trigger on a cron schedule: an empty interval
            dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC),
            dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC),
            run_after=None,
        ),
        dag_run(run_after="2026-03-02T23:59:59+00:00"),  # serialized form
        dag_run(run_after=dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
    ],
)
def test_a_manual_run_works_on_the_last_whole_day_before_it(run):
    window = run_window(run)
    assert (window.start, window.end) == (
        dt.datetime(2026, 3, 1, tzinfo=UTC),
        dt.datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert (window.start_sql, window.end_sql) == ("2026-03-01 00:00:00", "2026-03-02 00:00:00")


def test_manual_windows_of_different_days_do_not_overlap():
    first = run_window(dag_run(run_after=dt.datetime(2026, 3, 2, 23, 0, tzinfo=UTC)))
    second = run_window(dag_run(run_after=dt.datetime(2026, 3, 3, 0, 5, tzinfo=UTC)))
    assert first.end <= second.start


def test_a_run_without_any_time_is_refused():
    with pytest.raises(ValueError, match="neither a data interval nor run_after"):
        run_window(dag_run())

"""MetricsStore records: idempotent per task identity, validated before writing."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore

RUN = RunIdentity("train", "manual__1", "evaluate")


@pytest.fixture
def store(db_url) -> MetricsStore:
    return MetricsStore(create_store_engine(db_url))


def test_three_retries_leave_one_row_with_the_last_value(store):
    for attempt in range(3):
        store.record_metrics(RUN, {"auc": 0.8 + attempt / 100}, model_name="churn", model_version="3")
    history = store.metric_history("auc", model_name="churn")
    assert [point.value for point in history] == [pytest.approx(0.82)]
    assert history[0].run == RUN


def test_history_across_runs_and_filters(store):
    for day in range(3):
        run = RunIdentity("monitor", f"scheduled__{day}", "score", map_index=day)
        store.record_metrics(run, {"mae": day, "rmse": day * 2}, dataset="orders")
    store.record_metrics(RUN, {"mae": 99}, dataset="other")
    assert [p.value for p in store.metric_history("mae", dataset="orders")] == [0, 1, 2]
    assert len(store.metric_history("mae")) == 4
    assert store.metric_history("mae", dataset="orders")[2].run.map_index == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (math.nan, "must be finite"),
        (math.inf, "must be finite"),
        ("high", "must be a number"),
        (True, "boolean"),
    ],
)
def test_bad_metric_value_names_it_and_writes_nothing(store, bad, message):
    with pytest.raises(StoreError, match=f"metric 'f1'.*{message}"):
        store.record_metrics(RUN, {"auc": 0.9, "f1": bad})
    assert store.metric_history("auc") == []


def test_validation_result_is_upserted_per_run(store):
    summary = {
        "success": False,
        "counts": {"evaluated": 4, "passed": 3, "failed_critical": 1, "failed_warning": 0},
        "rows_checked": 120,
    }
    store.record_validation(RUN, summary, suite="orders", dataset="raw/orders.csv")
    store.record_validation(RUN, {**summary, "success": True}, suite="orders", dataset="raw/orders.csv")
    (row,) = store.validation_history(suite="orders")
    assert row["success"] is True
    assert row["failed_critical"] == 1
    assert row["summary"]["rows_checked"] == 120


def test_validation_summary_missing_counts_is_named(store):
    with pytest.raises(StoreError, match="validation summary for suite 'orders' lacks"):
        store.record_validation(RUN, {"success": True}, suite="orders", dataset="d")


def test_drift_result_keeps_per_column_history(store):
    def summary(drifted):
        return {
            "dataset_drift": drifted,
            "share_drifted": 0.5 if drifted else 0.0,
            "columns": [
                {
                    "column": "amount",
                    "test": "wasserstein",
                    "statistic": 0.3,
                    "threshold": 0.1,
                    "drifted": drifted,
                },
                {
                    "column": "country",
                    "test": "jensen_shannon",
                    "statistic": None,
                    "threshold": 0.1,
                    "drifted": False,
                },
            ],
        }

    store.record_drift(RUN, summary(False), dataset="orders")
    store.record_drift(RUN, summary(True), dataset="orders")  # retry: replaces
    store.record_drift(RunIdentity("d", "r2", "t"), summary(False), dataset="orders")
    history = store.drift_history("orders", column="amount")
    assert [row["drifted"] for row in history] == [True, False]
    assert len(store.drift_history("orders")) == 4


def test_profiles_round_trip_and_missing_profile_is_named(store):
    store.save_profile("orders-reference", {"version": 1, "rows": 10})
    store.save_profile("orders-reference", {"version": 1, "rows": 20})
    assert store.load_profile("orders-reference") == {"version": 1, "rows": 20}
    with pytest.raises(StoreError, match="no reference profile named 'nope'"):
        store.load_profile("nope")


def test_alert_dedup_window(store):
    assert not store.delivered_recently("k1", timedelta(minutes=10))
    store.record_alert_delivery(
        dedup_key="k1", channel="slack", delivered=False, attempts=3, error="HTTP 500"
    )
    assert not store.delivered_recently("k1", timedelta(minutes=10))
    store.record_alert_delivery(dedup_key="k1", channel="slack", delivered=True, attempts=1, status_code=200)
    assert store.delivered_recently("k1", timedelta(minutes=10))
    assert store.delivered_recently("k1", timedelta(minutes=10), channel="slack")
    assert not store.delivered_recently("k1", timedelta(minutes=10), channel="pagerduty")
    assert not store.delivered_recently("k1", timedelta(seconds=-1))
    assert [row["delivered"] for row in store.alert_deliveries("k1")] == [False, True]


def test_a_retry_replaces_the_whole_set_of_metrics(store):
    store.record_metrics(RUN, {"auc": 0.8, "f1": 0.5}, model_name="churn")
    store.record_metrics(RUN, {"auc": 0.81}, model_name="churn")
    assert [p.value for p in store.metric_history("auc")] == [0.81]
    assert store.metric_history("f1") == []


def test_saving_a_profile_keeps_history_and_name_at_n_pins_a_version(store):
    first = store.save_profile("orders", {"rows": 500}, RunIdentity("train", "r1", "profile"))
    second = store.save_profile("orders", {"rows": 0}, RunIdentity("train", "r2", "profile"))
    assert (first.reference, second.reference) == ("orders@1", "orders@2")
    assert store.load_profile("orders") == {"rows": 0}
    assert store.load_profile("orders@1") == {"rows": 500}  # the 500-row reference is still there
    assert [v.version for v in store.profile_versions("orders")] == [1, 2]
    with pytest.raises(StoreError, match="no version 3 of reference profile named 'orders'"):
        store.load_profile("orders@3")
    for bad in ("orders@0", "orders@x", "@1"):
        with pytest.raises(StoreError, match="expected 'name' or 'name@N'"):
            store.load_profile(bad)
    with pytest.raises(StoreError, match="must not contain '@'"):
        store.save_profile("orders@2", {})


def test_a_retried_save_replaces_its_own_version(store):
    identity = RunIdentity("train", "r1", "profile")
    store.save_profile("orders", {"rows": 1}, identity)
    again = store.save_profile("orders", {"rows": 2}, identity)
    assert again.version == 1
    assert store.load_profile("orders") == {"rows": 2}
    assert len(store.profile_versions("orders")) == 1


def test_a_backfill_does_not_replace_a_newer_profile_unless_asked(store):
    from datetime import datetime, timezone

    march, january = datetime(2024, 3, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc)
    store.save_profile("orders", {"month": 3}, RunIdentity("train", "march", "profile"), as_of=march)
    backfill = store.save_profile(
        "orders", {"month": 1}, RunIdentity("train", "jan", "profile"), as_of=january
    )
    assert (backfill.saved, backfill.version) == (False, 1)
    assert store.load_profile("orders") == {"month": 3}
    forced = store.save_profile(
        "orders", {"month": 1}, RunIdentity("train", "jan", "profile"), as_of=january, replace_newer=True
    )
    assert (forced.saved, forced.version) == (True, 2)
    assert store.load_profile("orders") == {"month": 1}

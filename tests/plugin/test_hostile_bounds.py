"""The model-health pages stay bounded however long a history grows (real SQLite store)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from airflow_provider_mlprod.plugin import pages
from airflow_provider_mlprod.plugin.health_data import HealthReader
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.migrations import ensure_schema

CHANGES = 5000


def link(route: str) -> str:
    return "/mlprod" + route


def test_pages_stay_bounded_with_huge_histories(tmp_path):
    """Failed before the fix: every alias change went into the timeline plot, every metric got a
    chart and every column a heatmap row, so the pages grew without limit."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        ensure_schema(engine)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        with engine.begin() as connection:
            connection.execute(
                insert(schema.model_events),
                [
                    {
                        "model_name": "churn",
                        "version": f"v{i}",
                        "event": "promoted",
                        "alias": "champion",
                        "previous_version": f"v{i - 1}",
                        "at": start + dt.timedelta(minutes=i),
                    }
                    for i in range(CHANGES)
                ],
            )
        store = MetricsStore(engine)
        store.record_metrics(
            RunIdentity("monitor", "run_1", "monitor"),
            {f"metric_{i:04d}": float(i) for i in range(2000)},
            model_name="churn",
            model_version=f"v{CHANGES - 1}",
        )
        store.record_drift(
            RunIdentity("etl", "run_1", "drift"),
            {
                "dataset_drift": True,
                "share_drifted": 0.001,
                "columns": [
                    {
                        "column": f"c{i:05d}",
                        "test": "ks",
                        "statistic": 0.1,
                        "threshold": 0.05,
                        "drifted": i == 2345,
                    }
                    for i in range(3000)
                ],
            },
            dataset="wide",
        )
        reader = HealthReader(engine)
        health = reader.model_health("churn")
        model_html = pages.model_page(health, link)
        assert f"v{CHANGES - 1}" in model_html  # the newest change is shown
        assert len(health.timeline) <= 1000
        assert len(health.metrics) <= 50
        assert len(model_html) < 1_500_000, len(model_html)
        assert "newest" in model_html  # the page says it shows only part of the history
        dataset_html = pages.dataset_page(reader.dataset_health("wide"), link, lambda location: "")
        assert "c02345" in dataset_html  # the drifted column is kept
        assert dataset_html.count("<rect") <= 200, dataset_html.count("<rect")
    finally:
        engine.dispose()

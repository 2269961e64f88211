"""The model-health view's reads and pages on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

import pytest

from airflow_provider_mlprod.plugin import pages
from airflow_provider_mlprod.plugin.health_data import HealthReader
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.registry import ModelRegistry

MODEL = "churn"


def link(route: str) -> str:
    return "/base/mlprod" + route


def release(
    registry: ModelRegistry, version: str, auc: float, *, passed: bool = True, approved_by: str | None = None
) -> None:
    run = RunIdentity("release", f"manual__{version}", "register")
    registry.register(
        run, name=MODEL, version=version, artifact_uri=f"file:///m/{version}", metrics={"auc": auc}
    )
    baseline = registry.alias_version(MODEL)
    reason = "auc above 0.7" if passed else "auc 0.5 below minimum 0.7"
    registry.record_blessing(
        RunIdentity("release", f"manual__{version}", "gate"),
        name=MODEL,
        version=version,
        passed=passed,
        baseline_version=baseline,
        summary={
            "passed": passed,
            "metrics": [{"metric": "auc", "verdict": "pass" if passed else "fail", "reason": reason}],
        },
    )
    if passed:
        registry.promote(
            RunIdentity("release", f"manual__{version}", "promote"),
            name=MODEL,
            version=version,
            approved_by=approved_by,
        )


@pytest.fixture
def reader(db_url):
    engine = create_store_engine(db_url)
    registry = ModelRegistry(engine)
    release(registry, "v1", 0.8)
    release(registry, "v2", 0.85, approved_by="alice <ops>")
    release(registry, "v3", 0.5, passed=False)
    registry.rollback(RunIdentity("airflow-cli", "manual__rollback", "rollback"), name=MODEL)
    store = MetricsStore(engine)
    for day in range(3):
        store.record_metrics(
            RunIdentity("monitor", f"scheduled__{day}", "monitor_performance"),
            {"roc_auc": 0.8 - day / 100, "accuracy": 0.7},
            model_name=MODEL,
            model_version="v1",
        )
    store.record_validation(
        RunIdentity("etl", "run_1", "validate"),
        {
            "success": False,
            "counts": {"evaluated": 3, "passed": 2, "failed_critical": 1, "failed_warning": 0},
            "report_location": "file:///r/validation/etl/run_1/validate.html",
        },
        suite="orders",
        dataset="orders",
    )
    store.record_drift(
        RunIdentity("etl", "run_1", "drift"),
        {
            "dataset_drift": True,
            "share_drifted": 0.5,
            "columns": [
                {"column": "amount", "test": "ks", "statistic": 0.4, "threshold": 0.05, "drifted": True},
                {
                    "column": "<plan>",
                    "test": "chisquare",
                    "statistic": 0.01,
                    "threshold": 0.05,
                    "drifted": False,
                },
            ],
        },
        dataset="orders",
    )
    store.record_alert_delivery(
        dedup_key="etl/drift", channel="ml_slack", delivered=True, attempts=1, status_code=200
    )
    try:
        yield HealthReader(engine)
    finally:
        engine.dispose()


def test_model_health_has_the_alias_timeline_verdicts_and_trends(reader):
    health = reader.model_health(MODEL)
    assert [(e.event, e.version, e.previous_version) for e in health.timeline] == [
        ("promoted", "v1", ""),
        ("promoted", "v2", "v1"),
        ("rolled_back", "v1", "v2"),
    ]
    assert health.timeline[-1].run.dag_id == "airflow-cli"
    assert [e.approved_by for e in health.timeline] == ["", "alice <ops>", ""]
    assert health.aliases == {"champion": "v1"}
    assert health.champion.version == "v1"
    assert health.versions == 3
    assert [(v.version, v.passed) for v in health.verdicts] == [("v3", False), ("v2", True), ("v1", True)]
    assert health.verdicts[0].metrics[0]["reason"] == "auc 0.5 below minimum 0.7"
    trends = {series.name: [value for _, value, _ in series.points] for series in health.metrics}
    assert trends == {"accuracy": [0.7, 0.7, 0.7], "roc_auc": pytest.approx([0.8, 0.79, 0.78])}
    assert reader.model_health("unknown") is None
    assert reader.model_names() == [MODEL]
    assert reader.names_of_dag("monitor") == ([MODEL], [])
    assert reader.names_of_dag("etl", "validate") == ([], ["orders"])


def test_model_page_renders_timeline_verdicts_and_plots(reader):
    html = pages.model_page(reader.model_health(MODEL), link)
    assert "<h1>Model churn</h1>" in html
    assert "rolled back" in html
    assert "approved by alice &lt;ops&gt;" in html
    assert "promoted" in html
    assert "auc 0.5 below minimum 0.7" in html
    assert len(re.findall(r"<svg ", html)) == 3  # the champion timeline and two metric trends
    assert 'href="/base/mlprod/health/"' in html
    assert "<script" not in html


def test_dataset_page_links_reports_and_escapes_names(reader):
    health = reader.dataset_health("orders")
    assert [record.success for record in health.validations] == [False]
    assert health.drifts[0].columns == {"amount": (True, 0.4), "<plan>": (False, 0.01)}
    html = pages.dataset_page(health, link, lambda location: "/mlprod/reports/x" if location else "")
    assert html.count('href="/mlprod/reports/x"') == 1  # the validation's report; the drift had none
    assert "&lt;plan&gt;" in html
    assert "<plan>" not in html
    assert "heatmap" in html


def test_alert_log_newest_first(reader):
    (delivery,) = reader.alert_log()
    assert (delivery.channel, delivery.delivered, delivery.status_code) == ("ml_slack", True, 200)
    assert "ml_slack" in pages.alerts_page([delivery], link)

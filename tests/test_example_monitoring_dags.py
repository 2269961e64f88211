"""The monitoring, retraining and warehouse-quality example DAGs end to end with dag.test()."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.hooks.store import MetricsStoreHook

MODEL = "customer_churn"
DEGRADED_URI = "mlprod://models/customer_churn/degraded"
FAST_SENSORS = {"sensor_poke_seconds": 0.2, "freshness_timeout_seconds": 3}


@pytest.fixture
def example_env(airflow_db, monkeypatch, tmp_path, httpserver):
    """Its own metrics store, report folder, SQLite warehouse and a local alert receiver."""
    httpserver.expect_request("/alerts", method="POST").respond_with_data("ok")
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE_PATH", str(tmp_path / "store.db"))
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", str(tmp_path / "reports"))
    monkeypatch.setenv("AIRFLOW__MLPROD__ALERT_CONN_IDS", "alert_receiver")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERT_RECEIVER",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/alerts")}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEST_WAREHOUSE",
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")}),
    )

    def run(dag_id: str, **conf):
        from airflow.models import DagBag

        dag = DagBag(dag_folder=str(airflow_db / "dags" / f"{dag_id}.py")).dags[dag_id]
        dag_run = dag.test(run_conf={"warehouse_conn_id": "test_warehouse", **conf})
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        alerts = [request.get_json() for request, _ in httpserver.log]
        httpserver.clear_log()
        return dag, dag_run, states, alerts

    return run, tmp_path


def asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.scalars(sa.select(AssetEvent).order_by(AssetEvent.id)).all()
        return [event.extra for event in events if event.asset.uri == uri]


def warehouse_scalar(tmp_path, sql: str):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def monitor(run, tmp_path, scenario: str, label_timeout: float = 30):
    return run(
        "mlprod_monitoring",
        scenario=scenario,
        artifact_root=f"file://{tmp_path}/models",
        label_timeout_seconds=label_timeout,
        **FAST_SENSORS,
    )


def test_healthy_window_records_metrics_and_reports(example_env):
    run, tmp_path = example_env
    degraded_before = len(asset_events(DEGRADED_URI))
    _, dag_run, states, alerts = monitor(run, tmp_path, "healthy")
    assert dag_run.state == "success", states
    champion = MetricsStoreHook().registry().champion(MODEL)
    assert champion is not None
    assert champion.version.startswith("bootstrap-")  # trained by the DAG: no champion existed
    auc = MetricsStoreHook().metrics_store().metric_history("roc_auc", model_name=MODEL)
    assert len(auc) == 1
    assert auc[0].model_version == champion.version
    assert auc[0].value > champion.metrics["roc_auc"] - 0.05
    coverage = MetricsStoreHook().metrics_store().metric_history("labelled_rows", model_name=MODEL)
    assert 900 < coverage[0].value < 1000  # ~95 % of 1,000 predictions labelled
    assert len(asset_events(DEGRADED_URI)) == degraded_before
    (report,) = alerts
    assert report["severity"] == "info"
    assert "healthy" in report["title"]
    assert (report["facts"]["prediction drift"], report["facts"]["feature drift"]) == ("False", "False")
    assert warehouse_scalar(tmp_path, "SELECT COUNT(*) FROM churn_predictions") == 1000


def test_degraded_model_emits_the_retraining_asset_and_alerts_drift(example_env):
    from airflow.sdk import Asset

    run, tmp_path = example_env
    degraded_before = len(asset_events(DEGRADED_URI))
    _, dag_run, states, alerts = monitor(run, tmp_path, "degraded")
    assert dag_run.state == "failed"
    assert states["monitor_performance"] == "success"  # on_degradation="continue": the Asset is recorded
    assert (states["prediction_drift"], states["feature_drift"]) == ("failed", "failed")
    events = asset_events(DEGRADED_URI)
    assert len(events) == degraded_before + 1
    assert events[-1]["model_name"] == MODEL
    assert {failure["metric"] for failure in events[-1]["failed"]} >= {"roc_auc", "accuracy"}
    titles = [alert["title"] for alert in alerts]
    assert any("Guardrail fired: prediction_drift" in title for title in titles), titles
    assert any("Guardrail fired: feature_drift" in title for title in titles), titles
    (report,) = [alert for alert in alerts if "degraded" in alert["title"]]
    assert report["severity"] == "critical"

    # The retraining DAG is scheduled on that Asset; run here, it retrains on the labelled serving log
    # and gates against the champion's live metrics (the degraded window's), not its training metrics:
    # the retrained model beats the degraded champion and is promoted.
    store = MetricsStoreHook()
    champion = store.registry().champion(MODEL).version
    live_roc_auc = store.metrics_store().metric_history("roc_auc", model_name=MODEL, model_version=champion)[
        -1
    ]
    retrain, retrain_run, states, alerts = run(
        "mlprod_retrain_on_degradation",
        artifact_root=f"file://{tmp_path}/models",
        serving_uri=f"file://{tmp_path}/serving/model.pkl",
    )
    assert list(retrain.timetable.asset_condition.objects) == [
        Asset(uri=DEGRADED_URI, name=f"mlprod-degraded-{MODEL}")
    ]
    assert (states["train"], states["register"], states["gate"], states["promote"]) == ("success",) * 4
    assert retrain_run.state == "success"
    new_champion = store.registry().champion(MODEL).version
    assert new_champion != champion
    verdicts = {
        v["metric"]: v for v in store.registry().latest_blessing(MODEL, new_champion).summary["metrics"]
    }
    assert verdicts["roc_auc"]["baseline"] == pytest.approx(live_roc_auc.value)
    assert verdicts["roc_auc"]["baseline"] < store.registry().get_version(MODEL, champion).metrics["roc_auc"]
    assert any("promoted" in alert["title"] for alert in alerts)


def test_late_labels_time_out_and_alert(example_env):
    run, tmp_path = example_env
    _, dag_run, states, alerts = monitor(run, tmp_path, "late_labels", label_timeout=1)
    assert dag_run.state == "failed"
    assert states["wait_for_predictions"] == "success"
    assert (states["wait_for_labels"], states["monitor_performance"]) == ("failed", "upstream_failed")
    assert MetricsStoreHook().metrics_store().metric_history("roc_auc", model_name=MODEL) == []
    titles = [alert["title"] for alert in alerts]
    assert any("Guardrail fired: wait_for_labels" in title for title in titles), titles
    assert any("not checked" in title for title in titles), titles


def quality(run, scenario: str):
    return run("mlprod_warehouse_quality", scenario=scenario, **FAST_SENSORS)


def test_clean_orders_pass_inside_the_warehouse(example_env):
    run, _ = example_env
    validated_before = len(asset_events("mlprod://datasets/orders/validated"))
    _, dag_run, states, alerts = quality(run, "clean")
    assert dag_run.state == "success", states
    (record,) = MetricsStoreHook().metrics_store().validation_history(dataset="orders")
    assert record["success"] is True
    validated = asset_events("mlprod://datasets/orders/validated")
    assert len(validated) == validated_before + 1
    assert validated[-1]["rows_checked"] == 500
    (report,) = alerts
    assert "orders passed" in report["title"]
    assert report["severity"] == "info"


def test_corrupt_orders_are_blocked_and_quarantined_in_the_warehouse(example_env):
    run, tmp_path = example_env
    validated_before = len(asset_events("mlprod://datasets/orders/validated"))
    _, dag_run, states, alerts = quality(run, "corrupt")
    assert dag_run.state == "failed"
    assert (states["wait_for_orders"], states["validate_orders"]) == ("success", "failed")
    assert len(asset_events("mlprod://datasets/orders/validated")) == validated_before
    # 100 broken orders, a third each: negative amount, unknown status, no customer
    assert warehouse_scalar(tmp_path, "SELECT COUNT(DISTINCT order_id) FROM orders_quarantine") == 100
    assert warehouse_scalar(tmp_path, "SELECT COUNT(DISTINCT failed_expectation) FROM orders_quarantine") == 3
    titles = [alert["title"] for alert in alerts]
    assert any("Guardrail fired: validate_orders" in title for title in titles), titles
    assert any("orders blocked" in title for title in titles), titles


def test_stale_orders_time_out_before_validation(example_env):
    run, _ = example_env
    _, dag_run, states, alerts = quality(run, "stale")
    assert dag_run.state == "failed"
    assert (states["wait_for_orders"], states["validate_orders"]) == ("failed", "upstream_failed")
    assert MetricsStoreHook().metrics_store().validation_history(dataset="orders") == []
    titles = [alert["title"] for alert in alerts]
    assert any("Guardrail fired: wait_for_orders" in title for title in titles), titles
    assert any("not validated" in title for title in titles), titles

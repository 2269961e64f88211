"""The flagship example DAG end to end with dag.test(): the good path and each guardrail firing."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.hooks.store import MetricsStoreHook

DAG_ID = "mlprod_ingest_to_deploy"
MODEL = "customer_churn"


@pytest.fixture
def pipeline(airflow_db, monkeypatch, tmp_path, httpserver):
    """The flagship DAG with its own store, warehouse, folders and a local alert receiver."""
    from airflow.models import DagBag

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
    dag = DagBag(dag_folder=str(airflow_db / "dags" / f"{DAG_ID}.py")).dags[DAG_ID]
    conf = {
        "landing_uri": f"file://{tmp_path}/landing",
        "artifact_root": f"file://{tmp_path}/models",
        "serving_uri": f"file://{tmp_path}/serving/model.pkl",
        "warehouse_conn_id": "test_warehouse",
    }

    def run(scenario: str, seed: int = 11):
        dag_run = dag.test(run_conf={**conf, "scenario": scenario, "batch_seed": seed})
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        alerts = [request.get_json() for request, _ in httpserver.log]
        httpserver.clear_log()
        return dag_run, states, alerts

    return run, tmp_path


def asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.scalars(sa.select(AssetEvent).order_by(AssetEvent.id)).all()
        return [event.extra for event in events if event.asset.uri == uri]


def warehouse_rows(tmp_path, table: str) -> int:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    with engine.connect() as connection:
        count = connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
    engine.dispose()
    return count


def published_failing(tmp_path) -> str:
    """The failing rows the quarantine's manifest publishes (one try folder, the older ones removed)."""
    from airflow_provider_mlprod.validation.output_folder import read_output_manifest

    (folder,) = (tmp_path / "landing").glob("*/customers_quarantine")
    assert len(list((folder / "tries").iterdir())) == 1
    return read_output_manifest(folder)["locations"]["failing"]


def test_good_batch_is_promoted_and_reported(pipeline):
    run, tmp_path = pipeline
    validated_before = len(asset_events("mlprod://datasets/customer_batch/validated"))
    dag_run, states, alerts = run("good")
    assert dag_run.state == "success", states
    champion = MetricsStoreHook().registry().champion(MODEL)
    assert champion is not None
    assert (tmp_path / "serving" / "model.pkl").exists()
    assert warehouse_rows(tmp_path, "customer_features") == 992  # 8 bad rows quarantined
    assert len(pd.read_csv(published_failing(tmp_path))) == 8
    (report,) = alerts
    assert "promoted" in report["title"]
    validated = asset_events("mlprod://datasets/customer_batch/validated")
    assert len(validated) == validated_before + 1
    assert validated[-1]["rows_checked"] == 1000
    assert asset_events("mlprod://datasets/customer_features/drift")[-1]["dataset_drift"] is False
    assert asset_events("mlprod://models/customer_churn")[-1]["version"] == champion.version
    assert report["severity"] == "info"


def test_corrupt_batch_is_blocked_quarantined_and_alerted(pipeline):
    run, tmp_path = pipeline
    validated_before = len(asset_events("mlprod://datasets/customer_batch/validated"))
    dag_run, states, alerts = run("corrupt_batch")
    assert len(asset_events("mlprod://datasets/customer_batch/validated")) == validated_before
    assert dag_run.state == "failed"
    assert states["validate_batch"] == "failed"
    assert states["promote"] == "upstream_failed"
    assert len(pd.read_csv(published_failing(tmp_path))) == 300
    assert MetricsStoreHook().registry().champion(MODEL) is None
    titles = [alert["title"] for alert in alerts]
    assert any("Guardrail fired: validate_batch" in title for title in titles), titles
    assert any("no promotion" in title for title in titles), titles


def test_drifted_batch_stops_before_training_and_alerts(pipeline):
    run, tmp_path = pipeline
    dag_run, states, alerts = run("drifted_batch")
    assert dag_run.state == "failed"
    assert (states["validate_batch"], states["check_drift"], states["train"]) == (
        "success",
        "failed",
        "upstream_failed",
    )
    titles = [alert["title"] for alert in alerts]
    assert any("Guardrail fired: check_drift" in title for title in titles), titles
    (history_row, *_) = MetricsStoreHook().metrics_store().drift_history("customer_features")
    assert history_row is not None
    # The drifted rows left the table training reads (loaded before the check, then quarantined).
    assert states["quarantine_drifted_rows"] == "success"
    assert warehouse_rows(tmp_path, "customer_features") == 0
    assert warehouse_rows(tmp_path, "customer_features_drifted") == 992


def test_worse_model_is_rejected_and_the_champion_stays(pipeline):
    run, _ = pipeline
    good_run, states, _ = run("good")
    assert good_run.state == "success", states
    champion = MetricsStoreHook().registry().champion(MODEL).version
    worse_run, states, alerts = run("worse_model", seed=12)
    assert worse_run.state == "failed"
    assert (states["gate"], states["promote"]) == ("failed", "upstream_failed")
    assert MetricsStoreHook().registry().champion(MODEL).version == champion
    assert any("Guardrail fired: gate" in alert["title"] for alert in alerts)

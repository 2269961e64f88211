"""Monitoring a live model: fresh predictions, delayed labels, performance, prediction and feature drift.

Every day, for the window ``[data_interval_start, data_interval_end)``. A manual run (from the UI, the
REST API or ``airflow dags trigger``, with or without a logical date) monitors the last whole UTC day before
it was triggered: manual windows are whole days, so they never overlap a different day's window, and a
second run of the same day replaces that day's simulated traffic. Runs share the warehouse tables, so
only one runs at a time (``max_active_runs=1``).

Scenarios (Param ``scenario``):

- ``healthy``: predictions and 95 % of the labels arrive; performance within tolerance, no drift.
- ``degraded``: customers shifted and a third of the labels contradict the model: degradation recorded,
  the Asset ``mlprod://models/customer_churn/degraded`` emitted (it schedules
  ``mlprod_retrain_on_degradation``), drift alerted.
- ``late_labels``: only 30 % of the labels arrive: ``wait_for_labels`` times out after
  ``label_timeout_seconds`` and alerts.

Steps:

1. ``ensure_champion`` makes sure the model ``customer_churn`` has a champion in the registry (the one
   ``mlprod_ingest_to_deploy`` promotes; when there is none yet, it trains one on the training table
   ``customer_training``, gates it on absolute thresholds and promotes it) and that the warehouse holds
   the champion's scores on the training data (``churn_reference_scores``), the reference of
   prediction drift.
2. ``simulate_serving`` stands in for the serving system: it scores the window's customers with the
   champion into ``churn_predictions`` (features, ``score``, ``predicted_class``, ``scored_at``) and
   writes the labels that have arrived so far into ``churn_labels``.
3. ``wait_for_predictions`` (``DataFreshnessSensor``, deferrable) waits until the window's predictions
   have landed; ``wait_for_labels`` (``GroundTruthSensor``, deferrable) until ``min_label_share`` of
   them have their label.
4. ``monitor_performance`` (``ModelPerformanceMonitorOperator``) computes the window's metrics inside
   the warehouse, records them in the metrics store and compares them with the champion's registered
   metrics. On degradation it emits the Asset ``mlprod://models/customer_churn/degraded``, which
   schedules ``mlprod_retrain_on_degradation``.
5. ``prediction_drift`` (scores and classes against the champion's scores on the training data) and
   ``feature_drift`` (served features against ``customer_training``) run ``DataDriftOperator`` inside
   the warehouse; drift fails the task and alerts.
6. ``report`` sends a summary of the window to the alert channels whatever happened; a failing task
   also alerts through its ``MlprodNotifier`` callback.

Scenario Param ``scenario``: ``healthy``; ``degraded`` (customers shifted and a third of the labels
contradicting the model: degradation recorded and the retraining Asset emitted, drift alerted);
``late_labels`` (only 30 % of the labels arrived: ``wait_for_labels`` times out after
``label_timeout_seconds`` and the run alerts).

The sensors take their connection, poke interval and timeout from the run's Params, so a demo can
watch a timeout fire in seconds; raise ``label_timeout_seconds`` to days for a real model.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_mlprod.examples.churn import (
    FEATURES,
    MODEL_NAME,
    fit_churn_model,
    make_customers,
    save_model,
    version_from_run_id,
)
from airflow_provider_mlprod.examples.sensor_params import ParamsFreshnessSensor, ParamsGroundTruthSensor
from airflow_provider_mlprod.examples.windows import run_window
from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier
from airflow_provider_mlprod.operators.alerts import SendAlertOperator
from airflow_provider_mlprod.operators.drift import DataDriftOperator
from airflow_provider_mlprod.operators.monitoring import ModelPerformanceMonitorOperator

PREDICTIONS_TABLE = "churn_predictions"
LABELS_TABLE = "churn_labels"
REFERENCE_SCORES_TABLE = "churn_reference_scores"
_MLPROD_HOME = os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "mlprod")
# The monitored window (see airflow_provider_mlprod.examples.windows): the data interval of a scheduled
# run, the last whole UTC day of a manual one (which may have no logical date).
WINDOW_START = "{{ mlprod_window(dag_run).start_iso }}"
WINDOW_END = "{{ mlprod_window(dag_run).end_iso }}"
_WINDOW_START_SQL = "{{ mlprod_window(dag_run).start_sql }}"
_WINDOW_END_SQL = "{{ mlprod_window(dag_run).end_sql }}"
# Bound by the database driver (DataDriftOperator ``parameters``), never pasted into the SQL.
WINDOW_FILTER = "scored_at >= :window_start AND scored_at < :window_end"
CHAMPION_VERSION = "{{ ti.xcom_pull(task_ids='ensure_champion')['version'] }}"
WINDOW_PARAMETERS = {"window_start": _WINDOW_START_SQL, "window_end": _WINDOW_END_SQL}

guardrail_alert = MlprodNotifier(
    title="Guardrail fired: {{ ti.task_id }} in {{ dag.dag_id }}",
    severity="critical",
)


@dag(
    dag_id="mlprod_monitoring",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs share the prediction and label tables
    doc_md=__doc__,
    tags=["mlprod", "example"],
    user_defined_macros={"mlprod_window": run_window},
    params={
        "scenario": Param(
            "healthy",
            enum=["healthy", "degraded", "late_labels"],
            description="What to simulate: healthy traffic, a degraded model, or labels that arrive late.",
        ),
        "warehouse_conn_id": Param(
            "mlprod_warehouse",
            type="string",
            description="Connection id of the warehouse holding predictions and labels (any SQL connection).",
        ),
        "artifact_root": Param(
            f"file://{_MLPROD_HOME}/models",
            type="string",
            description="Where a first champion's artifact is written (any ObjectStoragePath URI; use shared "
            "storage such as s3:// when tasks run on more than one machine).",
        ),
        "predictions_per_window": Param(
            1000,
            type="integer",
            minimum=100,
            description="Predictions the simulated serving makes per window.",
        ),
        "serving_seed": Param(21, type="integer", description="Seed of the simulated traffic."),
        "sensor_poke_seconds": Param(
            10, type="number", exclusiveMinimum=0, description="Seconds between two checks of each sensor."
        ),
        "freshness_timeout_seconds": Param(
            300,
            type="number",
            exclusiveMinimum=0,
            description="How long wait_for_predictions waits for the window's predictions, in seconds.",
        ),
        "label_timeout_seconds": Param(
            60,
            type="number",
            exclusiveMinimum=0,
            description="How long wait_for_labels waits for the labels, in seconds (days for a real model).",
        ),
    },
    default_args={"retries": 0},
)
def mlprod_monitoring():
    @task
    def ensure_champion(params=None, ti=None) -> dict:
        """Return the champion; train, gate and promote a first one when the model has none."""
        import pickle

        import pandas as pd
        import sqlalchemy as sa
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.gates import evaluate_gate
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook
        from airflow_provider_mlprod.operators.run_context import run_identity

        registry = MetricsStoreHook().registry()
        engine = engine_for_connection(params["warehouse_conn_id"])
        try:
            with engine.begin() as connection:
                if not sa.inspect(connection).has_table("customer_training"):
                    make_customers(3000, seed=1).to_sql("customer_training", connection, index=False)
            training = pd.read_sql_table("customer_training", engine)
            champion = registry.champion(MODEL_NAME)
            if champion is None:
                identity = run_identity({"ti": ti})
                model, metrics = fit_churn_model(training)
                version = version_from_run_id(f"bootstrap-{ti.run_id}")
                registry.register(
                    identity,
                    name=MODEL_NAME,
                    version=version,
                    artifact_uri=save_model(model, params["artifact_root"], version),
                    metrics=metrics,
                    training_data=f"{params['warehouse_conn_id']}:customer_training",
                )
                gate = evaluate_gate(metrics, {"roc_auc": {"min": 0.7}, "accuracy": {"min": 0.6}})
                registry.record_blessing(
                    identity,
                    name=MODEL_NAME,
                    version=version,
                    passed=gate.passed,
                    baseline_version=None,
                    summary=gate.to_dict(),
                )
                registry.promote(identity, name=MODEL_NAME, version=version)
                champion = registry.champion(MODEL_NAME)
            model = pickle.loads(ObjectStoragePath(champion.artifact_uri).read_bytes())
            with engine.begin() as connection:
                has_scores = (
                    sa.inspect(connection).has_table(REFERENCE_SCORES_TABLE)
                    and connection.execute(
                        sa.text(f"SELECT COUNT(*) FROM {REFERENCE_SCORES_TABLE} WHERE model_version = :v"),
                        {"v": champion.version},
                    ).scalar_one()
                )
                if not has_scores:
                    scores = model.predict_proba(training[FEATURES])[:, 1]
                    pd.DataFrame(
                        {
                            "model_version": champion.version,
                            "score": scores.round(6),
                            "predicted_class": (scores >= 0.5).astype(int),
                        }
                    ).to_sql(REFERENCE_SCORES_TABLE, connection, index=False, if_exists="append")
        finally:
            engine.dispose()
        return {"version": champion.version, "artifact_uri": champion.artifact_uri, **champion.metrics}

    @task
    def simulate_serving(champion: dict, params=None, dag_run=None):
        """Score the window's customers with the champion; write predictions and the labels arrived so far."""
        import pickle

        import numpy as np
        import pandas as pd
        import sqlalchemy as sa
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection

        scenario, rows = params["scenario"], params["predictions_per_window"]
        start, end = run_window(dag_run).naive_utc()
        span = (end - start).total_seconds()
        day = start.strftime("%Y%m%d%H%M")
        rng = np.random.default_rng(params["serving_seed"])
        customers = make_customers(rows, params["serving_seed"], shift=scenario == "degraded")
        model = pickle.loads(ObjectStoragePath(champion["artifact_uri"]).read_bytes())
        scores = model.predict_proba(customers[FEATURES])[:, 1]
        offsets = np.sort(rng.uniform(0, span - 1, rows)).round()
        predictions = customers[["customer_id", *FEATURES]].assign(
            prediction_id=[f"{day}-{i:06d}" for i in range(rows)],
            scored_at=start + pd.to_timedelta(offsets, unit="s"),
            model_version=champion["version"],
            score=scores.round(6),
            predicted_class=(scores >= 0.5).astype(int),
        )
        label = customers["churned"].to_numpy()
        if scenario == "degraded":  # the world moved on: a third of the outcomes contradict the model
            label = np.where(rng.random(rows) < 0.35, 1 - label, label)
        arrived = rng.random(rows) < (0.3 if scenario == "late_labels" else 0.95)
        labels = pd.DataFrame(
            {
                "prediction_id": predictions["prediction_id"][arrived],
                "label": label[arrived],
                "labelled_at": predictions["scored_at"][arrived] + pd.Timedelta(hours=6),
            }
        )
        engine = engine_for_connection(params["warehouse_conn_id"])
        try:
            with engine.begin() as connection:
                for table in (PREDICTIONS_TABLE, LABELS_TABLE):  # a rerun replaces its window
                    if sa.inspect(connection).has_table(table):
                        connection.execute(
                            sa.text(f"DELETE FROM {table} WHERE prediction_id LIKE :window"),
                            {"window": f"{day}-%"},
                        )
                predictions.to_sql(PREDICTIONS_TABLE, connection, index=False, if_exists="append")
                labels.to_sql(LABELS_TABLE, connection, index=False, if_exists="append")
        finally:
            engine.dispose()
        return {"predictions": rows, "labels": int(arrived.sum())}

    wait_for_predictions = ParamsFreshnessSensor(
        task_id="wait_for_predictions",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        table=PREDICTIONS_TABLE,
        timestamp_column="scored_at",
        newer_than=WINDOW_START,
        min_new_rows=100,
        deferrable=True,
        on_failure_callback=guardrail_alert,
    )
    wait_for_labels = ParamsGroundTruthSensor(
        task_id="wait_for_labels",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        predictions_table=PREDICTIONS_TABLE,
        labels_table=LABELS_TABLE,
        key_column="prediction_id",
        timestamp_column="scored_at",
        label_column="label",
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        min_label_share=0.8,
        deferrable=True,
        on_failure_callback=guardrail_alert,
    )
    monitor_performance = ModelPerformanceMonitorOperator(
        task_id="monitor_performance",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        model_name=MODEL_NAME,
        model_type="classification",
        predictions_table=PREDICTIONS_TABLE,
        labels_table=LABELS_TABLE,
        key_column="prediction_id",
        timestamp_column="scored_at",
        prediction_column="predicted_class",
        score_column="score",
        tolerances={
            "roc_auc": {"min_absolute_change": -0.05, "min": 0.65},
            "accuracy": {"min_absolute_change": -0.05},
        },
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        if_no_baseline="fail",
        on_degradation="continue",  # the degraded Asset is recorded only for a task that succeeds
        on_failure_callback=guardrail_alert,
    )
    prediction_drift = DataDriftOperator(
        task_id="prediction_drift",
        reference_sql_conn_id="{{ params.warehouse_conn_id }}",
        reference_query=f"SELECT score, predicted_class FROM {REFERENCE_SCORES_TABLE} "
        "WHERE model_version = :champion_version",
        reference_parameters={
            "champion_version": "{{ ti.xcom_pull(task_ids='ensure_champion')['version'] }}"
        },
        sql_conn_id="{{ params.warehouse_conn_id }}",
        query=f"SELECT score, predicted_class FROM {PREDICTIONS_TABLE} WHERE {WINDOW_FILTER}",
        parameters=WINDOW_PARAMETERS,
        columns=["score", "predicted_class"],
        column_kinds={"score": "numeric", "predicted_class": "categorical"},
        dataset_name=PREDICTIONS_TABLE,
        on_failure="fail",
        on_failure_callback=guardrail_alert,
    )
    feature_drift = DataDriftOperator(
        task_id="feature_drift",
        reference_sql_conn_id="{{ params.warehouse_conn_id }}",
        reference_table="customer_training",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        query=f"SELECT {', '.join(FEATURES)} FROM {PREDICTIONS_TABLE} WHERE {WINDOW_FILTER}",
        parameters=WINDOW_PARAMETERS,
        columns=FEATURES,
        column_kinds={"plan": "categorical"},
        dataset_name="churn_serving_features",
        on_failure="fail",
        on_failure_callback=guardrail_alert,
    )
    drift_of = "{{{{ (ti.xcom_pull(task_ids='{task_id}') or {{}}).get('dataset_drift') }}}}"
    performance = "{% set perf = ti.xcom_pull(task_ids='monitor_performance') or {} %}"
    report = SendAlertOperator(
        task_id="report",
        title=performance
        + "{{ dag.dag_id }} "
        + MODEL_NAME
        + " {{ mlprod_window(dag_run).label }} ({{ params.scenario }}): "
        "{{ 'degraded' if perf.get('degraded') else 'healthy' if perf.get('passed') else 'not checked' }}",
        severity=performance
        + "{{ 'critical' if perf.get('degraded') else 'info' if perf.get('passed') else 'warning' }}",
        facts={
            "scenario": "{{ params.scenario }}",
            "window": WINDOW_START + " / " + WINDOW_END,
            "champion": "{{ (ti.xcom_pull(task_ids='ensure_champion') or {}).get('version') }}",
            "served": "{{ ti.xcom_pull(task_ids='simulate_serving') }}",
            "metrics": performance + "{{ perf.get('values') }}",
            "degraded": performance + "{{ perf.get('degraded') }}",
            "prediction drift": drift_of.format(task_id="prediction_drift"),
            "feature drift": drift_of.format(task_id="feature_drift"),
        },
    )

    champion = ensure_champion()
    served = simulate_serving(champion)
    served >> wait_for_predictions >> [wait_for_labels, prediction_drift, feature_drift]
    wait_for_labels >> monitor_performance
    # A teardown runs whatever happened upstream and does not decide the run's state.
    [
        champion,
        served,
        wait_for_predictions,
        wait_for_labels,
        monitor_performance,
        prediction_drift,
        feature_drift,
    ] >> report.as_teardown()


mlprod_monitoring()

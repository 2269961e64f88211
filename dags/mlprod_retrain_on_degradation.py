"""Retrain a degraded model: scheduled on the Asset ``mlprod://models/customer_churn/degraded``.

``mlprod_monitoring`` emits that Asset when the live model's metrics fall below their tolerance. This
DAG then:

1. ``train`` fits a new model on the training table ``customer_training`` plus the labelled
   predictions the serving system logged (``churn_predictions`` joined with ``churn_labels``: the
   recent outcomes the degraded model got wrong), and writes the artifact;
2. ``register``, ``gate`` and ``promote`` (compare-and-swap, then the artifact is copied to the serving
   location). The gate compares the retrained model with the champion's **live** metrics, the latest
   that ``mlprod_monitoring`` recorded for it (its registered training metrics when none were
   recorded yet): the champion degraded in production, so beating its training metrics is not the
   bar. A retrained model that is not better is rejected and the champion stays;
3. ``report`` sends what triggered the retraining (the degraded window and the failed rules, from the
   Asset event) and its outcome to the alert channels.

Trigger it by hand too (``airflow dags trigger mlprod_retrain_on_degradation``, no logical date needed):
without an Asset event it retrains on the same data. It needs a ``mlprod_monitoring`` run first (it
retrains on that DAG's tables), and, like every new DAG, it must be unpaused before the Asset event can
schedule it. Only one run at a time (``max_active_runs=1``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_mlprod.assets import model_degraded_asset
from airflow_provider_mlprod.examples.churn import (
    FEATURES,
    MODEL_NAME,
    fit_churn_model,
    save_model,
    version_from_run_id,
)
from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier
from airflow_provider_mlprod.operators.alerts import SendAlertOperator
from airflow_provider_mlprod.operators.deployment import CopyArtifactDeployment
from airflow_provider_mlprod.operators.gate import ModelMetricsGateOperator
from airflow_provider_mlprod.operators.release import release_tasks

_MLPROD_HOME = os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "mlprod")

guardrail_alert = MlprodNotifier(
    title="Guardrail fired: {{ ti.task_id }} in {{ dag.dag_id }}",
    severity="critical",
)


class LiveBaselineGateOperator(ModelMetricsGateOperator):
    """The gate, with the champion's live metrics (pushed by ``train``) as its explicit baseline."""

    def execute(self, context):
        live = (context["ti"].xcom_pull(task_ids="train") or {}).get("champion_live_metrics")
        if live:
            self.baseline = live
        return super().execute(context)


@dag(
    dag_id="mlprod_retrain_on_degradation",
    schedule=[model_degraded_asset(MODEL_NAME)],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["mlprod", "example"],
    params={
        "warehouse_conn_id": Param(
            "mlprod_warehouse",
            type="string",
            description="Connection id of the warehouse with mlprod_monitoring's tables (any SQL one).",
        ),
        "artifact_root": Param(
            f"file://{_MLPROD_HOME}/models",
            type="string",
            description="Where the retrained model's artifact is written (any ObjectStoragePath URI; use "
            "shared storage such as s3:// when tasks run on more than one machine).",
        ),
        "serving_uri": Param(
            f"file://{_MLPROD_HOME}/serving/{MODEL_NAME}.pkl",
            type="string",
            description="Where a promoted model's artifact is copied for serving (ObjectStoragePath URI).",
        ),
    },
    default_args={"retries": 0},
)
def mlprod_retrain_on_degradation():
    @task
    def train(params=None, run_id=None, triggering_asset_events=None) -> dict:
        """Fit a model on the training table plus the labelled serving log; return its metrics."""

        import pandas as pd

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        # One pass over the triggering events; an event reached through both the Asset and its alias
        # counts once.
        triggers, seen = [], set()
        for events in (triggering_asset_events or {}).values():
            for event in events:
                key = (event.source_dag_id, event.source_run_id, str(event.timestamp))
                if key not in seen:
                    seen.add(key)
                    triggers.append(
                        {"window": event.extra.get("window"), "failed": event.extra.get("failed")}
                    )
                    print(f"Retraining after degradation on window {event.extra.get('window')}")
        store = MetricsStoreHook()
        champion = store.registry().champion(MODEL_NAME)
        live_metrics = {}
        if champion is not None:
            for metric in ("roc_auc", "log_loss"):
                history = store.metrics_store().metric_history(
                    metric, model_name=MODEL_NAME, model_version=champion.version, limit=1
                )
                if history:
                    live_metrics[metric] = history[-1].value
            if len(live_metrics) < 2:  # not monitored yet: its registered metrics are all there is
                live_metrics = {}
            print(f"Champion {champion.version}: live metrics {live_metrics or 'not recorded yet'}")
        engine = engine_for_connection(params["warehouse_conn_id"])
        try:
            training = pd.read_sql_table("customer_training", engine)
            served = pd.read_sql_query(
                f"SELECT {', '.join(f'p.{column}' for column in FEATURES)}, l.label AS churned "
                "FROM churn_predictions p JOIN churn_labels l ON l.prediction_id = p.prediction_id",
                engine,
            )
        finally:
            engine.dispose()
        model, metrics = fit_churn_model(pd.concat([training[[*FEATURES, "churned"]], served]))
        version = version_from_run_id(run_id)
        artifact_uri = save_model(model, params["artifact_root"], version)
        return {
            "version": version,
            "artifact_uri": artifact_uri,
            "metrics": metrics,
            "rows": {"training": len(training), "labelled_serving": len(served)},
            "triggered_by": triggers,
            "champion_live_metrics": live_metrics,
        }

    trained = train()
    version = "{{ ti.xcom_pull(task_ids='train')['version'] }}"
    release = release_tasks(
        model_name=MODEL_NAME,
        model_version=version,
        artifact_uri="{{ ti.xcom_pull(task_ids='train')['artifact_uri'] }}",
        training_data="{{ params.warehouse_conn_id }}:customer_training+churn_predictions/churn_labels",
        metrics_task_id="train",
        metrics_key="metrics",
        thresholds={
            "roc_auc": {"min": 0.7, "min_absolute_change": -0.01},
            "log_loss": {"max": 0.65, "greater_is_better": False},
        },
        if_no_baseline="pass",
        gate_class=LiveBaselineGateOperator,
        gate_kwargs={"on_failure_callback": guardrail_alert},
        deployment=CopyArtifactDeployment("{{ params.serving_uri }}"),
    )
    report = SendAlertOperator(
        task_id="report",
        title="{{ dag.dag_id }} {{ run_id }}: "
        "{{ 'model ' ~ ti.xcom_pull(task_ids='promote')['version'] ~ ' promoted' "
        "if ti.xcom_pull(task_ids='promote') else 'champion kept' }}",
        severity="{{ 'info' if ti.xcom_pull(task_ids='promote') else 'warning' }}",
        facts={
            "triggered by": "{{ (ti.xcom_pull(task_ids='train') or {}).get('triggered_by') }}",
            "training rows": "{{ (ti.xcom_pull(task_ids='train') or {}).get('rows') }}",
            "metrics": "{{ (ti.xcom_pull(task_ids='train') or {}).get('metrics') }}",
            "gate passed": "{{ (ti.xcom_pull(task_ids='gate') or {}).get('passed') }}",
            "champion": "{{ (ti.xcom_pull(task_ids='promote') or {}).get('version') }}",
        },
    )
    trained >> release.group
    [trained, release.register, release.gate, release.approve, release.promote] >> report.as_teardown()


mlprod_retrain_on_degradation()

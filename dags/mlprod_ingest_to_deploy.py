"""Ingestion to deployment, with every guardrail: validate, quarantine, load, drift, train, gate, promote.

1. ``land_batch`` writes a raw CSV batch of customer records to the landing folder.
2. ``validate_batch`` checks it with the Great Expectations suite ``expectations/customer_batch.json``;
   rows failing a critical row-level expectation are quarantined, a batch failing the suite is blocked.
3. ``load_warehouse`` appends the clean rows to the warehouse table ``customer_features`` (the
   ``warehouse_conn_id`` connection: SQLite, PostgreSQL or any SQL connection) and seeds the training
   table ``customer_training`` on the first run.
4. ``check_drift`` compares the batch with the training data inside the warehouse (per-bin and
   per-category counts by ``GROUP BY``); a drifted batch stops the run and alerts, and
   ``quarantine_drifted_rows`` moves its rows out of ``customer_features`` into
   ``customer_features_drifted``, so no later training uses them.
5. ``train`` fits a scikit-learn model on training data plus the new clean rows; ``register``,
   ``gate`` (thresholds and no worse than the champion) and ``promote`` (compare-and-swap, then copy
   the artifact to the serving location).
6. Validation, drift and promotion emit Asset events (``mlprod://datasets/customer_batch/validated``,
   ``mlprod://datasets/customer_features/drift``, ``mlprod://models/customer_churn``) that other DAGs
   can be scheduled on.
7. ``report`` sends a summary of the run to the alert channels (``[mlprod] alert_conn_ids``; the task
   log by default), whatever happened; a failing guardrail also alerts through its task callback.

Scenario Param ``scenario``: ``good``; ``corrupt_batch`` (a third of the rows broken: blocked and
quarantined); ``drifted_batch`` (charges, usage and plans shifted: drift alerted, no training);
``worse_model`` (training on a small noisy sample: the gate rejects it, the champion stays).

Everything is configurable through Params: ``landing_uri``, ``serving_uri`` and ``artifact_root`` take
any ObjectStoragePath URI, ``warehouse_conn_id`` any SQL connection.
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
from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier
from airflow_provider_mlprod.operators.alerts import SendAlertOperator
from airflow_provider_mlprod.operators.deployment import CopyArtifactDeployment
from airflow_provider_mlprod.operators.drift import DataDriftOperator
from airflow_provider_mlprod.operators.release import release_tasks
from airflow_provider_mlprod.operators.validation import DataValidationOperator

_MLPROD_HOME = os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "mlprod")

guardrail_alert = MlprodNotifier(
    title="Guardrail fired: {{ ti.task_id }} in {{ dag.dag_id }}",
    severity="critical",
)


@dag(
    dag_id="mlprod_ingest_to_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["mlprod", "example"],
    params={
        "scenario": Param(
            "good",
            enum=["good", "corrupt_batch", "drifted_batch", "worse_model"],
            description="What to simulate: a good batch, a corrupt one, a drifted one, or a worse model.",
        ),
        "batch_seed": Param(11, type="integer", description="Seed of the generated batch."),
        "landing_uri": Param(
            f"file://{_MLPROD_HOME}/landing",
            type="string",
            description="Where raw batches land and are quarantined (any ObjectStoragePath URI; use shared "
            "storage such as s3:// when tasks run on more than one machine).",
        ),
        "artifact_root": Param(
            f"file://{_MLPROD_HOME}/models",
            type="string",
            description="Where trained model artifacts are written (any ObjectStoragePath URI; shared "
            "storage when tasks run on more than one machine).",
        ),
        "serving_uri": Param(
            f"file://{_MLPROD_HOME}/serving/{MODEL_NAME}.pkl",
            type="string",
            description="Where a promoted model's artifact is copied for serving (ObjectStoragePath URI).",
        ),
        "warehouse_conn_id": Param(
            "mlprod_warehouse",
            type="string",
            description="Connection id of the warehouse the clean rows are loaded into (any SQL connection).",
        ),
        "require_approval": Param(
            False,
            type="boolean",
            description="Ask a human to approve the promotion under Required Actions (off: unattended).",
        ),
    },
    default_args={"retries": 0},
)
def mlprod_ingest_to_deploy():
    @task
    def land_batch(params=None, run_id=None) -> str:
        """Write this run's raw batch as CSV to the landing folder; return its URI."""
        from airflow.sdk import ObjectStoragePath

        scenario = params["scenario"]
        batch = make_customers(1000, params["batch_seed"], shift=scenario == "drifted_batch")
        broken = 300 if scenario == "corrupt_batch" else 8  # a few bad rows always: quarantined
        batch.loc[: broken - 1, "monthly_charges"] = -batch.loc[: broken - 1, "monthly_charges"]
        target = ObjectStoragePath(params["landing_uri"]) / version_from_run_id(run_id) / "customers.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as handle:
            batch.to_csv(handle, index=False)
        return str(target)

    landed = land_batch()

    validate_batch = DataValidationOperator(
        task_id="validate_batch",
        suite="expectations/customer_batch.json",
        file_path="{{ ti.xcom_pull(task_ids='land_batch') }}",
        quarantine_folder="{{ ti.xcom_pull(task_ids='land_batch') | replace('.csv', '_quarantine') }}",
        dataset_name="customer_batch",
        emit_asset=True,
        on_failure_callback=guardrail_alert,
    )

    @task
    def load_warehouse(params=None, run_id=None, ti=None) -> dict:
        """Append the clean rows to the warehouse; seed the training table on first use."""
        import pandas as pd
        import sqlalchemy as sa
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection
        from airflow_provider_mlprod.validation.output_folder import read_output_manifest

        # The quarantine folder's manifest names the complete outputs of the try that published last.
        summary = ti.xcom_pull(task_ids="validate_batch")
        folder = ObjectStoragePath(summary["quarantine"]["manifest_location"]).parent
        published = read_output_manifest(folder)
        print(f"Loading the passing rows of try {published['try']} of {folder}")
        with ObjectStoragePath(published["locations"]["passing"]).open("r") as handle:
            clean = pd.read_csv(handle)
        clean["batch_id"] = run_id
        engine = engine_for_connection(params["warehouse_conn_id"])
        try:
            with engine.begin() as connection:
                if not sa.inspect(connection).has_table("customer_training"):
                    make_customers(3000, seed=1).to_sql("customer_training", connection, index=False)
                if sa.inspect(connection).has_table("customer_features"):
                    connection.execute(
                        sa.text("DELETE FROM customer_features WHERE batch_id = :b"), {"b": run_id}
                    )
                clean.to_sql("customer_features", connection, index=False, if_exists="append")
        finally:
            engine.dispose()
        return {"rows_loaded": len(clean), "quarantined": summary["quarantine"]["failing_rows"]}

    check_drift = DataDriftOperator(
        task_id="check_drift",
        reference_sql_conn_id="{{ params.warehouse_conn_id }}",
        reference_table="customer_training",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        query="SELECT * FROM customer_features WHERE batch_id = :batch_id",
        parameters={"batch_id": "{{ run_id }}"},
        columns=FEATURES,
        column_kinds={"plan": "categorical"},
        dataset_name="customer_features",
        emit_asset=True,
        on_failure="fail",
        on_failure_callback=guardrail_alert,
    )

    @task(trigger_rule="one_failed")
    def quarantine_drifted_rows(params=None, run_id=None) -> dict:
        """After a failed drift check: move this batch's rows out of the table training reads."""
        import sqlalchemy as sa

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection

        engine = engine_for_connection(params["warehouse_conn_id"])
        try:
            with engine.begin() as connection:
                if not sa.inspect(connection).has_table("customer_features"):
                    return {"rows_quarantined": 0}
                drifted = "customer_features_drifted"
                if not sa.inspect(connection).has_table(drifted):
                    connection.execute(
                        sa.text(f"CREATE TABLE {drifted} AS SELECT * FROM customer_features WHERE 1 = 0")
                    )
                batch = {"b": run_id}
                connection.execute(sa.text(f"DELETE FROM {drifted} WHERE batch_id = :b"), batch)
                connection.execute(
                    sa.text(f"INSERT INTO {drifted} SELECT * FROM customer_features WHERE batch_id = :b"),
                    batch,
                )
                moved = connection.execute(
                    sa.text("DELETE FROM customer_features WHERE batch_id = :b"), batch
                )
        finally:
            engine.dispose()
        return {"rows_quarantined": moved.rowcount}

    @task
    def train(params=None, run_id=None) -> dict:
        """Fit a model on training data plus the clean new rows; write the artifact; return its metrics."""
        import pandas as pd

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection

        engine = engine_for_connection(params["warehouse_conn_id"])
        try:
            data = pd.concat(
                [
                    pd.read_sql_table("customer_training", engine),
                    pd.read_sql_table("customer_features", engine).drop(columns=["batch_id"]),
                ]
            )
        finally:
            engine.dispose()
        model, metrics = fit_churn_model(data, degrade=params["scenario"] == "worse_model")
        version = version_from_run_id(run_id)
        return {
            "version": version,
            "artifact_uri": save_model(model, params["artifact_root"], version),
            "metrics": metrics,
        }

    version = "{{ ti.xcom_pull(task_ids='train')['version'] }}"
    release = release_tasks(
        model_name=MODEL_NAME,
        model_version=version,
        artifact_uri="{{ ti.xcom_pull(task_ids='train')['artifact_uri'] }}",
        training_data="{{ params.warehouse_conn_id }}:customer_training+customer_features",
        metrics_task_id="train",
        metrics_key="metrics",
        thresholds={
            "roc_auc": {"min": 0.7, "min_absolute_change": -0.01},
            "log_loss": {"max": 0.65, "greater_is_better": False},
        },
        if_no_baseline="pass",
        gate_kwargs={"on_failure_callback": guardrail_alert},
        deployment=CopyArtifactDeployment("{{ params.serving_uri }}"),
        require_approval="{{ params.require_approval }}",
    )
    register, gate, promote = release.register, release.gate, release.promote
    report = SendAlertOperator(
        task_id="report",
        title="{{ dag.dag_id }} {{ params.scenario }} run: "
        "{{ 'model ' ~ ti.xcom_pull(task_ids='promote')['version'] ~ ' promoted' "
        "if ti.xcom_pull(task_ids='promote') else 'no promotion' }}",
        severity="info",
        facts={
            "scenario": "{{ params.scenario }}",
            "validation": "{{ (ti.xcom_pull(task_ids='validate_batch') or {}).get('counts') }}",
            "rows loaded": "{{ (ti.xcom_pull(task_ids='load_warehouse') or {}).get('rows_loaded') }}",
            "dataset drift": "{{ (ti.xcom_pull(task_ids='check_drift') or {}).get('dataset_drift') }}",
            "gate passed": "{{ (ti.xcom_pull(task_ids='gate') or {}).get('passed') }}",
            # promoted in this run, else the champion the gate compared against
            "champion": "{{ (ti.xcom_pull(task_ids='promote') or {}).get('version') "
            "or (ti.xcom_pull(task_ids='gate') or {}).get('champion_version') or 'none yet' }}",
        },
    )

    loaded = load_warehouse()
    landed >> validate_batch >> loaded >> check_drift
    trained = train()
    check_drift >> trained >> release.group
    check_drift >> quarantine_drifted_rows()
    # A teardown runs whatever happened upstream and does not decide the run's state: a blocked run
    # still reports, and still ends failed.
    [validate_batch, loaded, check_drift, trained, register, gate, promote] >> report.as_teardown()


mlprod_ingest_to_deploy()

"""Canary release of the churn model: load-test gate before promotion, SLO watch and rollback after.

Three DAGs on embedded defaults (SQLite metrics store and warehouse under ``$AIRFLOW_HOME/mlprod/``):

``mlprod_canary_release``: train the example churn model, register it, gate its metrics, start the
candidate's model server and the champion's (a setup task on this worker; a teardown task stops
them), load-test both side by side with the serving gate, optionally ask a human to approve, then
promote (requiring a passing metric and serving verdict). Param ``require_approval`` (default off,
so REST-triggered runs finish unattended) makes the ``approve`` task wait in Required Actions with
the serving verdict as its body; the approver is recorded with the promotion, and a rejection skips
it. Real deployments point
``ServingLoadTestOperator`` at their staging endpoint (an ``http`` connection) instead of starting a
server. Scenario Param ``scenario`` is the candidate server's mode, and each makes one guardrail fire:

- ``healthy``: every threshold passes; the candidate is promoted;
- ``slow``: a log-normal service time, median 120 ms: ``p95_latency_ms`` > 250 fails (and the p95
  is far above the champion's: ``p95_latency_ms_ratio`` > 5);
- ``errors``: 20 % HTTP 500: ``error_rate`` > 0.01 fails (and the status check, so
  ``output_check_pass_rate``);
- ``gibberish``: half the replies are not JSON, out of range or unknown labels:
  ``output_check_pass_rate`` < 0.99 fails;
- ``overload``: 2 requests served at a time, 20 ms each, at 150 requests/s: the queue grows, latency
  climbs (``p95_latency_ms``) and the candidate also falls behind the champion
  (``p95_latency_ms_ratio``).

``mlprod_serving_slo_watch``: writes a window of served requests to the warehouse's request log
(Param ``traffic``: ``healthy`` or ``degraded``: slow and erroring) and checks the champion's SLOs on
it; a breach emits ``mlprod://models/customer_churn/slo_breach``.

``mlprod_slo_rollback``: scheduled on that Asset: rolls the champion back to the previous version
(the registry's compare-and-swap) and alerts.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_mlprod.assets import slo_breach_asset
from airflow_provider_mlprod.operators.alerts import SendAlertOperator
from airflow_provider_mlprod.operators.gate import ModelMetricsGateOperator
from airflow_provider_mlprod.operators.registry import (
    PromoteModelOperator,
    RegisterModelOperator,
    RollbackModelOperator,
)
from airflow_provider_mlprod.operators.release import ReleaseApprovalOperator
from airflow_provider_mlprod.operators.serving import ServingLoadTestOperator, ServingSloMonitorOperator

MODEL_NAME = "customer_churn"
_MLPROD_HOME = os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "mlprod")
SCENARIOS = ["healthy", "slow", "errors", "gibberish", "overload"]
#: The candidate server's options per scenario (command-line flags of examples/model_server.py).
SCENARIO_OPTIONS = {
    "healthy": {},
    "slow": {"slow_median_ms": 120},
    "errors": {"error_share": 0.2},
    "gibberish": {"gibberish_share": 0.5},
    "overload": {"concurrency_limit": 2, "service_ms": 20},
}
OUTPUT_CHECKS = [
    {"check": "status", "allowed": [200]},
    {"check": "json"},
    {
        "check": "json_schema",
        "schema": {
            "type": "object",
            "required": ["churn_probability", "label"],
            "properties": {"churn_probability": {"type": "number"}, "label": {"type": "string"}},
        },
    },
    {"check": "range", "field": "churn_probability", "min": 0, "max": 1},
    {"check": "labels", "field": "label", "allowed": ["churn", "stay"]},
]
SERVING_THRESHOLDS = {
    "p95_latency_ms": {"max": 250},
    "p95_latency_ms_ratio": {"max": 5.0},
    "error_rate": {"max": 0.01},
    "timeout_rate": {"max": 0.0},
    "output_check_pass_rate": {"min": 0.99},
}


@dag(
    dag_id="mlprod_canary_release",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlprod", "example", "serving"],
    params={
        "scenario": Param("healthy", enum=SCENARIOS, description="The candidate server's behaviour"),
        "artifact_root": Param(
            f"file://{_MLPROD_HOME}/models",
            type="string",
            description="Where the model artifacts and the request set go (any ObjectStoragePath URI)",
        ),
        "require_approval": Param(
            False,
            type="boolean",
            description="Wait for a human to approve the promotion after the load test (Required Actions)",
        ),
    },
)
def mlprod_canary_release():
    @task
    def train(params=None, run_id=None) -> dict:
        """Train the churn model; write the artifact and a request set of customer records."""
        import json

        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.examples.churn import (
            FEATURES,
            fit_churn_model,
            make_customers,
            save_model,
            version_from_run_id,
        )

        version = version_from_run_id(run_id)
        model, metrics = fit_churn_model(make_customers(3000, seed=11))
        artifact = save_model(model, params["artifact_root"], version)
        requests = ObjectStoragePath(params["artifact_root"]) / f"requests-{version}.jsonl"
        records = make_customers(200, seed=21)[FEATURES].to_dict("records")
        requests.write_text("".join(json.dumps(r, default=float) + "\n" for r in records))
        return {"version": version, "artifact_uri": artifact, "metrics": metrics, "requests": str(requests)}

    trained = train()
    version = "{{ ti.xcom_pull(task_ids='train')['version'] }}"
    register = RegisterModelOperator(
        task_id="register",
        model_name=MODEL_NAME,
        model_version=version,
        artifact_uri="{{ ti.xcom_pull(task_ids='train')['artifact_uri'] }}",
        training_data="examples.churn.make_customers(3000, seed=11)",
        metrics_task_id="train",
        metrics_key="metrics",
    )
    metric_gate = ModelMetricsGateOperator(
        task_id="metric_gate",
        model_name=MODEL_NAME,
        model_version=version,
        thresholds={"roc_auc": {"min": 0.7}},
    )

    @task
    def start_servers(params=None, ti=None) -> dict:
        """Start the candidate's server (in the scenario's mode) and the champion's, on free ports."""
        from airflow_provider_mlprod.examples.model_server import ModelServerProcess
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        trained = ti.xcom_pull(task_ids="train")
        champion = MetricsStoreHook().registry().champion(MODEL_NAME)
        champion_artifact = champion.artifact_uri if champion else trained["artifact_uri"]
        candidate = ModelServerProcess(
            mode=params["scenario"],
            model=trained["artifact_uri"],
            model_version=trained["version"],
            max_seconds=900,  # a bound even if the teardown never runs
            **SCENARIO_OPTIONS[params["scenario"]],
        ).start()
        baseline = ModelServerProcess(mode="healthy", model=champion_artifact, max_seconds=900).start()
        return {
            "candidate_url": candidate.url + "/predict",
            "champion_url": baseline.url + "/predict",
            "pids": [candidate.process.pid, baseline.process.pid],
        }

    servers = start_servers()
    load_test = ServingLoadTestOperator(
        task_id="load_test",
        model_name=MODEL_NAME,
        model_version=version,
        endpoint_url="{{ ti.xcom_pull(task_ids='start_servers')['candidate_url'] }}",
        champion_endpoint_url="{{ ti.xcom_pull(task_ids='start_servers')['champion_url'] }}",
        requests_path="{{ ti.xcom_pull(task_ids='train')['requests'] }}",
        mode="open",
        rate=300,  # over both endpoints: 150 requests/s each
        requests=300,
        warmup_requests=20,
        timeout_s=5.0,
        output_checks=OUTPUT_CHECKS,
        thresholds=SERVING_THRESHOLDS,
    )

    @task(trigger_rule="all_done")
    def stop_servers(ti=None) -> None:
        """Stop the servers the setup task started (on this machine: a pid means nothing elsewhere)."""
        import logging

        from airflow_provider_mlprod.examples.model_server import stop_server_process

        for pid in (ti.xcom_pull(task_ids="start_servers") or {}).get("pids", []):
            if not stop_server_process(pid):
                logging.getLogger(__name__).warning(
                    "No model server with pid %s on this machine (started on another worker?); "
                    "it stops itself after its max_seconds",
                    pid,
                )

    approve = ReleaseApprovalOperator(
        task_id="approve",
        gate_task_id="load_test",
        require_approval="{{ params.require_approval }}",
        subject=f"Promote this {MODEL_NAME} version after its load test?",
    )
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL_NAME,
        model_version=version,
        require=["metrics", "serving"],
        approved_by="{{ (ti.xcom_pull(task_ids='approve') or {}).get('approved_by') or '' }}",
    )
    stop = stop_servers()
    trained >> register >> metric_gate >> servers >> load_test >> approve >> promote
    load_test >> stop.as_teardown(setups=servers)


mlprod_canary_release()


@dag(
    dag_id="mlprod_serving_slo_watch",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlprod", "example", "serving"],
    params={
        "traffic": Param("healthy", enum=["healthy", "degraded"], description="The served requests"),
        "warehouse_conn_id": Param("mlprod_warehouse", type="string", description="Any SQL connection"),
    },
)
def mlprod_serving_slo_watch():
    @task
    def log_requests(params=None, data_interval_start=None, dag_run=None) -> dict:
        """Write one window of the champion's served requests to the warehouse's request log."""
        import random
        from datetime import timedelta

        import sqlalchemy as sa

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        champion = MetricsStoreHook().registry().alias_version(MODEL_NAME, "champion") or "none"
        start = (data_interval_start or dag_run.run_after).replace(tzinfo=None, microsecond=0)
        start = start - timedelta(minutes=10)
        degraded = params["traffic"] == "degraded"
        rng = random.Random(5)
        rows = [
            {
                "ts": start + timedelta(seconds=i),
                "latency_ms": rng.lognormvariate(6.0 if degraded else 3.0, 0.5),
                "status": 500 if degraded and rng.random() < 0.05 else 200,
                "model_version": champion,
            }
            for i in range(600)
        ]
        metadata = sa.MetaData()
        table = sa.Table(
            "request_log",
            metadata,
            sa.Column("ts", sa.DateTime),
            sa.Column("latency_ms", sa.Float),
            sa.Column("status", sa.Integer),
            sa.Column("model_version", sa.String(200)),
        )
        engine = engine_for_connection(params["warehouse_conn_id"])
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(table.insert(), rows)
        return {"window_start": start.isoformat(), "window_end": (start + timedelta(minutes=10)).isoformat()}

    window = log_requests()
    watch = ServingSloMonitorOperator(
        task_id="slo_watch",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        model_name=MODEL_NAME,
        request_log_table="request_log",
        window_start="{{ ti.xcom_pull(task_ids='log_requests')['window_start'] }}",
        window_end="{{ ti.xcom_pull(task_ids='log_requests')['window_end'] }}",
        slos={"p95_latency_ms": {"max": 250}, "error_rate": {"max": 0.01}, "requests": {"min": 100}},
        on_breach="continue",
    )
    window >> watch


mlprod_serving_slo_watch()


@dag(
    dag_id="mlprod_slo_rollback",
    doc_md=__doc__,
    schedule=[slo_breach_asset(MODEL_NAME)],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlprod", "example", "serving"],
)
def mlprod_slo_rollback():
    alert_breach = SendAlertOperator(
        task_id="alert_breach",
        title=f"SLO breach: {MODEL_NAME}, rolling back the champion",
        severity="critical",
        text="The SLO watch of the champion found a breach (see the mlprod_serving_slo_watch run).",
    )
    rollback = RollbackModelOperator(task_id="rollback", model_name=MODEL_NAME)
    alert_done = SendAlertOperator(
        task_id="alert_rolled_back",
        title=f"{MODEL_NAME} rolled back to version {{{{ ti.xcom_pull(task_ids='rollback')['version'] }}}}",
        severity="warning",
    )
    alert_breach >> rollback >> alert_done


mlprod_slo_rollback()

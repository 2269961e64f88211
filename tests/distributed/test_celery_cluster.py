"""The flagship DAG and the release path on a distributed Airflow: CeleryExecutor, two workers.

Both DAGs are triggered through the REST API with no logical date and run on ``worker-a`` and
``worker-b`` (see conftest.py), which share nothing local but the ``shared/`` folder. The test checks
which worker ran each task, that both wrote to the one PostgreSQL metrics store (champion, blessings,
history), that the reports written by a worker open through the API server, and that a worker without
the store connection fails closed, naming the connection, instead of keeping a store of its own.
"""

from __future__ import annotations

import time

import pytest

from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.registry import ModelRegistry

pytestmark = pytest.mark.distributed

FLAGSHIP_DAG_ID = "mlprod_ingest_to_deploy"
RELEASE_DAG_ID = "mlprod_train_and_promote"
FLAGSHIP_MODEL = "customer_churn"
RELEASE_MODEL = "churn_classifier"


def test_flagship_and_release_path_run_across_two_celery_workers(cluster):
    started = time.monotonic()
    for dag_id in (FLAGSHIP_DAG_ID, RELEASE_DAG_ID):
        cluster.wait_for_dag(dag_id)

    flagship_run = cluster.trigger(
        FLAGSHIP_DAG_ID,
        {"scenario": "good", "warehouse_conn_id": "mlprod_warehouse", **cluster.shared_uris(FLAGSHIP_MODEL)},
    )
    release_run = cluster.trigger(
        RELEASE_DAG_ID, {"model_quality": "good", **cluster.shared_uris(RELEASE_MODEL)}
    )
    cluster.wait_for_runs({FLAGSHIP_DAG_ID: flagship_run, RELEASE_DAG_ID: release_run})

    # Every task ran; which worker ran it comes from the REST API's task instances.
    flagship = cluster.task_instances(FLAGSHIP_DAG_ID, flagship_run)
    release = cluster.task_instances(RELEASE_DAG_ID, release_run)
    assert flagship.pop("quarantine_drifted_rows")["state"] == "skipped"  # only after a failed drift check
    assert {ti["state"] for ti in (*flagship.values(), *release.values())} == {"success"}
    hosts = {
        **{f"{FLAGSHIP_DAG_ID}.{task}": ti["hostname"] for task, ti in flagship.items()},
        **{f"{RELEASE_DAG_ID}.{task}": ti["hostname"] for task, ti in release.items()},
    }
    print(f"worker per task: {hosts}")
    assert set(hosts.values()) == set(cluster.WORKERS), f"tasks did not run on both workers: {hosts}"

    # Both workers wrote to the one store: the same store id in every summary that names one.
    store_ids = {
        ti["hostname"]: summary["store_id"]
        for dag_id, run_id, tis in (
            (FLAGSHIP_DAG_ID, flagship_run, flagship),
            (RELEASE_DAG_ID, release_run, release),
        )
        for task, ti in tis.items()
        if isinstance(summary := cluster.xcom(dag_id, run_id, task), dict) and "store_id" in summary
    }
    assert len(set(store_ids.values())) == 1, store_ids

    engine = create_store_engine(cluster.database_url("store"))
    try:
        registry = ModelRegistry(engine)
        for dag_id, model, run_id in (
            (FLAGSHIP_DAG_ID, FLAGSHIP_MODEL, flagship_run),
            (RELEASE_DAG_ID, RELEASE_MODEL, release_run),
        ):
            version = cluster.xcom(dag_id, run_id, "train")["version"]
            champion = registry.champion(model)
            assert champion is not None, model
            assert champion.version == version, (model, champion)
            assert champion.artifact_uri.startswith(f"file://{cluster.shared}/models/"), champion.artifact_uri
            verdicts = registry.verdicts(model, version)
            assert [(v.kind, v.passed, v.baseline_version) for v in verdicts] == [("metrics", True, None)]
            events = [(e["event"], e["version"], e["run_id"]) for e in registry.events(model)]
            assert ("promoted", version, run_id) in events, events
            assert [e for e in events if e[0] == "promoted"] == [("promoted", version, run_id)], events
        history = MetricsStore(engine)
        validations = history.validation_history(dataset="customer_batch")
        assert [(row["suite"], row["success"]) for row in validations] == [("customer_batch", True)], (
            validations
        )
        assert history.drift_history("customer_features"), "no drift history in the shared store"
    finally:
        engine.dispose()
    assert (cluster.shared / "serving" / f"{FLAGSHIP_MODEL}.pkl").is_file()
    assert (cluster.shared / "serving" / f"{RELEASE_MODEL}.pkl").is_file()
    embedded = [
        str(p)
        for home in (cluster.home, *map(cluster.worker_home, cluster.WORKERS))
        for p in home.rglob("*.db")
    ]
    assert embedded == [], f"a process kept a local SQLite store: {embedded}"

    # The report written by a worker into the shared folder opens through the API server.
    safe_run = "".join(c if c.isalnum() or c in "._-" else "_" for c in flagship_run).strip("_")
    report_path = f"/mlprod/reports/validation/{FLAGSHIP_DAG_ID}/{safe_run}/validate_batch.html"
    links = cluster.api(
        "GET", f"{cluster.run_path(FLAGSHIP_DAG_ID, flagship_run)}/taskInstances/validate_batch/links"
    )
    assert links["extra_links"].get("mlprod report") == cluster.base_url + report_path, links
    status, body = cluster.raw_get(report_path)
    assert (status, "<html" in body.lower()) == (200, True), body[:300]
    assert f"Validation of file://{cluster.shared}/landing/" in body, body[:300]
    assert list((cluster.shared / "reports").rglob("validate_batch.html")), "report not in the shared folder"
    print(f"flagship and release path on two workers: {time.monotonic() - started:.0f} s")


CANARY_DAG_ID = "mlprod_canary_release"


def test_the_canary_release_gates_on_serving_across_the_workers(cluster):
    """The canary example's servers run on the worker of its setup task, on that machine's loopback: on
    this one-machine cluster the load test reaches them from either worker (on several machines, point
    ServingLoadTestOperator at a staging endpoint, as the README says)."""
    started = time.monotonic()
    cluster.wait_for_dag(CANARY_DAG_ID)
    shared = cluster.shared_uris(FLAGSHIP_MODEL)
    run_id = cluster.trigger(CANARY_DAG_ID, {"scenario": "healthy", "artifact_root": shared["artifact_root"]})
    cluster.wait_for_runs({CANARY_DAG_ID: run_id})
    tis = cluster.task_instances(CANARY_DAG_ID, run_id)
    assert {task: ti["state"] for task, ti in tis.items()}["promote"] == "success", tis
    print(f"canary worker per task: { {task: ti['hostname'] for task, ti in tis.items()} }")
    version = cluster.xcom(CANARY_DAG_ID, run_id, "train")["version"]
    engine = create_store_engine(cluster.database_url("store"))
    try:
        registry = ModelRegistry(engine)
        assert registry.champion(FLAGSHIP_MODEL).version == version
        kinds = {(v.kind, v.passed) for v in registry.verdicts(FLAGSHIP_MODEL, version)}
        assert {("metrics", True), ("serving", True)} <= kinds, kinds
    finally:
        engine.dispose()
    print(f"canary release on two workers: {time.monotonic() - started:.0f} s")


def test_a_worker_without_the_store_connection_fails_closed(cluster):
    """worker-c has no store connection: the task fails at once, naming it, and writes no local store."""
    cluster.start_worker("worker-c", queues=cluster.NO_STORE_QUEUE)
    cluster.wait_for_workers(("worker-c",))
    cluster.wait_for_dag(cluster.PROBE_DAG_ID)
    run_id = cluster.trigger(cluster.PROBE_DAG_ID, {})
    assert cluster.wait_until_ended(cluster.PROBE_DAG_ID, [run_id], timeout=180) == {run_id: "failed"}

    tries = cluster.tries(cluster.PROBE_DAG_ID, run_id, "register_without_store")
    # retries=2, but a missing connection is final: one try, on worker-c.
    assert [(t["try_number"], t["state"], t["hostname"]) for t in tries] == [(1, "failed", "worker-c")], tries
    logs = cluster.task_log_files(cluster.PROBE_DAG_ID, run_id, "register_without_store")
    assert logs, "no log of the failed try"
    assert all(str(cluster.worker_home("worker-c")) in str(path) for path in logs), logs
    text = "\n".join(path.read_text(errors="replace") for path in logs)
    assert "mlprod_store_default" in text, text[-3000:]
    assert "is not defined, and the embedded SQLite store is only used by the LocalExecutor" in text
    assert "CeleryExecutor" in text
    assert list(cluster.worker_home("worker-c").rglob("*.db")) == [], "worker-c created a local store"

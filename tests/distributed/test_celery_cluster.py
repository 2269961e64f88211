"""The flagship DAG and the release path on a distributed Airflow: CeleryExecutor, two workers.

Both DAGs are triggered through the REST API with no logical date and run on ``worker-a`` and
``worker-b`` (see conftest.py), which share nothing local but the ``shared/`` folder. The test checks
which worker ran each task, that both wrote to the one PostgreSQL metrics store (champion, blessings,
history), that the reports written by a worker open through the API server, and that a worker without
a setting (the store connection, the executor, a server store, the report folder) fails closed, naming
it, instead of keeping a store or reports of its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_mlprod.examples.model_server import is_model_server_process, stop_server_process
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.migrations import store_id
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

    # Every summary that names a store names the shared one, on whichever worker its task ran. Which
    # worker runs a store-writing task is Celery's choice, so both need not have written in this run;
    # a worker configured with a store of its own fails closed (test_misconfigured_workers_...), and no
    # process may keep a local SQLite store (checked below).
    store_ids = [
        (ti["hostname"], task, summary["store_id"])
        for dag_id, run_id, tis in (
            (FLAGSHIP_DAG_ID, flagship_run, flagship),
            (RELEASE_DAG_ID, release_run, release),
        )
        for task, ti in tis.items()
        if isinstance(summary := cluster.xcom(dag_id, run_id, task), dict) and "store_id" in summary
    ]
    engine = create_store_engine(cluster.database_url("store"))
    try:
        shared_store_id = store_id(engine)
        assert store_ids, "no task summary names its store"
        assert {sid for _, _, sid in store_ids} == {shared_store_id}, (shared_store_id, store_ids)

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
    # The teardown stopped both servers (on this one machine, whichever worker ran it).
    servers = cluster.xcom(CANARY_DAG_ID, run_id, "start_servers")
    assert tis["stop_servers"]["state"] == "success", tis["stop_servers"]
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in servers["pids"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(is_model_server_process(pid) for pid in servers["pids"]), servers
    print(f"canary release on two workers: {time.monotonic() - started:.0f} s")


def test_a_canary_teardown_on_another_machine_leaves_that_pid_alone():
    """stop_servers gets the servers' pids through XCom; on another worker's machine that number is
    some other process, which must not be signalled."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert stop_server_process(bystander.pid, timeout=1) is False
        assert bystander.poll() is None, "an unrelated process with the server's pid was stopped"
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


# What each misconfigured worker's task must say: the setting to fix, never a silent local fallback.
PROBE_MESSAGES = {
    "register_without_store": [
        "connection 'mlprod_store_default': is not defined, and the embedded SQLite store is only used by "
        "the LocalExecutor; this task runs on CeleryExecutor",
    ],
    "register_with_misspelt_settings": [
        "connection 'mlprod_store_default': is not defined, and the embedded SQLite store is only used by "
        "the LocalExecutor; this task runs on CeleryExecutor",
    ],
    "register_on_a_sqlite_store": [
        "connection 'mlprod_store_default': points at SQLite file ",
        "this task runs on CeleryExecutor, whose workers would each keep that file",
    ],
    "check_outputs_without_report_folder": [
        "[mlprod] report_folder is not set, and this task runs on CeleryExecutor",
        "which the API server cannot read",
    ],
}


def test_misconfigured_workers_fail_closed_naming_the_setting(cluster):
    """Each misconfigured worker's task fails at once (no retry), naming what to fix, and leaves no local
    store or report behind: no connection (defined on the scheduler only), misspelt variables (the
    worker's executor then reads LocalExecutor), a SQLite store URL, no report folder."""
    started = time.monotonic()
    for name in cluster.MISCONFIGURED_WORKERS:
        cluster.start_worker(name, queues=name, concurrency=1)
    cluster.wait_for_workers(tuple(cluster.MISCONFIGURED_WORKERS))
    cluster.wait_for_dag(cluster.PROBE_DAG_ID)
    run_id = cluster.trigger(cluster.PROBE_DAG_ID, {})
    assert cluster.wait_until_ended(cluster.PROBE_DAG_ID, [run_id], timeout=240) == {run_id: "failed"}

    for task_id, worker in cluster.PROBE_TASKS.items():
        tries = cluster.tries(cluster.PROBE_DAG_ID, run_id, task_id)
        # retries=2, but a misconfiguration is final: one try, on the worker of its queue.
        assert [(t["try_number"], t["state"], t["hostname"]) for t in tries] == [(1, "failed", worker)], (
            task_id,
            tries,
        )
        logs = cluster.task_log_files(cluster.PROBE_DAG_ID, run_id, task_id)
        assert logs, f"no log of the failed try of {task_id}"
        assert all(str(cluster.worker_home(worker)) in str(path) for path in logs), logs
        text = "\n".join(path.read_text(errors="replace") for path in logs)
        for expected in PROBE_MESSAGES[task_id]:
            assert expected in text, (task_id, expected, text[-3000:])
        home = cluster.worker_home(worker)
        assert list(home.rglob("*.db")) == [], f"{worker} created a local store"
        assert list(home.rglob("*.html")) == [], f"{worker} wrote a report into its own home"
    engine = create_store_engine(cluster.database_url("store"))
    try:  # nothing reached the shared store either: every probe failed before registering
        assert ModelRegistry(engine).events("probe_model") == []
    finally:
        engine.dispose()
    for name in cluster.MISCONFIGURED_WORKERS:
        cluster.stop_worker(name)
    print(f"misconfigured workers: {time.monotonic() - started:.0f} s")

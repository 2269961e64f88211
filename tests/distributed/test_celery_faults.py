"""Faults and load on the Celery cluster: a worker killed mid-promotion, a Redis restart, ten racing releases.

- A worker is SIGKILLed (every process of it at once, as a machine dies) while the promote task has
  moved the champion alias and is still deploying: Airflow notices the missing heartbeat after
  ``task_instance_heartbeat_timeout``, the retry runs on the other worker, the store returns the
  promotion that try 1 made (one ``promoted`` event) and the announcement alert arrives exactly once.
- Redis is restarted while a task message waits in it (no worker running) and again while a task runs:
  its append-only file keeps the waiting message, the workers and the scheduler reconnect, and the run
  succeeds with every task run once.
- Ten runs of the release path race for one model's champion alias: in each generation of gates (the
  runs whose gates compared against the same champion) exactly one promotes, the others end failed
  at promote naming the concurrent update, and the alias history is one unbroken chain.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.registry import ModelRegistry

pytestmark = pytest.mark.distributed_faults

FLAGSHIP_DAG_ID = "mlprod_ingest_to_deploy"
RELEASE_DAG_ID = "mlprod_train_and_promote"
RELEASE_MODEL = "churn_classifier"
CONCURRENT_RUNS = 10


@pytest.fixture(scope="module")
def store(cluster):
    engine = create_store_engine(cluster.database_url("store"))
    yield engine
    engine.dispose()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_for(condition, what: str, timeout: float, cluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert not cluster.exited_components(), f"components exited: {cluster.exited_components()}"
        time.sleep(0.5)
    pytest.fail(f"{what}: not seen within {timeout} s\n{cluster.log_tails()}")


def kill_the_worker_of_promote_once_the_alias_moved(cluster, registry: ModelRegistry, run_id: str) -> tuple:
    """Wait until the run's promote task moved the alias and deploys (slowly); SIGKILL its worker.

    Returns the version it promoted and the killed worker's name.
    """
    dag_id, model = cluster.RELEASE_ALERT_DAG_ID, cluster.RELEASE_ALERT_MODEL

    def promote_moved_the_alias() -> bool:
        promote = cluster.task_instances(dag_id, run_id).get("promote", {})
        trained = cluster.xcom(dag_id, run_id, "train")
        return (
            promote.get("state") == "running"
            and trained is not None
            and registry.alias_version(model) == trained["version"]
        )

    wait_for(promote_moved_the_alias, "promote running after moving the alias", 180, cluster)
    version = cluster.xcom(dag_id, run_id, "train")["version"]
    victim = cluster.task_instances(dag_id, run_id)["promote"]["hostname"]
    assert victim in cluster.WORKERS, victim
    cluster.kill_worker(victim)
    return version, victim


def test_a_worker_killed_mid_promotion_is_retried_on_the_other_and_promotes_once(cluster, store):
    started = time.monotonic()
    dag_id, model = cluster.RELEASE_ALERT_DAG_ID, cluster.RELEASE_ALERT_MODEL
    cluster.wait_for_dag(dag_id)
    run_id = cluster.trigger(dag_id, {})
    registry = ModelRegistry(store)

    # Kill the worker running promote once the alias has moved and the slow deployment is under way.
    version, victim = kill_the_worker_of_promote_once_the_alias_moved(cluster, registry, run_id)
    killed_at = time.monotonic()

    assert cluster.wait_until_ended(dag_id, [run_id], timeout=240) == {run_id: "success"}
    survivor = next(name for name in cluster.WORKERS if name != victim)
    tries = cluster.tries(dag_id, run_id, "promote")
    print(f"promote tries: {[(t['try_number'], t['state'], t['hostname']) for t in tries]}")
    print(f"hosts per task: {cluster.hostnames(dag_id, run_id)}")
    print(f"killed {victim}; run ended {time.monotonic() - killed_at:.0f} s later")
    assert [t["hostname"] for t in tries] == [victim, survivor], tries
    assert [t["state"] for t in tries][-1] == "success", tries
    assert tries[0]["state"] != "success", tries

    # One promotion, kept by the retry; the artifact deployed; the announcement sent exactly once.
    promotions = [e for e in registry.events(model) if e["event"] == "promoted"]
    assert [(e["version"], e["run_id"], e["task_id"]) for e in promotions] == [(version, run_id, "promote")]
    assert registry.alias_version(model) == version
    assert (cluster.shared / "serving" / f"{model}.bin").read_bytes() == version.encode()
    announcements = [body for body in cluster.alerts.received if body.get("title") == f"{version} promoted"]
    assert len(announcements) == 1, cluster.alerts.received
    deliveries = MetricsStore(store).alert_deliveries()
    assert [(d["channel"], d["delivered"]) for d in deliveries] == [(cluster.ALERT_CONN_ID, True)], deliveries

    cluster.start_worker(victim)  # back to two workers for the next tests
    cluster.wait_for_workers((victim,))
    print(f"worker kill test: {time.monotonic() - started:.0f} s")


def test_a_promote_retried_after_another_release_promoted_fails_and_keeps_that_promotion(cluster, store):
    """Try 1 of promote moves the alias, then its worker dies while deploying. Before the retry starts on
    the other worker, another release promotes a version gated against the new champion. The retry must
    fail at once naming that release: no second promotion, the other release's champion kept, its
    serving copy not overwritten, and no announcement of the dead try's version."""
    started = time.monotonic()
    dag_id, model = cluster.RELEASE_ALERT_DAG_ID, cluster.RELEASE_ALERT_MODEL
    run_id = cluster.trigger(dag_id, {})
    registry = ModelRegistry(store)
    alerts_before = len(cluster.alerts.received)
    version, victim = kill_the_worker_of_promote_once_the_alias_moved(cluster, registry, run_id)

    # Another release (its own DAG run, outside this cluster's DAGs) gates a version against the new
    # champion and promotes it, while the dead worker's try still counts as running.
    other_version = f"other-{version}"
    other_artifact = cluster.shared / "models" / f"{model}-{other_version}.bin"
    other_artifact.write_bytes(other_version.encode())
    other = {"dag_id": "mlprod_other_release", "run_id": f"manual__{other_version}", "map_index": -1}
    registry.register(
        RunIdentity(task_id="register", **other),
        name=model,
        version=other_version,
        artifact_uri=f"file://{other_artifact}",
        metrics={"roc_auc": 0.95},
    )
    registry.record_blessing(
        RunIdentity(task_id="gate", **other),
        name=model,
        version=other_version,
        passed=True,
        baseline_version=version,
        summary={"passed": True},
    )
    registry.promote(RunIdentity(task_id="promote", **other), name=model, version=other_version)
    serving = cluster.shared / "serving" / f"{model}.bin"
    serving.write_bytes(other_version.encode())  # the other release's deployment
    assert [t["state"] for t in cluster.tries(dag_id, run_id, "promote")] == ["running"], "retry too early"

    assert cluster.wait_until_ended(dag_id, [run_id], timeout=240) == {run_id: "failed"}
    survivor = next(name for name in cluster.WORKERS if name != victim)
    tries = cluster.tries(dag_id, run_id, "promote")
    print(f"promote tries: {[(t['try_number'], t['state'], t['hostname']) for t in tries]}")
    print(f"hosts per task: {cluster.hostnames(dag_id, run_id)}")
    assert [(t["hostname"], t["state"]) for t in tries] == [(victim, "failed"), (survivor, "failed")], tries
    log = "\n".join(
        path.read_text(errors="replace")
        for path in cluster.task_log_files(dag_id, run_id, "promote")
        if survivor in str(path)
    )
    assert "an earlier try of this task promoted" in log, log[-3000:]
    assert f"run 'manual__{other_version}' task 'promote' promoted '{other_version}'" in log, log[-3000:]

    promotions = [(e["version"], e["run_id"]) for e in registry.events(model) if e["event"] == "promoted"]
    assert promotions[-2:] == [(version, run_id), (other_version, other["run_id"])], promotions
    assert [e for e in registry.events(model) if e["event"] == "promotion_reverted"] == []
    assert registry.alias_version(model) == other_version
    assert serving.read_bytes() == other_version.encode()
    assert cluster.task_instances(dag_id, run_id)["announce"]["state"] == "upstream_failed"
    assert [b for b in cluster.alerts.received[alerts_before:] if version in str(b.get("title"))] == []

    cluster.start_worker(victim)
    cluster.wait_for_workers((victim,))
    print(f"promote retried after another release: {time.monotonic() - started:.0f} s")


def test_a_worker_killed_while_sending_an_alert_sends_it_again_once_then_dedup_holds(cluster, store):
    """The alert reached the endpoint but its delivery was never recorded: the retry sends it again (a
    duplicate beats a lost alert); once recorded, a re-run of the task is suppressed by dedup."""
    started = time.monotonic()
    dag_id = cluster.RELEASE_ALERT_DAG_ID
    run_id = cluster.trigger(dag_id, {})
    before = len(cluster.alerts.received)
    cluster.alerts.hold_seconds = 8.0  # below the channel's 10 s timeout: the sender waits for the answer

    def this_runs_alerts() -> list[dict]:
        version = (cluster.xcom(dag_id, run_id, "train") or {}).get("version")
        return [
            b for b in cluster.alerts.received[before:] if version and b.get("title") == f"{version} promoted"
        ]

    wait_for(lambda: this_runs_alerts(), "the announcement at the endpoint", 180, cluster)
    victim = cluster.task_instances(dag_id, run_id)["announce"]["hostname"]
    assert victim in cluster.WORKERS, victim
    cluster.kill_worker(victim)
    cluster.alerts.hold_seconds = 0.0
    assert cluster.wait_until_ended(dag_id, [run_id], timeout=240) == {run_id: "success"}
    tries = cluster.tries(dag_id, run_id, "announce")
    print(f"announce tries: {[(t['try_number'], t['state'], t['hostname']) for t in tries]}")
    assert [t["hostname"] for t in tries] == [victim, next(w for w in cluster.WORKERS if w != victim)], tries
    assert len(this_runs_alerts()) == 2, this_runs_alerts()  # the killed try's request, and the retry's
    report = cluster.xcom(dag_id, run_id, "announce")
    print(f"announce report after the kill: {report}")
    assert [(r["channel"], r["status"]) for r in report["results"]] == [(cluster.ALERT_CONN_ID, "delivered")]

    # Run the alert step again: the delivery the retry recorded suppresses it.
    cluster.api(
        "POST",
        f"/api/v2/dags/{dag_id}/clearTaskInstances",
        {"dry_run": False, "dag_run_id": run_id, "task_ids": ["announce"], "only_failed": False},
    )
    wait_for(
        lambda: len(cluster.tries(dag_id, run_id, "announce")) > len(tries), "announce cleared", 60, cluster
    )
    assert cluster.wait_until_ended(dag_id, [run_id], timeout=180) == {run_id: "success"}
    rerun = cluster.xcom(dag_id, run_id, "announce")
    print(f"announce report on the re-run: {rerun}")
    assert len(this_runs_alerts()) == 2, this_runs_alerts()
    assert [(r["channel"], r["status"]) for r in rerun["results"]] == [(cluster.ALERT_CONN_ID, "suppressed")]

    cluster.start_worker(victim)
    cluster.wait_for_workers((victim,))
    print(f"alert kill test: {time.monotonic() - started:.0f} s")


def test_runs_complete_across_redis_restarts(cluster):
    """A message waiting in the broker survives a restart (append-only file), and so do running tasks."""
    started = time.monotonic()
    cluster.wait_for_dag(FLAGSHIP_DAG_ID)
    for name in cluster.WORKERS:  # nobody consumes: the first task's message waits in Redis
        cluster.stop_worker(name)
    run_id = cluster.trigger(
        FLAGSHIP_DAG_ID,
        {
            "scenario": "good",
            "warehouse_conn_id": "mlprod_warehouse",
            **cluster.shared_uris("customer_churn"),
        },
    )
    wait_for(lambda: cluster.queued_messages() == 1, "land_batch's message in the broker", 120, cluster)
    cluster.restart_redis()
    assert cluster.queued_messages() == 1, "the waiting message did not survive the restart"
    for name in cluster.WORKERS:
        cluster.start_worker(name)
    cluster.wait_for_workers(cluster.WORKERS)

    # Restart it again while a task runs.
    wait_for(
        lambda: (
            cluster.task_instances(FLAGSHIP_DAG_ID, run_id).get("validate_batch", {}).get("state")
            == "running"
        ),
        "validate_batch running",
        180,
        cluster,
    )
    restarted_at = datetime.now(timezone.utc)
    cluster.restart_redis()
    cluster.wait_for_runs({FLAGSHIP_DAG_ID: run_id})
    instances = cluster.task_instances(FLAGSHIP_DAG_ID, run_id)
    states = {task: ti["state"] for task, ti in instances.items()}
    assert states.pop("quarantine_drifted_rows") == "skipped"
    assert set(states.values()) == {"success"}, states
    # Every task ran once (nothing re-queued by task_queued_timeout), later ones through the restarted broker.
    assert {task: ti["try_number"] for task, ti in instances.items() if task in states} == dict.fromkeys(
        states, 1
    )
    after = [
        t for t, ti in instances.items() if ti["start_date"] and parse_time(ti["start_date"]) > restarted_at
    ]
    assert {"train", "promote", "report"} <= set(after), after
    print(f"hosts per task: {cluster.hostnames(FLAGSHIP_DAG_ID, run_id)}")
    print(f"redis restart test: {time.monotonic() - started:.0f} s")


def test_ten_concurrent_releases_have_one_winner_per_generation(cluster, store):
    started = time.monotonic()
    cluster.wait_for_dag(RELEASE_DAG_ID)
    conf = {"model_quality": "good", **cluster.shared_uris(RELEASE_MODEL)}
    run_ids = [cluster.trigger(RELEASE_DAG_ID, conf) for _ in range(CONCURRENT_RUNS)]
    final = cluster.wait_until_ended(RELEASE_DAG_ID, run_ids, timeout=480)

    registry = ModelRegistry(store)
    version_of = {run_id: cluster.xcom(RELEASE_DAG_ID, run_id, "train")["version"] for run_id in run_ids}
    hosts = defaultdict(set)
    for run_id in run_ids:
        instances = cluster.task_instances(RELEASE_DAG_ID, run_id)
        for task, ti in instances.items():
            hosts[task].add(ti["hostname"])
        if final[run_id] == "failed":  # a loser: only its promotion failed, at once, naming the race
            failed = {task: ti for task, ti in instances.items() if ti["state"] == "failed"}
            assert set(failed) == {"promote"}, (run_id, {t: ti["state"] for t, ti in instances.items()})
            assert failed["promote"]["try_number"] == 1, failed["promote"]
            log = "\n".join(
                path.read_text(errors="replace")
                for path in cluster.task_log_files(RELEASE_DAG_ID, run_id, "promote")
            )
            assert "ConcurrentUpdateError" in log or "re-run the gates" in log, log[-2000:]
    print(f"hosts per task: { {task: sorted(names) for task, names in hosts.items()} }")

    # Every version registered and gated once; a generation is the runs gated against one champion.
    generations: dict[str | None, set[str]] = defaultdict(set)
    for run_id, version in version_of.items():
        verdicts = registry.verdicts(RELEASE_MODEL, version)
        assert [(v.kind, v.passed) for v in verdicts] == [("metrics", True)], (version, verdicts)
        generations[verdicts[0].baseline_version].add(run_id)
    promotions = [e for e in registry.events(RELEASE_MODEL) if e["event"] == "promoted"]
    winners = {e["run_id"] for e in promotions}
    assert winners == {run_id for run_id, state in final.items() if state == "success"}, (final, promotions)
    for baseline, members in generations.items():
        assert len(members & winners) == 1, (baseline, members, promotions)
    # No lost update: each promotion replaced the version promoted just before it.
    chain = [(e["previous_version"] or None, e["version"]) for e in promotions]
    assert chain[0][0] is None
    assert all(previous == chain[i][1] for i, (previous, _) in enumerate(chain[1:])), chain
    assert registry.alias_version(RELEASE_MODEL) == chain[-1][1]
    for previous, version in chain:
        winner = next(run_id for run_id, v in version_of.items() if v == version)
        assert winner in generations[previous], (previous, version)
    print(
        f"{CONCURRENT_RUNS} releases: {len(generations)} generations, {len(winners)} promotions, "
        f"{sum(state == 'failed' for state in final.values())} losers; {time.monotonic() - started:.0f} s"
    )

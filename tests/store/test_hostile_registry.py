"""The registry attacked as a careless or hostile user would: retries after changes, odd names, locks.

Each test here failed on the code before its fix (see the commit that added it), on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from airflow_provider_mlprod.exceptions import ConcurrentUpdateError, StoreError, StoreRefusal
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.registry import ModelRegistry, _lock_alias


def run(task: str, run_id: str) -> RunIdentity:
    return RunIdentity("train", run_id, task)


@pytest.fixture
def registry(db_url) -> ModelRegistry:
    return ModelRegistry(create_store_engine(db_url))


def gate(registry, version, *, baseline, run_id, passed=True, name="churn", alias="champion"):
    registry.record_blessing(
        run("gate", run_id),
        name=name,
        version=version,
        passed=passed,
        baseline_version=baseline,
        summary={},
        alias=alias,
    )


def release(registry, version, *, baseline, run_id, name="churn"):
    try:
        registry.get_version(name, version)
    except StoreRefusal:
        registry.register(
            run("register", run_id), name=name, version=version, artifact_uri=f"file:///{version}"
        )
    gate(registry, version, baseline=baseline, run_id=run_id, name=name)
    return registry.promote(run("promote", run_id), name=name, version=version)


def test_a_retried_rollback_whose_deployment_was_reverted_rolls_back_again(registry):
    release(registry, "1", baseline=None, run_id="r1")
    release(registry, "2", baseline="1", run_id="r2")
    rollback = registry.rollback(run("rollback", "r3"), name="churn", to_version="1")
    registry.revert_promotion(run("rollback", "r3"), rollback)  # its deployment failed
    assert registry.alias_version("churn") == "2"

    retry = registry.rollback(run("rollback", "r3"), name="churn", to_version="1")
    assert (retry.version, retry.previous_version, retry.changed) == ("1", "2", True)
    assert registry.alias_version("churn") == "1"
    # ...and a further retry finds that effect and returns it
    again = registry.rollback(run("rollback", "r3"), name="churn", to_version="1")
    assert (again.version, again.changed, again.revision) == ("1", False, retry.revision)


def test_a_retried_gate_after_the_alias_left_and_came_back_fails(registry):
    release(registry, "1", baseline=None, run_id="r1")
    release(registry, "2", baseline="1", run_id="r2")
    registry.rollback(run("rollback", "r3"), name="churn")  # v2 revoked, alias back at v1
    with pytest.raises(ConcurrentUpdateError, match=r"alias 'champion' changed since.*rolled back to '1'"):
        gate(registry, "2", baseline="1", run_id="r2")  # the old gate task, cleared and re-run
    with pytest.raises(StoreRefusal, match="predate the rollback that revoked it"):
        registry.promote(run("promote", "r4"), name="churn", version="2")
    assert registry.alias_version("churn") == "1"
    gate(registry, "2", baseline="1", run_id="r4")  # a new gate run may bless it again
    assert registry.promote(run("promote", "r4"), name="churn", version="2").changed


def test_a_second_rollback_does_not_restore_a_revoked_version(registry):
    release(registry, "a", baseline=None, run_id="r1")
    release(registry, "b", baseline="a", run_id="r2")
    release(registry, "a", baseline="b", run_id="r3")  # a re-gated against b and promoted back
    registry.rollback(run("rollback", "r4"), name="churn")  # a revoked, b restored
    assert registry.alias_version("churn") == "b"
    with pytest.raises(StoreRefusal, match=r"would restore 'a'.*revoked"):
        registry.rollback(run("rollback", "r5"), name="churn")
    assert registry.alias_version("churn") == "b"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "m" * 251, "model name is 251 characters long; at most 250"),
        ("version", "v" * 251, "model version is 251 characters long; at most 250"),
        ("name", "churn\x00; DROP TABLE mlprod_models", "model name must not contain control characters"),
        ("version", "1\n2", "model version must not contain control characters"),
    ],
)
def test_names_the_store_cannot_hold_are_refused_by_name(registry, field, value, message):
    fields = {"name": "churn", "version": "1", "artifact_uri": "file:///1", field: value}
    with pytest.raises(StoreError, match=message):
        registry.register(run("register", "r1"), **fields)


def test_long_unicode_and_quoted_names_round_trip(registry):
    name = "m'; DROP TABLE mlprod_aliases; --ü" + "é" * 200
    version = "v\u00e9rsion-" + "\u4e2d" * 240
    release(registry, version, baseline=None, run_id="r1", name=name)
    assert registry.alias_version(name) == version
    assert registry.get_version(name, version).name == name


@pytest.mark.parametrize("alias", ["a" * 251, "champion\x00"])
def test_an_alias_the_store_cannot_hold_is_refused_by_name(registry, alias):
    registry.register(run("register", "r1"), name="churn", version="1", artifact_uri="file:///1")
    with pytest.raises(StoreError, match="alias"):
        gate(registry, "1", baseline=None, run_id="r1", alias=alias)
    with pytest.raises(StoreError, match="alias"):
        registry.promote(run("promote", "r1"), name="churn", version="1", alias=alias)


# -- a verdict recorded while a promotion holds the alias ------------------------------------------

CONTEXT = multiprocessing.get_context("fork")


def _hold_alias_lock(url, locked):
    engine = create_store_engine(url)
    connection = engine.connect()
    connection.begin()
    _lock_alias(connection, "churn", "champion")  # what a promotion in progress holds
    locked.set()
    signal.pause()  # until killed


def _record_failing_verdict(url, done):
    registry = ModelRegistry(create_store_engine(url))
    registry.record_blessing(
        run("fairness", "r2"),
        name="churn",
        version="2",
        passed=False,
        baseline_version="1",
        summary={},
    )
    done.set()


def test_a_verdict_waits_for_a_promotion_in_progress_on_its_alias(db_url):
    """A promotion reads the verdicts and swaps the alias under the alias lock; a verdict recorded
    meanwhile must wait for it, or the promotion ignores a verdict the store orders before it."""
    setup = ModelRegistry(create_store_engine(db_url))
    release(setup, "1", baseline=None, run_id="r1")
    setup.register(run("register", "r2"), name="churn", version="2", artifact_uri="file:///2")
    locked, done = CONTEXT.Event(), CONTEXT.Event()
    holder = CONTEXT.Process(target=_hold_alias_lock, args=(db_url, locked))
    holder.start()
    blesser = None
    try:
        assert locked.wait(60)
        blesser = CONTEXT.Process(target=_record_failing_verdict, args=(db_url, done))
        blesser.start()
        assert not done.wait(2), "the verdict was recorded while a promotion held the alias"
        os.kill(holder.pid, signal.SIGKILL)
        assert done.wait(60)
    finally:
        for process in (holder, blesser):
            if process is not None:
                process.kill()
                process.join(30)
    assert [v.passed for v in setup.verdicts("churn", "2")] == [False]


def test_a_failing_verdict_of_a_kind_the_promotion_does_not_require_still_blocks_it(registry):
    """The canary example gates on metrics and a load test but promotes with the default require: a
    promotion from another task or DAG must not ignore the load test that failed on this version."""
    release(registry, "1", baseline=None, run_id="r1")
    registry.register(run("register", "r2"), name="churn", version="2", artifact_uri="file:///2")
    gate(registry, "2", baseline="1", run_id="r2")  # metrics: pass
    registry.record_blessing(
        run("load_test", "r2"),
        name="churn",
        version="2",
        passed=False,
        baseline_version="1",
        summary={},
        kind="serving",
    )
    eligibility = registry.promotion_eligibility("churn", "2")
    assert not eligibility.eligible
    with pytest.raises(StoreRefusal, match="latest 'serving' verdict of gate 'load_test' failed"):
        registry.promote(run("promote", "r2"), name="churn", version="2")
    assert registry.alias_version("churn") == "1"
    registry.record_blessing(  # the load test, re-run in a new run, passes
        run("load_test", "r3"),
        name="churn",
        version="2",
        passed=True,
        baseline_version="1",
        summary={},
        kind="serving",
    )
    assert registry.promote(run("promote", "r3"), name="churn", version="2").changed


# -- gate names shared by several task instances of one run ----------------------------------------


def test_mapped_gate_instances_each_count_so_a_passing_one_never_hides_a_failing_one(registry):
    """A gate mapped over data segments: segment 0 fails, segment 1 passes last."""
    release(registry, "1", baseline=None, run_id="r1")
    registry.register(run("register", "r2"), name="churn", version="2", artifact_uri="file:///2")
    for map_index, passed in ((0, False), (1, True)):
        registry.record_blessing(
            RunIdentity("train", "r2", "fairness", map_index),
            name="churn",
            version="2",
            passed=passed,
            baseline_version="1",
            summary={},
            gate_name="fairness",
        )
    eligibility = registry.promotion_eligibility("churn", "2")
    assert sorted(g.gate_name for g in eligibility.gates) == ["fairness[0]", "fairness[1]"]
    with pytest.raises(StoreRefusal, match=r"verdict of gate 'fairness\[0\]' failed"):
        registry.promote(run("promote", "r2"), name="churn", version="2")
    assert registry.alias_version("churn") == "1"


def test_two_gate_tasks_of_one_run_cannot_share_a_gate_name(registry):
    """A copy-pasted gate_name: the strict gate fails, the lax one under the same name passes last."""
    release(registry, "1", baseline=None, run_id="r1")
    registry.register(run("register", "r2"), name="churn", version="2", artifact_uri="file:///2")
    strict, lax = run("gate_strict", "r2"), run("gate_lax", "r2")
    verdict = {
        "name": "churn",
        "version": "2",
        "baseline_version": "1",
        "summary": {},
        "gate_name": "quality",
    }
    registry.record_blessing(strict, passed=False, **verdict)
    with pytest.raises(StoreRefusal, match=r"gate name 'quality' .* already used by task 'gate_strict'"):
        registry.record_blessing(lax, passed=True, **verdict)
    with pytest.raises(StoreRefusal, match="verdict of gate 'quality' failed"):
        registry.promote(run("promote", "r2"), name="churn", version="2")
    registry.record_blessing(strict, passed=False, **verdict)  # its own retry is still fine
    registry.record_blessing(run("gate_strict", "r3"), passed=True, **verdict)  # a later run replaces it
    assert registry.promote(run("promote", "r3"), name="churn", version="2").changed


def test_a_rollback_undone_by_its_failed_deployment_revokes_nothing(registry):
    release(registry, "1", baseline=None, run_id="r1")
    release(registry, "2", baseline="1", run_id="r2")
    rollback = registry.rollback(run("rollback", "r3"), name="churn")
    registry.revert_promotion(run("rollback", "r3"), rollback)  # deployment failed; never retried
    release(registry, "3", baseline="2", run_id="r4")
    assert registry.rollback(run("rollback", "r5"), name="churn").version == "2"


def test_a_gate_kind_the_store_cannot_hold_is_refused_when_registered():
    from airflow_provider_mlprod.store.registry import GATE_KINDS, register_gate_kind

    with pytest.raises(StoreError, match="gate kind is 33 characters long; at most 32"):
        register_gate_kind("k" * 33, "too long for the verdicts' kind column")
    with pytest.raises(StoreError, match="gate kind must not contain control characters"):
        register_gate_kind("latency\x00", "NUL")
    assert "k" * 33 not in GATE_KINDS


@pytest.mark.parametrize(
    ("require", "message"), [([], "give at least one"), (["vibes"], "'vibes' is unknown")]
)
def test_a_promotion_requiring_nothing_or_an_unknown_kind_is_refused(registry, require, message):
    release(registry, "1", baseline=None, run_id="r1")
    registry.register(run("register", "r2"), name="churn", version="2", artifact_uri="file:///2")
    gate(registry, "2", baseline="1", run_id="r2")
    with pytest.raises(StoreError, match=message):
        registry.promote(run("promote", "r2"), name="churn", version="2", require=require)
    assert registry.alias_version("churn") == "1"


# -- a retried promotion raced against a rollback, in OS processes ---------------------------------


def _contend(url, name, action, barrier, results):
    try:
        registry = ModelRegistry(create_store_engine(url))
        barrier.wait(60)
        if action == "promote":  # try 2 of the task whose try 1 promoted v2 and then died
            outcome = registry.promote(run("promote", "r2"), name=name, version="2")
            results.put((action, f"won changed={outcome.changed}"))
        else:
            registry.rollback(run("rollback", "r3"), name=name)
            results.put((action, "won"))
    except ConcurrentUpdateError as exc:
        results.put((action, f"lost: {exc}"))
    except BaseException as exc:
        results.put((action, f"error: {type(exc).__name__}: {exc}"))


def test_a_retried_promotion_raced_against_a_rollback_never_reapplies(db_url):
    setup = ModelRegistry(create_store_engine(db_url))
    for round_no in range(4):
        name = f"churn-{round_no}"
        release(setup, "1", baseline=None, run_id="r1", name=name)
        release(setup, "2", baseline="1", run_id="r2", name=name)  # try 1 of r2's promote
        barrier, results = CONTEXT.Barrier(2), CONTEXT.Queue()
        workers = [
            CONTEXT.Process(target=_contend, args=(db_url, name, action, barrier, results))
            for action in ("promote", "rollback")
        ]
        for worker in workers:
            worker.start()
        outcomes = dict(results.get(timeout=120) for _ in workers)
        for worker in workers:
            worker.join(30)
        assert outcomes["rollback"] == "won", (round_no, outcomes)
        assert outcomes["promote"] == "won changed=False" or outcomes["promote"].startswith(
            "lost: an earlier try of this task promoted"
        ), (round_no, outcomes)
        assert setup.alias_version(name) == "1"
        assert [e["event"] for e in setup.events(name)].count("promoted") == 2  # v1 once, v2 once

"""Races on the model registry between OS processes, on SQLite and PostgreSQL.

Each contender is a forked process with engines of its own, so the only thing that can serialise
them is the database.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal

from airflow_provider_mlprod.exceptions import ConcurrentUpdateError
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.registry import ModelRegistry, _lock_alias

CONTEXT = multiprocessing.get_context("fork")


def run(task: str, run_id: str) -> RunIdentity:
    return RunIdentity("train", run_id, task)


def register_and_gate(registry, version, *, baseline, run_id):
    registry.register(
        run("register", run_id), name="churn", version=version, artifact_uri=f"file:///{version}"
    )
    registry.record_blessing(
        run("gate", run_id), name="churn", version=version, passed=True, baseline_version=baseline, summary={}
    )


def _contend(url, action, version, run_id, barrier, results):
    try:
        registry = ModelRegistry(create_store_engine(url))
        barrier.wait(60)
        if action == "promote":
            registry.promote(run("promote", run_id), name="churn", version=version)
        else:
            registry.rollback(run("rollback", run_id), name="churn")
        results.put((action, version, "won"))
    except ConcurrentUpdateError as exc:
        results.put((action, version, f"lost: {exc}"))
    except BaseException as exc:
        results.put((action, version, f"error: {type(exc).__name__}: {exc}"))


def race(url, contenders):
    """Start every (action, version, run_id) at one barrier; return their outcomes."""
    barrier, results = CONTEXT.Barrier(len(contenders)), CONTEXT.Queue()
    workers = [
        CONTEXT.Process(target=_contend, args=(url, action, version, run_id, barrier, results))
        for action, version, run_id in contenders
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    return outcomes


def test_twenty_promoters_at_one_barrier_exactly_one_wins_each_round(db_url):
    setup = ModelRegistry(create_store_engine(db_url))
    champion = None
    for round_no in range(3):
        versions = [f"{round_no}.{i}" for i in range(20)]
        for version in versions:
            register_and_gate(setup, version, baseline=champion, run_id=f"r{version}")
        outcomes = race(db_url, [("promote", v, f"r{v}") for v in versions])
        winners = [version for _, version, outcome in outcomes if outcome == "won"]
        losers = [outcome for _, _, outcome in outcomes if outcome != "won"]
        assert len(winners) == 1, outcomes
        assert all(outcome.startswith("lost: ") and "now points at" in outcome for outcome in losers), losers
        assert setup.alias_version("churn") == winners[0]
        promotions = [e for e in setup.events("churn") if e["event"] == "promoted"]
        assert len(promotions) == round_no + 1
        assert promotions[-1]["previous_version"] == (champion or "")
        champion = winners[0]


def test_a_promoter_of_the_version_already_holding_the_alias_succeeds_unchanged(db_url):
    setup = ModelRegistry(create_store_engine(db_url))
    register_and_gate(setup, "1", baseline=None, run_id="r1")
    outcomes = race(db_url, [("promote", "1", f"r{i}") for i in range(6)])
    assert [outcome for _, _, outcome in outcomes] == ["won"] * 6
    assert [e["event"] for e in setup.events("churn")].count("promoted") == 1


def test_promotion_raced_against_rollback_leaves_a_consistent_history(db_url):
    for round_no in range(5):
        setup = ModelRegistry(create_store_engine(db_url))
        name_prefix = f"{round_no}-"
        v1, v2, v3 = (name_prefix + n for n in ("1", "2", "3"))
        register_and_gate(setup, v1, baseline=setup.alias_version("churn"), run_id=f"r{v1}")
        setup.promote(run("promote", f"r{v1}"), name="churn", version=v1)
        register_and_gate(setup, v2, baseline=v1, run_id=f"r{v2}")
        setup.promote(run("promote", f"r{v2}"), name="churn", version=v2)
        register_and_gate(setup, v3, baseline=v2, run_id=f"r{v3}")  # gated against v2
        outcomes = dict(
            (action, outcome)
            for action, _, outcome in race(
                db_url, [("promote", v3, f"r{v3}"), ("rollback", "", f"rollback{round_no}")]
            )
        )
        final = setup.alias_version("churn")
        assert outcomes["rollback"] == "won", outcomes
        if outcomes["promote"] == "won":  # promoted first, then rolled back: v3 revoked, v2 restored
            assert final == v2
        else:  # rolled back first: the promotion against v2 lost
            assert outcomes["promote"].startswith("lost: "), outcomes
            assert final == v1
        changes = [e for e in setup.events("churn") if e["event"] in ("promoted", "rolled_back")]
        for before, after in itertools.pairwise(changes):  # each change starts where the last ended
            assert after["previous_version"] == before["version"]
            assert after["revision"] > before["revision"]
        assert changes[-1]["version"] == final


def _hold_alias_lock(url, locked):
    engine = create_store_engine(url)
    connection = engine.connect()
    transaction = connection.begin()
    _lock_alias(connection, "churn", "champion")
    connection.exec_driver_sql("UPDATE mlprod_aliases SET revision = revision WHERE model_name = 'churn'")
    locked.set()
    signal.pause()  # holds the lock until killed
    transaction.rollback()


def test_a_killed_lock_holder_does_not_block_the_next_promotion(db_url):
    setup = ModelRegistry(create_store_engine(db_url))
    register_and_gate(setup, "1", baseline=None, run_id="r1")
    locked = CONTEXT.Event()
    holder = CONTEXT.Process(target=_hold_alias_lock, args=(db_url, locked))
    holder.start()
    try:
        assert locked.wait(60)
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
    finally:
        if holder.is_alive():
            holder.kill()
    assert holder.exitcode == -signal.SIGKILL
    outcomes = race(db_url, [("promote", "1", "r1")])
    assert outcomes == [("promote", "1", "won")]
    assert setup.alias_version("churn") == "1"

"""ModelRegistry: registration, blessings, compare-and-swap promotion, rollback, event log."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_mlprod.exceptions import ConcurrentUpdateError, StoreError, StoreRefusal
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.registry import ModelRegistry


def run(task: str, run_id: str = "r1") -> RunIdentity:
    return RunIdentity("train", run_id, task)


@pytest.fixture
def registry(db_url) -> ModelRegistry:
    return ModelRegistry(create_store_engine(db_url))


def register_and_gate(registry, version, *, passed=True, baseline=None, run_id="r1"):
    registry.register(
        run("register", run_id), name="churn", version=version, artifact_uri=f"file:///m/{version}"
    )
    registry.record_blessing(
        run("gate", run_id),
        name="churn",
        version=version,
        passed=passed,
        baseline_version=baseline,
        summary={},
    )


def test_register_is_idempotent_per_run_and_versions_are_immutable(registry):
    first = registry.register(
        run("register"), name="churn", version="1", artifact_uri="s3://m/1", metrics={"auc": 0.8}
    )
    again = registry.register(
        run("register"), name="churn", version="1", artifact_uri="s3://m/1b", metrics={"auc": 0.9}
    )
    assert (first.artifact_uri, again.artifact_uri, again.metrics) == ("s3://m/1", "s3://m/1b", {"auc": 0.9})
    with pytest.raises(StoreError, match="model 'churn' version '1' is already registered by another run"):
        registry.register(run("register", "r2"), name="churn", version="1", artifact_uri="s3://m/x")
    assert [e["event"] for e in registry.events("churn")] == ["registered"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "", "version": "1", "artifact_uri": "u"}, "model name must be a non-empty string"),
        ({"name": "m", "version": "1", "artifact_uri": ""}, "artifact URI must be a non-empty string"),
        (
            {"name": "m", "version": "1", "artifact_uri": "u", "metrics": {"auc": float("nan")}},
            "metric 'auc'",
        ),
    ],
)
def test_bad_registrations_are_named(registry, fields, message):
    with pytest.raises(StoreError, match=message):
        registry.register(run("register"), **fields)


def test_promotion_requires_a_passing_blessing_of_that_exact_version(registry):
    registry.register(run("register"), name="churn", version="1", artifact_uri="u1")
    with pytest.raises(StoreError, match="version '1' to 'champion': it has no gate verdict"):
        registry.promote(run("promote"), name="churn", version="1")
    registry.record_blessing(
        run("gate"), name="churn", version="1", passed=False, baseline_version=None, summary={}
    )
    with pytest.raises(StoreError, match="its gate failed"):
        registry.promote(run("promote"), name="churn", version="1")
    with pytest.raises(StoreError, match="version '2' is not registered"):
        registry.promote(run("promote"), name="churn", version="2")
    assert registry.alias_version("churn") is None


def test_promote_then_a_stale_gate_loses(registry):
    register_and_gate(registry, "1")
    assert registry.promote(run("promote"), name="churn", version="1").to_dict() == {
        "model_name": "churn",
        "alias": "champion",
        "version": "1",
        "previous_version": None,
        "revision": 1,
        "changed": True,
    }
    register_and_gate(registry, "2", baseline="1", run_id="r2")
    register_and_gate(registry, "3", baseline="1", run_id="r3")  # gated against 1 as well
    registry.promote(run("promote", "r2"), name="churn", version="2")
    with pytest.raises(ConcurrentUpdateError, match="now points at '2', not at '1'"):
        registry.promote(run("promote", "r3"), name="churn", version="3")
    assert registry.champion("churn").version == "2"


def test_retry_of_a_successful_promotion_is_a_no_op(registry):
    register_and_gate(registry, "1")
    registry.promote(run("promote"), name="churn", version="1")
    retry = registry.promote(run("promote"), name="churn", version="1")
    assert (retry.changed, retry.revision) == (False, 1)
    assert [e["event"] for e in registry.events("churn")].count("promoted") == 1


def test_rollback_walks_back_through_promotions(registry):
    register_and_gate(registry, "1", run_id="r1")
    registry.promote(run("promote", "r1"), name="churn", version="1")
    register_and_gate(registry, "2", baseline="1", run_id="r2")
    registry.promote(run("promote", "r2"), name="churn", version="2")
    register_and_gate(registry, "3", baseline="2", run_id="r3")
    registry.promote(run("promote", "r3"), name="churn", version="3")

    assert registry.rollback(run("rollback", "r4"), name="churn").version == "2"
    assert registry.rollback(run("rollback", "r5"), name="churn").version == "1"
    with pytest.raises(StoreError, match="version '1' has no previous version"):
        registry.rollback(run("rollback", "r6"), name="churn")
    events = [
        (e["event"], e["version"], e["previous_version"], e["run_id"]) for e in registry.events("churn")
    ]
    assert ("rolled_back", "2", "3", "r4") in events
    assert ("rolled_back", "1", "2", "r5") in events


def test_rollback_without_champion_is_named(registry):
    with pytest.raises(StoreError, match="alias 'champion' points at no version"):
        registry.rollback(run("rollback"), name="churn")


def test_twenty_concurrent_promoters_exactly_one_wins_each_round(db_url):
    rounds, contenders = 3, 20
    setup = ModelRegistry(create_store_engine(db_url))
    champion = None
    for round_no in range(rounds):
        versions = [f"{round_no}.{i}" for i in range(contenders)]
        for version in versions:
            register_and_gate(setup, version, baseline=champion, run_id=f"r{round_no}-{version}")
        barrier = threading.Barrier(contenders)
        outcomes: dict[str, str] = {}

        def promote(version, round_no=round_no, barrier=barrier, outcomes=outcomes):
            registry = ModelRegistry(create_store_engine(db_url))
            barrier.wait()
            try:
                registry.promote(run("promote", f"r{round_no}-{version}"), name="churn", version=version)
                outcomes[version] = "won"
            except ConcurrentUpdateError:
                outcomes[version] = "lost"
            finally:
                registry.engine.dispose()

        threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [v for v, outcome in outcomes.items() if outcome == "won"]
        assert len(outcomes) == contenders
        assert len(winners) == 1, outcomes
        assert setup.alias_version("churn") == winners[0]
        promotions = [e for e in setup.events("churn") if e["event"] == "promoted"]
        assert len(promotions) == round_no + 1
        assert promotions[-1]["previous_version"] == (champion or "")
        champion = winners[0]


def test_retried_rollback_does_not_roll_back_twice(registry):
    for number, baseline in (("1", None), ("2", "1"), ("3", "2")):
        register_and_gate(registry, number, baseline=baseline, run_id=f"r{number}")
        registry.promote(run("promote", f"r{number}"), name="churn", version=number)
    first = registry.rollback(run("rollback", "r9"), name="churn")
    retry = registry.rollback(run("rollback", "r9"), name="churn")
    assert (first.version, first.changed) == ("2", True)
    assert (retry.version, retry.changed, retry.owned) == ("2", False, True)
    assert registry.alias_version("churn") == "2"


def test_promotion_of_the_current_champion_by_another_run_is_not_owned(registry):
    register_and_gate(registry, "1")
    registry.promote(run("promote", "r1"), name="churn", version="1")
    again = registry.promote(run("promote", "r2"), name="churn", version="1")
    assert (again.changed, again.owned) == (False, False)


def test_a_gated_version_cannot_change_its_artifact(registry):
    register_and_gate(registry, "1")
    same = registry.register(run("register"), name="churn", version="1", artifact_uri="file:///m/1")
    assert same.status == "blessed"  # a retry with the same values keeps the verdict
    with pytest.raises(StoreRefusal, match="version '1' was already gated"):
        registry.register(run("register"), name="churn", version="1", artifact_uri="file:///m/1-retrained")
    assert registry.get_version("churn", "1").artifact_uri == "file:///m/1"


def test_event_log_ends_with_the_latest_change(registry):
    register_and_gate(registry, "1", run_id="r1")
    registry.promote(run("promote", "r1"), name="churn", version="1")
    register_and_gate(registry, "2", baseline="1", run_id="r2")
    promotion = registry.promote(run("promote", "r2"), name="churn", version="2")
    registry.revert_promotion(run("promote", "r2"), promotion)
    registry.promote(run("promote", "r2"), name="churn", version="2")  # the cleared task runs again
    champion_events = [
        (e["event"], e["version"]) for e in registry.events("churn") if e["alias"] == "champion"
    ]
    assert champion_events[-1] == ("promoted", "2")
    assert registry.alias_version("churn") == "2"


def test_promotion_to_another_alias_uses_that_alias(registry):
    register_and_gate(registry, "1", run_id="r1")
    registry.promote(run("promote", "r1"), name="churn", version="1")
    registry.register(run("register", "r2"), name="churn", version="2", artifact_uri="file:///m/2")
    registry.record_blessing(
        run("gate", "r2"), name="churn", version="2", passed=True, baseline_version=None, summary={}
    )
    challenger = registry.promote(run("promote", "r2"), name="churn", version="2", alias="challenger")
    assert (challenger.version, challenger.previous_version) == ("2", None)
    assert (registry.alias_version("churn"), registry.alias_version("churn", "challenger")) == ("1", "2")

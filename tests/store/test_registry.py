"""ModelRegistry: registration, blessings, compare-and-swap promotion, rollback, event log."""

from __future__ import annotations

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
    with pytest.raises(StoreError, match="version '1' to 'champion': it has no 'metrics' gate verdict"):
        registry.promote(run("promote"), name="churn", version="1")
    registry.record_blessing(
        run("gate"), name="churn", version="1", passed=False, baseline_version=None, summary={}
    )
    with pytest.raises(StoreError, match="its latest 'metrics' verdict of gate 'gate' failed"):
        registry.promote(run("promote"), name="churn", version="1")
    with pytest.raises(StoreError, match="version '2' is not registered"):
        registry.promote(run("promote"), name="churn", version="2")
    assert registry.alias_version("churn") is None


def test_promote_then_a_stale_gate_loses(registry):
    register_and_gate(registry, "1")
    first = registry.promote(run("promote"), name="churn", version="1").to_dict()
    assert first.pop("revision") > 0  # a number of the store's revision sequence
    assert first == {
        "model_name": "churn",
        "alias": "champion",
        "version": "1",
        "previous_version": None,
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
    first = registry.promote(run("promote"), name="churn", version="1")
    retry = registry.promote(run("promote"), name="churn", version="1")
    assert (retry.changed, retry.owned, retry.revision) == (False, True, first.revision)
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
        run("gate", "r2"),
        name="churn",
        version="2",
        passed=True,
        baseline_version=None,
        summary={},
        alias="challenger",
    )
    challenger = registry.promote(run("promote", "r2"), name="churn", version="2", alias="challenger")
    assert (challenger.version, challenger.previous_version) == ("2", None)
    assert (registry.alias_version("churn"), registry.alias_version("churn", "challenger")) == ("1", "2")


# -- the promotion rule ----------------------------------------------------------------------------


def gate(registry, version, *, task="gate", run_id="r1", passed=True, baseline=None, **fields):
    return registry.record_blessing(
        run(task, run_id),
        name="churn",
        version=version,
        passed=passed,
        baseline_version=baseline,
        summary={},
        **fields,
    )


def test_a_passing_gate_finishing_last_does_not_hide_a_failing_one(registry):
    registry.register(run("register"), name="churn", version="1", artifact_uri="u1")
    gate(registry, "1", task="quality", passed=False)
    gate(registry, "1", task="fairness", passed=True)
    assert registry.latest_blessing("churn", "1").passed is True  # the newest verdict alone would pass
    eligibility = registry.promotion_eligibility("churn", "1")
    assert not eligibility.eligible
    assert eligibility.reasons == ["its latest 'metrics' verdict of gate 'quality' failed"]
    with pytest.raises(StoreRefusal, match="gate 'quality' failed"):
        registry.promote(run("promote"), name="churn", version="1")
    assert registry.alias_version("churn") is None


def test_a_gates_retry_replaces_its_own_verdict(registry):
    registry.register(run("register"), name="churn", version="1", artifact_uri="u1")
    gate(registry, "1", task="quality", passed=False)
    gate(registry, "1", task="quality", passed=True)  # the same task, retried
    gate(registry, "1", task="renamed_task", gate_name="fairness", passed=True)
    eligibility = registry.promotion_eligibility("churn", "1")
    assert eligibility.eligible, eligibility.reasons
    assert sorted(g.gate_name for g in eligibility.gates) == ["fairness", "quality"]
    assert registry.promote(run("promote"), name="churn", version="1").changed


def test_verdicts_are_ordered_by_the_store_not_by_a_worker_clock(registry, monkeypatch):
    from datetime import datetime, timezone

    import airflow_provider_mlprod.store.registry as registry_module

    registry.register(run("register"), name="churn", version="1", artifact_uri="u1")
    fast_clock = datetime(2100, 1, 1, tzinfo=timezone.utc)  # a worker whose clock runs far ahead
    with monkeypatch.context() as patch:
        patch.setattr(registry_module, "utcnow", lambda: fast_clock)
        gate(registry, "1", run_id="r1", passed=False)
    gate(registry, "1", run_id="r2", passed=True)  # the same gate, re-run later on a correct clock
    assert registry.latest_blessing("churn", "1").run.run_id == "r2"
    assert registry.promotion_eligibility("churn", "1").eligible
    revisions = [event["revision"] for event in registry.events("churn")]
    assert revisions == sorted(revisions)
    assert len(set(revisions)) == len(revisions)


def test_a_verdict_for_one_alias_does_not_authorise_another(registry):
    registry.register(run("register"), name="churn", version="1", artifact_uri="u1")
    gate(registry, "1", alias="challenger")  # both aliases are empty
    with pytest.raises(StoreRefusal, match="no 'metrics' gate verdict for alias 'champion'"):
        registry.promote(run("promote"), name="churn", version="1")
    assert registry.promote(run("promote"), name="churn", version="1", alias="challenger").changed
    with pytest.raises(StoreRefusal, match="no 'metrics' gate verdict for alias 'champion'"):
        registry.promote(run("promote_champion"), name="churn", version="1")
    assert registry.alias_version("churn") is None


def test_a_required_kind_without_a_verdict_fails_closed(registry):
    registry.register(run("register"), name="churn", version="1", artifact_uri="u1")
    gate(registry, "1")
    with pytest.raises(StoreRefusal, match="no 'serving' gate verdict"):
        registry.promote(run("promote"), name="churn", version="1", require=["metrics", "serving"])
    gate(registry, "1", task="load_test", kind="serving", passed=True)
    promotion = registry.promote(run("promote"), name="churn", version="1", require=["metrics", "serving"])
    assert promotion.changed
    with pytest.raises(StoreError, match="gate kind 'latency' is unknown"):
        gate(registry, "1", task="x", kind="latency")
    with pytest.raises(StoreError, match="required gate kind 'latency' is unknown"):
        registry.promotion_eligibility("churn", "1", require=["latency"])


def test_a_verdict_records_its_contract(registry):
    registry.register(
        run("register"), name="churn", version="1", artifact_uri="u1", artifact_digest="sha256:ab"
    )
    verdict = gate(registry, "1", gate_name="quality", spec_hash="sha256:spec")
    assert verdict.to_dict() | {"created_at": None} == {
        "model_name": "churn",
        "version": "1",
        "alias": "champion",
        "kind": "metrics",
        "gate_name": "quality",
        "passed": True,
        "baseline_version": None,
        "spec_hash": "sha256:spec",
        "artifact_digest": "sha256:ab",
        "revision": verdict.revision,
        "run": {"dag_id": "train", "run_id": "r1", "task_id": "gate", "map_index": -1},
        "created_at": None,
    }
    with pytest.raises(StoreRefusal, match="judged an artifact with digest 'sha256:other'"):
        gate(registry, "1", task="other", artifact_digest="sha256:other")


# -- rollback revokes; retries never re-apply ------------------------------------------------------


def promote_chain(registry, versions):
    baseline = None
    for number in versions:
        register_and_gate(registry, number, baseline=baseline, run_id=f"r{number}")
        registry.promote(run("promote", f"r{number}"), name="churn", version=number)
        baseline = number


def test_rollback_revokes_the_rolled_back_version(registry):
    promote_chain(registry, ["1", "2"])
    registry.rollback(run("rollback", "r9"), name="churn")
    assert registry.alias_version("churn") == "1"
    # clearing and re-running the old promote task of version 2
    with pytest.raises(ConcurrentUpdateError, match="run 'r9' task 'rollback' rolled back to '1'"):
        registry.promote(run("promote", "r2"), name="churn", version="2")
    # a new promote task with the old passing verdict (its baseline equals the restored champion)
    with pytest.raises(StoreRefusal, match="predate the rollback that revoked it"):
        registry.promote(run("promote", "r10"), name="churn", version="2")
    assert registry.alias_version("churn") == "1"
    gate(registry, "2", run_id="r11", baseline="1")  # a new passing gate run
    assert registry.promote(run("promote", "r11"), name="churn", version="2").changed
    assert registry.alias_version("churn") == "2"


def test_a_retried_promotion_after_someone_else_changed_the_alias_fails(registry):
    promote_chain(registry, ["1", "2"])  # try 1 of r2's promotion moved the alias, then died deploying
    registry.rollback(run("rollback", "r3"), name="churn")
    with pytest.raises(ConcurrentUpdateError) as raised:
        registry.promote(run("promote", "r2"), name="churn", version="2")  # try 2
    assert "an earlier try of this task promoted" in str(raised.value)
    assert "run 'r3' task 'rollback'" in str(raised.value)
    assert registry.alias_version("churn") == "1"


def test_a_retried_rollback_after_another_promotion_fails(registry):
    promote_chain(registry, ["1", "2", "3"])
    registry.rollback(run("rollback", "r9"), name="churn")  # 3 -> 2
    register_and_gate(registry, "4", baseline="2", run_id="r4")
    registry.promote(run("promote", "r4"), name="churn", version="4")
    with pytest.raises(ConcurrentUpdateError, match="run 'r4' task 'promote' promoted '4'"):
        registry.rollback(run("rollback", "r9"), name="churn")  # the retry
    assert registry.alias_version("churn") == "4"


def test_a_retried_gate_logs_one_verdict(registry):
    registry.register(run("register"), name="churn", version="1", artifact_uri="u1")
    gate(registry, "1")
    registry.register(run("register", "r2"), name="churn", version="2", artifact_uri="u2")  # in between
    gate(registry, "1")  # the retry
    blessed = [e for e in registry.events("churn") if e["event"] == "blessed"]
    assert len(blessed) == 1


def test_a_retried_gate_after_the_alias_moved_fails(registry):
    promote_chain(registry, ["1"])
    registry.register(run("register", "r2"), name="churn", version="2", artifact_uri="u2")
    gate(registry, "2", run_id="r2", baseline="1")
    register_and_gate(registry, "3", baseline="1", run_id="r3")
    registry.promote(run("promote", "r3"), name="churn", version="3")
    with pytest.raises(ConcurrentUpdateError, match="run 'r3' task 'promote' promoted '3'"):
        gate(registry, "2", run_id="r2", baseline="3")
    assert registry.latest_blessing("churn", "2").baseline_version == "1"


def test_promotion_records_the_approver(registry):
    register_and_gate(registry, "1")
    registry.promote(run("promote"), name="churn", version="1", approved_by="alice")
    promoted = [e for e in registry.events("churn") if e["event"] == "promoted"][-1]
    assert promoted["detail"]["approved_by"] == "alice"
    assert promoted["detail"]["require"] == ["metrics"]


def test_rollback_to_an_unexpected_version_is_refused(registry):
    promote_chain(registry, ["1", "2"])
    assert registry.rollback_target("churn") == "1"
    with pytest.raises(ConcurrentUpdateError, match="would now restore '1', not '0'"):
        registry.rollback(run("rollback", "r9"), name="churn", to_version="0")
    assert registry.alias_version("churn") == "2"

"""Gate, register, promote and rollback operators, run in real DAG runs with dag.test()."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.operators.gate import ModelMetricsGateOperator
from airflow_provider_mlprod.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.registry import ModelRegistry

DAG_SOURCE = """
import json
import pendulum
from pathlib import Path
from airflow.sdk import dag, task
from airflow_provider_mlprod.operators.deployment import CopyArtifactDeployment
from airflow_provider_mlprod.operators.gate import ModelMetricsGateBranchOperator, ModelMetricsGateOperator
from airflow_provider_mlprod.operators.registry import (
    PromoteModelOperator, RegisterModelOperator, RollbackModelOperator,
)

ARTIFACTS = Path({artifacts!r})

@dag(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def pipeline():
    @task
    def train(params=None):
        path = ARTIFACTS / f"model-{{params['version']}}.json"
        path.write_text(json.dumps({{"weights": [1, 2, 3], "version": params["version"]}}))
        return {{"auc": params["auc"], "log_loss": params["log_loss"]}}

    register = RegisterModelOperator(
        task_id="register",
        model_name="churn",
        model_version="{{{{ params.version }}}}",
        artifact_uri="file://" + str(ARTIFACTS) + "/model-{{{{ params.version }}}}.json",
        training_data="warehouse.orders@{{{{ ds }}}}",
        metrics_task_id="train",
        store_conn_id="test_store",
    )
    gate = {gate}
    promote = PromoteModelOperator(
        task_id="promote",
        model_name="churn",
        model_version="{{{{ params.version }}}}",
        deployment=CopyArtifactDeployment("file://" + str(ARTIFACTS) + "/serving/model.json"),  # DEPLOYMENT
        store_conn_id="test_store",
    )
    train() >> register >> gate >> promote
    {extra}

pipeline()
"""

GATE = """ModelMetricsGateOperator(
        task_id="gate",
        model_name="churn",
        model_version="{{ params.version }}",
        thresholds={
            "auc": {"min": 0.7, "min_absolute_change": 0.0},
            "log_loss": {"max": 0.7, "greater_is_better": False},
        },
        if_no_baseline="pass",
        store_conn_id="test_store",
    )"""

BRANCH_GATE = """ModelMetricsGateBranchOperator(
        task_id="gate",
        model_name="churn",
        model_version="{{ params.version }}",
        thresholds={"auc": {"min": 0.7, "min_absolute_change": 0.0}},
        if_no_baseline="pass",
        pass_task_ids="promote",
        fail_task_ids="reject",
        store_conn_id="test_store",
    )"""

BRANCH_EXTRA = """@task
    def reject():
        return "rejected"
    gate >> reject()"""


@pytest.fixture
def store(monkeypatch, db_url):
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEST_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": db_url}}),
    )
    return ModelRegistry(create_store_engine(db_url))


def states(dag_run):
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def run(dag, **params):
    return dag.test(run_conf=params)


def test_good_model_is_gated_registered_promoted_deployed_and_announced(dag_file, store, tmp_path):
    dag = dag_file(
        "model_flow", DAG_SOURCE.format(dag_id="model_flow", artifacts=str(tmp_path), gate=GATE, extra="")
    )
    first = run(dag, version="1", auc=0.80, log_loss=0.5)
    assert first.state == "success", states(first)
    assert store.alias_version("churn") == "1"
    assert json.loads((tmp_path / "serving" / "model.json").read_text())["version"] == "1"

    better = run(dag, version="2", auc=0.85, log_loss=0.4)
    assert better.state == "success", states(better)
    assert store.alias_version("churn") == "2"
    assert store.get_version("churn", "2").training_data.startswith("warehouse.orders@")
    assert store.latest_blessing("churn", "2").baseline_version == "1"

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.scalars(sa.select(AssetEvent).order_by(AssetEvent.id)).all()
        extras = [e.extra for e in events if e.asset.uri == "mlprod://models/churn"]
    assert [extra["version"] for extra in extras][-2:] == ["1", "2"]
    assert extras[-1]["previous_version"] == "1"


def test_worse_model_is_rejected_and_the_champion_stays(dag_file, store, tmp_path):
    dag = dag_file(
        "model_flow2", DAG_SOURCE.format(dag_id="model_flow2", artifacts=str(tmp_path), gate=GATE, extra="")
    )
    assert run(dag, version="1", auc=0.80, log_loss=0.5).state == "success"
    worse = run(dag, version="2", auc=0.78, log_loss=0.5)
    assert worse.state == "failed"
    assert states(worse)["gate"] == "failed"
    assert states(worse)["promote"] == "upstream_failed"
    assert store.alias_version("churn") == "1"
    blessing = store.latest_blessing("churn", "2")
    assert not blessing.passed
    (auc,) = [m for m in blessing.summary["metrics"] if m["metric"] == "auc"]
    assert auc["verdict"] == "fail"
    from airflow_provider_mlprod.summaries import GateResultSummary

    # the gate built its summary as the typed summary: the stored JSON is exactly its to_dict()
    assert GateResultSummary.from_dict(blessing.summary).to_dict() == blessing.summary
    assert (blessing.summary["kind"], blessing.summary["champion_version"]) == ("metrics", "1")
    assert {"alias", "gate_name", "spec_hash", "artifact_digest", "store", "store_id"} <= set(
        blessing.summary
    )
    assert {"min", "max"} <= set(auc)
    assert "auc=0.78 vs baseline 0.8" in auc["reason"]
    assert [e["event"] for e in store.events("churn")].count("rejected") == 1


def test_branch_gate_takes_the_reject_path(dag_file, store, tmp_path):
    source = DAG_SOURCE.format(
        dag_id="model_branch", artifacts=str(tmp_path), gate=BRANCH_GATE, extra=BRANCH_EXTRA
    )
    dag = dag_file("model_branch", source)
    good = run(dag, version="1", auc=0.80, log_loss=0.5)
    assert (good.state, states(good)["promote"], states(good)["reject"]) == ("success", "success", "skipped")
    worse = run(dag, version="2", auc=0.60, log_loss=0.5)
    assert (worse.state, states(worse)["promote"], states(worse)["reject"]) == (
        "success",
        "skipped",
        "success",
    )
    assert store.alias_version("churn") == "1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"thresholds": {"auc": {"min": 0.9, "max": 0.1}}},
            "'gate': threshold spec for 'auc': min 0.9 is greater",
        ),
        (
            {"thresholds": {"auc": {"min_absolute_change": 0}}},
            "'gate': if_no_baseline must be 'pass' or 'fail'",
        ),
        ({"thresholds": {"auc": {"min": 0.5}}, "baseline": "latest"}, "'gate': baseline must be 'champion'"),
        (
            {"thresholds": {"auc": {"min": 0.5}}, "metrics": {"auc": 1}, "metrics_file": "/m.json"},
            "'gate': give at most one metrics source",
        ),
    ],
)
def test_gate_arguments_are_checked_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelMetricsGateOperator(task_id="gate", model_name="m", model_version="1", **kwargs)


def test_register_and_promote_arguments_are_checked_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="'register': give at most one metrics source"):
        RegisterModelOperator(
            task_id="register",
            model_name="m",
            model_version="1",
            artifact_uri="file:///a",
            metrics={},
            metrics_sql="x",
        )
    promote = PromoteModelOperator(task_id="promote", model_name="churn", model_version="1")
    assert [outlet.uri for outlet in promote.outlets] == ["mlprod://models/churn"]


ROLLBACK_SOURCE = """
import pendulum
from airflow.sdk import dag
from airflow_provider_mlprod.operators.registry import RollbackModelOperator

@dag(dag_id="model_rollback", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def rollback():
    RollbackModelOperator(task_id="rollback", model_name="churn", store_conn_id="test_store")

rollback()
"""

BROKEN_DEPLOY = """
class BrokenDeployment:
    def deploy(self, model, context):
        raise RuntimeError("serving cluster unreachable")
"""


def test_rollback_restores_the_previous_champion(dag_file, store, tmp_path):
    flow = dag_file(
        "model_flow3", DAG_SOURCE.format(dag_id="model_flow3", artifacts=str(tmp_path), gate=GATE, extra="")
    )
    assert run(flow, version="1", auc=0.80, log_loss=0.5).state == "success"
    assert run(flow, version="2", auc=0.82, log_loss=0.5).state == "success"
    rollback = dag_file("model_rollback", ROLLBACK_SOURCE)
    dag_run = rollback.test()
    assert dag_run.state == "success"
    assert store.alias_version("churn") == "1"
    second = rollback.test()
    assert second.state == "failed"  # version 1 has no previous champion
    assert store.alias_version("churn") == "1"


def test_failed_deployment_reverts_the_promotion(dag_file, store, tmp_path):
    source = DAG_SOURCE.format(dag_id="model_flow4", artifacts=str(tmp_path), gate=GATE, extra="")
    source = source.replace("ARTIFACTS = Path", BROKEN_DEPLOY + "\nARTIFACTS = Path")
    source = source.replace(
        'CopyArtifactDeployment("file://" + str(ARTIFACTS) + "/serving/model.json"),  # DEPLOYMENT',
        "BrokenDeployment(),",
    )
    assert "BrokenDeployment()," in source
    flow = dag_file("model_flow4", source)
    assert run(flow, version="1", auc=0.80, log_loss=0.5).state == "failed"
    assert store.alias_version("churn") is None  # first promotion reverted: no champion
    flow_ok = dag_file(
        "model_flow5", DAG_SOURCE.format(dag_id="model_flow5", artifacts=str(tmp_path), gate=GATE, extra="")
    )
    assert run(flow_ok, version="2", auc=0.80, log_loss=0.5).state == "success"
    broken = dag_file("model_flow4", source)
    result = run(broken, version="3", auc=0.90, log_loss=0.5)
    assert result.state == "failed"
    assert states(result)["promote"] == "failed"
    assert store.alias_version("churn") == "2"
    assert "promotion_reverted" in [e["event"] for e in store.events("churn")]


class BrokenDeployment:
    def deploy(self, model, context):
        raise RuntimeError("serving cluster unreachable")


def test_a_retry_still_reverts_when_deployment_fails(task_context, isolated_store):
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.store.identity import RunIdentity

    registry = MetricsStoreHook().registry()
    for number, baseline in (("1", None), ("2", "1")):
        gate_run = RunIdentity("train", f"r{number}", "gate")
        registry.register(gate_run, name="churn", version=number, artifact_uri=f"file:///m/{number}")
        registry.record_blessing(
            gate_run, name="churn", version=number, passed=True, baseline_version=baseline, summary={}
        )
    registry.promote(RunIdentity("train", "r1", "promote"), name="churn", version="1")
    # try 1 moved the alias, then its worker died before deploying
    registry.promote(RunIdentity("dag", "run_1", "promote"), name="churn", version="2")
    task = PromoteModelOperator(
        task_id="promote", model_name="churn", model_version="2", deployment=BrokenDeployment()
    )
    with pytest.raises(AirflowFailException, match="alias 'champion' restored to '1'"):
        task.execute(task_context(task_id="promote"))
    assert registry.alias_version("churn") == "1"


def test_refusals_fail_without_retry(task_context, isolated_store):
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.store.identity import RunIdentity

    MetricsStoreHook().registry().register(
        RunIdentity("train", "r1", "register"), name="churn", version="9", artifact_uri="file:///m/9"
    )
    task = PromoteModelOperator(task_id="promote", model_name="churn", model_version="9")
    with pytest.raises(AirflowFailException, match=r"it has no .metrics. gate verdict"):
        task.execute(task_context(task_id="promote"))


# -- pinned artifacts, the store in every summary, no silent store --------------------------------


def alias_context(task_context, **identity):
    """A task context that also collects the Asset events an alias operator emits."""
    from collections import defaultdict
    from types import SimpleNamespace

    return {**task_context(**identity), "outlet_events": defaultdict(SimpleNamespace)}


def _register_gate_promote(task_context, tmp_path, version, *, run_id):
    artifact = tmp_path / f"model-{version}.bin"
    if not artifact.exists():
        artifact.write_bytes(f"weights of {version}".encode())
    register = RegisterModelOperator(
        task_id="register", model_name="churn", model_version=version, artifact_uri=str(artifact)
    )
    registered = register.execute(task_context(task_id="register", run_id=run_id))
    gate = ModelMetricsGateOperator(
        task_id="gate",
        model_name="churn",
        model_version=version,
        thresholds={"auc": {"min": 0.5}},
        metrics={"auc": 0.8},
    )
    gated = gate.execute(task_context(task_id="gate", run_id=run_id))
    promote = PromoteModelOperator(task_id="promote", model_name="churn", model_version=version)
    return registered, gated, promote, artifact


def test_an_artifact_changed_after_registration_is_never_promoted_or_restored(
    task_context, isolated_store, tmp_path
):
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.operators.registry import RollbackModelOperator

    registered, gated, promote, artifact = _register_gate_promote(task_context, tmp_path, "1", run_id="r1")
    assert registered["artifact_digest"].startswith("sha256:")
    assert gated["artifact_digest"] == registered["artifact_digest"]
    promoted = promote.execute(alias_context(task_context, task_id="promote", run_id="r1"))
    assert promoted["store_id"] == registered["store_id"] == gated["store_id"]

    _, _, promote_2, artifact_2 = _register_gate_promote(task_context, tmp_path, "2", run_id="r2")
    artifact_2.write_bytes(b"weights of a rejected run that reused the URI")
    with pytest.raises(AirflowFailException, match="changed since it was registered"):
        promote_2.execute(alias_context(task_context, task_id="promote", run_id="r2"))
    registry = MetricsStoreHook().registry()
    assert registry.alias_version("churn") == "1"

    _, _, promote_3, _ = _register_gate_promote(task_context, tmp_path, "3", run_id="r3")
    promote_3.execute(alias_context(task_context, task_id="promote", run_id="r3"))
    artifact.write_bytes(b"overwritten")  # the version a rollback would restore
    rollback = RollbackModelOperator(task_id="rollback", model_name="churn")
    with pytest.raises(AirflowFailException, match=r"model 'churn' version '1' at .* changed since"):
        rollback.execute(alias_context(task_context, task_id="rollback", run_id="r4"))
    assert registry.alias_version("churn") == "3"


def test_a_promotion_without_a_store_connection_on_celery_fails_naming_it(task_context, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    promote = PromoteModelOperator(task_id="promote", model_name="churn", model_version="1")
    with pytest.raises(AirflowFailException, match="connection 'mlprod_store_default': is not defined"):
        promote.execute(alias_context(task_context, task_id="promote"))


def test_promotion_requires_known_kinds_and_records_the_approver(task_context, isolated_store, tmp_path):
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook

    with pytest.raises(ValueError, match="'promote': required gate kind 'vibes' is unknown"):
        PromoteModelOperator(task_id="promote", model_name="churn", model_version="1", require=["vibes"])
    _, _, _, _ = _register_gate_promote(task_context, tmp_path, "1", run_id="r1")
    promote = PromoteModelOperator(
        task_id="promote", model_name="churn", model_version="1", approved_by="alice"
    )
    summary = promote.execute(alias_context(task_context, task_id="promote", run_id="r1"))
    assert (summary["approved_by"], summary["require"]) == ("alice", ["metrics"])
    promoted = [e for e in MetricsStoreHook().registry().events("churn") if e["event"] == "promoted"]
    assert promoted[-1]["detail"]["approved_by"] == "alice"

"""The release operators attacked as an unlucky operator would: artifacts changing under a deployment,
a rollback whose deployment fails, the CLI rollback. Each test failed before the fix that added it."""

from __future__ import annotations

import argparse
from collections import defaultdict
from types import SimpleNamespace

import pytest

from airflow_provider_mlprod.operators.deployment import CopyArtifactDeployment
from airflow_provider_mlprod.operators.gate import ModelMetricsGateOperator
from airflow_provider_mlprod.operators.registry import (
    PromoteModelOperator,
    RegisterModelOperator,
    RollbackModelOperator,
)


def alias_context(task_context, **identity):
    """A task context that also collects the Asset events an alias operator emits."""
    return {**task_context(**identity), "outlet_events": defaultdict(SimpleNamespace)}


def registry():
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook

    return MetricsStoreHook().registry()


def register_and_gate(task_context, tmp_path, version, *, run_id):
    artifact = tmp_path / f"model-{version}.bin"
    artifact.write_bytes(f"weights of {version}".encode())
    RegisterModelOperator(
        task_id="register", model_name="churn", model_version=version, artifact_uri=str(artifact)
    ).execute(task_context(task_id="register", run_id=run_id))
    ModelMetricsGateOperator(
        task_id="gate",
        model_name="churn",
        model_version=version,
        thresholds={"auc": {"min": 0.5}},
        metrics={"auc": 0.8},
    ).execute(task_context(task_id="gate", run_id=run_id))
    return artifact


class OverwrittenMeanwhile(CopyArtifactDeployment):
    """Another run rewrites the (reused) artifact URI after the promotion checked it, before the copy."""

    def __init__(self, destination, artifact):
        super().__init__(destination)
        self.artifact = artifact

    def deploy(self, model, context):
        self.artifact.write_bytes(b"weights of a rejected run that reused the URI")
        return super().deploy(model, context)


def test_an_artifact_changed_between_the_check_and_the_copy_is_never_served(
    task_context, isolated_store, tmp_path
):
    from airflow.sdk.exceptions import AirflowFailException

    serving = tmp_path / "serving" / "model.bin"
    register_and_gate(task_context, tmp_path, "1", run_id="r1")
    PromoteModelOperator(
        task_id="promote",
        model_name="churn",
        model_version="1",
        deployment=CopyArtifactDeployment(str(serving)),
    ).execute(alias_context(task_context, task_id="promote", run_id="r1"))
    assert serving.read_bytes() == b"weights of 1"

    artifact_2 = register_and_gate(task_context, tmp_path, "2", run_id="r2")
    promote = PromoteModelOperator(
        task_id="promote",
        model_name="churn",
        model_version="2",
        deployment=OverwrittenMeanwhile(str(serving), artifact_2),
    )
    with pytest.raises(
        AirflowFailException, match=r"version '2' at .*model-2.bin changed since it was registered"
    ):
        promote.execute(alias_context(task_context, task_id="promote", run_id="r2"))
    assert serving.read_bytes() == b"weights of 1"
    assert sorted(p.name for p in serving.parent.iterdir()) == ["model.bin"]  # no staging copy left
    assert registry().alias_version("churn") == "1"


class FlakyDeployment:
    """Fails on its first call (the serving cluster is briefly down), then works."""

    def __init__(self):
        self.calls = 0

    def deploy(self, model, context):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("serving cluster unreachable")
        return {"action": "flaky", "version": model.version}


def test_a_rollback_whose_deployment_failed_succeeds_on_its_retry(task_context, isolated_store, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    for number in ("1", "2"):
        register_and_gate(task_context, tmp_path, number, run_id=f"r{number}")
        PromoteModelOperator(task_id="promote", model_name="churn", model_version=number).execute(
            alias_context(task_context, task_id="promote", run_id=f"r{number}")
        )
    rollback = RollbackModelOperator(task_id="rollback", model_name="churn", deployment=FlakyDeployment())
    with pytest.raises(AirflowFailException, match="alias 'champion' restored to '2'"):
        rollback.execute(alias_context(task_context, task_id="rollback", run_id="r3"))
    assert registry().alias_version("churn") == "2"

    summary = rollback.execute(alias_context(task_context, task_id="rollback", run_id="r3"))  # the retry
    assert (summary["version"], summary["previous_version"], summary["changed"]) == ("1", "2", True)
    assert summary["deployment"] == {"action": "flaky", "version": "1"}
    assert registry().alias_version("churn") == "1"


def test_the_cli_rollback_refuses_a_changed_artifact(task_context, isolated_store, tmp_path, capsys):
    from airflow_provider_mlprod.cli import commands

    artifact_1 = register_and_gate(task_context, tmp_path, "1", run_id="r1")
    for number in ("1", "2"):
        if number == "2":
            register_and_gate(task_context, tmp_path, number, run_id="r2")
        PromoteModelOperator(task_id="promote", model_name="churn", model_version=number).execute(
            alias_context(task_context, task_id="promote", run_id=f"r{number}")
        )
    artifact_1.write_bytes(b"overwritten by a later run")
    arguments = argparse.Namespace(name="churn", alias="champion", output="json")
    with pytest.raises(SystemExit, match=r"version '1' at .*model-1.bin changed since it was registered"):
        commands.rollback(arguments)
    assert registry().alias_version("churn") == "2"

    artifact_1.write_bytes(b"weights of 1")  # restored: the rollback proceeds
    commands.rollback(arguments)
    assert registry().alias_version("churn") == "1"


# -- human approval fails closed ------------------------------------------------------------------


@pytest.fixture
def asked(monkeypatch):
    """Stand in for Airflow's HITL request: record that a human was asked instead of deferring."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    monkeypatch.setattr(ApprovalOperator, "execute", lambda self, context: "asked a human")


BORDERLINE_FREE = {"metrics": [{"metric": "auc", "value": 0.95, "min": 0.8, "max": None}]}


@pytest.mark.parametrize("gate_summary", [None, {}, {"metrics": []}, {"metrics": [{"metric": "auc"}]}])
def test_a_margin_only_approval_asks_when_the_gate_summary_cannot_tell(task_context, asked, gate_summary):
    from airflow_provider_mlprod.operators.release import ReleaseApprovalOperator

    approve = ReleaseApprovalOperator(
        task_id="approve", gate_task_id="gate", require_approval=True, approval_margin=0.01
    )
    context = task_context(task_id="approve", xcoms={("gate", "return_value"): gate_summary})
    assert approve.execute(context) == "asked a human"
    clear = task_context(task_id="approve", xcoms={("gate", "return_value"): BORDERLINE_FREE})
    assert approve.execute(clear)["asked"] is False


@pytest.mark.parametrize("flag", ["Ture", "required", "None", "2"])
def test_an_unreadable_require_approval_flag_fails_instead_of_skipping_approval(task_context, asked, flag):
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_mlprod.operators.release import ReleaseApprovalOperator

    approve = ReleaseApprovalOperator(task_id="approve", gate_task_id="gate", require_approval=flag)
    context = task_context(task_id="approve", xcoms={("gate", "return_value"): BORDERLINE_FREE})
    with pytest.raises(AirflowFailException, match=f"require_approval must be true or false, got '{flag}'"):
        approve.execute(context)


@pytest.mark.parametrize("margin", [float("nan"), -0.1, float("inf"), "0.1", True])
def test_a_margin_that_can_never_match_is_refused_when_the_dag_is_parsed(margin):
    from airflow_provider_mlprod.operators.release import ReleaseApprovalOperator

    with pytest.raises(ValueError, match="approval_margin must be a finite number >= 0"):
        ReleaseApprovalOperator(
            task_id="approve", gate_task_id="gate", require_approval=True, approval_margin=margin
        )


def test_the_cli_rollback_names_an_artifact_it_cannot_read_instead_of_a_traceback(
    task_context, isolated_store, tmp_path
):
    import shutil
    import socket
    import tempfile
    from pathlib import Path

    from airflow_provider_mlprod.cli import commands

    folder = tmp_path / "model-1"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"weights of 1")
    for number, artifact in (("1", folder), ("2", tmp_path / "model-2.bin")):
        if number == "2":
            artifact.write_bytes(b"weights of 2")
        RegisterModelOperator(
            task_id="register", model_name="churn", model_version=number, artifact_uri=str(artifact)
        ).execute(task_context(task_id="register", run_id=f"r{number}"))
        ModelMetricsGateOperator(
            task_id="gate",
            model_name="churn",
            model_version=number,
            thresholds={"auc": {"min": 0.5}},
            metrics={"auc": 0.8},
        ).execute(task_context(task_id="gate", run_id=f"r{number}"))
        PromoteModelOperator(task_id="promote", model_name="churn", model_version=number).execute(
            alias_context(task_context, task_id="promote", run_id=f"r{number}")
        )
    short = Path(tempfile.mkdtemp(prefix="sock-", dir="/tmp"))  # AF_UNIX paths are short
    unreadable = socket.socket(socket.AF_UNIX)  # a socket file: opening it for reading fails
    unreadable.bind(str(short / "s"))
    (folder / "control.sock").symlink_to(short / "s")
    try:
        with pytest.raises(SystemExit, match=r"OSError: .*No such device"):
            commands.rollback(argparse.Namespace(name="churn", alias="champion", output="json"))
    finally:
        unreadable.close()
        shutil.rmtree(short)
    assert registry().alias_version("churn") == "2"


@pytest.mark.parametrize("outcome", ["False", "None", ""])
def test_a_promotion_cleared_after_its_approval_was_rejected_does_not_promote(
    task_context, isolated_store, tmp_path, outcome
):
    """A human rejected the promotion (the approval skipped it); then someone clears the promote task."""
    from airflow.sdk.exceptions import AirflowFailException

    register_and_gate(task_context, tmp_path, "1", run_id="r1")
    promote = PromoteModelOperator(
        task_id="promote", model_name="churn", model_version="1", approved=outcome, approved_by=""
    )
    with pytest.raises(AirflowFailException, match="its approval did not approve it"):
        promote.execute(alias_context(task_context, task_id="promote", run_id="r1"))
    assert registry().alias_version("churn") is None
    promote.approved = "True"
    assert promote.execute(alias_context(task_context, task_id="promote", run_id="r1"))["changed"]


def test_the_release_group_hands_the_approval_outcome_to_the_promotion():
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_mlprod.operators.release import release_tasks

    with DAG("release_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        release = release_tasks(
            model_name="churn",
            model_version="1",
            artifact_uri="file:///m.pkl",
            thresholds={"auc": {"min": 0.8}},
            group_id="ship",
            prefix_group_id=True,
        )
    assert "'ship.approve'" in release.promote.approved
    assert ".get('approved')" in release.promote.approved
    assert "approved" in release.promote.template_fields

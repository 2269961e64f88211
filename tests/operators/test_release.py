"""The release TaskGroup: structure, approval off by default, borderline detection, Markdown body."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_mlprod.operators.release import (
    ReleaseApprovalOperator,
    gate_summary_markdown,
    is_borderline,
    release_tasks,
)

SUMMARY = {
    "model_name": "churn",
    "model_version": "7",
    "alias": "champion",
    "gate_name": "quality",
    "champion_version": "6",
    "passed": True,
    "metrics": [
        {
            "metric": "auc",
            "value": 0.805,
            "baseline": 0.8,
            "min": 0.8,
            "max": None,
            "verdict": "pass",
            "reason": "a|b",
        },
        {
            "metric": "loss",
            "value": 0.3,
            "baseline": 0.31,
            "min": None,
            "max": 0.6,
            "verdict": "pass",
            "reason": "ok",
        },
    ],
}


def build(**kwargs):
    with DAG("release_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        release = release_tasks(
            model_name="churn",
            model_version="{{ params.version }}",
            artifact_uri="file:///m.pkl",
            thresholds={"auc": {"min": 0.8}},
            **kwargs,
        )
    return dag, release


def test_the_group_chains_register_gate_approve_promote_and_keeps_plain_task_ids():
    _dag, release = build(require=["metrics"], alias="challenger", gate_name="quality")
    assert [t.task_id for t in (release.register, release.gate, release.approve, release.promote)] == [
        "register",
        "gate",
        "approve",
        "promote",
    ]
    assert release.gate.downstream_task_ids == {"approve"}
    assert release.approve.downstream_task_ids == {"promote"}
    assert (release.gate.alias, release.gate.gate_name, release.promote.alias) == (
        "challenger",
        "quality",
        "challenger",
    )
    assert "approve" in release.promote.approved_by
    prefixed = build(group_id="ship", prefix_group_id=True)[1]
    assert prefixed.promote.task_id == "ship.promote"
    assert "ship.approve" in prefixed.promote.approved_by
    assert prefixed.approve.gate_task_id == "ship.gate"


def test_approval_not_required_approves_without_asking(task_context):
    approve = ReleaseApprovalOperator(task_id="approve", gate_task_id="gate", require_approval="False")
    context = task_context(task_id="approve", xcoms={("gate", "return_value"): SUMMARY})
    assert approve.execute(context) == {"approved": True, "approved_by": None, "asked": False}
    margin_only = ReleaseApprovalOperator(
        task_id="approve", gate_task_id="gate", require_approval=True, approval_margin=0.001
    )
    assert margin_only.execute(context)["asked"] is False  # no metric within 0.001 of a bound


def test_borderline_gates_and_the_markdown_body():
    assert is_borderline(SUMMARY, 0.01)
    assert not is_borderline(SUMMARY, 0.001)
    body = gate_summary_markdown(SUMMARY)
    assert "`churn` version `7`" in body
    assert "| auc | 0.805 | 0.8 | pass | a\\|b |" in body


@pytest.mark.parametrize("kinds", [["vibes"], []])
def test_unknown_required_kinds_are_refused_at_parse_time(kinds):
    with pytest.raises(ValueError, match="'promote'"):
        build(require=kinds)


def test_the_gate_can_be_a_subclass_of_the_metric_gate():
    from airflow_provider_mlprod.operators.gate import ModelMetricsGateOperator
    from airflow_provider_mlprod.operators.registry import PromoteModelOperator

    class LiveGate(ModelMetricsGateOperator):
        pass

    _dag, release = build(gate_class=LiveGate, gate_kwargs={"retries": 3})
    assert (type(release.gate), release.gate.retries) == (LiveGate, 3)
    with pytest.raises(TypeError, match="gate_class must be ModelMetricsGateOperator or a subclass"):
        build(gate_class=PromoteModelOperator)

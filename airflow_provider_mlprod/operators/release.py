"""The release path as one reusable TaskGroup: register -> gate -> optional human approval -> promote.

``release_tasks(...)`` builds the four tasks inside a TaskGroup and returns them, so a DAG writes
the release path once::

    release = release_tasks(
        model_name="churn",
        model_version="{{ ti.xcom_pull(task_ids='train')['version'] }}",
        artifact_uri="{{ ti.xcom_pull(task_ids='train')['artifact_uri'] }}",
        metrics_task_id="train",
        metrics_key="metrics",
        thresholds={"roc_auc": {"min": 0.8, "min_absolute_change": 0.0}},
        if_no_baseline="pass",
        require_approval="{{ params.require_approval }}",
    )
    train() >> release.group

The approval step is Airflow's own ``ApprovalOperator``: when approval is required (a templated
flag, off by default, or only for borderline gates with ``approval_margin``) the task waits in
Required Actions with the gate summary as its Markdown body; the approver (``responded_by_user``) is
recorded with the promotion; a rejection skips the promotion and leaves the champion unchanged. When
approval is not required it succeeds at once and the promotion runs unattended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import TaskGroup

from airflow_provider_mlprod.operators.gate import ModelMetricsGateOperator
from airflow_provider_mlprod.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_provider_mlprod.store.registry import CHAMPION, DEFAULT_REQUIRED_KINDS

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

    from airflow_provider_mlprod.operators.deployment import DeploymentAction

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class ReleaseApprovalOperator(ApprovalOperator):
    """Ask a human to approve a gated version, unless approval is not required for this run.

    :param gate_task_id: the gate task whose XCom summary becomes the Markdown body.
    :param require_approval: ask for approval (templated: ``"{{ params.require_approval }}"``).
    :param approval_margin: when set, ask only if some metric lies within this distance of one of
        its bounds (a borderline gate), or if the gate summary shows no metric with a value and a
        bound to measure it by; otherwise approve without asking.

    A ``require_approval`` that renders to anything but true/false (``"Ture"``, an undefined Param)
    fails the task rather than skipping the approval.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "require_approval")

    def __init__(
        self,
        *,
        gate_task_id: str,
        require_approval: bool | str = False,
        approval_margin: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Approve the promotion of a gated model version?")
        super().__init__(**kwargs)
        if approval_margin is not None and (
            isinstance(approval_margin, bool)
            or not isinstance(approval_margin, (int, float))
            or not 0 <= approval_margin < float("inf")
        ):
            raise ValueError(
                f"task {self.task_id!r}: approval_margin must be a finite number >= 0 (or None), "
                f"got {approval_margin!r}"
            )
        self.gate_task_id = gate_task_id
        self.require_approval = require_approval
        self.approval_margin = approval_margin

    def execute(self, context: Context) -> Any:
        summary = context["ti"].xcom_pull(task_ids=self.gate_task_id) or {}
        flag = str(self.require_approval).strip().lower()
        if flag not in _TRUE + _FALSE:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"require_approval must be true or false, got {str(self.require_approval)!r}; "
                "not promoting without knowing whether a human must approve"
            )
        required = flag in _TRUE
        if required and self.approval_margin is not None and _measurable(summary):
            required = is_borderline(summary, self.approval_margin)
        if not required:
            self.log.info("Approval not required for this run; promoting without asking")
            return {"approved": True, "approved_by": None, "asked": False}
        self.body = gate_summary_markdown(summary)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context=context, event=event)
        approved = result["chosen_options"][0] == self.APPROVE
        user = result.get("responded_by_user")
        name = (user.get("name") or user.get("id")) if isinstance(user, Mapping) else user
        return {"approved": approved, "approved_by": str(name) if name else None, "asked": True}


def is_borderline(summary: Mapping[str, Any], margin: float) -> bool:
    """Whether some metric of a gate summary lies within ``margin`` of its min or max bound."""
    for metric in summary.get("metrics") or []:
        value = metric.get("value")
        for bound in (metric.get("min"), metric.get("max")):
            if value is not None and bound is not None and abs(float(value) - float(bound)) <= margin:
                return True
    return False


def _measurable(summary: Mapping[str, Any]) -> bool:
    """Whether a gate summary has a metric with a value and a bound, so a margin can judge it."""
    return any(
        metric.get("value") is not None and (metric.get("min") is not None or metric.get("max") is not None)
        for metric in summary.get("metrics") or []
        if isinstance(metric, Mapping)
    )


def gate_summary_markdown(summary: Mapping[str, Any]) -> str:
    """A gate summary as Markdown: the version, the champion it was compared with, one row per metric."""
    lines = [
        f"**Model** `{summary.get('model_name')}` version `{summary.get('model_version')}` "
        f"for alias `{summary.get('alias', CHAMPION)}`",
        "",
        f"Compared with version `{summary.get('champion_version')}`; gate "
        f"`{summary.get('gate_name')}` {'passed' if summary.get('passed') else 'did not pass'}.",
        "",
        "| metric | value | baseline | verdict | reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for metric in summary.get("metrics") or []:
        reason = str(metric.get("reason", "")).replace("|", "\\|")
        lines.append(
            f"| {metric.get('metric')} | {metric.get('value')} | {metric.get('baseline')} | "
            f"{metric.get('verdict')} | {reason} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class ReleaseTasks:
    """The tasks of one release path; ``group`` is the TaskGroup to wire up- and downstream."""

    group: TaskGroup
    register: BaseOperator
    gate: BaseOperator
    approve: BaseOperator
    promote: BaseOperator


def release_tasks(
    *,
    model_name: str,
    model_version: str,
    artifact_uri: str,
    thresholds: Mapping[str, Any],
    if_no_baseline: str | None = None,
    training_data: str = "",
    metrics_task_id: str | None = None,
    metrics_key: str | None = None,
    alias: str = CHAMPION,
    require: Sequence[str] = DEFAULT_REQUIRED_KINDS,
    deployment: DeploymentAction | None = None,
    require_approval: bool | str = False,
    approval_margin: float | None = None,
    gate_name: str | None = None,
    store_conn_id: str | None = None,
    group_id: str = "release",
    prefix_group_id: bool = False,
    gate_kwargs: Mapping[str, Any] | None = None,
    gate_class: type[ModelMetricsGateOperator] = ModelMetricsGateOperator,
) -> ReleaseTasks:
    """Build register -> gate -> approve -> promote inside a TaskGroup (call it inside a DAG).

    Task ids are ``register``, ``gate``, ``approve`` and ``promote`` (prefixed with ``group_id`` when
    ``prefix_group_id``). The gate is a ``ModelMetricsGateOperator``, or the subclass ``gate_class``
    (``gate_kwargs`` adds arguments such as ``on_failure_callback``); ``gate_name`` keeps its verdicts
    stable across renames.
    The promotion requires the gate kinds in ``require`` and records the approver.
    """
    with TaskGroup(group_id=group_id, prefix_group_id=prefix_group_id) as group:
        prefix = f"{group_id}." if prefix_group_id else ""
        register = RegisterModelOperator(
            task_id="register",
            model_name=model_name,
            model_version=model_version,
            artifact_uri=artifact_uri,
            training_data=training_data,
            metrics_task_id=metrics_task_id,
            metrics_key=metrics_key,
            store_conn_id=store_conn_id,
        )
        if not (isinstance(gate_class, type) and issubclass(gate_class, ModelMetricsGateOperator)):
            raise TypeError(f"gate_class must be ModelMetricsGateOperator or a subclass, got {gate_class!r}")
        gate = gate_class(
            task_id="gate",
            model_name=model_name,
            model_version=model_version,
            thresholds=thresholds,
            if_no_baseline=if_no_baseline,
            alias=alias,
            gate_name=gate_name,
            store_conn_id=store_conn_id,
            **dict(gate_kwargs or {}),
        )
        approve = ReleaseApprovalOperator(
            task_id="approve",
            gate_task_id=f"{prefix}gate",
            require_approval=require_approval,
            approval_margin=approval_margin,
        )
        promote = PromoteModelOperator(
            task_id="promote",
            model_name=model_name,
            model_version=model_version,
            alias=alias,
            require=require,
            deployment=deployment,
            approved_by="{{ (ti.xcom_pull(task_ids='"
            + prefix
            + "approve') or {}).get('approved_by') or '' }}",
            approved="{{ (ti.xcom_pull(task_ids='" + prefix + "approve') or {}).get('approved') }}",
            store_conn_id=store_conn_id,
        )
        register >> gate >> approve >> promote
    return ReleaseTasks(group, register, gate, approve, promote)

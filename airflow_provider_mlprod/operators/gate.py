"""Model gate operators: bless or reject one exact model version on thresholds and against the champion."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk import BaseOperator

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.gates import parse_thresholds
from airflow_provider_mlprod.operators.metrics_input import MetricsSource
from airflow_provider_mlprod.operators.outcome import final_errors_fail_the_task
from airflow_provider_mlprod.operators.run_context import run_identity

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook

CHAMPION_BASELINE = "champion"
GATE_KIND = "metrics"


def spec_hash(thresholds: Mapping[str, Any], baseline: Any, if_no_baseline: str | None) -> str:
    """``sha256:<hex>`` of a gate's spec (thresholds, baseline choice, no-baseline policy), for the record."""
    import hashlib
    import json

    spec = {"thresholds": thresholds, "baseline": baseline, "if_no_baseline": if_no_baseline}
    canonical = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class _ModelGate(BaseOperator):
    """What both gate operators share: arguments, evaluation, recording the blessing."""

    template_fields: Sequence[str] = ("model_name", "model_version", "metrics_source")
    template_ext: Sequence[str] = (".sql",)
    ui_color = "#f4d35e"

    def __init__(
        self,
        *,
        model_name: str,
        model_version: str,
        thresholds: Mapping[str, Any],
        if_no_baseline: str | None = None,
        baseline: str | Mapping[str, Any] | None = CHAMPION_BASELINE,
        metrics: Any = None,
        metrics_task_id: str | None = None,
        metrics_xcom_key: str = "return_value",
        metrics_file: str | None = None,
        metrics_sql: str | None = None,
        metrics_sql_parameters: Mapping[str, Any] | None = None,
        metrics_sql_hook_params: Mapping[str, Any] | None = None,
        sql_conn_id: str | None = None,
        metrics_key: str | None = None,
        store_conn_id: str | None = None,
        alias: str = CHAMPION_BASELINE,
        gate_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if gate_name is not None and (not isinstance(gate_name, str) or not gate_name.strip()):
            raise ValueError(
                f"task {self.task_id!r}: gate_name must be a non-empty string, got {gate_name!r}"
            )
        try:
            rules = parse_thresholds(thresholds)
        except SpecError as exc:
            raise ValueError(f"task {self.task_id!r}: {exc}") from None
        if isinstance(baseline, str) and baseline != CHAMPION_BASELINE:
            raise ValueError(
                f"task {self.task_id!r}: baseline must be 'champion', a mapping of metrics, or None; "
                f"got {baseline!r}"
            )
        if any(rule.compares_to_baseline for rule in rules):
            if baseline is None:
                raise ValueError(
                    f"task {self.task_id!r}: thresholds compare against a baseline but baseline=None"
                )
            if if_no_baseline not in ("pass", "fail"):
                raise ValueError(
                    f"task {self.task_id!r}: if_no_baseline must be 'pass' or 'fail' (what happens while "
                    f"there is no champion yet); got {if_no_baseline!r}"
                )
        self.metrics_source = MetricsSource(
            metrics=metrics,
            metrics_task_id=metrics_task_id,
            metrics_xcom_key=metrics_xcom_key,
            metrics_file=metrics_file,
            metrics_sql=metrics_sql,
            metrics_sql_parameters=metrics_sql_parameters,
            metrics_sql_hook_params=metrics_sql_hook_params,
            sql_conn_id=sql_conn_id,
            metrics_key=metrics_key,
        ).check(self.task_id, allow_none=True)
        self.model_name = model_name
        self.model_version = model_version
        self.thresholds = dict(thresholds)
        self.if_no_baseline = if_no_baseline
        self.baseline = baseline
        self.store_conn_id = store_conn_id
        self.alias = alias
        self.gate_name = gate_name or self.task_id
        self.spec_hash = spec_hash(self.thresholds, baseline, if_no_baseline)
        self.gate_summary: dict[str, Any] | None = None

    @cached_property
    def store_hook(self) -> MetricsStoreHook:
        """The metrics store."""
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        return MetricsStoreHook(store_conn_id=self.store_conn_id)

    def _evaluate(self, context: Context) -> dict[str, Any]:
        """Evaluate the gate, record the blessing, push and return the summary."""
        import dataclasses

        from airflow_provider_mlprod.gates import evaluate_gate
        from airflow_provider_mlprod.summaries import GateResultSummary, MetricResult

        with final_errors_fail_the_task():
            store = self.store_hook.describe()
            self.log.info("Using metrics store %s (store id %s)", store["store"], store["store_id"])
            registry = self.store_hook.registry()
            candidate = registry.get_version(self.model_name, str(self.model_version))
            if self.metrics_source.given:
                metrics, source = self.metrics_source.read(context)
            else:
                metrics, source = candidate.metrics, "the registered metrics of this version"
            # The champion now: promotion later swaps the alias only if it still points here.
            champion_version = registry.alias_version(self.model_name, self.alias)
            baseline_metrics, baseline_version = None, None
            if isinstance(self.baseline, Mapping):
                baseline_metrics, baseline_version = dict(self.baseline), "explicit baseline"
            elif self.baseline == CHAMPION_BASELINE and champion_version is not None:
                baseline_metrics = registry.get_version(self.model_name, champion_version).metrics
                baseline_version = champion_version
            result = evaluate_gate(
                metrics,
                self.thresholds,
                baseline=baseline_metrics,
                baseline_version=baseline_version,
                if_no_baseline=self.if_no_baseline,
            )
            typed = GateResultSummary(
                passed=result.passed,
                metrics=tuple(MetricResult(**verdict.to_dict()) for verdict in result.verdicts),
                model_name=self.model_name,
                model_version=str(self.model_version),
                baseline_version=result.baseline_version,
                champion_version=champion_version,
                metrics_source=source,
                alias=self.alias,
                gate_name=self.gate_name,
                gate_kind=GATE_KIND,
                spec_hash=self.spec_hash,
                artifact_digest=candidate.artifact_digest,
                **store,
            )
            summary = typed.to_dict()
            verdict = registry.record_blessing(
                run_identity(context),
                name=self.model_name,
                version=str(self.model_version),
                passed=result.passed,
                baseline_version=champion_version,
                summary=summary,
                alias=self.alias,
                kind=GATE_KIND,
                gate_name=self.gate_name,
                spec_hash=self.spec_hash,
                artifact_digest=candidate.artifact_digest,
            )
            summary = dataclasses.replace(typed, revision=verdict.revision).to_dict()
        self.gate_summary = summary
        for verdict in result.verdicts:
            self.log.info("%s %s", "PASS" if verdict.passed else "FAIL", verdict.reason)
        return summary

    @staticmethod
    def _failure_message(summary: Mapping[str, Any]) -> str:
        reasons = "; ".join(m["reason"] for m in summary["metrics"] if m["verdict"] == "fail")
        model = f"model {summary['model_name']!r} version {summary['model_version']!r}"
        return f"{model} rejected by the gate: {reasons}"


class ModelMetricsGateOperator(_ModelGate):
    """Gate one registered model version on metric thresholds and against the champion.

    The metrics come from exactly one of ``metrics`` (a mapping, templated), ``metrics_task_id`` (an
    upstream task's XCom), ``metrics_file`` (a JSON file at any ObjectStoragePath URI) or
    ``metrics_sql`` (a query on ``sql_conn_id``); with none of them, the metrics registered with the
    version. The verdict is recorded as a blessing of that exact version, which
    ``PromoteModelOperator`` requires. The task fails (without retry) when the gate rejects the
    version, naming each failing metric and why; the summary is pushed to XCom first.

    :param model_name: registered model name.
    :param model_version: the exact version to gate (templated).
    :param thresholds: threshold spec, see ``airflow_provider_mlprod.gates``; checked at parse time.
    :param if_no_baseline: ``"pass"`` or ``"fail"``: the verdict of change rules while there is no
        champion. Required when a rule compares against a baseline.
    :param baseline: ``"champion"`` (default), an explicit mapping of metrics, or None.
    :param metrics_key: dotted key of the metrics object inside the source document.
    :param store_conn_id: metrics store connection (default: ``[mlprod] store_conn_id``).
    :param alias: the alias the version competes for (default ``champion``): ``baseline="champion"``
        compares with the version this alias points at, the verdict counts only for promotions to
        this alias, and the promotion later swaps it only if it still points there. Use the same
        alias on ``PromoteModelOperator``.
    :param gate_name: the gate's stable name in the registry (default: the task id). Set it so that
        renaming the task or its TaskGroup does not orphan the verdicts of earlier runs.

    The verdict is recorded with kind ``metrics``, the gate name, a hash of the spec, the baseline
    version and the artifact digest. A retry replaces its own verdict; if the alias moved since its
    first try, the retry fails (without retry) naming who moved it, rather than re-judging.

    .. seealso:: README section "Model gates".
    """

    def execute(self, context: Context) -> dict[str, Any]:
        summary = self._evaluate(context)
        if not summary["passed"]:
            from airflow.sdk.exceptions import AirflowFailException

            context["ti"].xcom_push(key="return_value", value=summary)
            raise AirflowFailException(self._failure_message(summary))
        return summary


class ModelMetricsGateBranchOperator(_ModelGate, BaseBranchOperator):
    """The gate as a branch: follow ``pass_task_ids`` when the version passes, else ``fail_task_ids``.

    Takes the same arguments as :class:`ModelMetricsGateOperator`, plus the two branches. The verdict
    is recorded the same way, and the summary is pushed to XCom under ``gate_summary``.

    :param pass_task_ids: task id(s) to follow when the gate passes (e.g. the promotion).
    :param fail_task_ids: task id(s) to follow when it fails (e.g. an alert).
    """

    def __init__(
        self,
        *,
        pass_task_ids: str | Iterable[str],
        fail_task_ids: str | Iterable[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pass_task_ids = pass_task_ids
        self.fail_task_ids = fail_task_ids

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        summary = self._evaluate(context)
        context["ti"].xcom_push(key="gate_summary", value=summary)
        if summary["passed"]:
            return self.pass_task_ids
        self.log.warning(self._failure_message(summary))
        return self.fail_task_ids

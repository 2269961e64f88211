"""ModelPerformanceMonitorOperator: a live model's metrics on a window of labelled predictions.

The metrics are computed by ``airflow_provider_mlprod.monitoring.performance`` (no Airflow there);
the comparison is a model gate (``airflow_provider_mlprod.gates``) against the registered metrics of
the monitored version. This module finds the window, records the metrics, emits the degraded Asset
and ends the task per policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.assets import (
    add_outlet,
    check_asset_name_part,
    model_degraded_alias,
    model_degraded_asset,
)
from airflow_provider_mlprod.exceptions import ConfigurationError, SpecError
from airflow_provider_mlprod.gates import parse_thresholds
from airflow_provider_mlprod.operators.outcome import ON_FAILURE_CHOICES, final_errors_fail_the_task, settle
from airflow_provider_mlprod.operators.run_context import run_identity
from airflow_provider_mlprod.sql.identifiers import check_identifier

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.gates import GateResult
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.monitoring.performance import PerformanceResult, PerformanceSource

MODEL_TYPES = ("classification", "regression")


class ModelPerformanceMonitorOperator(BaseOperator):
    """Compute a live model's metrics on a window of labelled predictions and detect degradation.

    The predictions (``predictions_table`` or ``predictions_query``) whose ``timestamp_column`` lies in
    ``[window_start, window_end)`` are joined with ``labels_table`` on ``key_column``; predictions
    without a label yet are counted and left out. Classification (binary): accuracy, precision,
    recall and F1 are counted inside the database, ROC AUC and log loss computed on the fetched
    ``(score, label)`` pairs of the window. Regression: MAE, RMSE and R2 from sums computed inside
    the database. See ``airflow_provider_mlprod.monitoring.performance`` for the arithmetic.

    ``tolerances`` is a gate threshold spec (``airflow_provider_mlprod.gates``): change rules compare
    with the registered metrics of the monitored version (``model_version``; by default the current
    champion, so the baseline is the champion's registered metrics) and absolute bounds apply as
    they are::

        tolerances={
            "roc_auc": {"min_absolute_change": -0.03, "min": 0.7},  # at most 0.03 below the baseline
            "log_loss": {"greater_is_better": False, "min_absolute_change": -0.05},
        }

    A metric that is undefined on the window (e.g. precision without positive predictions) fails its
    rule. The task records the metrics (and the row counts) in the metrics store as one point of the
    model's time series (a retry replaces its own point), pushes a JSON summary to XCom (metric
    values, counts, window, baseline version, per-metric verdicts; shaped like a gate summary so the
    mlprod notifier builds its alert from it) and then, when a rule failed, acts on
    ``on_degradation``: ``fail`` (default; no retry), ``skip`` or ``continue``.

    **Data-aware retraining.** When the model degraded, the task adds an Asset event on
    ``mlprod://models/<model_name>/degraded`` whose extra holds the key figures (window, counts,
    metric values, the failed rules). The event goes through the Asset alias declared as outlet, so
    a run that did not degrade emits nothing. Airflow records outlet events only for a task that
    succeeds: use ``on_degradation="continue"`` when a retraining DAG should run on degradation::

        from airflow_provider_mlprod.assets import model_degraded_asset

        @dag(schedule=[model_degraded_asset("churn")])
        def retrain_churn(): ...

    With ``fail`` or ``skip`` the degradation shows as a failed or skipped task (and reaches the
    task's failure callbacks, e.g. the mlprod notifier) but no Asset event is recorded.

    :param sql_conn_id: any Airflow SQL connection holding the predictions and the labels.
    :param model_name: the model (not templated: it names the Asset).
    :param model_type: ``classification`` (binary) or ``regression``.
    :param labels_table: the labels table, optionally ``schema.table`` (templated).
    :param key_column: the column joining a prediction to its label.
    :param timestamp_column: the predictions' timestamp column the window filters on.
    :param label_column: the labels' true value column (default ``label``).
    :param predictions_table: the predictions table, optionally ``schema.table`` (templated).
    :param predictions_query: or a ``SELECT`` returning the predictions (templated, ``.sql`` file).
    :param predictions_parameters: the query's bind parameters, written ``:name`` in the SQL (templated;
        shown as JSON in the UI); use them instead of Jinja inside the SQL.
    :param hook_params: arguments for the connection's Airflow hook when the engine is built.
    :param predictions_schema: / ``labels_schema``: schemas, when not in the table names.
    :param labels_key_column: the key's name in the labels table (default ``key_column``).
    :param prediction_column: the predicted class (classification) or value (regression).
    :param score_column: classification: the positive class's probability (needed for ROC AUC and
        log loss; without ``prediction_column`` the class is ``score >= decision_threshold``).
    :param positive_label: classification: the label value of the positive class (default 1).
    :param decision_threshold: classification without ``prediction_column`` (default 0.5).
    :param window_start: start of the window, inclusive (templated, default ``{{ data_interval_start }}``).
    :param window_end: end of the window, exclusive (templated, default ``{{ data_interval_end }}``).
    :param model_version: the version that made the predictions (templated); default the champion.
    :param tolerances: a gate threshold spec; ``None`` records the metrics without judging them.
    :param if_no_baseline: ``pass`` or ``fail``: what change rules do while there is no champion
        (or the version has no such metric registered: that fails). Required with change rules.
    :param on_degradation: ``fail`` (default), ``skip`` or ``continue``.
    :param dataset: the store's dataset label of the recorded points (templated); default the
        window as an ISO 8601 interval ``start/end``.
    :param store_conn_id: metrics store connection (default ``[mlprod] store_conn_id``).

    .. seealso:: README section "Performance monitoring and the data-aware loop".
    """

    template_fields: Sequence[str] = (
        "sql_conn_id",
        "predictions_table",
        "predictions_schema",
        "predictions_query",
        "predictions_parameters",
        "labels_table",
        "labels_schema",
        "window_start",
        "window_end",
        "model_version",
        "dataset",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"predictions_query": "sql", "predictions_parameters": "json"}
    ui_color = "#c3b1e1"

    def __init__(
        self,
        *,
        sql_conn_id: str,
        model_name: str,
        model_type: str,
        labels_table: str,
        key_column: str,
        timestamp_column: str,
        label_column: str = "label",
        predictions_table: str | None = None,
        predictions_schema: str | None = None,
        predictions_query: str | None = None,
        predictions_parameters: Mapping[str, Any] | None = None,
        hook_params: Mapping[str, Any] | None = None,
        labels_schema: str | None = None,
        labels_key_column: str | None = None,
        prediction_column: str | None = None,
        score_column: str | None = None,
        positive_label: str | int = 1,
        decision_threshold: float = 0.5,
        window_start: str = "{{ data_interval_start }}",
        window_end: str = "{{ data_interval_end }}",
        model_version: str | None = None,
        tolerances: Mapping[str, Any] | None = None,
        if_no_baseline: str | None = None,
        on_degradation: str = "fail",
        dataset: str | None = None,
        store_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id")
        try:
            check_asset_name_part(model_name, "model name")
        except ConfigurationError as exc:
            raise ValueError(f"task {task_id!r}: {exc}") from None
        add_outlet(kwargs, model_degraded_alias(model_name))
        super().__init__(**kwargs)
        self._check_arguments(
            model_type=model_type,
            columns={
                "key column": key_column,
                "timestamp column": timestamp_column,
                "label column": label_column,
                "labels key column": labels_key_column,
                "prediction column": prediction_column,
                "score column": score_column,
            },
            has_predictions_table=predictions_table is not None,
            has_predictions_query=predictions_query is not None,
            has_parameters=bool(predictions_parameters),
            tolerances=tolerances,
            if_no_baseline=if_no_baseline,
            on_degradation=on_degradation,
        )
        self.sql_conn_id = sql_conn_id
        self.model_name = model_name
        self.model_type = model_type
        self.labels_table = labels_table
        self.key_column = key_column
        self.timestamp_column = timestamp_column
        self.label_column = label_column
        self.predictions_table = predictions_table
        self.predictions_schema = predictions_schema
        self.predictions_query = predictions_query
        self.predictions_parameters = dict(predictions_parameters or {})
        self.hook_params = dict(hook_params or {})
        self.labels_schema = labels_schema
        self.labels_key_column = labels_key_column
        self.prediction_column = prediction_column
        self.score_column = score_column
        self.positive_label = positive_label
        self.decision_threshold = decision_threshold
        self.window_start = window_start
        self.window_end = window_end
        self.model_version = model_version
        self.tolerances = dict(tolerances) if tolerances is not None else None
        self.if_no_baseline = if_no_baseline
        self.on_degradation = on_degradation
        self.dataset = dataset
        self.store_conn_id = store_conn_id
        self.performance_summary: dict[str, Any] | None = None

    def _check_arguments(
        self,
        *,
        model_type: str,
        columns: Mapping[str, str | None],
        has_predictions_table: bool,
        has_predictions_query: bool,
        has_parameters: bool,
        tolerances: Mapping[str, Any] | None,
        if_no_baseline: str | None,
        on_degradation: str,
    ) -> None:
        """Check at DAG parse time what needs no rendering (tables may be templated: checked later)."""

        def invalid(problem: str) -> ValueError:
            return ValueError(f"task {self.task_id!r}: {problem}")

        if model_type not in MODEL_TYPES:
            raise invalid(f"model_type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
        if has_predictions_table == has_predictions_query:
            raise invalid("give exactly one of predictions_table and predictions_query")
        if has_parameters and not has_predictions_query:
            raise invalid("predictions_parameters are bound into predictions_query; a table takes none")
        for role, name in columns.items():
            if name is not None:
                try:
                    check_identifier(name, role)
                except ConfigurationError as exc:
                    raise invalid(str(exc)) from None
        if on_degradation not in ON_FAILURE_CHOICES:
            raise invalid(
                f"on_degradation must be one of {', '.join(ON_FAILURE_CHOICES)}, got {on_degradation!r}"
            )
        if if_no_baseline not in (None, "pass", "fail"):
            raise invalid(f"if_no_baseline must be 'pass' or 'fail', got {if_no_baseline!r}")
        if tolerances is None:
            return
        try:
            rules = parse_thresholds(tolerances)
        except SpecError as exc:
            raise invalid(f"tolerances: {exc}") from None
        if any(rule.compares_to_baseline for rule in rules) and if_no_baseline is None:
            raise invalid(
                "tolerances compare against the baseline: set if_no_baseline to 'pass' or 'fail' "
                "(what happens while the model has no champion yet)"
            )

    @cached_property
    def store_hook(self) -> MetricsStoreHook:
        """The metrics store (and its model registry)."""
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        return MetricsStoreHook(store_conn_id=self.store_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        identity = run_identity(context)
        with final_errors_fail_the_task():
            from airflow_provider_mlprod.monitoring.performance import TimeWindow

            for role, bound in (("window_start", self.window_start), ("window_end", self.window_end)):
                if bound in (None, "", "None"):
                    raise ConfigurationError(
                        f"{role} rendered to {bound!r}: this run has no data interval (a manual or "
                        "asset-triggered run); pass window_start and window_end explicitly"
                    )
            window = TimeWindow.from_bounds(self.window_start, self.window_end)
            result = self._compute(self._source(), window)
            version, champion_version, baseline = self._baseline()
            gate = self._judge(result, version, baseline)
            dataset = str(self.dataset) if self.dataset else window.label
            recorded = {
                **result.defined_metrics(),
                "prediction_rows": result.prediction_rows,
                "labelled_rows": result.labelled_rows,
            }
            self.store_hook.metrics_store().record_metrics(
                identity, recorded, model_name=self.model_name, model_version=version or "", dataset=dataset
            )
        summary = self._summary(result, gate, version, champion_version, dataset)
        self.performance_summary = summary
        self._log_summary(summary)
        if summary["degraded"]:
            asset = model_degraded_asset(self.model_name)
            context["outlet_events"][model_degraded_alias(self.model_name)].add(
                asset, extra=asset_extra(summary)
            )
            summary["degraded_asset"] = asset.uri
            context["ti"].xcom_push(key="return_value", value=summary)
        settle(
            self.on_degradation,
            not summary["degraded"],
            degradation_message(summary),
            self.log,
            "on_degradation",
        )
        return summary

    def _source(self) -> PerformanceSource:
        from airflow_provider_mlprod.monitoring.performance import PerformanceSource

        return PerformanceSource.from_arguments(
            model_type=self.model_type,
            predictions_table=self.predictions_table or None,
            predictions_schema=self.predictions_schema or None,
            predictions_query=self.predictions_query or None,
            predictions_parameters=self.predictions_parameters or None,
            labels_table=self.labels_table,
            labels_schema=self.labels_schema or None,
            key_column=self.key_column,
            labels_key_column=self.labels_key_column,
            timestamp_column=self.timestamp_column,
            label_column=self.label_column,
            prediction_column=self.prediction_column,
            score_column=self.score_column,
            positive_label=self.positive_label,
            decision_threshold=self.decision_threshold,
        )

    def _compute(self, source: PerformanceSource, window: Any) -> PerformanceResult:
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection
        from airflow_provider_mlprod.monitoring.performance import compute_performance
        from airflow_provider_mlprod.sql.errors import database_errors

        engine = engine_for_connection(self.sql_conn_id, self.hook_params or None)
        try:
            with database_errors(self.sql_conn_id):
                return compute_performance(engine, source, window)
        finally:
            engine.dispose()

    def _baseline(self) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """The monitored version, the champion version and the monitored version's registered metrics."""
        from airflow_provider_mlprod.exceptions import StoreError

        registry = self.store_hook.registry()
        champion_version = registry.alias_version(self.model_name)
        version = str(self.model_version) if self.model_version else champion_version
        if version is None:
            return None, None, None
        try:
            model = registry.get_version(self.model_name, version)
        except StoreError as exc:  # the version is not registered: a retry cannot help
            raise ConfigurationError(f"model_version: {exc}") from None
        return version, champion_version, dict(model.metrics)

    def _judge(
        self, result: PerformanceResult, version: str | None, baseline: dict[str, Any] | None
    ) -> GateResult | None:
        if self.tolerances is None:
            return None
        from airflow_provider_mlprod.gates import evaluate_gate

        return evaluate_gate(
            result.metrics,
            self.tolerances,
            baseline=baseline,
            baseline_version=version,
            if_no_baseline=self.if_no_baseline,
        )

    def _summary(
        self,
        result: PerformanceResult,
        gate: GateResult | None,
        version: str | None,
        champion_version: str | None,
        dataset: str,
    ) -> dict[str, Any]:
        performance = result.to_dict()
        passed = gate.passed if gate is not None else True
        return {
            "model_name": self.model_name,
            "model_version": version,
            "baseline_version": gate.baseline_version if gate is not None else None,
            "champion_version": champion_version,
            "model_type": result.model_type,
            "window": performance["window"],
            "dataset": dataset,
            "metrics_source": f"{result.source} in window {result.window.label}",
            "counts": performance["counts"],
            "values": performance["metrics"],
            "undefined": performance["undefined"],
            "passed": passed,
            "degraded": not passed,
            "metrics": [verdict.to_dict() for verdict in gate.verdicts] if gate is not None else [],
            "degraded_asset": None,
        }

    def _log_summary(self, summary: Mapping[str, Any]) -> None:
        counts = summary["counts"]
        self.log.info(
            "Model %r version %r on window %s/%s: %d predictions, %d labelled (%.1f%%)",
            summary["model_name"],
            summary["model_version"],
            summary["window"]["start"],
            summary["window"]["end"],
            counts["predictions"],
            counts["labelled"],
            100 * counts["label_coverage"],
        )
        for name, value in summary["values"].items():
            if value is None:
                self.log.info("  %s: undefined (%s)", name, summary["undefined"].get(name, ""))
            else:
                self.log.info("  %s: %.6g", name, value)
        for verdict in summary["metrics"]:
            self.log.info("  [%s] %s", verdict["verdict"], verdict["reason"])


def asset_extra(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The key figures carried by a degraded Asset event."""
    return {
        "model_name": summary["model_name"],
        "model_version": summary["model_version"],
        "baseline_version": summary["baseline_version"],
        "window": dict(summary["window"]),
        "counts": dict(summary["counts"]),
        "values": {name: value for name, value in summary["values"].items() if value is not None},
        "failed": [
            {key: verdict[key] for key in ("metric", "value", "baseline", "reason")}
            for verdict in summary["metrics"]
            if verdict["verdict"] == "fail"
        ],
    }


def degradation_message(summary: Mapping[str, Any]) -> str:
    """One line naming the model, the window and the failed rules."""
    failed = [verdict["reason"] for verdict in summary["metrics"] if verdict["verdict"] == "fail"]
    return (
        f"model {summary['model_name']!r} version {summary['model_version']!r} degraded on window "
        f"{summary['window']['start']}/{summary['window']['end']}: " + "; ".join(failed)
    )

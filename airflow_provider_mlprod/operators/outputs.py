"""Output guardrails in Airflow: check a batch of predictions, and gate a candidate on a golden set.

- :class:`PredictionOutputCheckOperator`: the output checks of ``airflow_provider_mlprod.outputs`` over a
  predictions table or query, a file or a DataFrame.
- :class:`GoldenSetGateOperator`: score a candidate's answers on a golden set, gate the pass rate on
  thresholds and against the champion, record the verdict as a blessing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.operators.outcome import check_on_failure, final_errors_fail_the_task, settle
from airflow_provider_mlprod.operators.reports import ReportLink, push_report_link, report_path, report_url
from airflow_provider_mlprod.operators.run_context import run_identity
from airflow_provider_mlprod.operators.sql_arguments import (
    build_sql_source,
    check_sql_source_arguments,
    mapping_argument,
)
from airflow_provider_mlprod.sql.source import ArgumentNames

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context
    from sqlalchemy import Engine

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.outputs.checks import CheckSpec
    from airflow_provider_mlprod.outputs.runner import OutputCheckSummary
    from airflow_provider_mlprod.serving.tls import TlsSettings
    from airflow_provider_mlprod.sql.source import SqlSource
    from airflow_provider_mlprod.store.identity import RunIdentity

OUTPUT_CHECKS_SUITE = "output_checks"
"""The ``suite`` name output-check results are recorded under in the validation results table."""


OUTPUT_SQL = ArgumentNames()
"""The output-check operator's names of its SQL source's arguments (``sql_conn_id``, ``table``...)."""

GOLDEN_SQL = ArgumentNames(
    conn_id="golden_sql_conn_id",
    table=None,
    schema=None,
    query="golden_query",
    parameters="golden_parameters",
    hook_params="golden_hook_params",
)
"""The golden-set gate's names of its SQL golden set's arguments."""


def sql_engine(source: SqlSource) -> Engine:
    """The one place this module gets a SQL engine: the source's connection, built by its Airflow hook."""
    from airflow_provider_mlprod.hooks.sql_sources import engine_for_source

    return engine_for_source(source)


class _StoreMixin:
    store_conn_id: str | None

    @cached_property
    def store_hook(self) -> MetricsStoreHook:
        """The metrics store."""
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        return MetricsStoreHook(store_conn_id=self.store_conn_id)


class PredictionOutputCheckOperator(_StoreMixin, BaseOperator):
    """Check a batch of predictions (structured or text) with the output-check registry.

    Exactly one source: ``sql_conn_id`` with ``table`` (and ``schema``) or ``query`` with its bind
    ``parameters`` (written ``:name`` in the SQL; ``hook_params`` go to the connection's hook): checks
    run in the database where they have a SQL form, in one read-only snapshot, nothing is written
    there; ``file_path`` (CSV, Parquet, JSON lines at any ObjectStoragePath URI); or
    ``dataframe_callable`` (called in ``execute()``).

    Each check's pass rate is compared with its ``min_pass_rate``; a failed ``critical`` check fails
    the batch, a failed ``warning`` check is reported. The task writes an HTML report (extra link
    "mlprod report", failing outputs escaped), records the summary in the store (validation results
    under suite ``output_checks``, and each pass rate as metric ``output_pass_rate.<check>``), pushes
    the JSON summary to XCom, then acts on ``on_failure`` (``fail``, ``skip`` or ``continue``).

    :param checks: list of check specs, e.g. ``[{"check": "valid_json", "column": "output"}]``; see
        ``airflow_provider_mlprod.outputs.checks`` for the registry and parameters.
    :param default_column: the column of specs that name none.
    :param query: one read-only SELECT returning the predictions (templated, or a ``.sql`` file).
    :param parameters: the query's bind parameters (templated: never put values into the SQL with Jinja).
    :param hook_params: arguments for the SQL connection's Airflow hook when the engine is built.
    :param quarantine_folder: files and DataFrames: receives ``passing.<fmt>`` and ``failing.<fmt>``;
        failing rows list the critical checks they failed in ``failed_checks``. SQL sources (nothing is
        written to the database): receives ``failing.<fmt>`` with the ``quarantine_key_columns`` of the
        failing rows and their ``failed_checks``. Atomic, as for validation: each try writes its own
        ``tries/<try id>/`` folder, published by the folder's ``manifest.json`` (read it with
        ``validation.output_folder.read_output_manifest``); the folder may not be or hold the checked file.
    :param emit_asset: on success, emit ``mlprod://datasets/<dataset_name>/outputs_checked``
        (:func:`airflow_provider_mlprod.assets.outputs_checked_asset`).
    :param chunk_size: rows per chunk for checks that run in Python.

    .. seealso:: README section "Output checks".
    """

    template_fields: Sequence[str] = (
        "checks",
        "sql_conn_id",
        "table",
        "schema",
        "query",
        "parameters",
        "file_path",
        "quarantine_folder",
        "dataset_name",
        "report_folder",
        "dataframe_kwargs",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {
        "query": "sql",
        "parameters": "json",
        "checks": "json",
        "dataframe_kwargs": "json",
    }
    operator_extra_links = (ReportLink(),)
    ui_color = "#d6c8f0"

    def __init__(
        self,
        *,
        checks: Sequence[Mapping[str, Any]],
        default_column: str | None = None,
        sql_conn_id: str | None = None,
        table: str | None = None,
        schema: str | None = None,
        query: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        hook_params: Mapping[str, Any] | None = None,
        file_path: str | None = None,
        file_format: str | None = None,
        dataframe_callable: Callable[..., Any] | None = None,
        dataframe_kwargs: Mapping[str, Any] | None = None,
        dataset_name: str | None = None,
        on_failure: str = "fail",
        sample_size: int = 5,
        chunk_size: int = 50_000,
        quarantine_folder: str | None = None,
        quarantine_format: str | None = None,
        quarantine_key_columns: Sequence[str] | None = None,
        report_folder: str | None = None,
        store_conn_id: str | None = None,
        emit_asset: bool = False,
        **kwargs: Any,
    ) -> None:
        if emit_asset:
            if not dataset_name or "{{" in dataset_name:
                raise ValueError(
                    f"task {kwargs.get('task_id')!r}: emit_asset needs a fixed dataset_name (not templated)"
                )
            from airflow_provider_mlprod.assets import add_outlet, outputs_checked_alias

            add_outlet(kwargs, outputs_checked_alias(dataset_name))
        super().__init__(**kwargs)
        sources = {
            "sql_conn_id": sql_conn_id,
            "file_path": file_path,
            "dataframe_callable": dataframe_callable,
        }
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                f"task {self.task_id!r}: give exactly one source out of {', '.join(sources)}; "
                f"got {given or 'none'}"
            )
        check_sql_source_arguments(
            self.task_id,
            OUTPUT_SQL,
            conn_id=sql_conn_id,
            table=table,
            schema=schema,
            query=query,
            parameters=parameters,
            hook_params=hook_params,
            required=False,
        )
        if quarantine_folder is not None and sql_conn_id is not None and not quarantine_key_columns:
            raise ValueError(
                f"task {self.task_id!r}: with a SQL source, quarantine_folder needs quarantine_key_columns"
            )
        self.checks = checks
        self.default_column = default_column
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.schema = schema
        self.query = query
        self.parameters = mapping_argument(parameters)
        self.hook_params = mapping_argument(hook_params)
        self.file_path = file_path
        self.file_format = file_format
        self.dataframe_callable = dataframe_callable
        self.dataframe_kwargs = dict(dataframe_kwargs or {})
        self.dataset_name = dataset_name
        self.on_failure = check_on_failure(on_failure, self.task_id)
        self.sample_size = sample_size
        self.chunk_size = chunk_size
        self.quarantine_folder = quarantine_folder
        self.quarantine_format = quarantine_format
        self.quarantine_key_columns = tuple(quarantine_key_columns or ())
        self.report_folder = report_folder
        self.store_conn_id = store_conn_id
        self.emit_asset = emit_asset
        self.output_summary: dict[str, Any] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        identity = run_identity(context)
        report = report_path("outputs", identity, self.report_folder)
        with final_errors_fail_the_task():
            from airflow_provider_mlprod.outputs.checks import build_checks
            from airflow_provider_mlprod.outputs.report import write_output_report

            checks = build_checks(self.checks, default_column=self.default_column)
            self._check_quarantine_folder()
            summary = self._check(checks).with_report(report_url(report))
            write_output_report(summary, report)
            result = summary.to_dict()
            self._record(identity, summary, result)
        push_report_link(context, result["report_location"])
        self.output_summary = result
        for check in result["checks"]:
            level = self.log.info if check["success"] else self.log.warning
            level("%s on %s: pass rate %s (min %s), ran in %s", check["name"], summary.dataset,
                  check["pass_rate"], check["min_pass_rate"], check["ran_in"])  # fmt: skip
        if summary.success and self.emit_asset:
            from airflow_provider_mlprod.assets import outputs_checked_alias, outputs_checked_asset

            extra = {"suite": OUTPUT_CHECKS_SUITE, "rows_checked": summary.rows, "counts": result["counts"]}
            context["outlet_events"][outputs_checked_alias(self.dataset_name)].add(
                outputs_checked_asset(self.dataset_name), extra=extra
            )
        if not summary.success:
            context["ti"].xcom_push(key="return_value", value=result)
        failed = ", ".join(r.name for r in summary.failed_critical)
        message = f"{summary.dataset}: output check(s) below their min_pass_rate: {failed}"
        settle(self.on_failure, summary.success, message, self.log)
        return result

    def _record(self, identity: RunIdentity, summary: OutputCheckSummary, result: dict[str, Any]) -> None:
        store = self.store_hook.metrics_store()
        store.record_validation(identity, result, suite=OUTPUT_CHECKS_SUITE, dataset=summary.dataset)
        if summary.pass_rates():
            store.record_metrics(identity, summary.pass_rates(), dataset=summary.dataset)

    def _check(self, checks: Sequence[CheckSpec]) -> OutputCheckSummary:
        from airflow_provider_mlprod.outputs import runner

        if self.sql_conn_id is not None:
            return self._check_sql(checks)
        frame, dataset = self._frame()
        summary, positions = runner.check_frame(
            frame, checks, dataset=dataset, sample_size=self.sample_size, chunk_size=self.chunk_size
        )
        if self.quarantine_folder is not None:
            summary = summary.with_quarantine(self._quarantine(frame, checks, positions))
        return summary

    def _check_sql(self, checks: Sequence[CheckSpec]) -> OutputCheckSummary:
        from airflow_provider_mlprod.hooks.duckdb import is_duckdb_connection
        from airflow_provider_mlprod.outputs import runner
        from airflow_provider_mlprod.sql.errors import database_errors
        from airflow_provider_mlprod.sql.session import read_only_snapshot

        source = build_sql_source(
            OUTPUT_SQL,
            conn_id=self.sql_conn_id,
            table=self.table,
            schema=self.schema,
            query=self.query,
            parameters=self.parameters or None,
            hook_params=self.hook_params or None,
        )
        dataset = self.dataset_name or (
            source.qualified_table if source.table is not None else f"{self.task_id} query"
        )
        if is_duckdb_connection(source.conn_id):
            return self._check_duckdb(source, dataset, checks)
        # one read-only snapshot: the counts, the samples and the quarantined keys describe the same rows
        with database_errors(source.conn_id), read_only_snapshot(sql_engine(source)) as connection:
            predictions = runner.source_selectable(connection, source)
            return self._check_in_database(connection, predictions, dataset, checks)

    def _check_duckdb(
        self, source: SqlSource, dataset: str, checks: Sequence[CheckSpec]
    ) -> OutputCheckSummary:
        """The checks on a DuckDB table or query (connection type ``mlprodduckdb``), read by DuckDB."""
        from airflow_provider_mlprod.hooks.duckdb import DuckDBHook
        from airflow_provider_mlprod.outputs import runner
        from airflow_provider_mlprod.sql.duckdb import DuckDBConnection

        raw = DuckDBHook(duckdb_conn_id=source.conn_id).get_conn()
        try:
            connection = DuckDBConnection(raw, f"connection {source.conn_id!r}")
            if source.table is not None:
                predictions = connection.table(source.table, source.schema)
            else:
                predictions = runner.source_selectable(connection, source)  # type: ignore[arg-type]
            return self._check_in_database(connection, predictions, dataset, checks)
        finally:
            raw.close()

    def _check_in_database(
        self, connection: Any, source: Any, dataset: str, checks: Sequence[CheckSpec]
    ) -> OutputCheckSummary:
        from airflow_provider_mlprod.outputs import runner

        summary = runner.check_sql(
            connection,
            source,
            checks,
            dataset=dataset,
            sample_size=self.sample_size,
            chunk_size=self.chunk_size,
        )
        if self.quarantine_folder is None:
            return summary
        critical = [check for check in checks if check.severity == "critical"]
        failing = runner.failing_sql_rows(
            connection, source, critical, key_columns=self.quarantine_key_columns, chunk_size=self.chunk_size
        )
        return summary.with_quarantine(self._write_sql_quarantine(failing))

    def _write_sql_quarantine(self, failing: pd.DataFrame) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.validation.output_folder import OutputFolder
        from airflow_provider_mlprod.validation.sources import write_table_to

        file_format = self.quarantine_format or "parquet"
        # Atomic, as for files: this try's folder, then the manifest that publishes it.
        with OutputFolder(ObjectStoragePath(self.quarantine_folder)) as out:
            written = out.write(
                "failing",
                f"failing.{file_format}",
                lambda handle: write_table_to(failing, handle, file_format),
            )
            out.extra["failing_rows"] = len(failing)
        return {
            "failing_location": written,
            "manifest_location": out.manifest_location,
            "output_try": out.try_id,
            "failing_rows": len(failing),
        }

    def _frame(self) -> tuple[pd.DataFrame, str]:
        if self.file_path is not None:
            from airflow.sdk import ObjectStoragePath

            from airflow_provider_mlprod.validation.sources import read_table_file

            frame = read_table_file(ObjectStoragePath(self.file_path), file_format=self.file_format)
            return frame.reset_index(drop=True), self.dataset_name or str(self.file_path)
        frame = self.dataframe_callable(**self.dataframe_kwargs)
        return frame.reset_index(drop=True), self.dataset_name or f"{self.task_id} DataFrame"

    def _check_quarantine_folder(self) -> None:
        """Refuse, before any row is read, a quarantine folder that is or holds the checked file."""
        if self.quarantine_folder is None or self.file_path is None:
            return
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.validation.output_folder import check_output_not_input

        check_output_not_input(
            ObjectStoragePath(self.quarantine_folder),
            [ObjectStoragePath(self.file_path)],
            "quarantine_folder",
        )

    def _quarantine(self, frame: pd.DataFrame, checks: Sequence[CheckSpec], positions: Any) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.validation.quarantine import FileQuarantine, quarantine_frame
        from airflow_provider_mlprod.validation.sources import detect_file_format

        folder = ObjectStoragePath(self.quarantine_folder)
        if self.quarantine_format:
            file_format = self.quarantine_format
        elif self.file_path is not None:
            file_format = detect_file_format(str(self.file_path), self.file_format)
        else:
            file_format = "parquet"
        # Atomic: this try's files go to a folder of their own, published by the folder's manifest.
        target = FileQuarantine(folder=folder, file_format=file_format, reason_column="failed_checks")
        critical = {check.name for check in checks if check.severity == "critical"}
        # the folder was checked against the input before any row was read (_check_quarantine_folder)
        return quarantine_frame(frame, {k: v for k, v in positions.items() if k in critical}, target)


OUTPUTS_GATE_KIND = "outputs"
"""The gate kind of golden-set verdicts in the model registry."""

GOLDEN_PASS_RATE_METRIC = "golden_pass_rate.{fingerprint}"
"""Metric name (per model version) of a pass rate on the golden set with this fingerprint (12 hex)."""


def record_outputs_blessing(
    registry: Any,
    identity: RunIdentity,
    *,
    name: str,
    version: str,
    passed: bool,
    baseline_version: str | None,
    summary: Mapping[str, Any],
) -> None:
    """Record a golden-set verdict as a blessing of gate kind ``outputs`` (the one call into the registry)."""
    registry.record_blessing(
        identity,
        name=name,
        version=version,
        passed=passed,
        baseline_version=baseline_version,
        summary=summary,
        kind=OUTPUTS_GATE_KIND,
    )


class GoldenSetGateOperator(_StoreMixin, BaseOperator):
    """Gate a candidate model on a golden set: score its answers, compare with thresholds and the champion.

    The golden set (``golden_set``: a list of items, or a CSV/Parquet/JSON-lines file path; or the rows
    of ``golden_query`` on the SQL connection ``golden_sql_conn_id``, with its bind ``golden_parameters``
    and ``golden_hook_params`` for the connection's hook, read in a read-only session; see
    ``airflow_provider_mlprod.outputs.golden`` for the item format and match kinds) is validated before
    any answer is produced. The candidate's answers come from a column of the golden set
    (``answers_column``) or from calling its endpoint over an Airflow HTTP connection
    (``candidate_http_conn_id``: one ``POST <endpoint>`` with JSON ``{"input": <item input>}`` per item;
    the answer is the response's JSON field ``response_field``, or its text; the connection's ``verify``
    and ``cert`` apply, see :func:`answer_endpoint`, and ``tls_verified`` in the result says per
    endpoint whether its certificate was verified, a warning logged when not). The champion's pass rate
    on the same set comes from ``champion_answers_column``, ``champion_http_conn_id``, or the pass rate
    recorded for the champion version on a golden set with the same fingerprint.

    The gate passes when the candidate's pass rate reaches ``min_pass_rate`` and is at most ``max_drop``
    below the champion's. The verdict is recorded as a blessing of the candidate version (gate kind
    ``outputs``), the pass rate as metric ``golden_pass_rate.<fingerprint>`` of that version, the
    summary pushed to XCom; then ``on_failure`` decides.

    :param if_no_champion: ``"pass"`` (gate on ``min_pass_rate`` alone) or ``"fail"`` when no champion
        pass rate on this golden set is known. No default: a decision to make.
    :param golden_query: one read-only SELECT whose rows are the golden items (templated).
    :param golden_parameters: its bind parameters, written ``:name`` in the SQL (templated).
    :param golden_hook_params: arguments for the ``golden_sql_conn_id`` connection's Airflow hook.
    """

    template_fields: Sequence[str] = (
        "golden_set",
        "golden_sql_conn_id",
        "golden_query",
        "golden_parameters",
        "model_name",
        "candidate_version",
        "endpoint",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"golden_set": "json", "golden_query": "sql", "golden_parameters": "json"}
    ui_color = "#f0d6c8"

    def __init__(
        self,
        *,
        model_name: str,
        candidate_version: str,
        if_no_champion: str,
        golden_set: str | Sequence[Mapping[str, Any]] | None = None,
        golden_sql_conn_id: str | None = None,
        golden_query: str | None = None,
        golden_parameters: Mapping[str, Any] | None = None,
        golden_hook_params: Mapping[str, Any] | None = None,
        min_pass_rate: float = 1.0,
        max_drop: float = 0.0,
        answers_column: str | None = None,
        champion_answers_column: str | None = None,
        candidate_http_conn_id: str | None = None,
        champion_http_conn_id: str | None = None,
        endpoint: str = "",
        response_field: str | None = None,
        request_timeout: float = 30.0,
        on_failure: str = "fail",
        store_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from_sql = check_sql_source_arguments(
            self.task_id,
            GOLDEN_SQL,
            conn_id=golden_sql_conn_id,
            query=golden_query,
            parameters=golden_parameters,
            hook_params=golden_hook_params,
            required=False,
        )
        if (golden_set is None) == (not from_sql):
            raise ValueError(
                f"task {self.task_id!r}: give golden_set (items or a file) or golden_sql_conn_id with "
                "golden_query"
            )
        if (answers_column is None) == (candidate_http_conn_id is None):
            raise ValueError(
                f"task {self.task_id!r}: give exactly one of answers_column or candidate_http_conn_id"
            )
        if champion_answers_column is not None and champion_http_conn_id is not None:
            raise ValueError(
                f"task {self.task_id!r}: give at most one of champion_answers_column or champion_http_conn_id"
            )
        if if_no_champion not in ("pass", "fail"):
            raise ValueError(f"task {self.task_id!r}: if_no_champion must be 'pass' or 'fail'")
        self.golden_set = golden_set
        self.golden_sql_conn_id = golden_sql_conn_id
        self.golden_query = golden_query
        self.golden_parameters = mapping_argument(golden_parameters)
        self.golden_hook_params = mapping_argument(golden_hook_params)
        self.model_name = model_name
        self.candidate_version = candidate_version
        self.if_no_champion = if_no_champion
        self.min_pass_rate = min_pass_rate
        self.max_drop = max_drop
        self.answers_column = answers_column
        self.champion_answers_column = champion_answers_column
        self.candidate_http_conn_id = candidate_http_conn_id
        self.champion_http_conn_id = champion_http_conn_id
        self.endpoint = endpoint
        self.response_field = response_field
        self.request_timeout = request_timeout
        self.on_failure = check_on_failure(on_failure, self.task_id)
        self.store_conn_id = store_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mlprod.outputs import golden

        identity = run_identity(context)
        with final_errors_fail_the_task():
            # Every endpoint's connection (its TLS files included) is checked before any call.
            targets = {
                role: answer_endpoint(conn_id, str(self.endpoint))
                for role, conn_id in (
                    ("candidate", self.candidate_http_conn_id),
                    ("champion", self.champion_http_conn_id),
                )
                if conn_id is not None
            }
            for role, target in targets.items():
                target.tls.warn_if_unverified(
                    target.url, self.log, f"the {role} endpoint of connection {target.conn_id!r}"
                )
            rows = self._golden_rows()
            items = golden.load_golden_set([self._item_fields(row) for row in rows])
            fingerprint = golden.golden_set_fingerprint(items)[:12]
            candidate = golden.score_answers(items, self._answers(items, rows, targets.get("candidate"),
                                                                  self.answers_column))  # fmt: skip
            registry = self.store_hook.registry()
            champion = registry.champion(self.model_name)
            champion_version = champion.version if champion is not None else None
            champion_rate = self._champion_rate(items, rows, targets.get("champion"), champion_version,
                                                fingerprint)  # fmt: skip
            verdict = golden.golden_gate(
                candidate,
                min_pass_rate=self.min_pass_rate,
                champion_pass_rate=champion_rate,
                max_drop=self.max_drop,
            )
            reasons = list(verdict.reasons)
            if champion_rate is None and self.if_no_champion == "fail":
                reasons.append("no champion pass rate on this golden set (if_no_champion='fail')")
            passed = not reasons
            result = {
                **verdict.to_dict(),
                "passed": passed,
                "reasons": reasons,
                "model_name": self.model_name,
                "candidate_version": self.candidate_version,
                "champion_version": champion_version,
                "golden_set_fingerprint": fingerprint,
            }
            if targets:  # per endpoint called: None for plain http
                result["tls_verified"] = {role: target.tls_verified for role, target in targets.items()}
            self.store_hook.metrics_store().record_metrics(
                identity,
                {GOLDEN_PASS_RATE_METRIC.format(fingerprint=fingerprint): candidate.pass_rate},
                model_name=self.model_name,
                model_version=self.candidate_version,
            )
            record_outputs_blessing(
                registry,
                identity,
                name=self.model_name,
                version=self.candidate_version,
                passed=passed,
                baseline_version=champion_version,
                summary=result,
            )
        context["ti"].xcom_push(key="return_value", value=result)
        self.log.info(
            "Golden set %s: %s %s pass rate %.4f (champion %s): %s",
            fingerprint,
            self.model_name,
            self.candidate_version,
            candidate.pass_rate,
            champion_rate,
            "passed" if passed else reasons,
        )
        message = (
            f"{self.model_name} {self.candidate_version} failed the golden-set gate: {'; '.join(reasons)}"
        )
        settle(self.on_failure, passed, message, self.log)
        return result

    def _golden_rows(self) -> list[dict[str, Any]]:
        if self.golden_sql_conn_id is not None:
            from airflow_provider_mlprod.outputs.golden import golden_rows_from_sql

            source = build_sql_source(
                GOLDEN_SQL,
                conn_id=self.golden_sql_conn_id,
                query=self.golden_query,
                parameters=self.golden_parameters or None,
                hook_params=self.golden_hook_params or None,
            )
            return golden_rows_from_sql(sql_engine(source), source)
        if not isinstance(self.golden_set, str):
            return [dict(row) for row in self.golden_set]
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.validation.sources import read_table_file

        frame = read_table_file(ObjectStoragePath(self.golden_set))
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return [{key: value for key, value in row.items() if value is not None} for row in records]

    def _item_fields(self, row: Mapping[str, Any]) -> dict[str, Any]:
        answer_columns = {self.answers_column, self.champion_answers_column} - {None}
        return {key: value for key, value in row.items() if key not in answer_columns}

    def _answers(
        self,
        items: Any,
        rows: Sequence[Mapping[str, Any]],
        target: AnswerEndpoint | None,
        column: str | None,
    ):
        if column is not None:
            from airflow_provider_mlprod.exceptions import InputDataError

            if not any(column in row for row in rows):
                raise InputDataError(f"golden set: answers column {column!r} not found")
            return {item.id: row.get(column) for item, row in zip(items, rows, strict=True)}
        return endpoint_answers(target, items, self.response_field, self.request_timeout)

    def _champion_rate(
        self,
        items: Any,
        rows: Any,
        target: AnswerEndpoint | None,
        champion_version: str | None,
        fingerprint: str,
    ):
        from airflow_provider_mlprod.outputs import golden

        if self.champion_answers_column is not None or target is not None:
            answers = self._answers(items, rows, target, self.champion_answers_column)
            return golden.score_answers(items, answers).pass_rate
        if champion_version is None or champion_version == self.candidate_version:
            return None
        history = self.store_hook.metrics_store().metric_history(
            GOLDEN_PASS_RATE_METRIC.format(fingerprint=fingerprint),
            model_name=self.model_name,
            model_version=champion_version,
        )
        return history[-1].value if history else None


MAX_ANSWER_BYTES = 10 * 1024 * 1024
"""Largest answer read from a golden-set endpoint for one item; a larger one fails the task."""


@dataclass(frozen=True)
class AnswerEndpoint:
    """A golden-set endpoint: its connection, URL, headers, auth and TLS settings (secrets not shown)."""

    conn_id: str
    endpoint: str
    url: str
    headers: Mapping[str, Any] = field(repr=False)
    auth: tuple[str, str] | None = field(repr=False)
    tls: TlsSettings

    @property
    def tls_verified(self) -> bool | None:
        """Whether the server's certificate is verified; None for a plain ``http`` URL."""
        return self.tls.verified_for(self.url)


def answer_endpoint(conn_id: str, endpoint: str) -> AnswerEndpoint:
    """The golden-set endpoint of HTTP connection ``conn_id`` plus ``endpoint``.

    The URL is the connection's host (with ``http``/``https`` from its schema, or a scheme in the host)
    and port, plus ``endpoint``; extra ``headers`` are sent; login/password as basic auth; the extra's
    ``verify`` and ``cert`` are applied as for the load test
    (:func:`airflow_provider_mlprod.serving.tls.tls_settings`: checked and loaded here, so a bad one
    fails before any call).
    """
    from airflow_provider_mlprod.hooks.connections import connection_extra, get_connection
    from airflow_provider_mlprod.serving.tls import tls_settings

    conn = get_connection(conn_id)
    host = conn.host or ""
    base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
    if conn.port:
        base = f"{base.rstrip('/')}:{conn.port}"
    extra = connection_extra(conn)
    return AnswerEndpoint(
        conn_id=conn_id,
        endpoint=endpoint,
        url=f"{base.rstrip('/')}/{endpoint.lstrip('/')}",
        headers=dict(extra.get("headers") or {}),
        auth=(conn.login, conn.password or "") if conn.login else None,
        tls=tls_settings(extra, conn_id),
    )


def endpoint_answers(
    target: AnswerEndpoint, items: Sequence[Any], response_field: str | None, timeout: float
) -> dict[str, Any]:
    """Call the model endpoint ``target`` once per golden item; return id -> answer.

    A 4xx answer is final (``InputDataError``), a 5xx or network error (a certificate that cannot be
    verified included) retryable. A redirect (3xx) is not followed and is final: its target would be
    called without the connection's TLS guarantees (an ``https`` endpoint may send the call to plain
    ``http``, or to another host with the connection's headers); the connection names the final URL.
    Each answer is read within ``timeout`` seconds in all (a server that drips bytes is cut off,
    retryable) and up to :data:`MAX_ANSWER_BYTES` (more is final).
    Messages name the connection and status, never a header or credential.
    """
    import warnings

    import requests
    import urllib3
    from airflow.sdk.exceptions import AirflowException

    from airflow_provider_mlprod.exceptions import InputDataError

    conn_id, endpoint, url = target.conn_id, target.endpoint, target.url
    answers: dict[str, Any] = {}
    tls_options = target.tls.requests_options()
    with requests.Session() as session, warnings.catch_warnings():
        # verify false is warned about once per run by the operator, not once per request
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        for item in items:
            where = f"connection {conn_id!r}: {endpoint!r}"
            try:
                deadline = time.monotonic() + timeout
                with session.post(url, json={"input": item.input}, headers=target.headers,
                                  auth=target.auth, timeout=timeout, stream=True,
                                  allow_redirects=False, **tls_options) as response:  # fmt: skip
                    if response.status_code >= 500:
                        raise AirflowException(f"{where} answered {response.status_code}")
                    if response.status_code >= 400:
                        raise InputDataError(
                            f"{where} answered {response.status_code} for golden item {item.id!r}"
                        )
                    if response.status_code >= 300:
                        raise InputDataError(
                            f"{where} answered {response.status_code} for golden item {item.id!r}: a "
                            "redirect, which is not followed; give the final URL in the connection"
                        )
                    body = bytearray()
                    # read1: whatever arrived (at most one read), so a dripping server meets the deadline
                    while chunk := response.raw.read1(65536, decode_content=True):
                        body += chunk
                        if len(body) > MAX_ANSWER_BYTES:
                            raise InputDataError(
                                f"{where} answered golden item {item.id!r} with more than "
                                f"{MAX_ANSWER_BYTES:,} bytes"
                            )
                        if time.monotonic() > deadline:
                            raise AirflowException(
                                f"{where} took longer than {timeout:g} s to answer golden item {item.id!r}"
                            )
                    text = body.decode(response.encoding or "utf-8", errors="replace")
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                raise AirflowException(f"{where}: the call failed ({type(exc).__name__})") from None
            if response_field is None:
                answers[item.id] = text
                continue
            try:
                answers[item.id] = json.loads(text).get(response_field)
            except (ValueError, AttributeError):
                answers[item.id] = None
    return answers

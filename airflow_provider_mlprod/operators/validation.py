"""DataValidationOperator: validate one batch against one Great Expectations suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
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
    from airflow.sdk import Context

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.sql.source import SqlSource
    from airflow_provider_mlprod.validation.quarantine import FileQuarantine
    from airflow_provider_mlprod.validation.summary import ValidationSummary

VALIDATION_SQL = ArgumentNames()
"""The validation operator's names of its SQL source's arguments (``sql_conn_id``, ``table``...)."""


class DataValidationOperator(BaseOperator):
    """Validate one batch (a SQL table or query, a file, or a DataFrame) against one expectation suite.

    Exactly one source:

    - ``sql_conn_id`` with ``table`` (and ``schema``) or ``query`` (with its bind ``parameters``,
      written ``:name`` in the SQL), or a ready ``sql_source``
      (:class:`~airflow_provider_mlprod.sql.source.SqlSource`): any Airflow SQL connection
      (``hook_params`` go to its hook); every expectation runs inside the database, only capped
      samples of failing values come back;
    - ``file_path``: CSV, Parquet or JSON lines at any ObjectStoragePath URI (``file://``, ``s3://``...);
    - ``dataframe_callable``: called in ``execute()`` (never at parse time) and returning a DataFrame.

    The suite is a GX suite JSON file (absolute, or relative to the working directory or to the DAG
    file's folder), a suite dict, or a list of expectation configs. An unknown expectation type or an
    empty suite fails the task naming it. Each expectation's severity comes from its ``severity`` or
    ``meta.severity`` (``critical`` fails, ``warning`` reports), else ``default_severity``.

    The task writes an HTML report (linked as the extra link "mlprod report"), records the result in
    the metrics store (idempotent on retry), pushes a JSON summary to XCom (never the data), then acts
    on ``on_failure`` when a critical expectation failed: ``fail`` (default, no retry), ``skip``
    (downstream tasks skip) or ``continue``.

    Quarantine: for file and DataFrame sources, ``quarantine_folder`` receives ``passing.<fmt>``,
    ``failing.<fmt>`` (failing rows carry the names of the expectations they failed) and ``report.json``,
    atomically: each try writes ``tries/<try id>/`` and then ``manifest.json`` pointing at it, so a
    failed try leaves the previous outputs intact; the summary holds the published locations so
    downstream tasks continue on clean rows. A folder that is or contains the input file is refused.
    For SQL sources, ``quarantine_table`` (``name`` or ``schema.name``; by default in the validated
    table's schema) receives the failing rows' ``quarantine_key_columns`` and reasons, written inside
    the database through the same connection; a retry replaces its own records.

    Files are read strictly: a repeated CSV header, a bad JSON line or a CSV row with the wrong number
    of fields fails the task naming the line; with ``ragged_rows="fail"`` rows of the wrong width are
    instead left out and counted as the failed critical check ``file_rows_match_header``.

    :param suite: suite file path (templated), dict or list of expectation configs.
    :param dataset_name: the dataset's name in the store and report (default: the table, file or task).
    :param sample_size: failing values kept per expectation in the summary.
    :param report_folder: overrides ``[mlprod] report_folder``.
    :param store_conn_id: metrics store connection (default ``[mlprod] store_conn_id``).
    :param emit_asset: when the batch passes, emit an event on the Asset
        ``mlprod://datasets/<dataset_name>/validated`` (see ``airflow_provider_mlprod.assets``) with the
        counts in its extra; needs a fixed ``dataset_name``. A failed batch emits nothing, whatever
        ``on_failure`` says.

    .. seealso:: README section "Data validation".
    """

    template_fields: Sequence[str] = (
        "suite",
        "sql_conn_id",
        "table",
        "schema",
        "query",
        "parameters",
        "hook_params",
        "file_path",
        "quarantine_folder",
        "quarantine_table",
        "dataset_name",
        "report_folder",
        "dataframe_kwargs",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {
        "query": "sql",
        "parameters": "json",
        "hook_params": "json",
        "suite": "json",
        "dataframe_kwargs": "json",
    }
    operator_extra_links = (ReportLink(),)
    ui_color = "#b8e0d2"

    def __init__(
        self,
        *,
        suite: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        sql_conn_id: str | None = None,
        table: str | None = None,
        schema: str | None = None,
        query: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        hook_params: Mapping[str, Any] | None = None,
        sql_source: SqlSource | None = None,
        file_path: str | None = None,
        file_format: str | None = None,
        delimiter: str | None = None,
        encoding: str = "utf-8",
        ragged_rows: str = "error",
        dataframe_callable: Callable[..., Any] | None = None,
        dataframe_kwargs: Mapping[str, Any] | None = None,
        dataset_name: str | None = None,
        default_severity: str = "critical",
        on_failure: str = "fail",
        sample_size: int = 5,
        quarantine_folder: str | None = None,
        quarantine_format: str | None = None,
        quarantine_table: str | None = None,
        quarantine_key_columns: Sequence[str] | None = None,
        report_folder: str | None = None,
        store_conn_id: str | None = None,
        emit_asset: bool = False,
        **kwargs: Any,
    ) -> None:
        if emit_asset:
            if not dataset_name or "{{" in dataset_name:
                raise ValueError(
                    f"task {kwargs.get('task_id')!r}: emit_asset needs a fixed dataset_name (not templated): "
                    "it names the Asset mlprod://datasets/<dataset_name>/validated"
                )
            from airflow_provider_mlprod.assets import add_outlet, dataset_validated_alias

            add_outlet(kwargs, dataset_validated_alias(dataset_name))
        super().__init__(**kwargs)
        from_sql = check_sql_source_arguments(
            self.task_id,
            VALIDATION_SQL,
            source=sql_source,
            conn_id=sql_conn_id,
            table=table,
            schema=schema,
            query=query,
            parameters=parameters,
            hook_params=hook_params,
            required=False,
        )
        sources = {
            "sql_conn_id (or sql_source)": from_sql or None,
            "file_path": file_path,
            "dataframe_callable": dataframe_callable,
        }
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                f"task {self.task_id!r}: give exactly one source out of {', '.join(sources)}; "
                f"got {given or 'none'}"
            )
        if quarantine_table is not None and not from_sql:
            raise ValueError(
                f"task {self.task_id!r}: quarantine_table is for SQL sources; use quarantine_folder"
            )
        if quarantine_folder is not None and from_sql:
            raise ValueError(f"task {self.task_id!r}: quarantine_folder is for files and DataFrames")
        if quarantine_table is not None and not quarantine_key_columns:
            raise ValueError(f"task {self.task_id!r}: quarantine_table needs quarantine_key_columns")
        if ragged_rows not in ("error", "fail"):
            raise ValueError(
                f"task {self.task_id!r}: ragged_rows must be 'error' or 'fail', got {ragged_rows!r}"
            )
        if default_severity not in ("critical", "warning"):
            raise ValueError(
                f"task {self.task_id!r}: default_severity must be 'critical' or 'warning', "
                f"got {default_severity!r}"
            )
        self.suite = suite
        self.sql_source = sql_source
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.schema = schema
        self.query = query
        self.parameters = mapping_argument(parameters)
        self.hook_params = mapping_argument(hook_params)
        self.file_path = file_path
        self.file_format = file_format
        self.delimiter = delimiter
        self.encoding = encoding
        self.ragged_rows = ragged_rows
        self.dataframe_callable = dataframe_callable
        self.dataframe_kwargs = dict(dataframe_kwargs or {})
        self.dataset_name = dataset_name
        self.default_severity = default_severity
        self.on_failure = check_on_failure(on_failure, self.task_id)
        self.sample_size = sample_size
        self.quarantine_folder = quarantine_folder
        self.quarantine_format = quarantine_format
        self.quarantine_table = quarantine_table
        self.quarantine_key_columns = tuple(quarantine_key_columns or ())
        self.report_folder = report_folder
        self.store_conn_id = store_conn_id
        self.emit_asset = emit_asset
        self.validation_summary: dict[str, Any] | None = None
        self.expectation_results: list[dict[str, Any]] = []
        self._lineage_dataset: tuple[str, str] | None = None

    @cached_property
    def store_hook(self) -> MetricsStoreHook:
        """The metrics store."""
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        return MetricsStoreHook(store_conn_id=self.store_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        identity = run_identity(context)
        report = report_path("validation", identity, self.report_folder)
        with final_errors_fail_the_task():
            from airflow_provider_mlprod.summaries import ValidationResultSummary
            from airflow_provider_mlprod.validation.report import write_html_report
            from airflow_provider_mlprod.validation.suite import load_suite

            suite = load_suite(self._suite_source(), default_severity=self.default_severity)
            summary = self._validate(suite, identity)
            summary = summary.with_report(report_url(report))
            write_html_report(summary, report)
            dataset = self.dataset_name or summary.dataset
            result = ValidationResultSummary.from_dict(
                summary.to_dict()
            ).to_dict()  # checked as readers read it
            self.expectation_results = summary.to_dict(include_passed=True)["outcomes"]
            self.store_hook.metrics_store().record_validation(
                identity, result, suite=summary.suite_name, dataset=dataset
            )
        push_report_link(context, result["report_location"])
        self.validation_summary = result
        self._log_summary(summary)
        if summary.success and self.emit_asset:
            self._emit_validated(context, result)
        if not summary.success:
            context["ti"].xcom_push(key="return_value", value=result)
        settle(self.on_failure, summary.success, self._failure_message(summary), self.log)
        return result

    def _validate(self, suite: Any, identity: Any) -> ValidationSummary:
        from airflow_provider_mlprod.validation import runner
        from airflow_provider_mlprod.validation.quarantine import SqlQuarantine

        if self.sql_source is not None or self.sql_conn_id is not None:
            from airflow_provider_mlprod.hooks.sql_sources import (
                engine_for_source,
                sqlalchemy_url_for_connection,
            )
            from airflow_provider_mlprod.sql.errors import database_errors

            source = build_sql_source(
                VALIDATION_SQL,
                source=self.sql_source,
                conn_id=self.sql_conn_id,
                table=self.table,
                schema=self.schema,
                query=self.query,
                parameters=self.parameters or None,
                hook_params=self.hook_params or None,
            )
            quarantine = None
            if self.quarantine_table:
                quarantine = SqlQuarantine(
                    table=self.quarantine_table,
                    # by default next to the validated table
                    schema=None if "." in self.quarantine_table else source.schema,
                    key_columns=self.quarantine_key_columns,
                    batch_id=f"{identity.dag_id}/{identity.run_id}/{identity.task_id}/{identity.map_index}",
                )
            url = sqlalchemy_url_for_connection(source.conn_id)
            if source.table is not None:
                self._lineage_dataset = _sql_dataset(url, source.table, source.schema)
            with database_errors(source.conn_id):
                return runner.validate_sql(
                    url,
                    suite,
                    source=source,
                    engine=engine_for_source(source),
                    sample_size=self.sample_size,
                    quarantine=quarantine,
                )
        quarantine = self._file_quarantine()
        if self.file_path is not None:
            from airflow.sdk import ObjectStoragePath

            self._lineage_dataset = _file_dataset(str(self.file_path))
            return runner.validate_file(
                ObjectStoragePath(self.file_path),
                suite,
                file_format=self.file_format,
                delimiter=self.delimiter,
                encoding=self.encoding,
                ragged_rows=self.ragged_rows,
                sample_size=self.sample_size,
                quarantine=quarantine,
            )
        frame = self.dataframe_callable(**self.dataframe_kwargs)
        return runner.validate_dataframe(
            frame,
            suite,
            dataset=self.dataset_name or f"{self.task_id} DataFrame",
            sample_size=self.sample_size,
            quarantine=quarantine,
        )

    def _file_quarantine(self) -> FileQuarantine | None:
        if self.quarantine_folder is None:
            return None
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.validation.quarantine import FileQuarantine
        from airflow_provider_mlprod.validation.sources import detect_file_format

        folder = ObjectStoragePath(self.quarantine_folder)
        if self.quarantine_format:
            file_format = self.quarantine_format
        elif self.file_path is not None:
            file_format = detect_file_format(str(self.file_path), self.file_format)
        else:
            file_format = "parquet"
        return FileQuarantine(folder=folder, file_format=file_format)

    def _suite_source(self) -> Any:
        if not isinstance(self.suite, str):
            return self.suite
        text = self.suite.removeprefix("file://")
        candidates = [Path(text)]
        if not os.path.isabs(text) and self.has_dag() and self.dag.fileloc:
            candidates.append(Path(self.dag.fileloc).parent / text)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        from airflow_provider_mlprod.exceptions import SpecError

        tried = ", ".join(repr(str(candidate)) for candidate in candidates)
        raise SpecError(f"suite file {self.suite!r} not found (looked at {tried})")

    def _emit_validated(self, context: Context, result: dict[str, Any]) -> None:
        from airflow_provider_mlprod.assets import dataset_validated_alias, dataset_validated_asset

        extra = {
            "suite": result["suite_name"],
            "rows_checked": result["rows_checked"],
            "counts": result["counts"],
            "report_location": result["report_location"],
        }
        context["outlet_events"][dataset_validated_alias(self.dataset_name)].add(
            dataset_validated_asset(self.dataset_name), extra=extra
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the validated dataset with a DataQualityAssertions facet (one per expectation).

        Returns None when the openlineage provider is not installed or the source is not a named
        dataset (a query or a DataFrame).
        """
        if self._lineage_dataset is None or not self.expectation_results:
            return None
        try:
            from airflow.providers.openlineage.extractors import OperatorLineage
            from openlineage.client.event_v2 import Dataset
            from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
        except ImportError:
            return None
        assertions = [
            dqa.Assertion(
                assertion=outcome["expectation_type"],
                success=bool(outcome["success"]),
                column=outcome.get("column"),
            )
            for outcome in self.expectation_results
        ]
        namespace, name = self._lineage_dataset
        facet = dqa.DataQualityAssertionsDatasetFacet(assertions=assertions)
        return OperatorLineage(
            inputs=[Dataset(namespace=namespace, name=name, facets={"dataQualityAssertions": facet})]
        )

    get_openlineage_facets_on_failure = get_openlineage_facets_on_complete

    def _log_summary(self, summary: ValidationSummary) -> None:
        self.log.info(
            "Validated %s with suite %r: %d rows, %d/%d expectations met, %d critical, %d warning failed",
            summary.dataset,
            summary.suite_name,
            summary.rows_checked,
            summary.passed,
            summary.evaluated,
            summary.failed_critical,
            summary.failed_warning,
        )
        for outcome in summary.failures:
            self.log.warning(
                "%s %s on %s: %s unexpected (%s%%)",
                outcome.severity.upper(),
                outcome.expectation_type,
                outcome.column or "the table",
                outcome.unexpected_count,
                outcome.unexpected_percent,
            )

    @staticmethod
    def _failure_message(summary: ValidationSummary) -> str:
        failed = ", ".join(
            f"{outcome.expectation_type}({outcome.column or ''})"
            for outcome in summary.failures
            if outcome.severity == "critical"
        )
        return (
            f"{summary.dataset} failed {summary.failed_critical} critical expectation(s) of suite "
            f"{summary.suite_name!r}: {failed}"
        )


def _sql_dataset(url: Any, table: str, schema: str | None) -> tuple[str, str]:
    """OpenLineage namespace and name of a table (``postgres://host:port``, ``db.schema.table``)."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return f"sqlite://{url.database}", table
    scheme = {"postgresql": "postgres"}.get(backend, backend)
    namespace = f"{scheme}://{url.host}:{url.port or ''}".rstrip(":")
    qualified = table if "." in table else f"{schema or 'public'}.{table}"
    return namespace, f"{url.database}.{qualified}"


def _file_dataset(uri: str) -> tuple[str, str]:
    """OpenLineage namespace and name of a file (``file``, ``s3://bucket``...)."""
    if "://" not in uri or uri.startswith("file://"):
        return "file", uri.removeprefix("file://")
    scheme, rest = uri.split("://", 1)
    bucket, _, path = rest.partition("/")
    return f"{scheme}://{bucket}", path

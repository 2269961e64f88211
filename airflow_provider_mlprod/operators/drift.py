"""DataDriftOperator: compare a current batch with a reference, column by column, and decide dataset drift.

The statistics live in ``airflow_provider_mlprod.drift`` (no Airflow there); this module only finds the
reference and the current batch, records the result, writes the report and ends the task per policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.assets import add_outlet, dataset_drift_asset
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

    from airflow_provider_mlprod.drift.profile import DatasetProfile
    from airflow_provider_mlprod.drift.results import DriftResult
    from airflow_provider_mlprod.drift.settings import DriftSettings
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.sql.source import SqlSource
    from airflow_provider_mlprod.store.identity import RunIdentity

CURRENT_SQL = ArgumentNames()
"""The drift operator's names of its current batch's SQL arguments (``sql_conn_id``, ``table``...)."""

REFERENCE_SQL = ArgumentNames.prefixed("reference_")
"""... and of its reference's (``reference_sql_conn_id``, ``reference_table``...)."""


class DataDriftOperator(BaseOperator):
    """Compare a current batch with a reference; decide per column and for the dataset whether it drifted.

    Reference, exactly one of:

    - ``reference_profile``: the name of a profile stored in the metrics store (see
      ``save_reference_profile_as``);
    - ``reference_profile_path``: a profile JSON file (``DatasetProfile.save``) at any ObjectStoragePath URI;
    - raw data: ``reference_sql_conn_id`` with ``reference_table`` (and ``reference_schema``) or
      ``reference_query`` (its ``:name`` placeholders bound from ``reference_parameters``;
      ``reference_hook_params`` go to the connection's hook), or a ready ``reference_sql_source``
      (:class:`~airflow_provider_mlprod.sql.source.SqlSource`), or ``reference_file_path``, or
      ``reference_dataframe_callable``.

    Current batch, exactly one of:

    - ``sql_conn_id`` with ``table`` (and ``schema``) or ``query`` (``:name`` placeholders bound from
      ``parameters``, templated: never put values into the SQL with Jinja; ``hook_params`` go to the
      connection's hook), or a ready ``sql_source``: any Airflow SQL connection. The
      per-bin and per-category counts are computed inside the database (``GROUP BY`` on a bucket
      expression over the reference profile's bin edges and categories); no row is fetched;
    - ``file_path``: CSV, Parquet or JSON lines at any ObjectStoragePath URI;
    - ``dataframe_callable``: called in ``execute()`` (never at parse time), returning a DataFrame.

    Raw reference and raw current data are compared exactly (KS, Wasserstein on all values). With a
    profile on one side (stored, from a file, or computed in the database) numeric columns are compared
    on the reference profile's bins, with the error bound reported per column. A raw SQL reference is
    profiled inside its database: equal-width bins between the column's min and max (one bin per value
    for columns of at most ``n_bins`` distinct values that fall in separate bins), the ``top_k`` most
    frequent categories; the column kinds of a ``reference_table`` come from the table's column types,
    those of a ``reference_query`` must be declared in ``column_kinds`` for every column in ``columns``.

    The task writes an HTML report (per column the reference and current distributions as inline SVG,
    linked as the extra link "mlprod report"), records the result in the metrics store (per dataset and
    column; a retry of the same task instance replaces its own record), pushes a JSON summary to XCom
    (dataset drift; per column the test, statistic, p-value, threshold and verdict; never the data), then,
    when the dataset drifted, acts on ``on_failure``: ``fail`` (default: the task fails without retry,
    so downstream training or scoring does not run on drifted data), ``skip`` (the task and its
    downstream tasks skip) or ``continue`` (the task succeeds; the drift is logged and in the summary).
    An empty current batch, a missing column or a type mismatch fails the task without retry.

    In the store's per-column history, ``statistic`` is the value compared with ``threshold``: the
    p-value for ``ks`` and ``chisquare``, the statistic for distance tests. The XCom summary keeps both.

    With ``emit_asset=True`` a successful task (no drift, or drift under ``continue``) emits an Asset
    event on ``mlprod://datasets/<dataset_name>/drift`` whose extra holds the key figures
    (``dataset_drift``, ``share_drifted``, ``drifted_columns``, row counts, report location).

    Prediction drift is the same check on a model output column: a score (numeric) or a predicted
    class (categorical)::

        DataDriftOperator(
            task_id="prediction_drift",
            reference_profile="churn_scores_at_training",
            sql_conn_id="warehouse",
            table="churn_predictions_{{ ds_nodash }}",
            columns=["churn_score", "predicted_class"],
            column_tests={"churn_score": "psi"},
            column_thresholds={"churn_score": 0.2},
            must_not_drift=["churn_score"],
            dataset_name="churn_predictions",
        )

    :param columns: columns to compare (default: every reference column).
    :param column_kinds: ``{"column": "numeric" | "categorical"}`` overriding kinds detected from types.
    :param column_tests: ``{"column": test}``: ``ks``, ``chisquare``, ``jensenshannon``, ``psi``,
        ``wasserstein``, ``linf``, ``missing_rate``, ``unseen_share``.
    :param column_thresholds: ``{"column": threshold}`` overriding the test's default threshold.
    :param drift_share_threshold: share of drifted columns from which the dataset drifts (default 0.5).
    :param must_not_drift: columns whose drift alone makes the dataset drift.
    :param missing_rate_threshold: largest allowed change of a column's missing share (default 0.05).
    :param unseen_share_threshold: largest allowed share of unseen categories (default 0.05).
    :param n_bins: bins of numeric columns in profiles built by this task (default 100).
    :param top_k: categories kept per column in profiles built by this task (default 1000).
    :param small_reference_rows: up to this many reference rows the default tests are KS / chi-square.
    :param save_reference_profile_as: store the reference's profile under this name (templated), e.g.
        in a training DAG, so later runs use ``reference_profile=<name>``. Saved only when the task
        succeeds: a failed or skipped run never replaces the stored reference.
    :param file_format: ``csv``, ``parquet`` or ``jsonl`` for both files (default: from each suffix).
    :param file_reader: ``pandas`` (default) or ``duckdb``: DuckDB profiles the current ``file_path``
        (Parquet or CSV, any ObjectStoragePath) on the reference's bins without loading it into pandas
        (``duckdb`` extra).
    :param dataset_name: the dataset's name in the store, report and Asset (default: the current table,
        else the task id). Not templated when ``emit_asset`` is set: it names the Asset.
    :param on_failure: ``fail`` (default), ``skip`` or ``continue`` when the dataset drifted.
    :param emit_asset: emit an Asset event with the key figures when the task succeeds.
    :param report_folder: overrides ``[mlprod] report_folder``.
    :param store_conn_id: metrics store connection (default ``[mlprod] store_conn_id``).

    .. seealso:: README section "Drift detection".
    """

    template_fields: Sequence[str] = (
        "reference_sql_conn_id",
        "sql_conn_id",
        "reference_profile",
        "reference_profile_path",
        "reference_table",
        "reference_schema",
        "reference_query",
        "reference_parameters",
        "reference_file_path",
        "reference_dataframe_kwargs",
        "save_reference_profile_as",
        "table",
        "schema",
        "query",
        "parameters",
        "file_path",
        "dataframe_kwargs",
        "dataset_name",
        "report_folder",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {
        "query": "sql",
        "reference_query": "sql",
        "parameters": "json",
        "reference_parameters": "json",
        "dataframe_kwargs": "json",
        "reference_dataframe_kwargs": "json",
    }
    operator_extra_links = (ReportLink(),)
    ui_color = "#f5d491"

    def __init__(
        self,
        *,
        reference_profile: str | None = None,
        reference_profile_path: str | None = None,
        reference_sql_conn_id: str | None = None,
        reference_table: str | None = None,
        reference_schema: str | None = None,
        reference_query: str | None = None,
        reference_parameters: Mapping[str, Any] | None = None,
        reference_hook_params: Mapping[str, Any] | None = None,
        reference_sql_source: SqlSource | None = None,
        reference_file_path: str | None = None,
        reference_dataframe_callable: Callable[..., Any] | None = None,
        reference_dataframe_kwargs: Mapping[str, Any] | None = None,
        save_reference_profile_as: str | None = None,
        sql_conn_id: str | None = None,
        table: str | None = None,
        schema: str | None = None,
        query: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        hook_params: Mapping[str, Any] | None = None,
        sql_source: SqlSource | None = None,
        file_path: str | None = None,
        file_format: str | None = None,
        file_reader: str = "pandas",
        delimiter: str | None = None,
        encoding: str = "utf-8",
        dataframe_callable: Callable[..., Any] | None = None,
        dataframe_kwargs: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        column_kinds: Mapping[str, str] | None = None,
        column_tests: Mapping[str, str] | None = None,
        column_thresholds: Mapping[str, float] | None = None,
        drift_share_threshold: float | None = None,
        must_not_drift: Sequence[str] | None = None,
        missing_rate_threshold: float | None = None,
        unseen_share_threshold: float | None = None,
        n_bins: int | None = None,
        top_k: int | None = None,
        small_reference_rows: int | None = None,
        dataset_name: str | None = None,
        on_failure: str = "fail",
        emit_asset: bool = False,
        report_folder: str | None = None,
        store_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if emit_asset:
            add_outlet(kwargs, dataset_drift_asset(_fixed_dataset_name(dataset_name, kwargs.get("task_id"))))
        super().__init__(**kwargs)
        sql_sides = {
            side: check_sql_source_arguments(self.task_id, names, required=False, **arguments)
            for side, names, arguments in (
                ("reference", REFERENCE_SQL, {"source": reference_sql_source, "source_argument":
                 "reference_sql_source", "conn_id": reference_sql_conn_id, "table": reference_table, "schema":
                 reference_schema, "query": reference_query, "parameters": reference_parameters,
                 "hook_params": reference_hook_params}),
                ("current", CURRENT_SQL, {"source": sql_source, "conn_id": sql_conn_id, "table": table,
                 "schema": schema, "query": query, "parameters": parameters, "hook_params": hook_params}),
            )
        }  # fmt: skip
        _check_exactly_one(self.task_id, "reference", {
            "reference_profile": reference_profile, "reference_profile_path": reference_profile_path,
            "reference_sql_conn_id (or reference_sql_source)": sql_sides["reference"] or None,
            "reference_file_path": reference_file_path,
            "reference_dataframe_callable": reference_dataframe_callable,
        })  # fmt: skip
        _check_exactly_one(self.task_id, "current", {
            "sql_conn_id (or sql_source)": sql_sides["current"] or None, "file_path": file_path,
            "dataframe_callable": dataframe_callable,
        })  # fmt: skip
        self.drift_settings = _parse_settings(
            self.task_id,
            {"columns": columns, "column_kinds": column_kinds, "column_tests": column_tests,
             "column_thresholds": column_thresholds, "drift_share_threshold": drift_share_threshold,
             "must_not_drift": must_not_drift, "missing_rate_threshold": missing_rate_threshold,
             "unseen_share_threshold": unseen_share_threshold, "n_bins": n_bins, "top_k": top_k,
             "small_reference_rows": small_reference_rows},
            kinds_declared_for_query=reference_query is not None or (
                reference_sql_source is not None and reference_sql_source.query is not None),
        )  # fmt: skip
        self.file_reader = _check_file_reader(self.task_id, file_reader, file_format)
        self.on_failure = check_on_failure(on_failure, self.task_id)
        self.reference_profile, self.reference_profile_path = reference_profile, reference_profile_path
        self.reference_sql_conn_id, self.reference_sql_source = reference_sql_conn_id, reference_sql_source
        self.reference_table, self.reference_schema = reference_table, reference_schema
        self.reference_query, self.reference_parameters = (
            reference_query,
            mapping_argument(reference_parameters),
        )
        self.reference_hook_params = mapping_argument(reference_hook_params)
        self.reference_file_path = reference_file_path
        self.reference_dataframe_callable = reference_dataframe_callable
        self.reference_dataframe_kwargs = dict(reference_dataframe_kwargs or {})
        self.save_reference_profile_as = save_reference_profile_as
        self.sql_conn_id, self.sql_source, self.table, self.schema = sql_conn_id, sql_source, table, schema
        self.query, self.parameters = query, mapping_argument(parameters)
        self.hook_params = mapping_argument(hook_params)
        self.file_path, self.file_format, self.delimiter = file_path, file_format, delimiter
        self.encoding = encoding
        self.dataframe_callable, self.dataframe_kwargs = dataframe_callable, dict(dataframe_kwargs or {})
        self.dataset_name, self.emit_asset = dataset_name, emit_asset
        self.report_folder, self.store_conn_id = report_folder, store_conn_id
        self.drift_summary: dict[str, Any] | None = None

    def _current_source(self) -> SqlSource:
        """The current batch's SQL source, from the rendered arguments (or ``sql_source``)."""
        return build_sql_source(
            CURRENT_SQL, source=self.sql_source, conn_id=self.sql_conn_id, table=self.table,
            schema=self.schema, query=self.query, parameters=self.parameters or None,
            hook_params=self.hook_params or None,
        )  # fmt: skip

    def _reference_source(self) -> SqlSource:
        """The reference's SQL source, from the rendered arguments (or ``reference_sql_source``)."""
        return build_sql_source(
            REFERENCE_SQL, source=self.reference_sql_source, conn_id=self.reference_sql_conn_id,
            table=self.reference_table, schema=self.reference_schema, query=self.reference_query,
            parameters=self.reference_parameters or None, hook_params=self.reference_hook_params or None,
        )  # fmt: skip

    @cached_property
    def store_hook(self) -> MetricsStoreHook:
        """The metrics store."""
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        return MetricsStoreHook(store_conn_id=self.store_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        identity = run_identity(context)
        report = report_path("drift", identity, self.report_folder)
        dataset = self._dataset()
        with final_errors_fail_the_task():
            from airflow_provider_mlprod.drift.compare import compare_datasets
            from airflow_provider_mlprod.drift.report import render_html_report
            from airflow_provider_mlprod.validation.sources import open_for_writing

            reference = self._reference()
            current = self._current(reference)
            result = compare_datasets(reference, current, self.drift_settings)
            summary = drift_summary(result, dataset, report_url(report))
            with open_for_writing(report) as handle:
                handle.write(render_html_report(result, f"Data drift report: {dataset}").encode("utf-8"))
            self.store_hook.metrics_store().record_drift(identity, store_record(summary), dataset=dataset)
        push_report_link(context, summary["report_location"])
        self.drift_summary = summary
        self._log_summary(summary)
        if self.emit_asset:
            context["outlet_events"][dataset_drift_asset(dataset)].extra = asset_extra(summary)
        if summary["dataset_drift"]:
            context["ti"].xcom_push(key="return_value", value=summary)
        settle(self.on_failure, not summary["dataset_drift"], _drift_message(summary), self.log)
        with final_errors_fail_the_task():  # only a successful task replaces the stored reference
            self._save_reference_profile(reference, identity)
        return summary

    # -- reference -----------------------------------------------------------------------------

    def _reference(self) -> pd.DataFrame | DatasetProfile:
        from airflow_provider_mlprod.drift.profile import DatasetProfile
        from airflow_provider_mlprod.exceptions import StoreError

        try:
            if self.reference_profile is not None:
                stored = self.store_hook.metrics_store().load_profile(self.reference_profile)
                return DatasetProfile.from_dict(stored, source=f"stored profile {self.reference_profile!r}")
            if self.reference_profile_path is not None:
                return _load_profile_file(self.reference_profile_path)
        except StoreError as exc:  # a missing or unreadable profile: a retry cannot fix it
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc
        if self.reference_sql_conn_id is not None or self.reference_sql_source is not None:
            return self._profile_reference_sql()
        if self.reference_file_path is not None:
            return self._read_file(self.reference_file_path)
        return self.reference_dataframe_callable(**self.reference_dataframe_kwargs)

    def _profile_reference_sql(self) -> DatasetProfile:
        from airflow_provider_mlprod.drift.profile import ColumnSpec
        from airflow_provider_mlprod.drift.sql_profile import profile_sql
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_source
        from airflow_provider_mlprod.sql.errors import database_errors

        source = self._reference_source()
        engine = engine_for_source(source)
        with database_errors(source.conn_id):
            kinds = self._reference_column_kinds(engine, source)
            return profile_sql(
                engine,
                {name: ColumnSpec(kind) for name, kind in kinds.items()},
                source=source,
                n_bins=self.drift_settings.n_bins,
                top_k=self.drift_settings.top_k,
            )

    def _reference_column_kinds(self, engine: Any, source: SqlSource) -> dict[str, str]:
        """Kinds of the compared reference columns: declared, else from the table's column types."""
        declared = dict(self.drift_settings.column_kinds)
        if source.query is not None:
            return {name: declared[name] for name in self.drift_settings.columns}
        import sqlalchemy as sa

        from airflow_provider_mlprod.exceptions import InputDataError

        with engine.connect() as connection:
            source.check_names(connection.dialect)
            found = source.run(
                connection, lambda: sa.inspect(connection).get_columns(source.table, schema=source.schema)
            )
        table_columns = {column["name"]: column["type"] for column in found}
        names = (
            list(self.drift_settings.columns)
            if self.drift_settings.columns is not None
            else list(table_columns)
        )
        absent = [name for name in names if name not in table_columns]
        if absent:
            raise InputDataError(
                f"columns {absent} are not in reference {source.label} (it has {list(table_columns)})"
            )
        return {name: declared.get(name) or _kind_of_sql_type(table_columns[name], name) for name in names}

    def _save_reference_profile(self, reference: Any, identity: RunIdentity) -> None:
        if not self.save_reference_profile_as:
            return
        profile = self._as_profile(reference)
        self.store_hook.metrics_store().save_profile(
            self.save_reference_profile_as, profile.to_dict(), identity
        )
        self.log.info(
            "Saved the reference profile (%d rows, %d columns) as %r",
            profile.row_count,
            len(profile.columns),
            self.save_reference_profile_as,
        )

    def _as_profile(self, reference: Any) -> DatasetProfile:
        """The reference as a profile of the compared columns (raw data is profiled on its quantiles)."""
        from airflow_provider_mlprod.drift.profile import DatasetProfile, profile_dataframe

        if isinstance(reference, DatasetProfile):
            return reference
        return profile_dataframe(
            reference,
            columns=self.drift_settings.columns,
            column_kinds=self.drift_settings.column_kinds,
            n_bins=self.drift_settings.n_bins,
            top_k=self.drift_settings.top_k,
        )

    # -- current batch -------------------------------------------------------------------------

    def _current(self, reference: pd.DataFrame | DatasetProfile) -> pd.DataFrame | DatasetProfile:
        if self.sql_conn_id is not None or self.sql_source is not None:
            return self._profile_current_sql(self._as_profile(reference))
        if self.file_path is not None:
            if self.file_reader == "duckdb":
                return self._profile_current_duckdb(self._as_profile(reference), None)
            return self._read_file(self.file_path)
        return self.dataframe_callable(**self.dataframe_kwargs)

    def _current_specs(self, reference: DatasetProfile) -> dict[str, Any]:
        from airflow_provider_mlprod.exceptions import InputDataError

        specs = reference.spec()
        names = list(self.drift_settings.columns) if self.drift_settings.columns is not None else list(specs)
        absent = [name for name in names if name not in specs]
        if absent:
            raise InputDataError(f"columns {absent} are not in the reference (it has {list(specs)})")
        return {name: specs[name] for name in names}

    def _profile_current_duckdb(self, reference: DatasetProfile, source: SqlSource | None) -> DatasetProfile:
        """Profile the current DuckDB table/query (``source``) or file (``file_path``) in DuckDB."""
        from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb
        from airflow_provider_mlprod.exceptions import ConfigurationError
        from airflow_provider_mlprod.hooks.duckdb import DuckDBHook

        specs = self._current_specs(reference)
        settings = {"n_bins": self.drift_settings.n_bins, "top_k": self.drift_settings.top_k}
        if source is not None:
            if source.parameters:
                raise ConfigurationError(
                    f"task {self.task_id!r}: parameters are not supported on a DuckDB connection yet; "
                    "profile a table or a query without placeholders"
                )
            connection = DuckDBHook(duckdb_conn_id=source.conn_id).get_conn()
            sources = {"table": source.table, "schema": source.schema, "query": source.query}
        else:
            import duckdb
            from airflow.sdk import ObjectStoragePath

            connection = duckdb.connect()
            path = ObjectStoragePath(self.file_path)
            local = path.protocol in ("", "file", "local")
            sources = {
                "file": path.path,
                "file_format": self.file_format,
                "filesystem": None if local else path.fs,
            }
        try:
            return profile_duckdb(connection, specs, **sources, **settings)
        finally:
            connection.close()

    def _profile_current_sql(self, reference: DatasetProfile) -> DatasetProfile:
        """Profile the current table or query inside the database on the reference's bins and categories."""
        from airflow_provider_mlprod.drift.sql_profile import profile_sql
        from airflow_provider_mlprod.hooks.duckdb import is_duckdb_connection
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_source
        from airflow_provider_mlprod.sql.errors import database_errors

        source = self._current_source()
        if is_duckdb_connection(source.conn_id):
            return self._profile_current_duckdb(reference, source)
        current_specs = self._current_specs(reference)
        with database_errors(source.conn_id):
            return profile_sql(
                engine_for_source(source),
                current_specs,
                source=source,
                n_bins=self.drift_settings.n_bins,
                top_k=self.drift_settings.top_k,
            )

    def _read_file(self, location: str) -> pd.DataFrame:
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.validation.sources import read_table_file

        return read_table_file(
            ObjectStoragePath(location),
            file_format=self.file_format,
            delimiter=self.delimiter,
            encoding=self.encoding,
        )

    # -- naming and logging --------------------------------------------------------------------

    def _dataset(self) -> str:
        if self.dataset_name:
            return self.dataset_name
        if self.table:
            return f"{self.schema}.{self.table}" if self.schema else self.table
        if self.sql_source is not None and self.sql_source.table is not None:
            return self.sql_source.qualified_table
        return self.task_id

    def _log_summary(self, summary: Mapping[str, Any]) -> None:
        self.log.info(
            "Drift of %s: %s; %d of %d columns drifted (%.1f%%, dataset drifts from %.1f%%); "
            "reference %d rows, current %d rows",
            summary["dataset"],
            "DATASET DRIFT" if summary["dataset_drift"] else "no dataset drift",
            len(summary["drifted_columns"]),
            len(summary["columns"]),
            100 * summary["share_drifted"],
            100 * summary["drift_share_threshold"],
            summary["reference_rows"],
            summary["current_rows"],
        )
        for column in summary["columns"]:
            log = self.log.warning if column["drifted"] else self.log.info
            log(
                "%s %s: %s statistic %s, p-value %s, threshold %s%s",
                "DRIFT" if column["drifted"] else "stable",
                column["column"],
                column["test"],
                column["statistic"],
                column["p_value"],
                column["threshold"],
                "; missing-value share changed" if column["missing_rate_drifted"] else "",
            )


def drift_summary(result: DriftResult, dataset: str, report_location: str) -> dict[str, Any]:
    """The JSON-safe summary of a drift result pushed to XCom (:class:`DriftResultSummary`, each column's
    missing and unseen signals flattened): verdicts and statistics, never data."""
    from airflow_provider_mlprod.summaries import DriftResultSummary

    full = {**result.to_dict(), "dataset": dataset, "report_location": report_location}
    return DriftResultSummary.from_dict(full).to_dict()


def store_record(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary as ``MetricsStore.record_drift`` reads it: per column, the value the threshold judged.

    For p-value tests that value is the p-value (the test's own statistic stays as ``test_statistic``),
    so a column's history compares like with like against its threshold.
    """
    columns = []
    for column in summary["columns"]:
        judged = column["p_value"] if column["drift_when"] == "p_value_below" else column["statistic"]
        columns.append({**column, "statistic": judged, "test_statistic": column["statistic"]})
    return {**summary, "columns": columns}


def asset_extra(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The key figures carried by the Asset event."""
    return {
        "dataset": summary["dataset"],
        "dataset_drift": summary["dataset_drift"],
        "share_drifted": summary["share_drifted"],
        "drifted_columns": list(summary["drifted_columns"]),
        "reference_rows": summary["reference_rows"],
        "current_rows": summary["current_rows"],
        "report_location": summary["report_location"],
    }


def _drift_message(summary: Mapping[str, Any]) -> str:
    drifted, critical = summary["drifted_columns"], summary["must_not_drift_drifted"]
    message = (
        f"{summary['dataset']}: dataset drift: {len(drifted)} of {len(summary['columns'])} columns drifted "
        f"({summary['share_drifted']:.0%}; threshold {summary['drift_share_threshold']:.0%}): "
        f"{', '.join(drifted)}"
    )
    return message + (f"; must-not-drift columns drifted: {', '.join(critical)}" if critical else "")


def _load_profile_file(location: str) -> DatasetProfile:
    """Read a profile JSON file from any ObjectStoragePath URI."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_mlprod.drift.profile import MAX_PROFILE_BYTES, DatasetProfile
    from airflow_provider_mlprod.exceptions import StoreError

    try:
        with ObjectStoragePath(location).open("rb") as handle:
            data = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise StoreError(f"profile file {location!r} cannot be read: {type(exc).__name__}") from None
    return DatasetProfile.from_json_bytes(data, source=f"profile file {location!r}")


def _kind_of_sql_type(sql_type: Any, column: str) -> str:
    """``numeric`` for integer, decimal, float, date and datetime columns (datetimes are compared as
    epoch seconds, as on every other path); ``categorical`` for text and booleans."""
    from airflow_provider_mlprod.exceptions import ConfigurationError

    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        raise ConfigurationError(
            f"column {column!r} has SQL type {sql_type!s} of unknown kind; declare it in column_kinds"
        ) from None
    if python_type is bool:
        return "categorical"
    import datetime
    from decimal import Decimal

    numeric = (int, float, Decimal, datetime.date, datetime.datetime)
    return "numeric" if python_type in numeric else "categorical"


def _check_exactly_one(task_id: str, side: str, sources: Mapping[str, Any]) -> None:
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        raise ValueError(
            f"task {task_id!r}: give exactly one {side} source out of {', '.join(sources)}; "
            f"got {given or 'none'}"
        )


def _fixed_dataset_name(dataset_name: str | None, task_id: str | None) -> str:
    if not dataset_name or "{{" in dataset_name:
        raise ValueError(
            f"task {task_id!r}: emit_asset needs a fixed dataset_name (not templated): "
            "it names the Asset mlprod://datasets/<dataset_name>/drift"
        )
    return dataset_name


def _check_file_reader(task_id: str, file_reader: str, file_format: str | None) -> str:
    if file_reader not in ("pandas", "duckdb"):
        raise ValueError(f"task {task_id!r}: file_reader must be 'pandas' or 'duckdb', got {file_reader!r}")
    if file_reader == "duckdb" and file_format not in (None, "csv", "parquet"):
        raise ValueError(
            f"task {task_id!r}: file_reader 'duckdb' reads csv or parquet files, not {file_format!r}"
        )
    return file_reader


def _parse_settings(
    task_id: str, given: Mapping[str, Any], *, kinds_declared_for_query: bool
) -> DriftSettings:
    """Build ``DriftSettings`` at parse time, so a bad test name or threshold fails the DAG import.

    :param kinds_declared_for_query: the reference is a query, whose columns' kinds must all be declared.
    """
    from airflow_provider_mlprod.drift.settings import DriftSettings
    from airflow_provider_mlprod.exceptions import SpecError

    try:
        settings = DriftSettings(**{name: value for name, value in given.items() if value is not None})
    except (SpecError, TypeError) as exc:
        raise ValueError(f"task {task_id!r}: {exc}") from exc
    if kinds_declared_for_query:
        undeclared = [c for c in settings.columns or () if c not in settings.column_kinds]
        if settings.columns is None or undeclared:
            raise ValueError(
                f"task {task_id!r}: with reference_query give columns and declare the kind of "
                f"each in column_kinds (undeclared: {undeclared or 'no columns given'})"
            )
    return settings

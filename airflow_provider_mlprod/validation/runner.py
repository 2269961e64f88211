"""Run an expectation suite on a pandas DataFrame, a file, or a SQL table or query (inside the database).

Every run returns a :class:`~airflow_provider_mlprod.validation.summary.ValidationSummary`. The
severity policy is applied here: a failed ``critical`` expectation makes ``success`` false, a failed
``warning`` expectation is only reported.

Runs go through ``batch.validate(suite)`` on one ephemeral GX context per process (``gx_context()``),
not through ``ValidationDefinition``/``Checkpoint`` (they crash under marshmallow 4 on numpy bools);
results are converted to plain JSON types here. GX progress bars and its INFO log flood are off.

Fail-closed rules, each an error naming the input:

- an empty batch (no rows) is an :class:`InputDataError`;
- a column that an expectation reads but the data lacks is an :class:`InputDataError` naming the
  column and the expectation, raised before validating. Expectations whose purpose is to check which
  columns exist (``expect_column_to_exist``, ``expect_table_columns_to_match_set``...) are exempt: a
  missing column is their failed result;
- an expectation GX cannot evaluate (e.g. a mean of text) is an :class:`InputDataError`;
- for SQL sources, table, schema, key and suite column names must be plain identifiers, checked
  before any SQL runs; a missing table or a failing query is an :class:`InputDataError` naming it.

SQL sources run every expectation inside the database through GX's SQL datasource: only the row
count, the column names and capped samples of failing values come back into Python.

Public API: :func:`validate_dataframe`, :func:`validate_file`, :func:`validate_sql`,
:func:`gx_context`, :data:`TESTED_EXPECTATION_FAMILIES`, :data:`DEFAULT_SAMPLE_SIZE`.
"""

from __future__ import annotations

import json
import logging
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, MlprodError, SpecError
from airflow_provider_mlprod.frames import plain_arrow_columns
from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError, classify_database_error
from airflow_provider_mlprod.sql.identifiers import check_identifier
from airflow_provider_mlprod.sql.session import (
    export_snapshot,
    read_only_snapshot,
    read_only_url,
    sharing_snapshot,
)
from airflow_provider_mlprod.sql.source import SqlSource
from airflow_provider_mlprod.validation.output_folder import check_output_not_input
from airflow_provider_mlprod.validation.quarantine import (
    FileQuarantine,
    SqlQuarantine,
    check_sql_quarantine_supported,
    quarantine_frame,
    quarantine_sql_rows,
)
from airflow_provider_mlprod.validation.report import write_html_report
from airflow_provider_mlprod.validation.sources import describe_location, detect_file_format, read_table
from airflow_provider_mlprod.validation.suite import POSITION_META_KEY, ValidationSuite, load_suite
from airflow_provider_mlprod.validation.summary import ExpectationOutcome, ValidationSummary, to_json_safe

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SAMPLE_SIZE = 5
"""Failing sample values kept per expectation unless told otherwise."""

SAMPLE_SCAN_FACTOR = 10
"""Failing values asked of GX per sample slot: its samples repeat a value once per failing row."""

MAX_VALUES_SCANNED = 1000
"""The most failing values asked of GX per expectation."""

PANDAS = "pandas"
SQL = "sql"

TESTED_EXPECTATION_FAMILIES: Mapping[str, tuple[str, ...]] = {
    "expect_table_row_count_to_be_between": (PANDAS, SQL),
    "expect_table_columns_to_match_set": (PANDAS, SQL),
    "expect_column_to_exist": (PANDAS, SQL),
    "expect_column_values_to_not_be_null": (PANDAS, SQL),
    "expect_column_values_to_be_null": (PANDAS, SQL),
    "expect_column_values_to_be_in_set": (PANDAS, SQL),
    "expect_column_values_to_not_be_in_set": (PANDAS, SQL),
    "expect_column_values_to_be_between": (PANDAS, SQL),
    "expect_column_values_to_be_unique": (PANDAS, SQL),
    "expect_column_value_lengths_to_be_between": (PANDAS, SQL),
    "expect_column_values_to_match_regex": (PANDAS, SQL),
    "expect_compound_columns_to_be_unique": (PANDAS, SQL),
    "expect_column_pair_values_a_to_be_greater_than_b": (PANDAS, SQL),
    "expect_column_distinct_values_to_be_in_set": (PANDAS, SQL),
    "expect_column_min_to_be_between": (PANDAS, SQL),
    "expect_column_max_to_be_between": (PANDAS, SQL),
    "expect_column_mean_to_be_between": (PANDAS, SQL),
    "expect_column_median_to_be_between": (PANDAS, SQL),
    "expect_column_stdev_to_be_between": (PANDAS, SQL),
    "expect_column_quantile_values_to_be_between": (PANDAS, SQL),
    "expect_column_kl_divergence_to_be_less_than": (PANDAS, SQL),
    "expect_column_proportion_of_unique_values_to_be_between": (PANDAS, SQL),
}
"""Expectation families tested on each backend: ``pandas`` (frames and files) and ``sql`` (SQLite and
PostgreSQL), each both met and not met. Other GX expectations may work; these are the ones the tests prove."""


@lru_cache(maxsize=1)
def gx_context() -> Any:
    """The process's ephemeral GX context, with progress bars off; created once, reused by every run."""
    # Importing this module imported the suite module, which quiets GX's loggers before GX is imported.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)  # GX sets INFO
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@lru_cache(maxsize=1)
def _dataframe_batch_definition() -> Any:
    """The one pandas datasource, asset and whole-frame batch definition every DataFrame run reuses."""
    return (
        gx_context()
        .data_sources.add_pandas(f"mlprod_frames_{uuid.uuid4().hex}")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )


def validate_dataframe(
    frame: pd.DataFrame,
    suite: Any,
    *,
    dataset: str = "dataframe",
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    quarantine: FileQuarantine | None = None,
    report_location: Any = None,
    inputs: Sequence[Any] = (),
) -> ValidationSummary:
    """Validate a pandas DataFrame against a suite.

    :param frame: the batch.
    :param suite: a :class:`ValidationSuite` or anything :func:`load_suite` accepts.
    :param dataset: a label for the batch in the summary and messages.
    :param sample_size: failing values kept per expectation (0 for none).
    :param quarantine: where to write passing and failing rows of row-level expectations, if anywhere.
    :param report_location: where to write the HTML report (path or object with ``.open()``), if anywhere.
    :param inputs: where the batch was read from; a quarantine folder may not be or contain one.
    :raises InputDataError: empty frame, a column the suite reads is missing, an expectation that GX
        cannot evaluate.
    :raises SpecError: an invalid suite.
    """
    import pandas as pd

    suite = load_suite(suite)
    _check_sample_size(sample_size)
    if not isinstance(frame, pd.DataFrame):
        raise InputDataError(f"{dataset}: expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise InputDataError(f"{dataset} has no rows; an empty batch cannot be validated")
    _check_columns_present(suite, [str(column) for column in frame.columns], dataset)
    frame = plain_arrow_columns(frame)  # GX cannot read pyarrow string_view columns
    quarantined_specs = quarantine.select(suite) if quarantine else ()
    if quarantined_specs and not frame.index.equals(pd.RangeIndex(len(frame))):
        frame = frame.reset_index(drop=True)
    result_format: dict[str, Any] = {
        "result_format": "BASIC",
        "partial_unexpected_count": _values_scanned_for(sample_size),
    }
    if quarantined_specs:
        result_format = {
            "result_format": "COMPLETE",
            "partial_unexpected_count": _values_scanned_for(sample_size),
            "return_unexpected_index_query": False,
        }
    batch = _dataframe_batch_definition().get_batch(batch_parameters={"dataframe": frame})
    results = _validate(batch, suite, result_format, dataset)
    summary = _summarise(suite, results, dataset, len(frame), sample_size)
    if quarantine is not None:
        failing_positions = {
            spec.name: results[spec.position].result.get("unexpected_index_list") or []
            for spec in quarantined_specs
        }
        summary = summary.with_quarantine(quarantine_frame(frame, failing_positions, quarantine, inputs))
    return _with_report(summary, report_location)


def validate_file(
    location: Any,
    suite: Any,
    *,
    file_format: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    quarantine: FileQuarantine | None = None,
    report_location: Any = None,
    ragged_rows: str = "error",
) -> ValidationSummary:
    """Read a CSV, Parquet or JSON-lines file and validate it against a suite.

    :param location: a local path or an object with ``.open()`` (e.g. Airflow's ``ObjectStoragePath``).
    :param suite: a :class:`ValidationSuite` or anything :func:`load_suite` accepts.
    :param file_format: ``csv``, ``parquet`` or ``jsonl``; default from the suffix.
    :param delimiter: CSV delimiter; default ``,`` (``\\t`` for ``.tsv``).
    :param encoding: text encoding of CSV and JSON-lines files.
    :param sample_size: failing values kept per expectation.
    :param quarantine: where to write passing and failing rows; their format defaults to the output
        suffix, else the input format.
    :param report_location: where to write the HTML report, if anywhere.
    :param ragged_rows: ``error`` (default): a CSV row with the wrong number of fields stops the run,
        naming its line; ``fail``: such rows are left out of the batch and counted as one failed critical
        check, ``file_rows_match_header``, whose samples name their lines (they are in neither
        quarantine output, as their fields cannot be aligned with the columns).
    :raises InputDataError: unreadable file (see :func:`read_table_file`) or the errors of
        :func:`validate_dataframe`.
    """
    suite = load_suite(suite)
    input_format = detect_file_format(location, file_format)
    if quarantine is not None and quarantine.folder is not None:
        check_output_not_input(quarantine.folder, [location], "quarantine folder")
    read = read_table(
        location, file_format=input_format, delimiter=delimiter, encoding=encoding, ragged_rows=ragged_rows
    )
    if quarantine is not None and quarantine.file_format is None:
        quarantine = quarantine.with_default_format(input_format)
    summary = validate_dataframe(
        read.frame,
        suite,
        dataset=describe_location(location),
        sample_size=sample_size,
        quarantine=quarantine,
        inputs=[location],
    )
    if read.ragged_count:
        summary = summary.with_ragged_rows(read, sample_size)
    return _with_report(summary, report_location)


def validate_sql(
    connection_url: str | sa.URL,
    suite: Any,
    *,
    source: SqlSource | None = None,
    table: str | None = None,
    schema: str | None = None,
    query: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    engine: sa.Engine | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    quarantine: SqlQuarantine | None = None,
    report_location: Any = None,
) -> ValidationSummary:
    """Validate a SQL table or query against a suite, running every expectation inside the database.

    The column names and the row count are read on one read-only snapshot; GX's own connections are
    read-only sessions too (PostgreSQL ``default_transaction_read_only``, SQLite opened read-only), so
    the user's query cannot write through them. On PostgreSQL the snapshot is exported and every GX
    query and the quarantine's write transaction import it, so the counts, the expectations and the
    quarantined rows all describe the same rows (the quarantine summary says
    ``"source_snapshot": "validated"``). Elsewhere the quarantine's inserts run after the read snapshot
    closed and read the latest rows (``"latest"``), each insert's count checked against GX's.

    :param connection_url: a SQLAlchemy URL (string or ``sqlalchemy.URL``) for GX; never put in a message.
    :param suite: a :class:`ValidationSuite` or anything :func:`load_suite` accepts.
    :param source: the table or query (a :class:`~airflow_provider_mlprod.sql.source.SqlSource`); or give
        ``table`` (+ ``schema``) or ``query`` (+ ``parameters``).
    :param table: the table to validate (``"name"`` or ``"schema.name"``); exclusive with ``query``.
    :param schema: the table's schema, if not in ``table``.
    :param query: a SELECT whose rows are the batch; exclusive with ``table``.
    :param parameters: the query's bind parameters (``:name`` in the SQL).
    :param engine: the engine for the provider's own reads and the quarantine's writes (e.g. built by the
        connection's Airflow hook); default one built from ``connection_url``.
    :param sample_size: failing values kept per expectation.
    :param quarantine: the table that receives failing rows' keys and reasons, if any.
    :param report_location: where to write the HTML report, if anywhere.
    :raises ConfigurationError: hostile or invalid table, schema or key names; table and query both or
        neither given; parameters that do not match the query.
    :raises SpecError: a hostile column name in the suite, an invalid suite.
    :raises InputDataError: missing table, failing query, empty batch, missing column, an expectation
        GX cannot evaluate.
    :raises MlprodError: the database cannot be reached (retryable).
    """
    suite = load_suite(suite)
    _check_sample_size(sample_size)
    if source is None:
        source = SqlSource.from_arguments(table=table, schema=schema, query=query, parameters=parameters)
    elif table is not None or schema is not None or query is not None or parameters:
        raise ConfigurationError("give either a source or table/schema/query/parameters, not both")
    for spec in suite.expectations:
        for column in spec.columns:
            check_identifier(
                column, f"column of expectation #{spec.position} {spec.expectation_type}", SpecError
            )
    if quarantine is not None:
        quarantine.check_identifiers()
        check_sql_quarantine_supported(quarantine.select(suite))
    dataset = source.label
    url = sa.make_url(connection_url) if isinstance(connection_url, str) else connection_url
    own_engine = engine if engine is not None else sa.create_engine(url)
    try:
        with ExitStack() as stack:
            try:
                connection = stack.enter_context(read_only_snapshot(own_engine))
                snapshot = export_snapshot(connection)
            except sa.exc.DBAPIError as exc:
                raise _connect_error(exc, source, url) from None
            rows_checked = _read_shape(suite, source, connection, quarantine)
            query_text = source.rendered_query(own_engine.dialect) if source.query is not None else None
            context = gx_context()
            with _temporary_datasource(context) as name, warnings.catch_warnings():
                # GX suggests dialect-specific datasources and deprecates schema_name; both work as used.
                warnings.filterwarnings("ignore", category=UserWarning, module="great_expectations")
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="great_expectations")
                try:
                    datasource = context.data_sources.add_sql(
                        name, connection_string=read_only_url(url).render_as_string(hide_password=False)
                    )
                    gx_engine = datasource.get_engine()
                    # the engine GX's expectation queries run on (its execution engine builds its own)
                    gx_query_engine = datasource.get_execution_engine().engine
                except Exception as exc:
                    raise DatabaseUnavailableError(
                        f"cannot connect to the database of {dataset}: {_scrub(exc, url)}"
                    ) from None
                gx_engines = list({id(each): each for each in (gx_engine, gx_query_engine)}.values())
                try:
                    with ExitStack() as sharing:
                        for each in gx_engines:
                            sharing.enter_context(sharing_snapshot(each, snapshot))
                            sharing.enter_context(_query_text_passed_once(each, query_text))
                        summary, unexpected = _validate_sql_batch(
                            suite, source, query_text, datasource, rows_checked, sample_size, quarantine
                        )
                finally:
                    for each in gx_engines:
                        each.dispose()
            if quarantine is not None and snapshot is not None:
                # PostgreSQL: the inserts read the validated snapshot, in their own write transaction
                with sharing_snapshot(own_engine, snapshot, read_only=False):
                    written = quarantine_sql_rows(
                        own_engine, source, quarantine, quarantine.select(suite), unexpected
                    )
                summary = summary.with_quarantine({**written, "source_snapshot": "validated"})
        if quarantine is not None and snapshot is None:
            # elsewhere the read snapshot is closed first (SQLite's read lock would hold the writer off);
            # the inserts read the source as it is now, and each count is checked against GX's
            written = quarantine_sql_rows(
                own_engine, source, quarantine, quarantine.select(suite), unexpected
            )
            summary = summary.with_quarantine({**written, "source_snapshot": "latest"})
    finally:
        if engine is None:
            own_engine.dispose()
    return _with_report(summary, report_location)


def _connect_error(exc: sa.exc.DBAPIError, source: SqlSource, url: sa.URL) -> MlprodError:
    classified = classify_database_error(exc, source.conn_id)
    if isinstance(classified, DatabaseUnavailableError):
        return DatabaseUnavailableError(
            f"cannot connect to the database of {source.label}: {_scrub(exc, url)}"
        )
    return classified


def _read_shape(
    suite: ValidationSuite,
    source: SqlSource,
    connection: sa.Connection,
    quarantine: SqlQuarantine | None,
) -> int:
    """Check the columns and count the rows on the read snapshot ``connection``; return the row count."""
    dataset = source.label
    columns = source.column_names(connection)
    _check_columns_present(suite, columns, dataset)
    if quarantine is not None:
        missing_keys = [key for key in quarantine.key_columns if key not in columns]
        if missing_keys:
            raise InputDataError(f"{dataset} lacks quarantine key column(s) {', '.join(missing_keys)}")
    rows_checked = source.row_count(connection)
    if rows_checked == 0:
        raise InputDataError(f"{dataset} has no rows; an empty batch cannot be validated")
    return rows_checked


def _validate_sql_batch(
    suite: ValidationSuite,
    source: SqlSource,
    query_text: str | None,
    datasource: Any,
    rows_checked: int,
    sample_size: int,
    quarantine: SqlQuarantine | None,
) -> tuple[ValidationSummary, dict[int, int]]:
    """Run the suite through GX; return the summary and GX's unexpected count per quarantined expectation."""
    dataset = source.label
    if query_text is not None:
        asset = datasource.add_query_asset("batch", query=query_text)
    else:
        asset = datasource.add_table_asset("batch", table_name=source.table, schema_name=source.schema)
    batch = asset.add_batch_definition_whole_table("whole").get_batch()
    result_format = {"result_format": "BASIC", "partial_unexpected_count": _values_scanned_for(sample_size)}
    results = _validate(batch, suite, result_format, dataset)
    summary = _summarise(suite, results, dataset, rows_checked, sample_size)
    unexpected = {}
    if quarantine is not None:
        unexpected = {
            spec.position: int(results[spec.position].result.get("unexpected_count") or 0)
            for spec in quarantine.select(suite)
        }
    return summary, unexpected


@contextmanager
def _query_text_passed_once(engine: sa.Engine, query_text: str | None) -> Iterator[None]:
    """Let the server read a query asset's ``%`` as written, on drivers that double ``%`` (psycopg...).

    GX compiles a query asset's text twice before the driver reads it (the asset as a ``text()``
    subquery, rendered with ``literal_binds``, then that text wrapped in ``text()`` again): every ``%``
    reaches the driver as ``%%%%`` and the server as ``%%``, so ``id % 2`` becomes a syntax error and
    ``LIKE 'a%'`` or ``= '50%'`` another pattern or value. While this context is open, a statement on
    ``engine`` that holds the query escaped twice gets it back escaped once, which the driver turns into
    exactly the text the parser checked. Nothing else of the statement is touched; a statement GX built
    without the double escape holds no such text and is left alone.
    """
    if query_text is None or "%" not in query_text or engine.dialect.paramstyle not in ("pyformat", "format"):
        yield
        return
    twice, once = query_text.replace("%", "%%%%"), query_text.replace("%", "%%")

    def escape_once(connection, cursor, statement, parameters, context, executemany):
        return statement.replace(twice, once), parameters

    sa.event.listen(engine, "before_cursor_execute", escape_once, retval=True)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", escape_once)


@contextmanager
def _temporary_datasource(context: Any) -> Iterator[str]:
    name = f"mlprod_{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        if name in context.data_sources.all():
            context.data_sources.delete(name)


def _validate(
    batch: Any, suite: ValidationSuite, result_format: dict[str, Any], dataset: str
) -> dict[int, Any]:
    gx_suite = suite.to_gx_suite()
    validation = batch.validate(gx_suite, result_format=result_format)
    results = {
        int(result.expectation_config.meta[POSITION_META_KEY]): result for result in validation.results
    }
    missing = [spec.name for spec in suite.expectations if spec.position not in results]
    if missing:
        raise InputDataError(f"{dataset}: GX returned no result for {', '.join(missing)}")
    for spec in suite.expectations:
        message = _exception_message(results[spec.position].exception_info)
        if message:
            raise InputDataError(
                f"{dataset}: expectation #{spec.position} {spec.name} could not be evaluated: {message}"
            )
    return results


def _exception_message(exception_info: Any) -> str | None:
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, Mapping) and info.get("raised_exception"):
            text = str(info.get("exception_message") or "unknown error").strip()
            return text.splitlines()[0][:300] if text else "unknown error"
    return None


def _summarise(
    suite: ValidationSuite, results: dict[int, Any], dataset: str, rows_checked: int, sample_size: int
) -> ValidationSummary:
    outcomes = []
    for spec in suite.expectations:
        result = results[spec.position]
        details = result.result or {}
        unexpected_count = details.get("unexpected_count")
        unexpected_percent = details.get("unexpected_percent")
        samples = _distinct(details.get("partial_unexpected_list") or [])[:sample_size]
        outcomes.append(
            ExpectationOutcome(
                position=spec.position,
                expectation_type=spec.expectation_type,
                column=spec.column_label,
                severity=spec.severity,
                success=bool(result.success),
                unexpected_count=None if unexpected_count is None else int(unexpected_count),
                unexpected_percent=to_json_safe(
                    None if unexpected_percent is None else float(unexpected_percent)
                ),
                sample_values=to_json_safe(samples),
                observed_value=to_json_safe(details.get("observed_value")),
                parameters=to_json_safe(spec.parameters),
            )
        )
    return ValidationSummary(
        suite_name=suite.name, dataset=dataset, rows_checked=int(rows_checked), outcomes=tuple(outcomes)
    )


def _values_scanned_for(sample_size: int) -> int:
    """How many failing values to ask GX for, so that ``sample_size`` distinct ones are likely among them."""
    return min(sample_size * SAMPLE_SCAN_FACTOR, MAX_VALUES_SCANNED)


def _distinct(values: Any) -> list[Any]:
    """``values`` without repeats, in the order first seen (GX samples repeat a value per failing row)."""
    seen: set[str] = set()
    distinct = []
    for value in values:
        key = json.dumps(value, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            distinct.append(value)
    return distinct


def _check_columns_present(suite: ValidationSuite, columns: list[str], dataset: str) -> None:
    present = set(columns)
    problems = [
        f"{column!r} (read by #{spec.position} {spec.expectation_type})"
        for spec in suite.expectations
        for column in spec.required_columns
        if column not in present
    ]
    if problems:
        shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise InputDataError(f"{dataset} lacks column(s) {'; '.join(problems)}; it has: {shown}")


def _check_sample_size(sample_size: int) -> None:
    if not isinstance(sample_size, int) or isinstance(sample_size, bool) or not 0 <= sample_size <= 1000:
        raise SpecError(f"sample_size {sample_size!r} must be an integer from 0 to 1000")


def _with_report(summary: ValidationSummary, report_location: Any) -> ValidationSummary:
    if report_location is None:
        return summary
    return summary.with_report(write_html_report(summary, report_location))


def _scrub(exc: BaseException, url: sa.URL) -> str:
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
    if url.password:
        text = text.replace(str(url.password), "***")
    return text[:300]

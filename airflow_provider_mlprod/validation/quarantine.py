"""Quarantine: set aside the rows that fail row-level expectations, so a pipeline continues on clean data.

Files and DataFrames: the rows GX reports as unexpected for each selected row-level expectation are
split from the others. Passing rows and failing rows go to two outputs (CSV, Parquet or JSON lines);
each failing row carries a column (``failed_expectations`` by default) listing the names of the
expectations it failed, ``"; "``-separated, e.g. ``expect_column_values_to_not_be_null(amount)``.
With a ``folder`` the outputs are atomic (:mod:`~airflow_provider_mlprod.validation.output_folder`):
``passing.<fmt>``, ``failing.<fmt>`` and ``report.json`` (the counts per failed expectation) are written
into a folder of this try, then ``manifest.json`` points at them; a failed try leaves the previous
outputs intact, and a folder that is or contains the input is refused.

SQL sources: nothing is fetched. For each selected expectation an ``INSERT ... SELECT`` with the
expectation's condition copies the failing rows' key columns into a quarantine table, one record per
(row, failed expectation): the key columns, ``failed_expectation`` and ``batch_id``. The table is
created (typed like the source's keys) when missing. Records of the same ``batch_id`` are replaced, so
a retried task does not duplicate them. Each insert's row count is checked against GX's unexpected
count for the expectation; a mismatch rolls back and raises.

Which expectations are quarantined: row-level ones (GX map expectations) whose severity is in the
target's ``severities`` (``critical`` only by default, as warnings are reported, not acted on), even
when ``mostly`` let the expectation pass overall. On SQL, the row-level types with a condition in
:data:`SQL_QUARANTINE_CONDITIONS` are supported; any other selected type is rejected before SQL runs.

Public API: :class:`FileQuarantine`, :class:`SqlQuarantine`, :func:`quarantine_frame`,
:func:`quarantine_sql_rows`, :func:`check_sql_quarantine_supported`, :data:`SQL_QUARANTINE_CONDITIONS`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, MlprodError
from airflow_provider_mlprod.frames import plain_arrow_columns
from airflow_provider_mlprod.sql.identifiers import (
    check_identifier,
    check_identifier_length,
    split_table_name,
)
from airflow_provider_mlprod.sql.source import SqlSource
from airflow_provider_mlprod.validation.output_folder import OutputFolder
from airflow_provider_mlprod.validation.sources import (
    FILE_FORMATS,
    SUFFIX_FORMATS,
    describe_location,
    write_table_file,
    write_table_to,
)
from airflow_provider_mlprod.validation.suite import CRITICAL, SEVERITIES, ExpectationSpec, ValidationSuite

if TYPE_CHECKING:
    import pandas as pd

REASON_SEPARATOR = "; "
"""Separator of expectation names in a failing row's reason column."""

FAILED_EXPECTATION_COLUMN = "failed_expectation"
BATCH_ID_COLUMN = "batch_id"


def _check_severities(severities: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(severities)
    unknown = [severity for severity in chosen if severity not in SEVERITIES]
    if not chosen or unknown:
        raise ConfigurationError(
            f"quarantine severities {list(chosen)!r} must be a non-empty subset of {', '.join(SEVERITIES)}"
        )
    return chosen


def _select(suite: ValidationSuite, severities: Sequence[str]) -> tuple[ExpectationSpec, ...]:
    return tuple(spec for spec in suite.expectations if spec.is_row_level and spec.severity in severities)


@dataclass(frozen=True)
class FileQuarantine:
    """Where the passing and the failing rows of a file or DataFrame go.

    Either ``folder`` (atomic: each try writes its own folder, published by a manifest) or the two
    locations ``passing_location`` and ``failing_location`` (written in place, one after the other).

    :param passing_location: output of the rows that failed no selected expectation.
    :param failing_location: output of the failing rows, with the reason column.
    :param file_format: ``csv``, ``parquet`` or ``jsonl``; default each output's suffix, else the input's
        (with a folder: the input's, else ``parquet``).
    :param reason_column: name of the column listing the failed expectations.
    :param severities: severities whose row-level expectations quarantine rows.
    :param folder: the output folder of atomic outputs.
    """

    passing_location: Any = None
    failing_location: Any = None
    file_format: str | None = None
    reason_column: str = "failed_expectations"
    severities: tuple[str, ...] = (CRITICAL,)
    fallback_format: str | None = field(default=None, repr=False)
    folder: Any = None

    def __post_init__(self) -> None:
        in_place = self.passing_location is not None and self.failing_location is not None
        if (self.folder is not None) == in_place or (
            not in_place and (self.passing_location is not None or self.failing_location is not None)
        ):
            raise ConfigurationError(
                "quarantine: give either a folder or both passing_location and failing_location"
            )
        object.__setattr__(self, "severities", _check_severities(self.severities))
        if self.file_format is not None and self.file_format not in FILE_FORMATS:
            raise ConfigurationError(
                f"quarantine file format {self.file_format!r} is not one of {FILE_FORMATS}"
            )
        if not isinstance(self.reason_column, str) or not self.reason_column:
            raise ConfigurationError(
                f"quarantine reason column {self.reason_column!r} must be a non-empty name"
            )

    def select(self, suite: ValidationSuite) -> tuple[ExpectationSpec, ...]:
        """The suite's expectations whose failing rows are quarantined."""
        return _select(suite, self.severities)

    def with_default_format(self, file_format: str) -> FileQuarantine:
        """A copy that falls back to ``file_format`` for an output whose suffix implies no format."""
        return replace(self, fallback_format=file_format)

    def format_for(self, location: Any) -> str:
        """The format an output is written in."""
        if self.file_format is not None:
            return self.file_format
        text = describe_location(location).split("?", 1)[0].lower()
        for suffix, file_format in SUFFIX_FORMATS.items():
            if text.endswith(suffix):
                return file_format
        if self.fallback_format is not None:
            return self.fallback_format
        if self.folder is not None:
            return "parquet"
        raise ConfigurationError(
            f"quarantine output {describe_location(location)!r}: give file_format or a suffix"
        )


@dataclass(frozen=True)
class SqlQuarantine:
    """The table that receives failing rows' keys and reasons, in the validated database.

    :param table: quarantine table (``"name"`` or ``"schema.name"``); created when missing.
    :param key_columns: the source columns that identify a row.
    :param schema: the table's schema, if not in ``table``.
    :param batch_id: identifies this run's records; records of the same id are replaced. Default: random.
    :param severities: severities whose row-level expectations quarantine rows.
    """

    table: str
    key_columns: tuple[str, ...]
    schema: str | None = None
    batch_id: str | None = None
    severities: tuple[str, ...] = (CRITICAL,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severities", _check_severities(self.severities))
        if isinstance(self.key_columns, str):
            object.__setattr__(self, "key_columns", (self.key_columns,))
        object.__setattr__(self, "key_columns", tuple(self.key_columns))
        if self.batch_id is None:
            object.__setattr__(self, "batch_id", uuid.uuid4().hex)

    def check_identifiers(self) -> None:
        """Check the table, schema and key names are plain identifiers (before any SQL runs)."""
        split_table_name(self.table, self.schema)
        if not self.key_columns:
            raise ConfigurationError(f"quarantine table {self.table!r} needs at least one key column")
        for column in self.key_columns:
            check_identifier(column, "quarantine key column")
        reserved = {FAILED_EXPECTATION_COLUMN, BATCH_ID_COLUMN} & set(self.key_columns)
        if reserved:
            raise ConfigurationError(f"quarantine key columns may not be named {', '.join(sorted(reserved))}")
        if not isinstance(self.batch_id, str) or not self.batch_id or len(self.batch_id) > 200:
            raise ConfigurationError(
                f"quarantine batch_id {self.batch_id!r} must be a string of 1 to 200 characters"
            )

    def select(self, suite: ValidationSuite) -> tuple[ExpectationSpec, ...]:
        """The suite's expectations whose failing rows are quarantined."""
        return _select(suite, self.severities)


def quarantine_frame(
    frame: pd.DataFrame,
    failing_positions: Mapping[str, Sequence[int]],
    target: FileQuarantine,
    inputs: Sequence[Any] = (),
) -> dict[str, Any]:
    """Write the passing rows and the failing rows (with reasons) of ``frame``; return locations and counts.

    :param frame: the validated batch, indexed by position (a default ``RangeIndex``).
    :param failing_positions: for each expectation name, the positions of the rows it found unexpected.
    :param target: where and how to write.
    :param inputs: the batch's input locations; an output folder may not be or contain one.
    """
    import numpy as np

    if target.reason_column in frame.columns:
        raise ConfigurationError(
            f"quarantine reason column {target.reason_column!r} already exists in the data; "
            "choose another name"
        )
    reasons = np.full(len(frame), "", dtype=object)
    failing = np.zeros(len(frame), dtype=bool)
    for name, positions in failing_positions.items():
        try:
            rows = np.asarray(positions, dtype=np.int64)
        except (TypeError, ValueError):
            raise MlprodError(
                f"quarantine: GX returned row indexes for {name} that are not positions"
            ) from None
        if rows.size == 0:
            continue
        if rows.min() < 0 or rows.max() >= len(frame):
            raise MlprodError(f"quarantine: GX returned row positions for {name} outside the batch")
        current = reasons[rows]
        reasons[rows] = np.where(current == "", name, current + REASON_SEPARATOR + name)
        failing[rows] = True
    frame = plain_arrow_columns(frame)  # pyarrow cannot filter a string_view column
    passing_rows = frame.loc[~failing]
    failing_rows = frame.loc[failing].assign(**{target.reason_column: reasons[failing]})
    if target.folder is not None:
        counts = {name: len(positions) for name, positions in failing_positions.items()}
        return _write_folder(target, passing_rows, failing_rows, counts, inputs)
    passing_location = write_table_file(
        passing_rows, target.passing_location, file_format=target.format_for(target.passing_location)
    )
    failing_location = write_table_file(
        failing_rows, target.failing_location, file_format=target.format_for(target.failing_location)
    )
    return {
        "passing_location": passing_location,
        "failing_location": failing_location,
        "passing_rows": len(passing_rows),
        "failing_rows": len(failing_rows),
    }


def _write_folder(
    target: FileQuarantine,
    passing_rows: pd.DataFrame,
    failing_rows: pd.DataFrame,
    counts: Mapping[str, int],
    inputs: Sequence[Any],
) -> dict[str, Any]:
    file_format = target.format_for(target.folder)
    rows = {"passing_rows": len(passing_rows), "failing_rows": len(failing_rows)}
    report = {**rows, "failed_expectations": dict(counts), "reason_column": target.reason_column}
    with OutputFolder(target.folder, inputs=inputs) as out:
        out.write("passing", f"passing.{file_format}", lambda h: write_table_to(passing_rows, h, file_format))
        out.write("failing", f"failing.{file_format}", lambda h: write_table_to(failing_rows, h, file_format))
        out.write("report", "report.json", lambda h: h.write(json.dumps(report, indent=1).encode("utf-8")))
        out.extra.update(rows)
    return {
        "passing_location": out.locations["passing"],
        "failing_location": out.locations["failing"],
        "report_location": out.locations["report"],
        "manifest_location": out.manifest_location,
        "output_try": out.try_id,
        **rows,
    }


SqlCondition = Callable[
    [sa.FromClause, Mapping[str, Any], Callable[[str], sa.FromClause]], sa.ColumnElement[bool]
]


def _not_null(source: sa.FromClause, kwargs: Mapping[str, Any], _: Any) -> sa.ColumnElement[bool]:
    return source.c[kwargs["column"]].is_(None)


def _null(source: sa.FromClause, kwargs: Mapping[str, Any], _: Any) -> sa.ColumnElement[bool]:
    return source.c[kwargs["column"]].is_not(None)


def _in_set(source: sa.FromClause, kwargs: Mapping[str, Any], _: Any) -> sa.ColumnElement[bool]:
    column = source.c[kwargs["column"]]
    return sa.and_(column.is_not(None), column.not_in(list(kwargs["value_set"])))


def _not_in_set(source: sa.FromClause, kwargs: Mapping[str, Any], _: Any) -> sa.ColumnElement[bool]:
    column = source.c[kwargs["column"]]
    return sa.and_(column.is_not(None), column.in_(list(kwargs["value_set"])))


def _outside_range(value: sa.ColumnElement[Any], kwargs: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    bounds = []
    if kwargs.get("min_value") is not None:
        minimum = kwargs["min_value"]
        bounds.append(value > minimum if kwargs.get("strict_min") else value >= minimum)
    if kwargs.get("max_value") is not None:
        maximum = kwargs["max_value"]
        bounds.append(value < maximum if kwargs.get("strict_max") else value <= maximum)
    if not bounds:
        return sa.false()
    return sa.not_(sa.and_(*bounds))


def _between(source: sa.FromClause, kwargs: Mapping[str, Any], _: Any) -> sa.ColumnElement[bool]:
    column = source.c[kwargs["column"]]
    return sa.and_(column.is_not(None), _outside_range(column, kwargs))


def _lengths_between(source: sa.FromClause, kwargs: Mapping[str, Any], _: Any) -> sa.ColumnElement[bool]:
    column = source.c[kwargs["column"]]
    return sa.and_(column.is_not(None), _outside_range(sa.func.length(column), kwargs))


def _unique(
    source: sa.FromClause, kwargs: Mapping[str, Any], make_source: Callable[[str], sa.FromClause]
) -> sa.ColumnElement[bool]:
    name = kwargs["column"]
    duplicates_source = make_source("mlprod_duplicates")
    duplicated = (
        sa.select(duplicates_source.c[name])
        .where(duplicates_source.c[name].is_not(None))
        .group_by(duplicates_source.c[name])
        .having(sa.func.count() > 1)
    )
    return source.c[name].in_(duplicated)


def _regex(source: sa.FromClause, kwargs: Mapping[str, Any], _: Any) -> sa.ColumnElement[bool]:
    column = source.c[kwargs["column"]]
    return sa.and_(column.is_not(None), sa.not_(column.regexp_match(kwargs["regex"])))


SQL_QUARANTINE_CONDITIONS: Mapping[str, SqlCondition] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_null": _null,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_not_be_in_set": _not_in_set,
    "expect_column_values_to_be_between": _between,
    "expect_column_value_lengths_to_be_between": _lengths_between,
    "expect_column_values_to_be_unique": _unique,
    "expect_column_values_to_match_regex": _regex,
}
"""Row-level expectation types quarantinable on SQL sources, each with its failing-row condition."""


def check_sql_quarantine_supported(specs: Sequence[ExpectationSpec]) -> None:
    """Raise :class:`ConfigurationError` naming each selected expectation SQL quarantine cannot express."""
    unsupported = [
        f"#{spec.position} {spec.name}"
        for spec in specs
        if spec.expectation_type not in SQL_QUARANTINE_CONDITIONS or spec.kwargs.get("row_condition")
    ]
    if unsupported:
        raise ConfigurationError(
            f"SQL quarantine cannot express {', '.join(unsupported)}; supported types (without "
            f"row_condition): {', '.join(SQL_QUARANTINE_CONDITIONS)}. Leave their severity out of the "
            "quarantine's severities or validate without quarantine"
        )


def quarantine_sql_rows(
    engine: sa.Engine,
    source: SqlSource,
    target: SqlQuarantine,
    specs: Sequence[ExpectationSpec],
    unexpected_counts: Mapping[int, int],
) -> dict[str, Any]:
    """Insert the failing rows' keys and reasons into the quarantine table, inside the database.

    :param engine: the engine of the validated database.
    :param source: the validated table or query.
    :param target: the quarantine table, keys and batch id.
    :param specs: the expectations to quarantine for (row-level, supported on SQL).
    :param unexpected_counts: GX's unexpected count per expectation position, checked against each insert.
    :returns: ``{"table", "batch_id", "records", "records_by_expectation"}``.
    """
    check_sql_quarantine_supported(specs)
    target_schema, target_table = split_table_name(target.table, target.schema)
    columns = sorted({*target.key_columns, *(column for spec in specs for column in spec.columns)})
    quarantine_table = sa.table(
        target_table,
        *(sa.column(name) for name in (*target.key_columns, FAILED_EXPECTATION_COLUMN, BATCH_ID_COLUMN)),
        schema=target_schema,
    )
    qualified = f"{target_schema}.{target_table}" if target_schema else target_table
    check_identifier_length(
        engine.dialect,
        (target_schema, "quarantine schema"),
        (target_table, "quarantine table"),
        *((key, "quarantine key column") for key in target.key_columns),
    )
    records_by_expectation: dict[str, int] = {}
    with engine.begin() as connection:
        _ensure_quarantine_table(connection, source, target, target_schema, target_table, qualified)
        connection.execute(
            sa.delete(quarantine_table).where(quarantine_table.c[BATCH_ID_COLUMN] == target.batch_id)
        )
        for spec in specs:
            expected = unexpected_counts.get(spec.position, 0)
            if expected == 0:
                continue
            rows = source.selectable(columns, "mlprod_source")
            condition = SQL_QUARANTINE_CONDITIONS[spec.expectation_type](
                rows, spec.kwargs, lambda alias: source.selectable(columns, alias)
            )
            failing = sa.select(
                *(rows.c[key] for key in target.key_columns),
                sa.literal(spec.name, sa.String()),
                sa.literal(target.batch_id, sa.String()),
            ).where(condition)
            inserted = connection.execute(
                sa.insert(quarantine_table)
                .from_select(list(quarantine_table.c.keys()), failing)
                # INSERT ... SELECT keeps its rowcount only on request (psycopg 3 reports -1 otherwise)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            if inserted != expected:
                raise InputDataError(
                    f"quarantine table {qualified!r}: {spec.name} selected {inserted} rows of {source.label} "
                    f"but GX counted {expected}; nothing was quarantined"
                )
            records_by_expectation[spec.name] = inserted
    return {
        "table": qualified,
        "batch_id": target.batch_id,
        "records": sum(records_by_expectation.values()),
        "records_by_expectation": records_by_expectation,
    }


def _ensure_quarantine_table(
    connection: sa.Connection,
    source: SqlSource,
    target: SqlQuarantine,
    schema: str | None,
    table: str,
    qualified: str,
) -> None:
    inspector = sa.inspect(connection)
    if inspector.has_table(table, schema=schema):
        present = {column["name"] for column in inspector.get_columns(table, schema=schema)}
        missing = [
            c for c in (*target.key_columns, FAILED_EXPECTATION_COLUMN, BATCH_ID_COLUMN) if c not in present
        ]
        if missing:
            raise ConfigurationError(
                f"quarantine table {qualified!r} exists but lacks column(s) {', '.join(missing)}"
            )
        return
    rows = source.selectable(list(target.key_columns), "mlprod_source")
    shape = sa.select(
        *(rows.c[key] for key in target.key_columns),
        sa.cast(sa.null(), sa.String(400)).label(FAILED_EXPECTATION_COLUMN),
        sa.cast(sa.null(), sa.String(200)).label(BATCH_ID_COLUMN),
    ).where(sa.false())
    preparer = connection.dialect.identifier_preparer
    name = (
        preparer.quote(table)
        if schema is None
        else f"{preparer.quote_schema(schema)}.{preparer.quote(table)}"
    )
    compiled = shape.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    connection.execute(sa.text(f"CREATE TABLE {name} AS {compiled}"))

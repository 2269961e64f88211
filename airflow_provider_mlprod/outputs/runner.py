"""Evaluate output checks on a DataFrame (in chunks) or on a SQL selectable (in the database first).

SQL: every check with a SQL form on the connection's dialect is counted by ONE aggregate query
(``count(*)`` and one ``sum(CASE WHEN <passes> THEN 1 ELSE 0 END)`` per check); only counts and at
most ``sample_size`` failing values per check come back. Checks without a SQL form there stream just
their column in chunks of ``chunk_size`` rows and run in Python. Nothing is written: no temporary
table, no DDL, so the same code runs on a read-only transaction. ``OutputCheckResult.ran_in`` says
where each check ran (``"sql"`` or ``"python"``).

Before any check is evaluated, each check's column must be of a kind it applies to (text, numeric; the
labels' kind for ``allowed_labels``): the reflected type of a table's column, ``pg_typeof``/DuckDB
``typeof`` of a query's, a DataFrame's dtype (an ``object`` column is read value by value). A number
in a text column is text: ``numeric_range`` fails it, as the database would not compare it as a number.

Public API: :func:`check_frame`, :func:`check_sql`, :func:`source_selectable`,
:class:`OutputCheckSummary`, :class:`OutputCheckResult`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError
from airflow_provider_mlprod.frames import plain_arrow_columns
from airflow_provider_mlprod.outputs.checks import CRITICAL, NUMERIC, TEXT, CheckSpec, Dialect
from airflow_provider_mlprod.outputs.row_values import hoist_row_values
from airflow_provider_mlprod.sql.source import SqlSource

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CHUNK_SIZE = 50_000
SAMPLE_CHARS = 300


@dataclass(frozen=True)
class OutputCheckResult:
    """The verdict of one check: counts, pass rate against ``min_pass_rate``, where it ran, examples."""

    name: str
    check: str
    column: str
    severity: str
    min_pass_rate: float
    rows: int
    passed_rows: int
    ran_in: str
    failing_examples: tuple[str, ...] = ()

    @property
    def failed_rows(self) -> int:
        return self.rows - self.passed_rows

    @property
    def pass_rate(self) -> float | None:
        return self.passed_rows / self.rows if self.rows else None

    @property
    def success(self) -> bool:
        """Pass rate at least ``min_pass_rate``; no rows at all fails (nothing to vouch for)."""
        return self.rows > 0 and self.passed_rows >= self.min_pass_rate * self.rows - 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "check": self.check,
            "column": self.column,
            "severity": self.severity,
            "min_pass_rate": self.min_pass_rate,
            "rows": self.rows,
            "passed_rows": self.passed_rows,
            "failed_rows": self.failed_rows,
            "pass_rate": self.pass_rate,
            "ran_in": self.ran_in,
            "success": self.success,
            "failing_examples": list(self.failing_examples),
        }


@dataclass(frozen=True)
class OutputCheckSummary:
    """All checks of one batch of predictions."""

    dataset: str
    rows: int
    results: tuple[OutputCheckResult, ...]
    quarantine: dict[str, Any] | None = None
    report_location: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_critical(self) -> tuple[OutputCheckResult, ...]:
        return tuple(r for r in self.results if not r.success and r.severity == CRITICAL)

    @property
    def failed_warning(self) -> tuple[OutputCheckResult, ...]:
        return tuple(r for r in self.results if not r.success and r.severity != CRITICAL)

    @property
    def success(self) -> bool:
        return not self.failed_critical

    def with_report(self, location: str) -> OutputCheckSummary:
        return replace(self, report_location=location)

    def with_quarantine(self, quarantine: dict[str, Any] | None) -> OutputCheckSummary:
        return replace(self, quarantine=quarantine)

    def pass_rates(self) -> dict[str, float]:
        """``output_pass_rate.<check name>`` -> rate, for the metrics store (checks with rows only)."""
        return {f"output_pass_rate.{r.name}": r.pass_rate for r in self.results if r.pass_rate is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "success": self.success,
            "rows_checked": self.rows,
            "counts": {
                "evaluated": len(self.results),
                "passed": sum(r.success for r in self.results),
                "failed_critical": len(self.failed_critical),
                "failed_warning": len(self.failed_warning),
            },
            "checks": [r.to_dict() for r in self.results],
            "quarantine": self.quarantine,
            "report_location": self.report_location,
            **self.extra,
        }


def _example(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + "..."


def require_columns(checks: Sequence[CheckSpec], available: Iterable[str], where: str) -> None:
    """Fail naming every check whose column is not in ``available`` (before any row is read)."""
    columns = set(available)
    missing = [f"{check.name} -> {check.column!r}" for check in checks if check.column not in columns]
    if missing:
        raise InputDataError(
            f"{where}: column(s) not found for output check(s) {', '.join(missing)}; "
            f"available: {', '.join(sorted(map(str, columns)))}"
        )


_TEXT_TYPE_NAMES = ("char", "text", "string", "name", "citext", "clob")
_NUMERIC_TYPE_NAMES = ("int", "numeric", "decimal", "double", "real", "float")


def _kind_of_type_name(type_name: str) -> str:
    """``text``, ``numeric`` or ``other`` for a database type name (``character varying``, ``DOUBLE``)."""
    lowered = type_name.lower()
    if lowered.startswith("interval") or "[]" in lowered:
        return "other"
    if any(part in lowered for part in _TEXT_TYPE_NAMES):
        return TEXT
    if any(part in lowered for part in _NUMERIC_TYPE_NAMES):
        return NUMERIC
    return "other"


def _sql_column_types(connection: Any, source: sa.FromClause, columns: Sequence[str]) -> dict[str, str]:
    """Each column's type name: the reflected type, else the database's own (``pg_typeof``, DuckDB
    ``typeof`` on the first row, for a query's columns); a column of unknown type is left out."""
    types: dict[str, str] = {}
    untyped = []
    for name in columns:
        column_type = source.c[name].type
        if isinstance(column_type, sa.types.NullType):
            untyped.append(name)
        elif isinstance(column_type, sa.Boolean):
            types[name] = "boolean"
        elif isinstance(column_type, sa.CHAR) and connection.dialect.name == "postgresql":
            types[name] = "character"  # blank-padded: see checked_columns
        elif type(column_type).__name__ == "CITEXT":
            types[name] = "citext"  # case-insensitive: see checked_columns
        elif isinstance(column_type, sa.String):
            types[name] = "text"
        elif isinstance(column_type, (sa.Integer, sa.Numeric)):
            types[name] = "numeric"
        else:
            types[name] = column_type.__class__.__name__
    typeof = {"postgresql": "pg_typeof", "duckdb": "typeof"}.get(connection.dialect.name)
    if untyped and typeof is not None:
        names = [sa.cast(getattr(sa.func, typeof)(source.c[name]), sa.Text) for name in untyped]
        for first in connection.execute(sa.select(*names).select_from(source).limit(1)).all():
            types.update({name: str(value) for name, value in zip(untyped, first, strict=True)})
    return types


def checked_columns(
    source: sa.FromClause, column_types: Mapping[str, str], dialect: str
) -> dict[str, sa.ColumnElement[Any]]:
    """Each checked column of ``source`` as the checks read it.

    On PostgreSQL, a ``character(n)`` value is its text without the padding blanks (what PostgreSQL
    compares and what ``length()`` counts), and a ``citext`` value matches patterns
    case-insensitively: both are read as ``text``, so that the SQL forms see the text the Python
    forms see (which would receive the padded value, and match case-sensitively).
    """
    columns: dict[str, sa.ColumnElement[Any]] = {}
    for name, type_name in column_types.items():
        column = source.c[name]
        as_text = type_name.lower().split("(")[0].strip() in ("character", "bpchar", "citext")
        columns[name] = sa.cast(column, sa.Text) if dialect == "postgresql" and as_text else column
    return columns


def _frame_column_types(frame: pd.DataFrame, checks: Sequence[CheckSpec]) -> dict[str, str]:
    """The dtype of each checked column that holds one kind only (an ``object`` column is left out)."""
    from pandas.api import types

    kinds = {}
    for name in dict.fromkeys(check.column for check in checks):
        dtype = frame[name].dtype
        if types.is_bool_dtype(dtype):
            kinds[name] = f"boolean ({dtype})"
        elif types.is_numeric_dtype(dtype):
            kinds[name] = f"numeric ({dtype})"
        elif types.is_string_dtype(dtype) and not types.is_object_dtype(dtype):
            kinds[name] = f"text ({dtype})"
        elif not types.is_object_dtype(dtype):
            kinds[name] = str(dtype)
    return kinds


def require_column_kinds(checks: Sequence[CheckSpec], column_types: Mapping[str, str], where: str) -> None:
    """Fail naming every check on a column of a kind it does not apply to (a text check on a number, a
    number range on text, string labels on a number column...), before any check is evaluated: a
    database would otherwise cast or refuse the comparison, and count unlike the Python form."""
    wrong = []
    for check in checks:
        type_name = column_types.get(check.column)
        if type_name is None:
            continue
        kind = _kind_of_type_name(type_name)
        kinds = check.check.kinds
        if check.check.name == "allowed_labels":
            kinds = frozenset({TEXT if isinstance(check.params["labels"][0], str) else NUMERIC})
        if kind not in kinds:
            wanted = " or ".join(sorted(kinds))
            wrong.append(f"{check.name} needs a {wanted} column, {check.column!r} is {type_name}")
    if wrong:
        raise InputDataError(
            f"{where}: {'; '.join(wrong)} (convert or cast the column to check it as another kind)"
        )


class _Tally:
    """Running counts, examples and failing positions of each check over chunks."""

    def __init__(self, checks: Sequence[CheckSpec], sample_size: int, keep_positions: bool) -> None:
        self.checks = checks
        self.sample_size = sample_size
        self.passed = {check.name: 0 for check in checks}
        self.examples: dict[str, list[str]] = {check.name: [] for check in checks}
        self.positions: dict[str, list[Any]] | None = {c.name: [] for c in checks} if keep_positions else None
        self.rows = 0

    def add(self, chunk: pd.DataFrame, offset: int) -> None:
        import numpy as np

        for check in self.checks:
            values = chunk[check.column]
            mask = check.passes(values).to_numpy(dtype=bool)
            self.passed[check.name] += int(mask.sum())
            failing = np.flatnonzero(~mask)
            room = self.sample_size - len(self.examples[check.name])
            if room > 0 and failing.size:
                self.examples[check.name] += [_example(values.iloc[i]) for i in failing[:room]]
            if self.positions is not None:
                self.positions[check.name].append(failing + offset)
        self.rows += len(chunk)

    def results(self) -> list[OutputCheckResult]:
        return [
            OutputCheckResult(
                name=check.name,
                check=check.check.name,
                column=check.column,
                severity=check.severity,
                min_pass_rate=check.min_pass_rate,
                rows=self.rows,
                passed_rows=self.passed[check.name],
                ran_in="python",
                failing_examples=tuple(self.examples[check.name]),
            )
            for check in self.checks
        ]


def check_frame(
    frame: pd.DataFrame,
    checks: Sequence[CheckSpec],
    *,
    dataset: str = "DataFrame",
    sample_size: int = 5,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[OutputCheckSummary, dict[str, Sequence[int]]]:
    """Run ``checks`` on ``frame`` in chunks; return the summary and each check's failing row positions."""
    import numpy as np

    require_columns(checks, frame.columns, dataset)
    frame = plain_arrow_columns(frame, [check.column for check in checks])  # pyarrow string_view: text
    require_column_kinds(checks, _frame_column_types(frame, checks), dataset)
    tally = _Tally(checks, sample_size, keep_positions=True)
    for start in range(0, len(frame), chunk_size):
        tally.add(frame.iloc[start : start + chunk_size], start)
    positions = {
        name: (np.concatenate(parts) if parts else np.empty(0, dtype=np.int64))
        for name, parts in (tally.positions or {}).items()
    }
    return OutputCheckSummary(dataset, len(frame), tuple(tally.results())), positions


def source_selectable(
    connection: sa.Connection, source: SqlSource, name: str = "predictions"
) -> sa.FromClause:
    """The predictions of ``source`` as a FROM clause: a table with its reflected column types, or the
    query (its parameters bound) with the columns of an empty result (``WHERE 1 = 0``).

    :raises InputDataError: the table does not exist or the query fails, naming it and its connection.
    """
    if source.query is not None:
        return source.selectable(source.column_names(connection), name)
    source.check_names(connection.dialect)
    return source.run(
        connection,
        lambda: sa.Table(source.table, sa.MetaData(), schema=source.schema, autoload_with=connection),
    )


def check_sql(
    connection: sa.Connection,
    source: sa.FromClause,
    checks: Sequence[CheckSpec],
    *,
    dataset: str,
    sample_size: int = 5,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> OutputCheckSummary:
    """Run ``checks`` on the rows of ``source`` (a Table or subquery) through ``connection``; read only.

    :param connection: an open SQLAlchemy Connection (the caller owns its transaction).
    :param source: the predictions: a ``Table`` or a subquery (see :func:`source_selectable`).
    """
    require_columns(checks, source.c.keys(), dataset)
    columns = list(dict.fromkeys(check.column for check in checks))
    column_types = _sql_column_types(connection, source, columns)
    require_column_kinds(checks, column_types, dataset)
    dialect = Dialect.of(connection)
    read = {name: source.c[name] for name in columns} | checked_columns(source, column_types, dialect.name)
    in_sql = {check.name: check.sql_condition(read[check.column], dialect) for check in checks}
    sql_checks = [check for check in checks if in_sql[check.name] is not None]
    python_checks = [check for check in checks if in_sql[check.name] is None]
    built = [in_sql[check.name] for check in sql_checks]
    rows_from, hoisted = hoist_row_values(source, built, dialect.name)  # one lower() per row, not per search
    in_sql.update(zip((check.name for check in sql_checks), hoisted, strict=True))
    sums = [
        sa.func.coalesce(sa.func.sum(sa.case((in_sql[check.name], 1), else_=0)), 0).label(f"c{i}")
        for i, check in enumerate(sql_checks)
    ]
    counts = connection.execute(sa.select(sa.func.count().label("n"), *sums).select_from(rows_from)).one()
    rows = int(counts[0])
    results: dict[str, OutputCheckResult] = {}
    for i, check in enumerate(sql_checks):
        column = read[check.column]
        examples: tuple[str, ...] = ()
        if sample_size > 0 and int(counts[i + 1]) < rows:
            failing = sa.select(column).where(
                sa.not_(sa.func.coalesce(in_sql[check.name], sa.false(), type_=sa.Boolean))
            )
            fetched = connection.execute(failing.select_from(rows_from).limit(sample_size)).scalars()
            examples = tuple(_example(value) for value in fetched)
        results[check.name] = OutputCheckResult(
            check.name, check.check.name, check.column, check.severity, check.min_pass_rate,
            rows, int(counts[i + 1]), "sql", examples,
        )  # fmt: skip
    if python_checks:
        for result in _stream_python(connection, source, read, python_checks, sample_size, chunk_size):
            results[result.name] = result
    return OutputCheckSummary(dataset, rows, tuple(results[check.name] for check in checks))


def _stream_python(
    connection: sa.Connection,
    source: sa.FromClause,
    read: Mapping[str, sa.ColumnElement[Any]],
    checks: Sequence[CheckSpec],
    sample_size: int,
    chunk_size: int,
) -> list[OutputCheckResult]:
    import pandas as pd

    columns = list(dict.fromkeys(check.column for check in checks))
    query = sa.select(*[read[name] for name in columns]).select_from(source)
    tally = _Tally(checks, sample_size, keep_positions=False)
    result = connection.execute(query, execution_options={"stream_results": True, "yield_per": chunk_size})
    for partition in result.partitions(chunk_size):
        tally.add(pd.DataFrame(partition, columns=columns, dtype=object), tally.rows)
    return tally.results()


def failing_sql_rows(
    connection: sa.Connection,
    source: sa.FromClause,
    checks: Sequence[CheckSpec],
    *,
    key_columns: Sequence[str],
    reason_column: str = "failed_checks",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> pd.DataFrame:
    """The key columns of the rows of ``source`` failing any of ``checks``, with the checks they failed.

    Read only: SQL checks become 0/1 flags in the query (and, when all checks have a SQL form, the
    query returns failing rows only); Python checks stream their column in chunks. Reasons are the
    check names, ``"; "``-separated, in the order of ``checks``.
    """
    import numpy as np
    import pandas as pd

    from airflow_provider_mlprod.validation.identifiers import check_identifier

    for key in key_columns:
        check_identifier(key, "quarantine key column", InputDataError)
    require_columns(checks, source.c.keys(), "quarantine")
    columns = list(dict.fromkeys(check.column for check in checks))
    column_types = _sql_column_types(connection, source, columns)
    require_column_kinds(checks, column_types, "quarantine")
    missing = [key for key in key_columns if key not in source.c]
    if missing or not key_columns:
        raise InputDataError(f"quarantine key column(s) {missing or '(none)'} not found in the predictions")
    dialect = Dialect.of(connection)
    read = {name: source.c[name] for name in columns} | checked_columns(source, column_types, dialect.name)
    built = [check.sql_condition(read[check.column], dialect) for check in checks]
    rows_from, hoisted = hoist_row_values(source, built, dialect.name)
    conditions = {check.name: condition for check, condition in zip(checks, hoisted, strict=True)}
    flags = [
        sa.case((conditions[check.name], 0), else_=1).label(f"f{i}")
        for i, check in enumerate(checks)
        if conditions[check.name] is not None
    ]
    python_columns = list(dict.fromkeys(c.column for c in checks if conditions[c.name] is None))
    selected = [source.c[key].label(f"k{i}") for i, key in enumerate(key_columns)]
    selected += flags + [read[name].label(f"p{i}") for i, name in enumerate(python_columns)]
    query = sa.select(*selected).select_from(rows_from)
    if not python_columns:
        query = query.where(sa.or_(*[sa.not_(sa.func.coalesce(c, sa.false(), type_=sa.Boolean))
                                     for c in conditions.values()]))  # fmt: skip
    parts = []
    result = connection.execute(query, execution_options={"stream_results": True, "yield_per": chunk_size})
    for partition in result.partitions(chunk_size):
        chunk = pd.DataFrame(partition, columns=list(result.keys()), dtype=object)
        reasons = np.full(len(chunk), "", dtype=object)
        for i, check in enumerate(checks):
            if conditions[check.name] is not None:
                failed = chunk[f"f{i}"].astype(int).to_numpy() == 1
            else:
                values = chunk[f"p{python_columns.index(check.column)}"]
                failed = ~check.passes(values).to_numpy(dtype=bool)
            reasons = np.where(
                failed, np.where(reasons == "", check.name, reasons + "; " + check.name), reasons
            )
        keep = reasons != ""
        keys = chunk.loc[keep, [f"k{i}" for i in range(len(key_columns))]]
        keys.columns = list(key_columns)
        parts.append(keys.assign(**{reason_column: reasons[keep]}))
    if not parts:
        return pd.DataFrame(columns=[*key_columns, reason_column])
    return pd.concat(parts, ignore_index=True)

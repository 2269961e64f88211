"""Label-coverage probe: what share of a window's predictions has its ground-truth label yet?

Labels lag predictions (a churn label is known a month later, a fraud label after the chargeback), so
performance monitoring for a window waits until enough of its predictions are labelled. The probe
counts, inside the database, the predictions whose timestamp lies in ``[window_start, window_end)``
and those among them with at least one matching row in the labels table (``EXISTS`` on the key, so a
key labelled twice still counts once; with ``label_column`` the label must also be non-null).

Names are checked to be plain identifiers when the probe is built and looked up in the catalog before
the query runs. Timestamps follow :mod:`airflow_provider_mlprod.monitoring.freshness` (naive read as
UTC; ISO text on SQLite).

A window without predictions is never satisfied (the share is undefined): the wait goes on and its
message says the window is empty.

Public API: :class:`LabelCoverageProbe`, :class:`LabelCoverageObservation`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.monitoring.freshness import (
    TimestampColumn,
    parse_timestamp,
    reflected_column_types,
)
from airflow_provider_mlprod.sql.identifiers import check_identifier
from airflow_provider_mlprod.sql.session import read_only_snapshot
from airflow_provider_mlprod.sql.source import SqlSource


@dataclass(frozen=True)
class LabelCoverageObservation:
    """What one label-coverage probe saw and whether the wait is over.

    :param predictions_table: the predictions table probed.
    :param labels_table: the labels table probed.
    :param window_start: start of the window (inclusive, UTC).
    :param window_end: end of the window (exclusive, UTC).
    :param predictions: predictions in the window.
    :param labelled: those with a label.
    :param share: ``labelled / predictions``, or None when the window holds no prediction.
    :param min_label_share: the share required.
    :param satisfied: whether ``share >= min_label_share``.
    :param message: one line saying what was seen and whether it is enough.
    """

    predictions_table: str
    labels_table: str
    window_start: dt.datetime
    window_end: dt.datetime
    predictions: int
    labelled: int
    share: float | None
    min_label_share: float
    satisfied: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (timestamps as ISO 8601 text)."""
        return {
            "predictions_table": self.predictions_table,
            "labels_table": self.labels_table,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "predictions": self.predictions,
            "labelled": self.labelled,
            "share": self.share,
            "min_label_share": self.min_label_share,
            "satisfied": self.satisfied,
            "message": self.message,
        }


def _source(role: str, table: str | None, schema: str | None, source: SqlSource | None) -> SqlSource:
    """A side's source: ``source``, or ``table`` (a qualified table keeps its own schema; a plain one
    takes ``schema``)."""
    if source is not None:
        if not isinstance(source, SqlSource):
            raise ConfigurationError(f"{role}_source must be a SqlSource, got {type(source).__name__}")
        if table is not None:
            raise ConfigurationError(f"give {role}_table or {role}_source, not both")
        return source
    if not isinstance(table, str) or not table:
        raise ConfigurationError(f"{role} table {table!r} must be a non-empty name (or give {role}_source)")
    return SqlSource.from_arguments(table=table, schema=None if "." in table else schema)


@dataclass(frozen=True)
class LabelCoverageProbe:
    """Wait condition: at least ``min_label_share`` of the window's predictions have a label.

    Each side is a table (``predictions_table``, ``labels_table``, optionally ``schema.table``) or a
    ``SqlSource`` (``predictions_source``, ``labels_source``: a table, or a query with its bound
    parameters). Every run reads in one read-only snapshot.

    :param predictions_table: the predictions (optionally ``schema.table``).
    :param labels_table: the ground-truth labels (optionally ``schema.table``).
    :param key_column: the key joining a prediction to its label (e.g. ``prediction_id``).
    :param timestamp_column: the predictions' timestamp column defining the window.
    :param window_start: start of the window, inclusive (ISO text or datetime).
    :param window_end: end of the window, exclusive.
    :param min_label_share: the share to reach, in (0, 1].
    :param schema: schema of tables given without one.
    :param labels_key_column: the key's name in the labels table (default ``key_column``).
    :param label_column: when given, a label row counts only if this column is not null.
    :param predictions_source: the predictions as a ``SqlSource`` instead of ``predictions_table``.
    :param labels_source: the labels as a ``SqlSource`` instead of ``labels_table``.
    """

    predictions_table: str | None = None
    labels_table: str | None = None
    key_column: str | None = None
    timestamp_column: str | None = None
    window_start: dt.datetime | str | None = None
    window_end: dt.datetime | str | None = None
    min_label_share: float | None = None
    schema: str | None = None
    labels_key_column: str | None = None
    label_column: str | None = None
    predictions_source: SqlSource | None = None
    labels_source: SqlSource | None = None

    def __post_init__(self) -> None:
        predictions = _source("predictions", self.predictions_table, self.schema, self.predictions_source)
        labels = _source("labels", self.labels_table, self.schema, self.labels_source)
        object.__setattr__(self, "predictions_source", predictions)
        object.__setattr__(self, "labels_source", labels)
        check_identifier(self.key_column, "key column")
        check_identifier(self.timestamp_column, "timestamp column")
        if self.labels_key_column is None:
            object.__setattr__(self, "labels_key_column", self.key_column)
        check_identifier(self.labels_key_column, "labels key column")
        if self.label_column is not None:
            check_identifier(self.label_column, "label column")
        start = parse_timestamp(self.window_start, "window_start")
        end = parse_timestamp(self.window_end, "window_end")
        if not start < end:
            raise ConfigurationError(
                f"window_start {start.isoformat()} must be before window_end {end.isoformat()}"
            )
        object.__setattr__(self, "window_start", start)
        object.__setattr__(self, "window_end", end)
        share = self.min_label_share
        if (
            isinstance(share, bool)
            or not isinstance(share, (int, float))
            or math.isnan(share)
            or not 0 < share <= 1
        ):
            raise ConfigurationError(f"min_label_share must be a number in (0, 1], got {share!r}")

    @property
    def predictions_label(self) -> str:
        """The predictions as ``schema.table``, ``table`` or the query's label."""
        return _name(self.predictions_source)  # type: ignore[arg-type]

    @property
    def labels_label(self) -> str:
        """The labels as ``schema.table``, ``table`` or the query's label."""
        return _name(self.labels_source)  # type: ignore[arg-type]

    def run(self, engine: sa.Engine) -> LabelCoverageObservation:
        """Count the window's predictions and those with a label, in one read-only snapshot; decide.

        :raises InputDataError: a table, query or column is missing, or the key columns cannot be compared.
        :raises DatabaseUnavailableError: a transient failure (retryable).
        """
        predictions_source: SqlSource = self.predictions_source  # type: ignore[assignment]
        labels_source: SqlSource = self.labels_source  # type: ignore[assignment]
        key, labels_key = str(self.key_column), str(self.labels_key_column)
        label_columns = [labels_key] + ([self.label_column] if self.label_column else [])
        with read_only_snapshot(engine) as connection:
            predictions = _rows(connection, predictions_source, [key, str(self.timestamp_column)], "p")
            labels = _rows(connection, labels_source, label_columns, "l")
            if predictions_source.query is None:
                table = sa.table(
                    str(predictions_source.table),
                    sa.column(str(self.timestamp_column)),
                    schema=predictions_source.schema,
                )
                timestamp = predictions_source.run(
                    connection,
                    lambda: TimestampColumn(
                        connection,
                        table,
                        str(self.timestamp_column),
                        "timestamp column",
                        expression=predictions.c[str(self.timestamp_column)],
                    ),
                )
            else:
                timestamp = TimestampColumn.of_query(
                    connection,
                    predictions_source,
                    predictions,
                    str(self.timestamp_column),
                    "timestamp column",
                )
            has_label = sa.exists().where(labels.c[labels_key] == predictions.c[key])
            if self.label_column:
                has_label = has_label.where(labels.c[self.label_column].is_not(None))
            statement = (
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((has_label, 1), else_=0)), 0),
                )
                .select_from(predictions)
                .where(timestamp.at_or_after(self.window_start), timestamp.before(self.window_end))  # type: ignore[arg-type]
            )

            def counts() -> Any:
                try:
                    return connection.execute(statement).one()
                except sa.exc.ProgrammingError as exc:
                    raise InputDataError(
                        f"predictions {self.predictions_label!r} and labels {self.labels_label!r} cannot "
                        f"be joined on {key!r} = {labels_key!r}: {_first_line(exc.orig)}"
                    ) from None

            total, labelled = predictions_source.run(connection, counts)
        return self._observe(int(total), int(labelled))

    def _observe(self, total: int, labelled: int) -> LabelCoverageObservation:
        share = labelled / total if total else None
        satisfied = share is not None and share >= self.min_label_share
        window = f"[{self.window_start.isoformat()}, {self.window_end.isoformat()})"
        if share is None:
            seen = f"no predictions in {self.predictions_label!r} for window {window}"
        else:
            seen = (
                f"{labelled} of {total} predictions in {self.predictions_label!r} for window {window} "
                f"have a label in {self.labels_label!r} (share {share:.4f})"
            )
        verdict = "satisfied" if satisfied else "not yet satisfied"
        return LabelCoverageObservation(
            predictions_table=self.predictions_label,
            labels_table=self.labels_label,
            window_start=self.window_start,  # type: ignore[arg-type]
            window_end=self.window_end,  # type: ignore[arg-type]
            predictions=total,
            labelled=labelled,
            share=share,
            min_label_share=float(self.min_label_share),
            satisfied=satisfied,
            message=f"{seen} ({verdict}: wanted share >= {self.min_label_share})",
        )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _name(source: SqlSource) -> str:
    return source.qualified_table if source.table is not None else source.label


def _rows(connection: sa.Connection, source: SqlSource, needed: list[str], alias: str) -> sa.FromClause:
    """``source`` as a FROM clause under ``alias``, after checking it has the ``needed`` columns."""
    if source.query is None:
        source.check_names(connection.dialect)
        present = list(reflected_column_types(connection, source.schema, str(source.table)))
        where = f"table {source.qualified_table!r}"
    else:
        present = source.column_names(connection)
        where = source.label
    for name in needed:
        if name not in present:
            raise InputDataError(f"{where} has no column {name!r}")
    return source.selectable(present, alias)

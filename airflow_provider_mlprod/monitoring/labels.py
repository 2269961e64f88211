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
    qualified_name,
    reflected_column_types,
)
from airflow_provider_mlprod.sql.identifiers import check_identifier, split_table_name


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


def _split(table: str, schema: str | None) -> tuple[str | None, str]:
    """A qualified table keeps its own schema; a plain one takes ``schema``."""
    if isinstance(table, str) and "." in table:
        return split_table_name(table, None)
    return split_table_name(table, schema)


@dataclass(frozen=True)
class LabelCoverageProbe:
    """Wait condition: at least ``min_label_share`` of the window's predictions have a label.

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
    """

    predictions_table: str
    labels_table: str
    key_column: str
    timestamp_column: str
    window_start: dt.datetime | str
    window_end: dt.datetime | str
    min_label_share: float
    schema: str | None = None
    labels_key_column: str | None = None
    label_column: str | None = None

    def __post_init__(self) -> None:
        predictions_schema, predictions_table = _split(self.predictions_table, self.schema)
        labels_schema, labels_table = _split(self.labels_table, self.schema)
        object.__setattr__(self, "_predictions", (predictions_schema, predictions_table))
        object.__setattr__(self, "_labels", (labels_schema, labels_table))
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
        """The predictions table as ``schema.table`` or ``table``."""
        return qualified_name(*self._predictions)  # type: ignore[attr-defined]

    @property
    def labels_label(self) -> str:
        """The labels table as ``schema.table`` or ``table``."""
        return qualified_name(*self._labels)  # type: ignore[attr-defined]

    def run(self, engine: sa.Engine) -> LabelCoverageObservation:
        """Count the window's predictions and those with a label, in the database; decide.

        :raises InputDataError: a table or column is missing, or the key columns cannot be compared.
        """
        predictions_schema, predictions_name = self._predictions  # type: ignore[attr-defined]
        labels_schema, labels_name = self._labels  # type: ignore[attr-defined]
        predictions = sa.table(
            predictions_name,
            sa.column(self.key_column),
            sa.column(self.timestamp_column),
            schema=predictions_schema,
        )
        label_columns = [self.labels_key_column] + ([self.label_column] if self.label_column else [])
        labels = sa.table(labels_name, *(sa.column(name) for name in label_columns), schema=labels_schema)
        with engine.connect() as connection:
            timestamp = TimestampColumn(connection, predictions, self.timestamp_column, "timestamp column")
            self._check_columns(connection, predictions_schema, predictions_name, [self.key_column])
            self._check_columns(connection, labels_schema, labels_name, label_columns)
            predictions_alias, labels_alias = predictions.alias("p"), labels.alias("l")
            has_label = sa.exists().where(
                labels_alias.c[self.labels_key_column] == predictions_alias.c[self.key_column]
            )
            if self.label_column:
                has_label = has_label.where(labels_alias.c[self.label_column].is_not(None))
            in_window = _rebind(timestamp, predictions_alias)
            statement = (
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((has_label, 1), else_=0)), 0),
                )
                .select_from(predictions_alias)
                .where(in_window.at_or_after(self.window_start), in_window.before(self.window_end))
            )
            try:
                total, labelled = connection.execute(statement).one()
            except sa.exc.ProgrammingError as exc:
                raise InputDataError(
                    f"predictions {self.predictions_label!r} and labels {self.labels_label!r} cannot be "
                    f"joined on {self.key_column!r} = {self.labels_key_column!r}: {_first_line(exc.orig)}"
                ) from None
        return self._observe(int(total), int(labelled))

    def _check_columns(
        self, connection: sa.Connection, schema: str | None, table: str, columns: list[str]
    ) -> None:
        present = reflected_column_types(connection, schema, table)
        for name in columns:
            if name not in present:
                raise InputDataError(f"table {qualified_name(schema, table)!r} has no column {name!r}")

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


def _rebind(column: TimestampColumn, alias: sa.FromClause) -> TimestampColumn:
    """The same timestamp column, read through ``alias`` instead of the bare table."""
    column.expression = alias.c[column.expression.name]
    return column


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0][:300] if text else type(exc).__name__

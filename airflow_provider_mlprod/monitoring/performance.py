"""A model's performance over a time window: predictions joined with the labels that arrived for them.

The predictions (a table, or a ``SELECT`` used as a subquery) are filtered to the window
``[start, end)`` on their timestamp column and LEFT JOINed with a labels table on a key column.
Predictions without a label (labels lag predictions) are counted but excluded from every metric.

Where each metric is computed:

- **Classification** (binary, one ``positive_label``): accuracy, precision, recall and F1 come from
  the confusion matrix, counted inside the database in one query (``SUM(CASE ...)``); only four
  counts leave it. The predicted class is ``prediction_column = positive_label`` or, without a
  prediction column, ``score_column >= decision_threshold``. ROC AUC and log loss are computed on
  the window's fetched ``(score, is_positive)`` pairs, and only those two columns are fetched:
  ROC AUC needs the ranking of every score against every other (a rank statistic, not an additive
  aggregate) and log loss sums a per-row logarithm of a clipped probability, which portable SQL
  (SQLite has no ``LN`` by default) cannot compute.
- **Regression**: MAE, RMSE and R2 come from sums computed inside the database: the sums of
  absolute errors, squared errors, labels and squared labels, plus the labels' min and max.
  R2's total sum of squares is ``sum(y^2) - sum(y)^2 / n``, exact in exact arithmetic; in floating
  point it loses about ``log10(mean^2 / variance)`` digits, harmless unless the labels' mean is
  many orders of magnitude above their spread.

ROC AUC is the Mann-Whitney statistic: the probability that a random positive scores above a random
negative, ties counting one half, computed from average ranks. Log loss clips probabilities to
``[eps, 1 - eps]`` with ``eps`` the machine epsilon of float64 (about 2.2e-16), as scikit-learn
does, so a confident wrong prediction costs about 36 nats instead of infinity.

Fail closed:

- a window with no labelled prediction raises ``InputDataError`` naming the window and the source;
- a labelled prediction with a null prediction or score, a NaN score, more than two label values,
  or labels that match one prediction more than once raise ``InputDataError``;
- a metric that is undefined on the window (precision without positive predictions, recall without
  positive labels, ROC AUC with one class, log loss on scores outside ``[0, 1]`` or without a score
  column) is ``None`` in ``metrics`` with its reason in ``undefined``; a gate on it then fails.

Table, schema and column names are checked to be plain identifiers before any SQL runs; a query is
the user's own SQL.

Timestamps: the window is filtered exactly as the freshness and label-coverage probes filter theirs
(:class:`~airflow_provider_mlprod.monitoring.freshness.TimestampColumn`), so a sensor and the monitor
count the same predictions. On SQLite the timestamp column must hold ISO 8601 text
(``2026-01-01 10:00:00``, with or without ``T``, fractions and a UTC offset) and is compared through
``julianday()``, so the text format does not decide the window. Elsewhere the column's type decides the
bounds' type: a ``timestamp without time zone`` holds UTC and is compared with naive UTC bounds (the
session's time zone plays no part), a ``timestamp with time zone`` with instants. A table's column type
comes from the catalog; a query's from its result description on PostgreSQL (elsewhere it is taken
as ``timestamp with time zone``). Aware bounds are converted to UTC; naive bounds are read as UTC.

Public API: :class:`TimeWindow`, :class:`PerformanceSource`, :class:`PerformanceResult`,
:func:`compute_performance`, :func:`roc_auc`, :func:`log_loss`, :func:`parse_timestamp`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.monitoring.freshness import TimestampColumn
from airflow_provider_mlprod.sql.errors import is_final_database_error
from airflow_provider_mlprod.sql.identifiers import check_identifier
from airflow_provider_mlprod.sql.session import read_only_snapshot
from airflow_provider_mlprod.sql.source import SqlSource
from airflow_provider_mlprod.timestamps import parse_timestamp as parse_utc_timestamp

if TYPE_CHECKING:
    import numpy as np

CLASSIFICATION = "classification"
REGRESSION = "regression"
MODEL_TYPES: tuple[str, ...] = (CLASSIFICATION, REGRESSION)
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS: tuple[str, ...] = ("mae", "rmse", "r2")
DEFAULT_DECISION_THRESHOLD = 0.5
LOG_LOSS_EPS = sys.float_info.epsilon  # the float64 machine epsilon, == np.finfo(np.float64).eps
"""Probabilities are clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`` (scikit-learn's rule for float64)."""


def parse_timestamp(value: Any, role: str) -> datetime:
    """A window bound as a datetime: aware values in UTC, naive values kept naive (see ``timestamps``)."""
    return parse_utc_timestamp(value, role, naive="keep")


@dataclass(frozen=True)
class TimeWindow:
    """The half-open window ``[start, end)`` of prediction timestamps."""

    start: datetime
    end: datetime

    @classmethod
    def from_bounds(cls, start: Any, end: Any) -> TimeWindow:
        """Build a window from two bounds (datetimes or ISO text); start must be before end."""
        start_at = parse_timestamp(start, "window start")
        end_at = parse_timestamp(end, "window end")
        if (start_at.tzinfo is None) != (end_at.tzinfo is None):
            raise ConfigurationError(
                f"window [{start_at.isoformat()}, {end_at.isoformat()}): both bounds must carry a time "
                "zone or neither"
            )
        if start_at >= end_at:
            raise ConfigurationError(
                f"window [{start_at.isoformat()}, {end_at.isoformat()}) is empty: start must be before end"
            )
        return cls(start_at, end_at)

    @property
    def label(self) -> str:
        """The window as an ISO 8601 interval, ``start/end``."""
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    def to_dict(self) -> dict[str, str]:
        """JSON-safe form."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class PerformanceSource:
    """Where the predictions and labels are and what each column holds; build it with ``from_arguments``."""

    model_type: str
    predictions: SqlSource
    labels: SqlSource
    key_column: str
    labels_key_column: str
    timestamp_column: str
    label_column: str
    prediction_column: str | None = None
    score_column: str | None = None
    positive_label: Any = 1
    decision_threshold: float = DEFAULT_DECISION_THRESHOLD

    @classmethod
    def from_arguments(
        cls,
        *,
        model_type: str,
        labels_table: str,
        key_column: str,
        timestamp_column: str,
        label_column: str = "label",
        predictions_table: str | None = None,
        predictions_schema: str | None = None,
        predictions_query: str | None = None,
        predictions_parameters: Mapping[str, Any] | None = None,
        labels_schema: str | None = None,
        labels_key_column: str | None = None,
        prediction_column: str | None = None,
        score_column: str | None = None,
        positive_label: Any = 1,
        decision_threshold: float = DEFAULT_DECISION_THRESHOLD,
    ) -> PerformanceSource:
        """Check every argument (names before any SQL) and build the source.

        :param model_type: ``classification`` (binary) or ``regression``.
        :param labels_table: the labels table, optionally ``schema.table``.
        :param key_column: the column joining a prediction to its label.
        :param timestamp_column: the predictions' timestamp column the window filters on.
        :param label_column: the labels table's column holding the true value.
        :param predictions_table: the predictions table (or give ``predictions_query``).
        :param predictions_query: a ``SELECT`` returning the predictions, used as a subquery.
        :param predictions_parameters: the query's bind parameters (``:name`` in the SQL).
        :param labels_key_column: the key's name in the labels table (default ``key_column``).
        :param prediction_column: the predicted class (classification) or value (regression).
        :param score_column: classification only: the positive class's probability or score.
        :param positive_label: classification only: the label value of the positive class.
        :param decision_threshold: classification without ``prediction_column``: a score at or above
            it predicts the positive class.
        :raises ConfigurationError: a name is not a plain identifier or the arguments do not fit.
        """
        if model_type not in MODEL_TYPES:
            raise ConfigurationError(
                f"model type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}"
            )
        if (predictions_table is None) == (predictions_query is None):
            raise ConfigurationError("give exactly one of predictions_table and predictions_query")
        predictions = SqlSource.from_arguments(
            table=predictions_table,
            schema=predictions_schema,
            query=predictions_query,
            parameters=predictions_parameters,
            role="predictions_query",
        )
        if not isinstance(labels_table, str) or not labels_table:
            raise ConfigurationError(f"labels table {labels_table!r} must be a non-empty name")
        labels = SqlSource.from_arguments(table=labels_table, schema=labels_schema, query=None)
        check_identifier(key_column, "key column")
        check_identifier(labels_key_column or key_column, "labels key column")
        check_identifier(timestamp_column, "timestamp column")
        check_identifier(label_column, "label column")
        if prediction_column is not None:
            check_identifier(prediction_column, "prediction column")
        if score_column is not None:
            check_identifier(score_column, "score column")
        if model_type == REGRESSION:
            if prediction_column is None:
                raise ConfigurationError("regression needs prediction_column (the predicted value)")
            if score_column is not None:
                raise ConfigurationError(
                    f"score column {score_column!r} applies to classification; regression uses "
                    "prediction_column"
                )
        else:
            if prediction_column is None and score_column is None:
                raise ConfigurationError(
                    "classification needs prediction_column (the predicted class), score_column "
                    "(the positive class's probability), or both"
                )
            if isinstance(positive_label, float) or not isinstance(positive_label, (str, int)):
                raise ConfigurationError(
                    f"positive_label must be a string or an integer label value, got {positive_label!r}"
                )
            if (
                isinstance(decision_threshold, bool)
                or not isinstance(decision_threshold, (int, float))
                or not math.isfinite(decision_threshold)
            ):
                raise ConfigurationError(
                    f"decision_threshold must be a finite number, got {decision_threshold!r}"
                )
        return cls(
            model_type=model_type,
            predictions=predictions,
            labels=labels,
            key_column=key_column,
            labels_key_column=labels_key_column or key_column,
            timestamp_column=timestamp_column,
            label_column=label_column,
            prediction_column=prediction_column,
            score_column=score_column,
            positive_label=positive_label,
            decision_threshold=float(decision_threshold),
        )

    @property
    def label(self) -> str:
        """The sources as shown in messages: predictions and labels."""
        return f"predictions {self.predictions.label} with labels {self.labels.label}"


@dataclass(frozen=True)
class PerformanceResult:
    """A model's metrics on one window, with the row counts they rest on.

    :param metrics: every metric of the model type; ``None`` when undefined on this window.
    :param undefined: metric -> why it is undefined.
    :param prediction_rows: predictions in the window.
    :param labelled_rows: of which have a label (the rows the metrics are computed on).
    """

    model_type: str
    window: TimeWindow
    source: str
    prediction_rows: int
    labelled_rows: int
    metrics: dict[str, float | None]
    undefined: dict[str, str] = field(default_factory=dict)

    @property
    def label_coverage(self) -> float:
        """Share of the window's predictions that have a label."""
        return self.labelled_rows / self.prediction_rows if self.prediction_rows else 0.0

    def defined_metrics(self) -> dict[str, float]:
        """The metrics that have a value (what a metrics store can record)."""
        return {name: value for name, value in self.metrics.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "model_type": self.model_type,
            "window": self.window.to_dict(),
            "source": self.source,
            "counts": {
                "predictions": self.prediction_rows,
                "labelled": self.labelled_rows,
                "label_coverage": self.label_coverage,
            },
            "metrics": dict(self.metrics),
            "undefined": dict(self.undefined),
        }


def compute_performance(
    engine: sa.Engine, source: PerformanceSource, window: TimeWindow
) -> PerformanceResult:
    """Compute the model's metrics on the labelled predictions of ``window`` (see the module docs).

    :param engine: an Engine on the database holding both the predictions and the labels.
    :param source: the tables, columns and model type.
    :param window: the prediction timestamps ``[start, end)`` to evaluate.
    :raises InputDataError: no labelled prediction in the window, a query fails, or the data is not
        shaped as the model type needs (see the module docs).
    """
    with read_only_snapshot(engine) as connection:  # every query sees one snapshot; connect failures retry
        joined = _JoinedWindow(source, window, connection)
        if source.model_type == CLASSIFICATION:
            return _classification(connection, joined)
        return _regression(connection, joined)


def roc_auc(scores: Sequence[float] | np.ndarray, is_positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic, ties counting one half.

    ``AUC = (sum of the positives' average ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``.

    :raises InputDataError: the labels hold one class only (AUC is undefined).
    """
    import numpy as np

    score_values = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(is_positive, dtype=bool)
    n_positive = int(positive.sum())
    n_negative = int(positive.size - n_positive)
    if n_positive == 0 or n_negative == 0:
        raise InputDataError(
            f"ROC AUC is undefined: the labels hold one class only ({n_positive} positive, "
            f"{n_negative} negative)"
        )
    _, inverse, counts = np.unique(score_values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_ranks = (ends - counts + 1 + ends) / 2.0
    rank_sum = float(average_ranks[inverse][positive].sum())
    return (rank_sum - n_positive * (n_positive + 1) / 2.0) / (n_positive * n_negative)


def log_loss(probabilities: Sequence[float] | np.ndarray, is_positive: Sequence[bool] | np.ndarray) -> float:
    """Mean binary cross-entropy (natural log) with probabilities clipped to ``[eps, 1 - eps]``.

    As in scikit-learn, each side is clipped: a positive costs ``-ln(clip(p))``, a negative
    ``-ln(clip(1 - p))``, with ``eps`` the float64 machine epsilon (:data:`LOG_LOSS_EPS`).

    :raises InputDataError: a probability outside ``[0, 1]`` or no row at all.
    """
    import numpy as np

    probability = np.asarray(probabilities, dtype=np.float64)
    positive = np.asarray(is_positive, dtype=bool)
    if probability.size == 0:
        raise InputDataError("log loss is undefined on no rows")
    low, high = float(probability.min()), float(probability.max())
    if low < 0.0 or high > 1.0:
        raise InputDataError(
            f"log loss needs probabilities in [0, 1]; the scores range over [{low:g}, {high:g}]"
        )
    chosen = np.where(positive, probability, 1.0 - probability)
    return float(-np.mean(np.log(np.clip(chosen, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS))))


# -- SQL -----------------------------------------------------------------------------------------


class _JoinedWindow:
    """The window's predictions LEFT JOINed with their labels, as SQLAlchemy expressions."""

    def __init__(self, source: PerformanceSource, window: TimeWindow, connection: sa.Connection) -> None:
        self.source = source
        self.window = window
        columns = [source.key_column, source.timestamp_column]
        columns += [c for c in (source.prediction_column, source.score_column) if c and c not in columns]
        predictions = source.predictions.selectable(columns, "mlprod_predictions")
        labels = source.labels.selectable([source.labels_key_column, source.label_column], "mlprod_labels")
        picked = [predictions.c[source.key_column].label("row_key")]
        if source.prediction_column:
            picked.append(predictions.c[source.prediction_column].label("predicted_value"))
        if source.score_column:
            picked.append(predictions.c[source.score_column].label("score_value"))
        timestamp = _timestamp_column(connection, source, predictions)
        self.predictions = (
            sa.select(*picked)
            .where(timestamp.at_or_after(window.start), timestamp.before(window.end))
            .subquery("mlprod_window")
        )
        self.joined = self.predictions.outerjoin(
            labels, self.predictions.c.row_key == labels.c[source.labels_key_column]
        )
        self.label = labels.c[source.label_column]
        self.has_label = self.label.is_not(None)

    @property
    def predicted(self) -> sa.ColumnElement:
        return self.predictions.c.predicted_value

    @property
    def score(self) -> sa.ColumnElement:
        return self.predictions.c.score_value

    def prediction_count(self) -> sa.ScalarSelect:
        # correlate(None): counted on its own, not tied to the joined FROM it is selected beside.
        return sa.select(sa.func.count()).select_from(self.predictions).correlate(None).scalar_subquery()

    def run(self, connection: sa.Connection, statement: sa.Executable) -> Any:
        try:
            return connection.execute(statement)
        except sa.exc.DBAPIError as exc:
            if not is_final_database_error(exc):
                raise  # a lost connection or a timeout: a retry may succeed
            raise InputDataError(
                f"{self.source.label} in window {self.window.label}: query failed: {_first_line(exc.orig)}"
            ) from None

    def check_counts(self, prediction_rows: int, joined_rows: int, labelled_rows: int) -> None:
        """Fail closed on duplicate labels and on a window without labelled predictions."""
        if joined_rows > prediction_rows:
            raise InputDataError(
                f"labels {self.source.labels.label} match some predictions more than once "
                f"({joined_rows} joined rows for {prediction_rows} predictions in window "
                f"{self.window.label}); key column {self.source.labels_key_column!r} must be unique"
            )
        if labelled_rows == 0:
            detail = (
                "no predictions" if prediction_rows == 0 else f"{prediction_rows} predictions, none labelled"
            )
            raise InputDataError(
                f"window {self.window.label} has no labelled predictions ({detail}) in {self.source.label}; "
                "the metrics cannot be computed"
            )

    def check_no_nulls(self, role: str, column: str | None, null_rows: int) -> None:
        if null_rows:
            raise InputDataError(
                f"{role} column {column!r} is null in {null_rows} labelled prediction(s) of window "
                f"{self.window.label} in {self.source.label}"
            )


def _timestamp_column(
    connection: sa.Connection, source: PerformanceSource, predictions: sa.FromClause
) -> TimestampColumn:
    """The predictions' timestamp column, typed as the freshness and label probes type it."""
    expression = predictions.c[source.timestamp_column]
    if source.predictions.query is None:
        table = sa.table(
            str(source.predictions.table),
            sa.column(source.timestamp_column),
            schema=source.predictions.schema,
        )
        return TimestampColumn(
            connection, table, source.timestamp_column, "timestamp column", expression=expression
        )
    return TimestampColumn.of_query(
        connection, source.predictions, predictions, source.timestamp_column, "timestamp column"
    )


def _count_where(condition: sa.ColumnElement) -> sa.ColumnElement:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _classification(connection: sa.Connection, window: _JoinedWindow) -> PerformanceResult:
    source = window.source
    actual_positive = window.label == sa.literal(source.positive_label)
    if source.prediction_column:
        predicted_positive = window.predicted == sa.literal(source.positive_label)
        predicted_null = window.predicted.is_(None)
        predicted_values = sa.func.count(sa.distinct(sa.case((window.has_label, window.predicted))))
    else:
        predicted_positive = window.score >= sa.literal(source.decision_threshold, sa.Double())
        predicted_null = window.score.is_(None)
        predicted_values = sa.literal(0)
    labelled = window.has_label
    statement = sa.select(
        window.prediction_count().label("prediction_rows"),
        sa.func.count().label("joined_rows"),
        sa.func.count(window.label).label("labelled_rows"),
        sa.func.count(sa.distinct(window.label)).label("label_values"),
        predicted_values.label("predicted_values"),
        _count_where(sa.and_(labelled, predicted_null)).label("null_predictions"),
        _count_where(sa.and_(labelled, actual_positive, predicted_positive)).label("tp"),
        _count_where(sa.and_(labelled, sa.not_(actual_positive), predicted_positive)).label("fp"),
        _count_where(sa.and_(labelled, actual_positive, sa.not_(predicted_positive))).label("fn"),
        _count_where(sa.and_(labelled, sa.not_(actual_positive), sa.not_(predicted_positive))).label("tn"),
    ).select_from(window.joined)
    row = window.run(connection, statement).mappings().one()
    counts = {name: int(value or 0) for name, value in row.items()}
    window.check_counts(counts["prediction_rows"], counts["joined_rows"], counts["labelled_rows"])
    null_column = (
        ("prediction", source.prediction_column)
        if source.prediction_column
        else ("score", source.score_column)
    )
    window.check_no_nulls(*null_column, counts["null_predictions"])
    for what, distinct in (
        ("labels", counts["label_values"]),
        ("predicted classes", counts["predicted_values"]),
    ):
        if distinct > 2:
            raise InputDataError(
                f"binary classification: the {what} of window {window.window.label} hold {distinct} distinct "
                f"values in {source.label}; expected at most two (positive label {source.positive_label!r})"
            )
    metrics, undefined = _confusion_metrics(counts["tp"], counts["fp"], counts["fn"], counts["tn"])
    score_metrics, score_undefined = _score_metrics(connection, window, actual_positive)
    metrics.update(score_metrics)
    undefined.update(score_undefined)
    return PerformanceResult(
        model_type=CLASSIFICATION,
        window=window.window,
        source=source.label,
        prediction_rows=counts["prediction_rows"],
        labelled_rows=counts["labelled_rows"],
        metrics=metrics,
        undefined=undefined,
    )


def _confusion_metrics(tp: int, fp: int, fn: int, tn: int) -> tuple[dict[str, float | None], dict[str, str]]:
    undefined: dict[str, str] = {}

    def ratio(name: str, numerator: int, denominator: int, reason: str) -> float | None:
        if denominator == 0:
            undefined[name] = reason
            return None
        return numerator / denominator

    metrics = {
        "accuracy": ratio("accuracy", tp + tn, tp + fp + fn + tn, "no labelled predictions"),
        "precision": ratio(
            "precision", tp, tp + fp, "no positive predictions in the window (true + false positives = 0)"
        ),
        "recall": ratio(
            "recall", tp, tp + fn, "no positive labels in the window (true positives + false negatives = 0)"
        ),
        "f1": ratio(
            "f1", 2 * tp, 2 * tp + fp + fn, "no positive predictions and no positive labels in the window"
        ),
    }
    return metrics, undefined


def _score_metrics(
    connection: sa.Connection, window: _JoinedWindow, actual_positive: sa.ColumnElement
) -> tuple[dict[str, float | None], dict[str, str]]:
    import numpy as np

    if not window.source.score_column:
        reason = "no score_column given: the metric needs the positive class's probability"
        return {"roc_auc": None, "log_loss": None}, {"roc_auc": reason, "log_loss": reason}
    statement = (
        sa.select(window.score, sa.case((actual_positive, 1), else_=0))
        .select_from(window.joined)
        .where(window.has_label)
    )
    rows = window.run(connection, statement).all()
    try:
        scores = np.array([row[0] for row in rows], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputDataError(
            f"score column {window.source.score_column!r} holds non-numeric values in window "
            f"{window.window.label} of {window.source.label}"
        ) from None
    is_positive = np.array([row[1] for row in rows], dtype=bool)
    if np.isnan(scores).any():
        raise InputDataError(
            f"score column {window.source.score_column!r} holds {int(np.isnan(scores).sum())} NaN value(s) "
            f"in window {window.window.label} of {window.source.label}"
        )
    metrics: dict[str, float | None] = {}
    undefined: dict[str, str] = {}
    for name, function in (("roc_auc", roc_auc), ("log_loss", log_loss)):
        try:
            metrics[name] = function(scores, is_positive)
        except InputDataError as exc:
            metrics[name] = None
            undefined[name] = str(exc)
    return metrics, undefined


def _regression(connection: sa.Connection, window: _JoinedWindow) -> PerformanceResult:
    source = window.source
    actual = sa.cast(window.label, sa.Double())
    predicted = sa.cast(window.predicted, sa.Double())
    error = actual - predicted
    statement = sa.select(
        window.prediction_count().label("prediction_rows"),
        sa.func.count().label("joined_rows"),
        sa.func.count(window.label).label("labelled_rows"),
        _count_where(sa.and_(window.has_label, window.predicted.is_(None))).label("null_predictions"),
        sa.func.sum(sa.func.abs(error)).label("sum_absolute_error"),
        sa.func.sum(error * error).label("sum_squared_error"),
        sa.func.sum(actual).label("sum_label"),
        sa.func.sum(actual * actual).label("sum_squared_label"),
        sa.func.min(actual).label("min_label"),
        sa.func.max(actual).label("max_label"),
    ).select_from(window.joined)
    row = window.run(connection, statement).mappings().one()
    prediction_rows, labelled_rows = int(row["prediction_rows"] or 0), int(row["labelled_rows"] or 0)
    window.check_counts(prediction_rows, int(row["joined_rows"] or 0), labelled_rows)
    window.check_no_nulls("prediction", source.prediction_column, int(row["null_predictions"] or 0))
    sums = {
        name: float(row[name])
        for name in ("sum_absolute_error", "sum_squared_error", "sum_label", "sum_squared_label")
    }
    non_finite = [name for name, value in sums.items() if not math.isfinite(value)]
    if non_finite:
        raise InputDataError(
            f"label column {source.label_column!r} or prediction column {source.prediction_column!r} holds "
            f"NaN or infinite values in window {window.window.label} of {source.label}"
        )
    n = labelled_rows
    metrics: dict[str, float | None] = {
        "mae": sums["sum_absolute_error"] / n,
        "rmse": math.sqrt(sums["sum_squared_error"] / n),
    }
    undefined: dict[str, str] = {}
    if float(row["min_label"]) == float(row["max_label"]):
        metrics["r2"] = None
        undefined["r2"] = (
            f"the labels are constant ({float(row['min_label']):g}) in the window: "
            "R2 divides by their variance"
        )
    else:
        total_sum_of_squares = sums["sum_squared_label"] - sums["sum_label"] ** 2 / n
        metrics["r2"] = 1.0 - sums["sum_squared_error"] / total_sum_of_squares
    return PerformanceResult(
        model_type=REGRESSION,
        window=window.window,
        source=source.label,
        prediction_rows=prediction_rows,
        labelled_rows=labelled_rows,
        metrics=metrics,
        undefined=undefined,
    )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0][:300] if text else type(exc).__name__

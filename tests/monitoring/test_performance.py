"""Window performance metrics in the database, checked against scikit-learn on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn import metrics as skm

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.monitoring.performance import (
    LOG_LOSS_EPS,
    PerformanceSource,
    TimeWindow,
    compute_performance,
    log_loss,
    parse_timestamp,
    roc_auc,
)

DAY_ONE = datetime(2026, 3, 1, tzinfo=timezone.utc)
WINDOW = TimeWindow(DAY_ONE + timedelta(days=1), DAY_ONE + timedelta(days=2))
TOLERANCE = 1e-9


def make_rows(seed: int = 7, n: int = 90) -> list[dict]:
    """Predictions every 48 minutes over three days (ids 30-59 in WINDOW); one in six has no label yet."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.clip(0.35 * labels + rng.uniform(0, 0.65, n), 0, 1).round(2)  # rounding makes ties
    scores[30:33] = [0.0, 1.0, 0.5]  # in the window: the log-loss clip and the threshold boundary
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": i,
                "scored_at": DAY_ONE + timedelta(minutes=48 * i),
                "predicted": int(rng.uniform() < 0.8) if labels[i] else int(rng.uniform() < 0.3),
                "score": float(scores[i]),
                "label": int(labels[i]) if i % 6 != 5 else None,
                "value": float(rng.normal(50, 10)),
            }
        )
    for row in rows:
        row["estimate"] = round(row["value"] + float(rng.normal(0, 4)), 3)
    return rows


def load(url: str, rows: list[dict], label_key: str = "label") -> sa.Engine:
    """Write ``predictions`` and ``labels`` tables; labels only for rows whose label is not None."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    predictions = sa.Table(
        "predictions",
        meta,
        sa.Column("id", sa.Integer),
        sa.Column("scored_at", sa.DateTime(timezone=True)),
        sa.Column("predicted", sa.Integer),
        sa.Column("score", sa.Float),
        sa.Column("estimate", sa.Float),
    )
    labels = sa.Table(
        "labels",
        meta,
        sa.Column("id", sa.Integer),
        sa.Column("label", sa.Integer),
        sa.Column("value", sa.Float),
    )
    meta.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            predictions.insert(),
            [{k: r[k] for k in ("id", "scored_at", "predicted", "score", "estimate")} for r in rows],
        )
        labelled = [r for r in rows if r[label_key] is not None]
        if labelled:
            connection.execute(
                labels.insert(), [{"id": r["id"], "label": r["label"], "value": r["value"]} for r in labelled]
            )
    return engine


def in_window(rows: list[dict]) -> list[dict]:
    return [r for r in rows if WINDOW.start <= r["scored_at"] < WINDOW.end]


def classification(**overrides) -> PerformanceSource:
    arguments = {
        "model_type": "classification",
        "predictions_table": "predictions",
        "labels_table": "labels",
        "key_column": "id",
        "timestamp_column": "scored_at",
        "label_column": "label",
        "prediction_column": "predicted",
        "score_column": "score",
    }
    return PerformanceSource.from_arguments(**{**arguments, **overrides})


def regression(**overrides) -> PerformanceSource:
    arguments = {
        "model_type": "regression",
        "predictions_table": "predictions",
        "labels_table": "labels",
        "key_column": "id",
        "timestamp_column": "scored_at",
        "label_column": "value",
        "prediction_column": "estimate",
    }
    return PerformanceSource.from_arguments(**{**arguments, **overrides})


def test_classification_metrics_match_scikit_learn(db_url):
    rows = make_rows()
    engine = load(db_url, rows)
    result = compute_performance(engine, classification(), WINDOW)

    window_rows = in_window(rows)
    labelled = [r for r in window_rows if r["label"] is not None]
    y = [r["label"] for r in labelled]
    predicted = [r["predicted"] for r in labelled]
    scores = [r["score"] for r in labelled]
    assert result.prediction_rows == len(window_rows) == 30
    assert result.labelled_rows == len(labelled) == 25  # the unlabelled predictions are excluded
    expected = {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "roc_auc": skm.roc_auc_score(y, scores),
        "log_loss": skm.log_loss(y, y_proba=scores, labels=[0, 1]),
    }
    assert result.metrics == pytest.approx(expected, abs=TOLERANCE)
    assert result.undefined == {}
    summary = result.to_dict()
    assert summary["counts"] == {"predictions": 30, "labelled": 25, "label_coverage": 25 / 30}
    assert summary["window"] == {"start": "2026-03-02T00:00:00+00:00", "end": "2026-03-03T00:00:00+00:00"}


def test_score_only_classification_thresholds_the_score(db_url):
    rows = make_rows(seed=11)
    engine = load(db_url, rows)
    result = compute_performance(
        engine, classification(prediction_column=None, decision_threshold=0.5), WINDOW
    )
    labelled = [r for r in in_window(rows) if r["label"] is not None]
    y = [r["label"] for r in labelled]
    predicted = [int(r["score"] >= 0.5) for r in labelled]
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted), abs=TOLERANCE)
    assert result.metrics["precision"] == pytest.approx(skm.precision_score(y, predicted), abs=TOLERANCE)
    assert result.metrics["recall"] == pytest.approx(skm.recall_score(y, predicted), abs=TOLERANCE)
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(y, predicted), abs=TOLERANCE)


def test_regression_metrics_match_scikit_learn(db_url):
    rows = make_rows(seed=3)
    engine = load(db_url, rows)
    result = compute_performance(engine, regression(), WINDOW)
    labelled = [r for r in in_window(rows) if r["label"] is not None]
    y = [r["value"] for r in labelled]
    estimate = [r["estimate"] for r in labelled]
    assert result.labelled_rows == len(labelled)
    assert result.metrics == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y, estimate),
            "rmse": skm.root_mean_squared_error(y, estimate),
            "r2": skm.r2_score(y, estimate),
        },
        abs=TOLERANCE,
    )


def test_a_query_with_bound_parameters_can_be_the_predictions_source(db_url):
    rows = make_rows()
    engine = load(db_url, rows)
    query = "SELECT id, scored_at, estimate FROM predictions WHERE id % :modulus = :remainder"
    source = regression(
        predictions_table=None, predictions_query=query, predictions_parameters={"modulus": 2, "remainder": 0}
    )
    result = compute_performance(engine, source, WINDOW)
    labelled = [r for r in in_window(rows) if r["label"] is not None and r["id"] % 2 == 0]
    assert result.labelled_rows == len(labelled)


def test_a_select_query_can_be_the_predictions_source(db_url):
    rows = make_rows()
    engine = load(db_url, rows)
    query = "SELECT id, scored_at, estimate FROM predictions WHERE id % 2 = 0"
    result = compute_performance(engine, regression(predictions_table=None, predictions_query=query), WINDOW)
    labelled = [r for r in in_window(rows) if r["label"] is not None and r["id"] % 2 == 0]
    y, estimate = [r["value"] for r in labelled], [r["estimate"] for r in labelled]
    assert result.labelled_rows == len(labelled)
    assert result.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, estimate), abs=TOLERANCE)
    assert "query" in result.source


def test_an_empty_window_fails_closed(db_url):
    engine = load(db_url, make_rows())
    later = TimeWindow(DAY_ONE + timedelta(days=10), DAY_ONE + timedelta(days=11))
    with pytest.raises(InputDataError, match=r"2026-03-11T00:00:00\+00:00/2026-03-12.*no predictions"):
        compute_performance(engine, classification(), later)


def test_a_window_without_labels_fails_closed(db_url):
    rows = make_rows()
    for row in rows:
        if row["scored_at"] >= WINDOW.start:
            row["label"] = None  # labels have not arrived for the window yet
    engine = load(db_url, rows)
    with pytest.raises(InputDataError, match=r"30 predictions, none labelled"):
        compute_performance(engine, classification(), WINDOW)


def test_undefined_metrics_are_none_with_a_reason(db_url):
    rows = make_rows()
    for row in rows:
        row["predicted"], row["label"], row["score"] = 0, 0, min(row["score"], 0.4)
    engine = load(db_url, rows)
    result = compute_performance(engine, classification(), WINDOW)
    assert result.metrics["accuracy"] == 1.0
    for name in ("precision", "recall", "f1", "roc_auc"):
        assert result.metrics[name] is None
        assert result.undefined[name]
    assert "one class" in result.undefined["roc_auc"]
    labelled = [r for r in in_window(rows) if r["label"] is not None]
    expected_loss = skm.log_loss([0] * len(labelled), y_proba=[r["score"] for r in labelled], labels=[0, 1])
    assert result.metrics["log_loss"] == pytest.approx(expected_loss, abs=TOLERANCE)
    assert set(result.defined_metrics()) == {"accuracy", "log_loss"}


def test_without_a_score_column_auc_and_log_loss_are_undefined(db_url):
    engine = load(db_url, make_rows())
    result = compute_performance(engine, classification(score_column=None), WINDOW)
    assert result.metrics["roc_auc"] is None
    assert result.metrics["log_loss"] is None
    assert "score_column" in result.undefined["roc_auc"]
    assert result.metrics["accuracy"] is not None


def test_constant_labels_make_r2_undefined(db_url):
    rows = make_rows()
    for row in rows:
        row["value"] = 0.1
    engine = load(db_url, rows)
    result = compute_performance(engine, regression(), WINDOW)
    assert result.metrics["r2"] is None
    assert "constant" in result.undefined["r2"]
    assert result.metrics["mae"] > 0


def test_duplicate_labels_fail_closed(db_url):
    rows = make_rows()
    engine = load(db_url, rows)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO labels (id, label, value) VALUES (30, 1, 1.0)"))
    with pytest.raises(InputDataError, match=r"more than once.*'id' must be unique"):
        compute_performance(engine, classification(), WINDOW)


def test_null_predictions_and_extra_label_values_fail_closed(db_url):
    rows = make_rows()
    engine = load(db_url, rows)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE predictions SET predicted = NULL WHERE id = 31"))
    with pytest.raises(InputDataError, match=r"prediction column 'predicted' is null in 1 labelled"):
        compute_performance(engine, classification(), WINDOW)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE predictions SET predicted = 1 WHERE id = 31"))
        connection.execute(sa.text("UPDATE labels SET label = 2 WHERE id = 31"))
    with pytest.raises(InputDataError, match=r"labels .* hold 3 distinct values"):
        compute_performance(engine, classification(), WINDOW)


def test_a_missing_table_is_named(db_url):
    engine = load(db_url, make_rows())
    # The predictions table is looked up in the catalog (its timestamp column's type decides the bounds').
    with pytest.raises(InputDataError, match=r"table 'no_such_table' does not exist"):
        compute_performance(engine, classification(predictions_table="no_such_table"), WINDOW)
    with pytest.raises(InputDataError, match=r"table 'no_such_labels'.*query failed"):
        compute_performance(engine, classification(labels_table="no_such_labels"), WINDOW)


def test_sqlite_text_timestamps_in_any_iso_form_are_compared_as_times(sqlite_url):
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE p (id INTEGER, ts TEXT, yhat REAL)"))
        connection.execute(sa.text("CREATE TABLE l (id INTEGER, y REAL)"))
        stamps = [
            "2026-03-01T23:59:59",  # before the window
            "2026-03-02T00:00:00",  # at the start: inside
            "2026-03-02 12:00:00.250",
            "2026-03-03T01:30:00+02:00",  # 23:30 UTC on the 2nd: inside
            "2026-03-03 00:00:00",  # at the end: outside
        ]
        for i, stamp in enumerate(stamps):
            connection.execute(sa.text("INSERT INTO p VALUES (:i, :ts, :i)"), {"i": i, "ts": stamp})
            connection.execute(sa.text("INSERT INTO l VALUES (:i, :y)"), {"i": i, "y": i + 1.0})
    source = regression(
        predictions_table="p",
        labels_table="l",
        timestamp_column="ts",
        label_column="y",
        prediction_column="yhat",
    )
    result = compute_performance(engine, source, WINDOW)
    assert result.prediction_rows == 3
    assert result.metrics["mae"] == pytest.approx(1.0)


# -- pure functions and argument checks ----------------------------------------------------------


def test_roc_auc_handles_ties_like_scikit_learn():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    scores = (0.3 * y + rng.uniform(0, 1, 200)).round(1)  # many ties
    assert roc_auc(scores, y.astype(bool)) == pytest.approx(skm.roc_auc_score(y, scores), abs=TOLERANCE)
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    with pytest.raises(InputDataError, match="one class only"):
        roc_auc([0.1, 0.9], [True, True])


def test_log_loss_clips_like_scikit_learn():
    y = np.array([1, 0, 1, 0, 1])
    probabilities = np.array([0.0, 1.0, 1.0, 0.0, 0.3])  # two confident mistakes
    expected = skm.log_loss(y, y_proba=probabilities, labels=[0, 1])
    assert log_loss(probabilities, y.astype(bool)) == pytest.approx(expected, abs=TOLERANCE)
    assert log_loss([0.0], [True]) == pytest.approx(-np.log(LOG_LOSS_EPS))
    with pytest.raises(InputDataError, match=r"probabilities in \[0, 1\].*\[-0.2, 3\]"):
        log_loss([-0.2, 3.0], [True, False])


def test_scores_outside_the_unit_interval_leave_log_loss_undefined(db_url):
    rows = make_rows()
    for row in rows:
        row["score"] = row["score"] * 10 - 5  # a margin, not a probability
    engine = load(db_url, rows)
    result = compute_performance(engine, classification(), WINDOW)
    assert result.metrics["log_loss"] is None
    assert "[0, 1]" in result.undefined["log_loss"]
    assert result.metrics["roc_auc"] is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels_table": "labels; DROP TABLE x"}, "table 'labels; DROP TABLE x' is not a plain"),
        ({"key_column": "id--"}, "key column 'id--'"),
        ({"timestamp_column": "a b"}, "timestamp column 'a b'"),
        ({"score_column": 'sc"ore'}, "score column"),
        (
            {"predictions_table": None, "predictions_query": "DELETE FROM predictions"},
            "is a DELETE statement",
        ),
        ({"predictions_table": None, "predictions_query": "SELECT 1; SELECT 2"}, "holds 2 statements"),
        (
            {"predictions_table": None, "predictions_query": "SELECT * FROM p WHERE m = :model"},
            "predictions_query uses :model but parameters give no value",
        ),
        ({"predictions_parameters": {"model": "a"}}, "parameters ['model'] apply to a query"),
        ({"predictions_query": "SELECT 1"}, "exactly one of predictions_table"),
        ({"model_type": "ranking"}, "model type must be one of"),
        ({"prediction_column": None, "score_column": None}, "classification needs"),
        ({"positive_label": 1.0}, "positive_label"),
        ({"decision_threshold": float("nan")}, "decision_threshold"),
    ],
)
def test_bad_arguments_are_rejected_before_any_sql(overrides, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        classification(**overrides)


def test_regression_arguments_are_checked():
    with pytest.raises(ConfigurationError, match="regression needs prediction_column"):
        regression(prediction_column=None)
    with pytest.raises(ConfigurationError, match="applies to classification"):
        regression(score_column="score")


def test_window_bounds_are_parsed_and_checked():
    window = TimeWindow.from_bounds("2026-03-02 02:00:00+02:00", "2026-03-03T00:00:00Z")
    assert window == WINDOW
    assert window.label == "2026-03-02T00:00:00+00:00/2026-03-03T00:00:00+00:00"
    with pytest.raises(ConfigurationError, match="start must be before end"):
        TimeWindow.from_bounds(WINDOW.end, WINDOW.start)
    with pytest.raises(ConfigurationError, match="both bounds must carry a time zone"):
        TimeWindow.from_bounds("2026-03-02", "2026-03-03T00:00:00Z")
    with pytest.raises(ConfigurationError, match="window start 'yesterday' is not an ISO 8601"):
        parse_timestamp("yesterday", "window start")
    with pytest.raises(ConfigurationError, match="window end None is not a timestamp"):
        parse_timestamp(None, "window end")


# --- the window under a session time zone other than UTC ----------------------------------------


def paris_session(db_url: str) -> sa.Engine:
    """An engine on ``db_url`` whose PostgreSQL sessions run in Europe/Paris (SQLite has no time zone)."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return sa.create_engine(url)
    options = f"{url.query['options']} -c timezone=Europe/Paris"
    engine = sa.create_engine(url.update_query_dict({"options": options}))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW timezone").scalar() == "Europe/Paris"
    return engine


@pytest.mark.parametrize("as_query", [False, True], ids=["table", "query"])
def test_naive_utc_timestamps_fall_in_the_window_whatever_the_session_time_zone(db_url, as_query):
    from airflow_provider_mlprod.monitoring.labels import LabelCoverageProbe

    engine = paris_session(db_url)
    inside = [datetime(2024, 3, 2, 0, 10), datetime(2024, 3, 2, 0, 40), datetime(2024, 3, 2, 12)]
    outside = [datetime(2024, 3, 1, 23, 30), datetime(2024, 3, 3, 0, 30)]  # naive UTC, like ``inside``
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE p (id INTEGER, ts TIMESTAMP, yhat FLOAT)")
        connection.exec_driver_sql("CREATE TABLE l (id INTEGER, y FLOAT)")
        for key, moment in enumerate(inside + outside):
            connection.execute(sa.text("INSERT INTO p VALUES (:k, :t, :k)"), {"k": key, "t": moment})
            connection.execute(sa.text("INSERT INTO l VALUES (:k, :y)"), {"k": key, "y": key + 0.5})
    start, end = "2024-03-02T00:00:00+00:00", "2024-03-03T00:00:00+00:00"
    where = {"predictions_query": "SELECT id, ts, yhat FROM p"} if as_query else {"predictions_table": "p"}
    source = PerformanceSource.from_arguments(
        model_type="regression",
        labels_table="l",
        key_column="id",
        timestamp_column="ts",
        label_column="y",
        prediction_column="yhat",
        **where,
    )
    probe = LabelCoverageProbe(
        predictions_table="p",
        labels_table="l",
        key_column="id",
        timestamp_column="ts",
        window_start=start,
        window_end=end,
        min_label_share=1.0,
    )
    try:
        result = compute_performance(engine, source, TimeWindow.from_bounds(start, end))
        coverage = probe.run(engine)
    finally:
        engine.dispose()
    assert coverage.predictions == 3
    assert (result.prediction_rows, result.labelled_rows) == (3, 3)
    assert result.metrics["mae"] == pytest.approx(0.5)


@pytest.mark.parametrize("as_query", [False, True], ids=["table", "query"])
def test_time_zone_aware_timestamps_fall_in_the_window_under_a_session_time_zone(postgres_url, as_query):
    engine = paris_session(postgres_url)
    rows = make_rows()
    load(postgres_url, rows).dispose()  # ``scored_at`` is a timestamp with time zone
    where = {"predictions_table": None, "predictions_query": "SELECT * FROM predictions"} if as_query else {}
    try:
        result = compute_performance(engine, regression(**where), WINDOW)
    finally:
        engine.dispose()
    assert result.prediction_rows == len(in_window(rows))


def test_a_connection_lost_mid_computation_stays_retryable(postgres_url):
    from airflow_provider_mlprod.operators.outcome import FINAL_ERRORS
    from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError, database_errors

    engine = load(postgres_url, make_rows())
    # the server ends this very session while the window's rows are read
    query = "SELECT id, scored_at, estimate FROM predictions WHERE pg_terminate_backend(pg_backend_pid())"
    source = regression(predictions_table=None, predictions_query=query)
    unavailable = "connection 'warehouse' is unavailable"
    with pytest.raises(DatabaseUnavailableError, match=unavailable) as caught, database_errors("warehouse"):
        compute_performance(engine, source, WINDOW)
    assert not isinstance(caught.value, FINAL_ERRORS)


def test_one_snapshot_for_all_the_window_queries(postgres_url):
    from airflow_provider_mlprod.sql.session import read_only_snapshot

    engine = load(postgres_url, make_rows())
    with read_only_snapshot(engine) as connection:
        level = connection.exec_driver_sql("SHOW transaction_isolation").scalar_one()
        read_only = connection.exec_driver_sql("SHOW transaction_read_only").scalar_one()
    assert (level, read_only) == ("repeatable read", "on")


def test_confusion_counts_and_scores_come_from_one_snapshot(postgres_url):
    """A labelled prediction committed between the count query and the score fetch is seen by neither."""
    rows = make_rows()
    engine = load(postgres_url, rows)
    writer = sa.create_engine(postgres_url)
    queries: list[str] = []

    def commit_a_row_before_the_score_fetch(conn, cursor, statement, parameters, context, executemany):
        queries.append(statement)
        if "score_value" in statement and "count(" not in statement.lower() and len(queries) > 1:
            with writer.begin() as other:  # another session commits a confident wrong prediction
                other.exec_driver_sql(
                    "INSERT INTO predictions (id, scored_at, predicted, score, estimate) "
                    "VALUES (999, %(at)s, 1, 1.0, 0)",
                    {"at": WINDOW.start + timedelta(hours=1)},
                )
                other.exec_driver_sql("INSERT INTO labels (id, label, value) VALUES (999, 0, 0)")

    sa.event.listen(engine, "before_cursor_execute", commit_a_row_before_the_score_fetch)
    try:
        result = compute_performance(engine, classification(), WINDOW)
    finally:
        sa.event.remove(engine, "before_cursor_execute", commit_a_row_before_the_score_fetch)
        writer.dispose()
    labelled = [r for r in in_window(rows) if r["label"] is not None]
    assert result.labelled_rows == len(labelled)
    y, score = [r["label"] for r in labelled], [r["score"] for r in labelled]
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=TOLERANCE)
    fresh = compute_performance(engine, classification(), WINDOW)  # the row is there for the next run
    assert fresh.labelled_rows == len(labelled) + 1

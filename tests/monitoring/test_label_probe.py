"""Label coverage: the share of a window's predictions that has a label, counted in the database."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.monitoring.labels import LabelCoverageProbe

UTC = dt.timezone.utc
START, END = "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


def make_tables(engine, predictions, labels):
    """predictions: [(id, timestamp)]; labels: [(id, label)]."""
    metadata = sa.MetaData()
    predictions_table = sa.Table(
        "predictions",
        metadata,
        sa.Column("prediction_id", sa.Integer),
        sa.Column("scored_at", sa.DateTime),
        sa.Column("score", sa.Float),
    )
    labels_table = sa.Table(
        "labels", metadata, sa.Column("prediction_id", sa.Integer), sa.Column("outcome", sa.Integer)
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        if predictions:
            connection.execute(
                predictions_table.insert(),
                [{"prediction_id": key, "scored_at": when, "score": 0.5} for key, when in predictions],
            )
        if labels:
            connection.execute(
                labels_table.insert(), [{"prediction_id": key, "outcome": label} for key, label in labels]
            )


def day(hour, minute=0):
    return dt.datetime(2024, 3, 1, hour, minute)


def probe(**overrides):
    arguments = {
        "predictions_table": "predictions",
        "labels_table": "labels",
        "key_column": "prediction_id",
        "timestamp_column": "scored_at",
        "window_start": START,
        "window_end": END,
        "min_label_share": 0.75,
    }
    return LabelCoverageProbe(**{**arguments, **overrides})


def test_share_counts_only_the_window(engine):
    make_tables(
        engine,
        # 4 in the window; one just before and one exactly at the (exclusive) end.
        [
            (1, day(0)),
            (2, day(6)),
            (3, day(12)),
            (4, day(23, 59)),
            (5, day(0) - dt.timedelta(seconds=1)),
            (6, dt.datetime(2024, 3, 2)),
        ],
        [(1, 0), (2, 1), (5, 1), (6, 0)],
    )
    seen = probe().run(engine)
    assert (seen.predictions, seen.labelled, seen.share) == (4, 2, 0.5)
    assert not seen.satisfied
    assert "2 of 4 predictions" in seen.message
    assert "not yet satisfied" in seen.message
    assert probe(min_label_share=0.5).run(engine).satisfied


def test_share_reaches_the_threshold(engine):
    make_tables(engine, [(1, day(1)), (2, day(2)), (3, day(3)), (4, day(4))], [(1, 0), (2, 1), (3, 1)])
    seen = probe().run(engine)
    assert (seen.labelled, seen.share, seen.satisfied) == (3, 0.75, True)
    assert json.loads(json.dumps(seen.to_dict()))["share"] == 0.75


def test_a_key_labelled_twice_counts_once(engine):
    make_tables(engine, [(1, day(1)), (2, day(2))], [(1, 0), (1, 1), (1, 1)])
    seen = probe(min_label_share=1.0).run(engine)
    assert (seen.predictions, seen.labelled) == (2, 1)


def test_null_labels_do_not_count_with_label_column(engine):
    make_tables(engine, [(1, day(1)), (2, day(2))], [(1, None), (2, 1)])
    assert probe().run(engine).labelled == 2
    assert probe(label_column="outcome").run(engine).labelled == 1


def test_empty_window_is_never_satisfied(engine):
    make_tables(engine, [(1, dt.datetime(2024, 2, 1))], [(1, 1)])
    seen = probe(min_label_share=0.01).run(engine)
    assert (seen.predictions, seen.share, seen.satisfied) == (0, None, False)
    assert "no predictions in 'predictions' for window" in seen.message


def test_differently_named_label_key(engine):
    make_tables(engine, [(1, day(1))], [(1, 1)])
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE outcomes (pid INTEGER, y INTEGER)"))
        connection.execute(sa.text("INSERT INTO outcomes VALUES (1, 1)"))
    seen = probe(labels_table="outcomes", labels_key_column="pid", min_label_share=1).run(engine)
    assert seen.satisfied


def test_missing_tables_and_columns_are_named(engine):
    with pytest.raises(InputDataError, match="table 'predictions' does not exist"):
        probe().run(engine)
    make_tables(engine, [], [])
    with pytest.raises(InputDataError, match="table 'labels' has no column 'truth'"):
        probe(label_column="truth").run(engine)
    with pytest.raises(InputDataError, match="table 'predictions' has no column 'request_id'"):
        probe(key_column="request_id", labels_key_column="prediction_id").run(engine)
    with pytest.raises(InputDataError, match="timestamp column 'score' of table 'predictions' is"):
        probe(timestamp_column="score").run(engine)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"labels_table": "labels;--"},
            ConfigurationError,
            "table 'labels;--' is not a plain SQL identifier",
        ),
        ({"key_column": "id) OR (1=1"}, ConfigurationError, "key column 'id\\) OR"),
        ({"label_column": "y'"}, ConfigurationError, 'label column "y\'" is not a plain'),
        ({"window_end": START}, ConfigurationError, "must be before window_end"),
        ({"window_start": "soon"}, ConfigurationError, "window_start 'soon' is not an ISO 8601"),
        ({"min_label_share": 0}, ConfigurationError, "min_label_share must be a number in \\(0, 1\\]"),
        ({"min_label_share": 1.5}, ConfigurationError, "min_label_share must be a number in"),
        ({"min_label_share": float("nan")}, ConfigurationError, "min_label_share must be a number in"),
    ],
)
def test_bad_arguments_are_rejected_when_built(overrides, error, message):
    with pytest.raises(error, match=message):
        probe(**overrides)


def test_tables_in_other_schemas(postgres_url):
    url = sa.make_url(postgres_url)
    schema = url.query["options"].split("=", 1)[1]
    engine = sa.create_engine(postgres_url)
    make_tables(engine, [(1, day(1)), (2, day(2))], [(2, 1)])
    engine.dispose()
    plain = sa.create_engine(url.difference_update_query(["options"]))
    try:
        assert probe(schema=schema, min_label_share=0.5).run(plain).satisfied
        assert (
            probe(
                predictions_table=f"{schema}.predictions",
                labels_table=f"{schema}.labels",
                min_label_share=0.5,
            )
            .run(plain)
            .satisfied
        )
    finally:
        plain.dispose()


def test_keys_of_different_types_are_an_input_error(postgres_url):
    engine = sa.create_engine(postgres_url)
    make_tables(engine, [(1, day(1))], [])
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE text_labels (prediction_id TEXT)"))
    try:
        with pytest.raises(InputDataError, match="cannot be joined on 'prediction_id' = 'prediction_id'"):
            probe(labels_table="text_labels").run(engine)
    finally:
        engine.dispose()

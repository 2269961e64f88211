"""Text descriptors: the SQL forms give the Python values row by row; planted bad outputs stand out."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError
from airflow_provider_mlprod.outputs.checks import Dialect
from airflow_provider_mlprod.outputs.descriptors import (
    descriptor_expressions,
    reference_vocabulary,
    text_descriptors,
)


def test_sql_descriptors_equal_python_descriptors(db_url, corpus):
    frame = pd.DataFrame(corpus)[["id", "answer", "payload"]]
    vocabulary = reference_vocabulary(frame["answer"].iloc[:100])
    engine = sa.create_engine(db_url)
    frame.to_sql("outputs", engine, index=False)
    table = sa.Table("outputs", sa.MetaData(), autoload_with=engine)
    expected = pd.concat(
        [
            text_descriptors(frame, "answer", vocabulary=vocabulary),
            text_descriptors(frame, "payload"),
        ],
        axis=1,
    )
    compared = 0
    with engine.connect() as connection:
        dialect = Dialect.of(connection)
        for column in ("answer", "payload"):
            vocab = vocabulary if column == "answer" else None
            expressions = descriptor_expressions(table.c[column], dialect, vocabulary=vocab)
            for name, expression in expressions.items():
                if expression is None:
                    continue
                query = sa.select(table.c.id, expression.label("v")).order_by(table.c.id)
                got = [row.v for row in connection.execute(query)]
                want = expected[f"{column}.{name}"].tolist()
                for position, (a, b) in enumerate(zip(got, want, strict=True)):
                    if b is pd.NA:
                        assert a is None, (column, name, position)
                    else:
                        assert math.isclose(a, b, abs_tol=1e-9), (column, name, position, a, b)
                compared += 1
    engine.dispose()
    # SQLite: length, refusal, json_valid on both columns; PostgreSQL 15: length, word_count,
    # non_letter_share, refusal on both, oov_share on the answer (16+: json_valid on both too)
    if engine.dialect.name == "sqlite":
        assert compared == 6
    else:
        assert compared == (11 if dialect.version >= (16,) else 9)


def test_descriptors_separate_planted_outputs(corpus):
    frame = pd.DataFrame(corpus)
    vocabulary = reference_vocabulary(frame.loc[frame["kind"] == "clean", "answer"])
    descriptors = text_descriptors(frame, "answer", vocabulary=vocabulary).assign(kind=frame["kind"])
    means = descriptors.groupby("kind").mean(numeric_only=True)
    assert (
        means.loc["gibberish", "answer.non_letter_share"]
        > 0.5
        > means.loc["clean", "answer.non_letter_share"]
    )
    assert means.loc["refusal", "answer.refusal"] == 1.0
    assert means.loc["clean", "answer.refusal"] == 0.0
    assert means.loc["refusal", "answer.oov_share"] > 0.5
    assert means.loc["clean", "answer.oov_share"] == 0.0
    payload = text_descriptors(frame, "payload").assign(kind=frame["kind"]).groupby("kind").mean()
    assert payload.loc["truncated_json", "payload.json_valid"] == 0.0
    assert payload.loc["clean", "payload.json_valid"] == 1.0
    with pytest.raises(InputDataError, match="'nope' not found"):
        text_descriptors(frame, "nope")

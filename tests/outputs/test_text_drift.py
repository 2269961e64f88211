"""Text-descriptor drift: a week of outputs in PostgreSQL, planted gibberish found by the drift engine."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.outputs.text_drift import (
    TextReference,
    text_drift_frame,
    text_drift_sql,
    text_reference,
)

from .conftest import WORDS

WEEK = datetime(2026, 3, 2)
GIBBERISH = "#$%&*@!?0123456789"


def week_of_outputs(start: datetime, *, seed: int, gibberish_share: float = 0.0, per_day: int = 150) -> list:
    """One week of answers (and JSON payloads), ``gibberish_share`` of them degenerate."""
    rng = random.Random(seed)
    rows = []
    for day in range(7):
        for i in range(per_day):
            if rng.random() < gibberish_share:
                answer = "".join(rng.choice(GIBBERISH + "xqz ") for _ in range(rng.randint(40, 90)))
            else:
                answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))).capitalize() + "."
            rows.append(
                {
                    "ts": start + timedelta(days=day, seconds=i * 500),
                    "answer": answer,
                    "payload": json.dumps({"score": round(rng.random(), 3)}),
                }
            )
    return rows


@pytest.fixture
def outputs_table(postgres_url):
    """Three weeks in one table: a clean reference week, a clean week and a week with gibberish."""
    engine = sa.create_engine(postgres_url)
    table = sa.Table(
        "llm_outputs",
        sa.MetaData(),
        sa.Column("ts", sa.DateTime),
        sa.Column("answer", sa.Text),
        sa.Column("payload", sa.Text),
    )
    table.create(engine)
    weeks = {
        "reference": week_of_outputs(WEEK, seed=1),
        "clean": week_of_outputs(WEEK + timedelta(days=7), seed=2),
        "gibberish": week_of_outputs(WEEK + timedelta(days=14), seed=3, gibberish_share=0.3),
    }
    with engine.begin() as connection:
        for rows in weeks.values():
            connection.execute(table.insert(), rows)
    yield engine, weeks
    engine.dispose()


def window(week: int) -> tuple[str, datetime, datetime]:
    start = WEEK + timedelta(days=7 * week)
    return ("ts", start, start + timedelta(days=7))


def drifted(drift) -> set[str]:
    return set(drift.result.drifted_columns)


def test_planted_gibberish_drifts_its_descriptors_in_sql_and_in_pandas(outputs_table):
    engine, weeks = outputs_table
    reference = text_reference(pd.DataFrame(weeks["reference"]), ["answer", "payload"])
    reference = TextReference.from_dict(json.loads(reference.to_json()))  # stored and read back

    clean = text_drift_sql(engine, reference, table="llm_outputs", window=window(1))
    noisy = text_drift_sql(engine, reference, table="llm_outputs", window=window(2))
    assert clean.result.current_rows == noisy.result.current_rows == 7 * 150
    assert "answer__non_letter_share" in clean.compared
    assert "answer__oov_share" in clean.compared
    assert not {"answer__non_letter_share", "answer__oov_share"} & drifted(clean)
    assert {"answer__non_letter_share", "answer__oov_share", "answer__word_count"} <= drifted(noisy)
    assert not any(name.startswith("payload") for name in drifted(noisy))  # the payloads did not change
    if engine.dialect.server_version_info < (16,):
        assert set(noisy.left_out) == {"answer__json_valid", "payload__json_valid"}

    # the pandas path on the same rows reaches the same verdicts on the same descriptors
    in_pandas = text_drift_frame(reference, pd.DataFrame(weeks["gibberish"]))
    compared = set(noisy.compared)
    assert drifted(in_pandas) & compared == drifted(noisy)
    assert not drifted(text_drift_frame(reference, pd.DataFrame(weeks["clean"]))) & {
        "answer__non_letter_share",
        "answer__oov_share",
    }


def test_sql_profile_counts_equal_the_pandas_counts(outputs_table):
    """The descriptors computed in SQL land in the same reference bins as the pandas descriptors."""
    from airflow_provider_mlprod.drift.profile import profile_dataframe
    from airflow_provider_mlprod.outputs.text_drift import descriptor_frame

    engine, weeks = outputs_table
    reference = text_reference(pd.DataFrame(weeks["reference"]), ["answer"])
    in_sql = text_drift_sql(engine, reference, table="llm_outputs", window=window(2))
    frame = descriptor_frame(pd.DataFrame(weeks["gibberish"]), reference.vocabularies)
    in_pandas = profile_dataframe(frame, specs=reference.profile.spec())
    for column in in_sql.result.columns:
        sql_counts = column.to_dict(include_distribution=True)["distribution"]["current_counts"]
        assert sql_counts == list(in_pandas.columns[column.column].counts), column.column


def test_bad_inputs_are_named(outputs_table):
    engine, weeks = outputs_table
    frame = pd.DataFrame(weeks["reference"])
    with pytest.raises(InputDataError, match=r"no column\(s\) \['nope'\]"):
        text_reference(frame, ["nope"])
    with pytest.raises(SpecError, match="text column"):
        text_reference(frame, ["answer; drop"])
    reference = text_reference(frame, ["answer"])
    with pytest.raises(SpecError, match="timestamp column"):
        text_drift_sql(engine, reference, table="llm_outputs", window=("ts--", WEEK, WEEK))
    with pytest.raises(InputDataError):
        text_drift_sql(engine, reference, table="no_such_table")


def test_pyarrow_string_view_outputs_give_the_plain_text_descriptors_and_verdict():
    """Text descriptors crashed on a pyarrow string_view column (pandas cannot filter it); the same
    outputs as string_view now give the reference and the verdict of plain text, in pandas."""
    import pyarrow as pa

    def as_views(rows: list) -> pd.DataFrame:
        frame = pd.DataFrame(rows)
        for name in ("answer", "payload"):
            texts = frame[name].astype(object).where(frame[name].notna(), None).tolist()
            values = pa.array(texts, type=pa.string_view())
            frame[name] = pd.Series(values, dtype=pd.ArrowDtype(pa.string_view()))
        return frame

    reference_rows = week_of_outputs(WEEK, seed=1)
    noisy_rows = week_of_outputs(WEEK + timedelta(days=7), seed=3, gibberish_share=0.3)
    reference = text_reference(pd.DataFrame(reference_rows), ["answer", "payload"])
    assert text_reference(as_views(reference_rows), ["answer", "payload"]).to_dict() == reference.to_dict()
    plain = text_drift_frame(reference, pd.DataFrame(noisy_rows))
    views = text_drift_frame(reference, as_views(noisy_rows))
    assert views.to_dict() == plain.to_dict()
    assert {"answer__non_letter_share", "answer__oov_share"} <= drifted(views)

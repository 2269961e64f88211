"""Planted-truth cases the binned paths used to get wrong: each fails on the 0.1 engine.

Discrete values sharing a bin, zero-inflated columns, category text across engines, more than 1,000
categories against a SQL profile, duplicate column names, tiny current batches, corrupt stored
profiles, datetime columns.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import DatasetProfile, profile_dataframe
from airflow_provider_mlprod.drift.settings import DriftSettings
from airflow_provider_mlprod.drift.sql_profile import profile_sql
from airflow_provider_mlprod.drift.stattests import wasserstein_sorted
from airflow_provider_mlprod.exceptions import InputDataError, StoreError


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


def ratings(rows: int, seed: int, shares: list[float]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"stars": rng.choice([1, 2, 3, 4, 5], rows, p=shares)})


BEFORE = [0.05, 0.05, 0.1, 0.5, 0.3]
AFTER = [0.05, 0.05, 0.1, 0.3, 0.5]  # a fifth of the ratings move from 4 to 5 stars


def test_every_distinct_value_of_a_discrete_column_has_its_own_bin():
    reference = profile_dataframe(ratings(5000, 1, BEFORE))
    stars = reference.columns["stars"]
    assert stars.values == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert stars.counts[0] == stars.counts[-1] == 0
    assert all(count > 0 for count in stars.counts[1:-1])  # 4 and 5 no longer share the closed last bin
    stored = DatasetProfile.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert stored.columns["stars"].values == stars.values


def test_a_shift_from_four_to_five_stars_is_seen_on_every_path(engine):
    reference_frame, current = ratings(5000, 1, BEFORE), ratings(4000, 2, AFTER)
    reference = profile_dataframe(reference_frame)
    table = sa.Table("ratings_now", sa.MetaData(), sa.Column("stars", sa.Integer()))
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"stars": int(v)} for v in current["stars"]])
    from_sql = profile_sql(engine, reference.spec(), table="ratings_now")
    exact_w = wasserstein_sorted(
        np.sort(reference_frame["stars"].to_numpy(float)), np.sort(current["stars"].to_numpy(float))
    ) / np.std(reference_frame["stars"])
    wasserstein = DriftSettings(column_tests={"stars": "wasserstein"})
    for cur in (current, profile_dataframe(current, specs=reference.spec()), from_sql):
        column = compare_datasets(reference, cur).column("stars")
        assert column.test == "homogeneity"  # at most 5 distinct values: compared like categories
        assert column.drifted
        assert column.statistic == pytest.approx(0.2, abs=0.03)
        binned_w = compare_datasets(reference, cur, wasserstein).column("stars")
        assert binned_w.method == "exact"  # the profile holds the exact distribution
        assert binned_w.statistic == pytest.approx(exact_w, rel=1e-9)
        assert binned_w.error_bound is None
    same = compare_datasets(reference, ratings(4000, 3, BEFORE)).column("stars")
    assert not same.drifted


def test_zero_inflated_column_keeps_resolution_where_the_mass_is_not():
    rng = np.random.default_rng(4)

    def zero_inflated(rows: int, scale: float) -> pd.DataFrame:
        values = np.where(rng.uniform(size=rows) < 0.99, 0.0, rng.lognormal(0, 1, rows) * scale)
        return pd.DataFrame({"refund": values})

    reference = profile_dataframe(zero_inflated(200_000, 1.0))
    refund = reference.columns["refund"]
    assert refund.counts[1] == pytest.approx(0.99 * 200_000, rel=0.01)  # the zeros: one bin of their own
    assert len(refund.edges) > 50  # the other 1% is still cut into many bins
    tripled = zero_inflated(100_000, 3.0)
    exact = compare_datasets(zero_inflated(200_000, 1.0), tripled).column("refund")
    binned = compare_datasets(reference, tripled).column("refund")
    assert (exact.test, binned.test, binned.method) == ("wasserstein", "wasserstein", "binned")
    assert exact.drifted
    assert binned.drifted
    low, high = binned.statistic_range
    assert low <= exact.statistic <= high
    assert binned.within_binning_error  # and says so: the bins alone cannot prove it
    assert any("within the binning error" in note for note in binned.notes)
    assert not compare_datasets(reference, zero_inflated(100_000, 1.0)).column("refund").drifted


def test_category_text_is_the_same_from_pandas_sqlite_and_postgresql(engine):
    rng = np.random.default_rng(5)
    flags = rng.uniform(size=500) < 0.3
    levels = rng.choice([1.0, 2.0, 2.5], 500)
    reference_frame = pd.DataFrame({"flag": flags, "level": pd.Series(levels.astype(object))})
    reference_frame.loc[::7, "level"] = [int(v) if float(v).is_integer() else v for v in levels[::7]]
    reference = profile_dataframe(reference_frame, column_kinds={"level": "categorical"})
    assert set(reference.columns["flag"].counts) == {"true", "false"}
    assert set(reference.columns["level"].counts) == {"1", "2", "2.5"}  # 1.0 and 1 are one category
    table = sa.Table(
        "flags_now", sa.MetaData(), sa.Column("flag", sa.Boolean()), sa.Column("level", sa.Double())
    )
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(
            table.insert(), [{"flag": bool(f), "level": float(v)} for f, v in zip(flags, levels, strict=True)]
        )
    from_sql = profile_sql(engine, reference.spec(), table="flags_now")
    assert from_sql.columns["flag"].counts == reference.columns["flag"].counts
    assert from_sql.columns["level"].counts == reference.columns["level"].counts
    result = compare_datasets(reference, from_sql)
    assert result.drifted_columns == []
    assert all(column.statistic == 0 for column in result.columns)
    csv_text = pd.DataFrame({"flag": flags.astype(str)})  # "True"/"False", as a CSV reader gives them
    assert not compare_datasets(reference, csv_text, DriftSettings(columns=("flag",))).drifted_columns


def test_more_than_a_thousand_categories_raw_reference_and_sql_current(engine):
    rng = np.random.default_rng(6)
    names = np.array([f"sku{i:05d}" for i in range(3000)], dtype=object)
    shares = rng.dirichlet(np.ones(3000))
    reference_frame = pd.DataFrame({"sku": rng.choice(names, 30_000, p=shares)})
    current = rng.choice(names, 10_000, p=shares)
    table = sa.Table("skus_now", sa.MetaData(), sa.Column("sku", sa.String(20)))
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"sku": str(v)} for v in current])
    spec = profile_dataframe(reference_frame, top_k=1000).spec()  # what the operator profiles on
    from_sql = profile_sql(engine, spec, table="skus_now")
    assert from_sql.columns["sku"].other_count > 0
    same = compare_datasets(reference_frame, from_sql).column("sku")
    assert not same.drifted
    moved = current.copy()
    moved[: len(moved) // 5] = names[0]  # one sku takes a fifth of the sales
    with engine.begin() as conn:
        conn.execute(table.delete())
        conn.execute(table.insert(), [{"sku": str(v)} for v in moved])
    moved_profile = profile_sql(engine, spec, table="skus_now")
    assert compare_datasets(reference_frame, moved_profile).column("sku").drifted


def test_duplicate_column_names_are_named():
    frame = pd.DataFrame(np.zeros((50, 3)), columns=["a", "b", "a"])
    with pytest.raises(InputDataError, match=r"duplicate column names \['a'\]"):
        compare_datasets(frame, frame)
    with pytest.raises(InputDataError, match=r"duplicate column names \['a'\]"):
        profile_dataframe(frame)


def test_a_one_row_batch_states_the_minimum_sample_size():
    reference = pd.DataFrame({"x": np.random.default_rng(7).normal(size=5000)})
    with pytest.raises(InputDataError, match="current batch has 1 rows; drift needs at least 30"):
        compare_datasets(reference, reference.iloc[:1])
    result = compare_datasets(reference, reference.iloc[:1], DriftSettings(min_current_rows=1))
    assert not result.column("x").drifted  # one value is never significant
    assert compare_datasets(reference, reference.iloc[:30]).current_rows == 30


def test_negative_counts_in_a_stored_profile_are_rejected():
    good = profile_dataframe(
        pd.DataFrame({"x": np.arange(200.0), "c": ["a", "b"] * 100}), column_kinds={"c": "categorical"}
    ).to_dict()
    numeric = json.loads(json.dumps(good))
    numeric["columns"]["x"]["counts"][1] -= 5
    numeric["columns"]["x"]["counts"][2] += 5
    numeric["columns"]["x"]["counts"][1] = -numeric["columns"]["x"]["counts"][1]
    numeric["columns"]["x"]["counts"][2] -= 2 * numeric["columns"]["x"]["counts"][2]
    with pytest.raises(StoreError, match="not a whole number >= 0"):
        DatasetProfile.from_dict(numeric)
    categorical = json.loads(json.dumps(good))
    categorical["columns"]["c"]["counts"] = {"a": 300, "b": -100}
    with pytest.raises(StoreError, match=r"count of category 'b' -100 is not a whole number >= 0"):
        DatasetProfile.from_dict(categorical)


def test_datetime_columns_are_compared_as_epoch_seconds():
    start = pd.Timestamp("2026-01-01", tz="Europe/Paris")
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"at": start + pd.to_timedelta(rng.uniform(0, 30, 5000), unit="D")})
    profile = profile_dataframe(reference)
    at = profile.columns["at"]
    assert at.kind == "numeric"
    assert at.min == pytest.approx(reference["at"].min().timestamp(), abs=1e-3)
    same = pd.DataFrame({"at": start + pd.to_timedelta(rng.uniform(0, 30, 3000), unit="D")})
    later = pd.DataFrame({"at": start + pd.to_timedelta(rng.uniform(10, 40, 3000), unit="D")})
    assert not compare_datasets(reference, same).dataset_drift
    assert compare_datasets(reference, later).column("at").drifted
    assert compare_datasets(profile, later).column("at").drifted
    with_nat = later.copy()
    with_nat.loc[:99, "at"] = pd.NaT
    assert compare_datasets(reference, with_nat).column("at").null_rate_current == pytest.approx(100 / 3000)

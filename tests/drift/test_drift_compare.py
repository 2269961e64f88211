"""Dataset comparison: verdicts, defaults, overrides, signals, awkward and bad inputs, result dicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import DatasetProfile, profile_dataframe
from airflow_provider_mlprod.drift.settings import DriftSettings
from airflow_provider_mlprod.exceptions import InputDataError, SpecError

CITIES = np.array(["paris", "oslo", "rome", "lima", "kyiv"], dtype=object)


def make_frame(rows: int, seed: int, shift: float = 0.0, city_shares=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(50 + shift, 10, rows),
            "age": rng.integers(18, 80, rows).astype(float),
            "score": rng.uniform(0, 1, rows),
            "city": pd.Series(rng.choice(CITIES, rows, p=city_shares), dtype="str"),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(5000, seed=1)


def assert_json_safe(value) -> None:
    """Only plain Python types, no NaN or inf anywhere."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_json_safe(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_safe(item)
    else:
        assert value is None or type(value) in (str, int, float, bool), type(value)
        if type(value) is float:
            assert math.isfinite(value)


def test_same_distribution_does_not_drift(reference):
    result = compare_datasets(reference, make_frame(4000, seed=2))
    assert not result.dataset_drift
    assert result.drifted_columns == []
    assert [c.test for c in result.columns] == ["wasserstein", "wasserstein", "wasserstein", "homogeneity"]
    assert all(c.method == "exact" for c in result.columns)


def test_shift_and_share_changes_drift(reference):
    current = make_frame(4000, seed=3, shift=6.0, city_shares=[0.6, 0.1, 0.1, 0.1, 0.1])
    result = compare_datasets(reference, current)
    assert result.drifted_columns == ["amount", "city"]
    assert result.drifted_share == 0.5
    assert result.dataset_drift  # 2 of 4 columns reach the default 0.5 share
    amount = result.column("amount")
    expected = abs(np.mean(current["amount"]) - np.mean(reference["amount"])) / np.std(reference["amount"])
    assert amount.statistic == pytest.approx(expected, rel=0.05)


def test_drift_share_threshold_and_must_not_drift(reference):
    current = make_frame(4000, seed=4, shift=6.0)
    assert compare_datasets(reference, current).drifted_columns == ["amount"]
    assert not compare_datasets(reference, current).dataset_drift
    result = compare_datasets(reference, current, DriftSettings(must_not_drift=("amount",)))
    assert result.dataset_drift
    assert result.must_not_drift_drifted == ["amount"]
    assert compare_datasets(reference, current, DriftSettings(drift_share_threshold=0.25)).dataset_drift


def test_small_reference_uses_p_value_tests():
    result = compare_datasets(make_frame(1000, seed=5), make_frame(300, seed=6))
    assert [c.test for c in result.columns] == ["ks", "ks", "ks", "homogeneity"]
    assert all(c.p_value is not None for c in result.columns)
    assert [c.drift_when for c in result.columns] == ["p_value_below"] * 3 + ["statistic_above"]
    drifted = compare_datasets(make_frame(1000, seed=5), make_frame(300, seed=7, shift=5.0))
    assert drifted.column("amount").drifted
    assert drifted.column("amount").p_value < 0.05


def test_per_column_test_and_threshold_overrides(reference):
    current = make_frame(4000, seed=8, shift=4.0)
    settings = DriftSettings(
        column_tests={"amount": "psi", "city": "linf", "score": "ks"},
        column_thresholds={"amount": 5.0, "age": 0.5},
    )
    result = compare_datasets(reference, current, settings)
    amount = result.column("amount")
    assert (amount.test, amount.threshold, amount.drifted) == ("psi", 5.0, False)
    assert result.column("city").test == "linf"
    assert result.column("score").test == "ks"
    assert result.column("age").threshold == 0.5
    assert (
        compare_datasets(reference, current, DriftSettings(column_tests={"amount": "psi"}))
        .column("amount")
        .drifted
    )


def test_bad_settings_are_spec_errors(reference):
    with pytest.raises(SpecError, match=r"'city'.*'wasserstein' does not apply to categorical"):
        compare_datasets(reference, reference, DriftSettings(column_tests={"city": "wasserstein"}))
    with pytest.raises(SpecError, match=r"column_thresholds names columns \['amont'\]"):
        compare_datasets(reference, reference, DriftSettings(column_thresholds={"amont": 0.2}))
    with pytest.raises(SpecError, match=r"must_not_drift names columns \['ghost'\]"):
        compare_datasets(reference, reference, DriftSettings(must_not_drift=("ghost",)))
    with pytest.raises(SpecError, match="unknown keys"):
        DriftSettings.from_dict({"drift_share": 0.3})
    with pytest.raises(SpecError, match="drift_share_threshold must be in"):
        DriftSettings(drift_share_threshold=0)
    with pytest.raises(SpecError, match="p-value threshold"):
        DriftSettings(column_tests={"amount": "ks"}, column_thresholds={"amount": 2})


def test_settings_round_trip():
    settings = DriftSettings(columns=("a",), column_tests={"a": "psi"}, must_not_drift=("a",))
    assert DriftSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_missing_values_are_their_own_signal(reference):
    current = make_frame(4000, seed=9)
    current.loc[: len(current) // 5, "amount"] = np.nan
    current.loc[:9, "score"] = np.inf
    result = compare_datasets(reference, current)
    amount = result.column("amount")
    assert not amount.distribution_drifted
    assert amount.missing.drifted
    assert amount.drifted
    assert amount.null_rate_current == pytest.approx(0.20025, abs=1e-4)
    score = result.column("score")
    assert score.infinite_rate_current == 10 / 4000
    assert score.missing.statistic == pytest.approx(10 / 4000)
    assert not score.drifted  # 0.25 % more missing values is under the 5 % default


def test_unseen_categories_are_their_own_signal(reference):
    current = make_frame(4000, seed=10)
    current.loc[:599, "city"] = "atlantis"
    city = compare_datasets(reference, current).column("city")
    assert city.unseen_share == pytest.approx(600 / 4000)
    assert city.unseen.drifted
    assert city.drifted
    small = compare_datasets(reference.iloc[:800], current.iloc[:300]).column("city")
    assert small.test == "homogeneity"
    assert small.distribution_drifted
    assert small.unseen.drifted
    assert small.p_value < 1e-6
    chisquare = compare_datasets(
        reference.iloc[:800], current.iloc[:300], DriftSettings(column_tests={"city": "chisquare"})
    ).column("city")
    assert chisquare.statistic == math.inf
    assert chisquare.p_value == 0.0
    assert chisquare.to_dict()["statistic"] is None
    assert chisquare.notes


def test_empty_current_batch_fails_closed(reference):
    with pytest.raises(InputDataError, match="current batch is empty"):
        compare_datasets(reference, reference.iloc[:0])
    with pytest.raises(InputDataError, match="reference is empty"):
        compare_datasets(reference.iloc[:0], reference)


def test_different_columns_or_types(reference):
    with pytest.raises(InputDataError, match=r"\['score'\] are in the reference but not in the current"):
        compare_datasets(reference, reference.drop(columns=["score"]))
    as_text = reference.assign(amount=reference["amount"].astype(str))
    with pytest.raises(InputDataError, match="'amount' is numeric in the reference but categorical"):
        compare_datasets(reference, as_text)
    result = compare_datasets(reference, reference.assign(extra=1))
    assert result.columns_only_in_current == ["extra"]
    with pytest.raises(InputDataError, match="DataFrame or a DatasetProfile"):
        compare_datasets(reference, [1, 2])


def test_all_null_column_is_decided_by_the_missing_signal():
    reference = pd.DataFrame({"x": [np.nan] * 50, "y": np.arange(50.0)})
    both_null = compare_datasets(reference, pd.DataFrame({"x": [np.nan] * 40, "y": np.arange(40.0)}))
    x = both_null.column("x")
    assert (x.statistic, x.drifted) == (None, False)
    assert "distribution test skipped" in x.notes[0]
    filled = compare_datasets(reference, pd.DataFrame({"x": np.ones(40), "y": np.arange(40.0)}))
    assert filled.column("x").drifted
    assert filled.column("x").missing.statistic == 1.0
    emptied = compare_datasets(
        reference.assign(x=1.0), pd.DataFrame({"x": [None] * 40, "y": np.arange(40.0)})
    )
    assert emptied.column("x").drifted


def test_constant_column(reference):
    constant = pd.DataFrame({"c": np.full(2000, 7.0)})
    same = compare_datasets(constant, pd.DataFrame({"c": np.full(100, 7.0)})).column("c")
    assert (same.test, same.statistic, same.drifted) == ("homogeneity", 0.0, False)
    assert compare_datasets(constant, pd.DataFrame({"c": np.full(100, 7.5)})).column("c").drifted
    wasserstein = DriftSettings(column_tests={"c": "wasserstein"})
    moved = compare_datasets(constant, pd.DataFrame({"c": np.full(100, 7.5)}), wasserstein).column("c")
    assert moved.drifted
    assert moved.statistic == math.inf
    assert "standard deviation is 0" in moved.notes[0]
    assert moved.to_dict()["statistic"] is None


def test_infinite_values_are_missing_not_binned():
    reference = pd.DataFrame({"v": np.r_[np.random.default_rng(0).normal(size=2000), [np.inf, -np.inf]]})
    current = pd.DataFrame({"v": np.r_[np.random.default_rng(1).normal(size=1000), [np.inf] * 100]})
    v = compare_datasets(reference, current).column("v")
    assert v.infinite_rate_reference == pytest.approx(2 / 2002)
    assert v.infinite_rate_current == pytest.approx(100 / 1100)
    assert not v.distribution_drifted
    assert v.missing.drifted
    assert math.isfinite(v.statistic)


def test_high_cardinality_categorical():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"user": [f"u{i}" for i in rng.integers(0, 100_000, 100_000)]})
    current = pd.DataFrame({"user": [f"u{i}" for i in rng.integers(0, 100_000, 20_000)]})
    raw = compare_datasets(reference, current).column("user")
    assert raw.unseen_share == 0.0
    assert raw.test == "homogeneity"
    assert not raw.drifted
    profile = profile_dataframe(reference, top_k=1000)
    stored = compare_datasets(profile, current).column("user")
    assert stored.unseen_share is None
    assert any("top-K" in note for note in stored.notes)
    assert not stored.unseen.drifted
    assert len(stored.distribution.labels) <= 20


def test_profile_reference_agrees_with_raw_reference(reference):
    current = make_frame(4000, seed=11, shift=3.0, city_shares=[0.3, 0.3, 0.2, 0.1, 0.1])
    profile = DatasetProfile.from_dict(json.loads(json.dumps(profile_dataframe(reference).to_dict())))
    exact = compare_datasets(reference, current)
    binned = compare_datasets(profile, current)
    current_profile = profile_dataframe(current, specs=profile.spec())
    from_profiles = compare_datasets(profile, current_profile)
    assert exact.drifted_columns == binned.drifted_columns == from_profiles.drifted_columns
    for exact_column, binned_column in zip(exact.columns, binned.columns, strict=True):
        if binned_column.method == "binned":
            assert abs(exact_column.statistic - binned_column.statistic) <= binned_column.error_bound
    for binned_column, profile_column in zip(binned.columns, from_profiles.columns, strict=True):
        assert profile_column.statistic == pytest.approx(binned_column.statistic, rel=1e-9)


def test_current_profile_must_share_reference_spec(reference):
    profile = profile_dataframe(reference)
    other_edges = profile_dataframe(make_frame(1000, seed=12))
    with pytest.raises(SpecError, match="'amount': the current profile has other bin edges"):
        compare_datasets(profile, other_edges, DriftSettings(columns=("amount",)))


def test_current_category_profile_must_share_reference_categories(reference):
    profile = profile_dataframe(reference, top_k=3)
    own_top_k = profile_dataframe(make_frame(1000, seed=15), columns=["city"], top_k=2)
    with pytest.raises(SpecError, match=r"'city': the current profile keeps an 'other' count"):
        compare_datasets(profile, own_top_k, DriftSettings(columns=("city",)))
    # a complete reference is folded onto the current profile's categories instead
    complete = profile_dataframe(reference)
    folded = compare_datasets(complete, own_top_k, DriftSettings(columns=("city",))).column("city")
    assert folded.unseen_share is None
    assert len(folded.distribution.labels) == 3


def test_kind_override_and_parallel_workers_agree(reference):
    current = make_frame(3000, seed=13)
    settings = DriftSettings(column_kinds={"age": "categorical"}, max_workers=1)
    serial = compare_datasets(reference, current, settings)
    assert serial.column("age").kind == "categorical"
    assert serial.column("age").test == "homogeneity"
    parallel = compare_datasets(
        reference, current, DriftSettings(column_kinds={"age": "categorical"}, max_workers=4)
    )
    assert serial.to_dict() == parallel.to_dict()


def test_parallel_workers_agree_on_the_production_path_and_keep_the_column_order(reference):
    """Threads take the costliest columns first (here the text column), the result keeps the
    reference's column order and equals the serial one."""
    profile = profile_dataframe(reference)
    current = make_frame(3000, seed=16, shift=3.0, city_shares=[0.7, 0.1, 0.1, 0.05, 0.05])
    serial = compare_datasets(profile, current, DriftSettings(max_workers=1))
    parallel = compare_datasets(profile, current, DriftSettings(max_workers=3))
    assert [column.column for column in parallel.columns] == ["amount", "age", "score", "city"]
    assert parallel.to_dict(include_distributions=True) == serial.to_dict(include_distributions=True)


def test_result_dict_is_json_safe(reference):
    current = make_frame(500, seed=14, shift=8.0)
    current.loc[:4, "city"] = "new"
    result = compare_datasets(reference.iloc[:900], current, DriftSettings(drift_share_threshold=0.25))
    data = result.to_dict(include_distributions=True)
    assert_json_safe(data)
    json.dumps(data, allow_nan=False)
    assert data["dataset_drift"] is True
    first = data["columns"][0]
    assert {
        "test",
        "statistic",
        "threshold",
        "units",
        "drifted",
        "null_rate_reference",
        "unseen_share",
    } <= set(first)
    assert "distribution" not in result.to_dict()["columns"][0]

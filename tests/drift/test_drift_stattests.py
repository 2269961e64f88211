"""The registry of drift tests: agreement with scipy, binned error bounds, registry rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from airflow_provider_mlprod.drift.profile import (
    CATEGORICAL,
    NUMERIC,
    CategoricalColumnProfile,
    profile_numeric_array,
)
from airflow_provider_mlprod.drift.stattests import (
    P_VALUE_BELOW,
    STAT_TESTS,
    ColumnSample,
    chisquare_test,
    default_test_name,
    get_stat_test,
    jensenshannon_test,
    ks_test,
    linf_test,
    psi_test,
    wasserstein_sorted,
    wasserstein_test,
)
from airflow_provider_mlprod.exceptions import SpecError


def raw_pair(reference: np.ndarray, current: np.ndarray, n_bins: int = 100):
    """Exact samples (sorted values kept) of two numeric arrays on the reference's quantile bins."""
    ref_profile, ref_sorted = profile_numeric_array(reference.astype(float), None, n_bins)
    cur_profile, cur_sorted = profile_numeric_array(
        current.astype(float), ref_profile.edges, keep_sorted=True
    )
    return ColumnSample(ref_profile, ref_sorted), ColumnSample(cur_profile, cur_sorted)


def binned_pair(reference: np.ndarray, current: np.ndarray, n_bins: int = 100):
    """The same samples without raw values: tests must use the bins."""
    exact_ref, exact_cur = raw_pair(reference, current, n_bins)
    return ColumnSample(exact_ref.profile), ColumnSample(exact_cur.profile)


def categorical(counts: dict[str, int], other: int = 0, nulls: int = 0) -> ColumnSample:
    return ColumnSample(CategoricalColumnProfile(counts=counts, other_count=other, null_count=nulls))


SAMPLES = [
    (np.random.default_rng(1).normal(0, 1, 300), np.random.default_rng(2).normal(0.3, 1.2, 217)),
    (np.random.default_rng(3).integers(0, 6, 500), np.random.default_rng(4).integers(1, 7, 499)),  # ties
    (np.random.default_rng(5).exponential(2.0, 40), np.random.default_rng(6).exponential(2.0, 40)),
    (np.random.default_rng(7).normal(0, 1, 20_000), np.random.default_rng(8).standard_t(3, 15_000)),
]


@pytest.mark.parametrize(("reference", "current"), SAMPLES)
def test_exact_ks_matches_scipy(reference, current):
    outcome = ks_test(*raw_pair(reference, current))
    expected = stats.ks_2samp(reference, current)
    assert outcome.method == "exact"
    assert outcome.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert outcome.p_value == pytest.approx(expected.pvalue, abs=1e-9)


@pytest.mark.parametrize(("reference", "current"), SAMPLES)
def test_exact_wasserstein_matches_scipy(reference, current):
    expected = stats.wasserstein_distance(reference, current)
    assert wasserstein_sorted(
        np.sort(reference.astype(float)), np.sort(current.astype(float))
    ) == pytest.approx(expected, abs=1e-9)
    outcome = wasserstein_test(*raw_pair(reference, current))
    assert outcome.statistic == pytest.approx(expected / np.std(reference), abs=1e-9)


def test_exact_wasserstein_equal_sizes_matches_scipy():
    rng = np.random.default_rng(11)
    reference, current = rng.normal(size=1000), rng.gamma(2.0, size=1000)
    assert wasserstein_sorted(np.sort(reference), np.sort(current)) == pytest.approx(
        stats.wasserstein_distance(reference, current), abs=1e-9
    )


def test_chisquare_matches_scipy():
    reference = {"a": 500, "b": 300, "c": 150, "d": 50}
    current = {"a": 90, "b": 70, "c": 30, "d": 10}
    outcome = chisquare_test(categorical(reference), categorical(current))
    observed = np.array([current[k] for k in reference], float)
    expected_counts = np.array(list(reference.values()), float) / 1000 * observed.sum()
    expected = stats.chisquare(observed, expected_counts)
    assert outcome.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert outcome.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_chisquare_new_category_is_infinite_drift():
    outcome = chisquare_test(categorical({"a": 10, "b": 10}), categorical({"a": 5, "b": 5, "new": 1}))
    assert outcome.statistic == math.inf
    assert outcome.p_value == 0.0
    assert STAT_TESTS["chisquare"].is_drift(outcome, 0.05)


def test_chisquare_single_category_is_no_drift():
    outcome = chisquare_test(categorical({"a": 10}), categorical({"a": 3}))
    assert (outcome.statistic, outcome.p_value) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        ({"a": 5, "b": 3, "c": 2}, {"a": 1, "b": 1, "c": 8}),
        ({"a": 5, "b": 3}, {"a": 5, "b": 3, "z": 4}),  # a category only in current
        ({"x": 1000}, {"x": 1000}),
    ],
)
def test_jensenshannon_matches_scipy_base_2(reference, current):
    outcome = jensenshannon_test(categorical(reference), categorical(current))
    labels = list(dict.fromkeys([*reference, *current]))
    p = np.array([reference.get(k, 0) for k in labels], float)
    q = np.array([current.get(k, 0) for k in labels], float)
    assert outcome.statistic == pytest.approx(distance.jensenshannon(p, q, base=2), abs=1e-9)
    assert 0.0 <= outcome.statistic <= 1.0


def test_jensenshannon_numeric_uses_profile_bins():
    rng = np.random.default_rng(12)
    reference, current = binned_pair(rng.normal(size=2000), rng.normal(0.5, size=3000), n_bins=20)
    outcome = jensenshannon_test(reference, current)
    expected = distance.jensenshannon(reference.profile.counts, current.profile.counts, base=2)
    assert outcome.statistic == pytest.approx(expected, abs=1e-9)
    assert outcome.method == "binned"


def test_psi_follows_its_formula_with_zero_share_floor():
    outcome = psi_test(categorical({"a": 50, "b": 50}), categorical({"a": 25, "b": 75}))
    assert outcome.statistic == pytest.approx((0.25 - 0.5) * math.log(0.5) + (0.75 - 0.5) * math.log(1.5))
    floored = psi_test(categorical({"a": 10}), categorical({"a": 5, "new": 5}))
    assert floored.statistic == pytest.approx(
        (0.5 - 1.0) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    )


def test_linf_is_largest_share_difference():
    outcome = linf_test(categorical({"a": 6, "b": 4}), categorical({"a": 3, "b": 5, "c": 2}))
    assert outcome.statistic == pytest.approx(0.3)


def test_top_k_reference_folds_new_categories_into_other():
    reference = categorical({"a": 60, "b": 30}, other=10)
    current = categorical({"a": 50, "b": 30, "zzz": 20})
    # Cells: a, b, (other): reference 0.6/0.3/0.1, current 0.5/0.3/0.2.
    assert linf_test(reference, current).statistic == pytest.approx(0.1)


DRIFTS = [
    (np.random.default_rng(20).normal(0, 1, 5000), np.random.default_rng(21).normal(0, 1, 4000)),
    (np.random.default_rng(22).normal(0, 1, 5000), np.random.default_rng(23).normal(0.4, 1.5, 4000)),
    (np.random.default_rng(24).lognormal(0, 1, 3000), np.random.default_rng(25).lognormal(0.3, 1, 3000)),
    (np.random.default_rng(26).integers(0, 4, 3000), np.random.default_rng(27).integers(0, 6, 2000)),
    (np.random.default_rng(28).uniform(0, 1, 3000), np.random.default_rng(29).uniform(-2, 3, 2000)),
]


@pytest.mark.parametrize("n_bins", [5, 20, 100])
@pytest.mark.parametrize(("reference", "current"), DRIFTS)
def test_binned_ks_is_within_its_documented_bound(reference, current, n_bins):
    exact = ks_test(*raw_pair(reference, current, n_bins))
    binned = ks_test(*binned_pair(reference, current, n_bins))
    assert binned.method == "binned"
    assert 0.0 <= binned.error_bound <= 1.0
    assert -1e-12 <= exact.statistic - binned.statistic <= binned.error_bound + 1e-12


@pytest.mark.parametrize("n_bins", [5, 20, 100])
@pytest.mark.parametrize(("reference", "current"), DRIFTS)
def test_binned_wasserstein_is_within_its_documented_bound(reference, current, n_bins):
    exact = wasserstein_test(*raw_pair(reference, current, n_bins))
    binned = wasserstein_test(*binned_pair(reference, current, n_bins))
    assert binned.method == "binned"
    assert abs(exact.statistic - binned.statistic) <= binned.error_bound + 1e-12


def test_binned_wasserstein_gets_close_with_fine_bins():
    rng = np.random.default_rng(30)
    reference, current = rng.normal(size=20_000), rng.normal(0.2, 1.1, 20_000)
    exact = wasserstein_test(*raw_pair(reference, current, 100)).statistic
    assert wasserstein_test(*binned_pair(reference, current, 100)).statistic == pytest.approx(exact, abs=0.01)


def test_constant_reference_wasserstein_is_zero_or_infinite():
    constant = np.full(50, 3.0)
    assert wasserstein_test(*raw_pair(constant, np.full(20, 3.0))).statistic == 0.0
    moved = wasserstein_test(*raw_pair(constant, np.full(20, 3.5)))
    assert moved.statistic == math.inf
    assert moved.notes


def test_registry_rows_are_complete():
    for name, test in STAT_TESTS.items():
        assert test.name == name
        assert test.kinds <= {NUMERIC, CATEGORICAL}
        assert test.kinds
        assert test.units
        assert test.description
        assert test.check_threshold(test.default_threshold, "c") == test.default_threshold
        if test.drift_when == P_VALUE_BELOW:
            assert 0 < test.default_threshold < 1
    assert set(STAT_TESTS) == {
        "ks", "chisquare", "jensenshannon", "psi", "wasserstein", "linf", "missing_rate", "unseen_share",
        "homogeneity", "wasserstein_quantile",
    }  # fmt: skip


def test_unknown_or_misapplied_test_is_a_spec_error():
    with pytest.raises(SpecError, match="unknown drift test 'kolmogorov'"):
        get_stat_test("kolmogorov", column="amount")
    with pytest.raises(SpecError, match="'ks' does not apply to categorical"):
        get_stat_test("ks", CATEGORICAL, "city")
    with pytest.raises(SpecError, match="p-value threshold"):
        STAT_TESTS["ks"].check_threshold(1.5, "amount")


def test_default_test_switches_above_one_thousand_reference_rows():
    assert default_test_name(NUMERIC, 1000) == "ks"
    assert default_test_name(CATEGORICAL, 1000) == "homogeneity"
    assert default_test_name(NUMERIC, 1001) == "wasserstein"
    assert default_test_name(CATEGORICAL, 1001) == "homogeneity"
    assert default_test_name(NUMERIC, 1001, distinct_values=5) == "homogeneity"
    assert default_test_name(NUMERIC, 1001, distinct_values=6) == "wasserstein"

"""Binned verdicts know their error: the exact statistic lies in the reported range, and a threshold
inside that range is reported as ``within_binning_error``; multiplicative shifts in heavy tails."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import profile_dataframe
from airflow_provider_mlprod.drift.report import render_html_report
from airflow_provider_mlprod.drift.settings import DriftSettings
from airflow_provider_mlprod.operators.drift import drift_summary

FAMILIES = {
    "normal": lambda rng, n, k: rng.normal(k, 1, n),
    "lognormal": lambda rng, n, k: rng.lognormal(0, 1, n) * (1 + k),
    "mixture": lambda rng, n, k: np.where(
        rng.uniform(size=n) < 0.7, rng.normal(0, 1, n), rng.normal(5 + k, 0.3, n)
    ),
    "zero_inflated": lambda rng, n, k: np.where(rng.uniform(size=n) < 0.95, 0.0, rng.exponential(1 + k, n)),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_the_exact_wasserstein_lies_in_the_binned_range(family, shift):
    rng = np.random.default_rng(hash((family, shift)) % 2**32)
    make = FAMILIES[family]
    reference = pd.DataFrame({"x": make(rng, 20_000, 0.0)})
    current = pd.DataFrame({"x": make(rng, 5_000, shift)})
    settings = DriftSettings(n_bins=12, column_tests={"x": "wasserstein"})
    exact = compare_datasets(reference, current, settings).column("x")
    binned = compare_datasets(profile_dataframe(reference, n_bins=12), current, settings).column("x")
    low, high = binned.statistic_range
    assert low - 1e-12 <= exact.statistic <= high + 1e-12
    assert abs(binned.statistic - exact.statistic) <= binned.error_bound + 1e-12
    assert binned.within_binning_error == (low <= binned.threshold < high and binned.p_value < 0.01)


def test_a_threshold_inside_the_binning_error_is_said_in_summary_and_report():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 50_000)})
    current = pd.DataFrame({"x": rng.normal(0.12, 1, 50_000)})
    profile = profile_dataframe(reference, n_bins=10)
    result = compare_datasets(profile, current)
    column = result.column("x")
    assert column.method == "binned"
    assert column.within_binning_error
    low, high = column.statistic_range
    assert low <= 0.1 < high
    assert any("within the binning error" in note for note in column.notes)
    summary = drift_summary(result, "orders", "file:///tmp/report.html")
    assert summary["columns"][0]["within_binning_error"] is True
    assert summary["columns"][0]["statistic_range"] == [low, high]
    page = render_html_report(result, "drift")
    assert "WITHIN THE BINNING ERROR" in page
    assert page.count('class="binning-error"') == 1  # marked on the plot of that column
    assert 'class="binning-error"' not in render_html_report(compare_datasets(reference, current), "drift")
    exact = compare_datasets(reference, current).column("x")
    assert exact.method == "exact"
    assert not exact.within_binning_error
    assert exact.statistic_range is None
    fine = compare_datasets(profile_dataframe(reference), current).column("x")  # 100 bins: narrower
    assert fine.statistic_range[1] - fine.statistic_range[0] < (high - low) / 2


def test_multiplicative_shift_in_a_heavy_tail_is_seen_on_the_quantile_scale():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"amount": rng.lognormal(0, 3, 20_000)})
    doubled = pd.DataFrame({"amount": rng.lognormal(0, 3, 20_000) * 2})
    same = pd.DataFrame({"amount": rng.lognormal(0, 3, 20_000)})
    assert not compare_datasets(reference, doubled).column("amount").drifted  # W / std is blind to it
    quantile = DriftSettings(column_tests={"amount": "wasserstein_quantile"})
    for ref in (reference, profile_dataframe(reference)):
        seen = compare_datasets(ref, doubled, quantile).column("amount")
        assert seen.drifted
        assert seen.statistic == pytest.approx(0.065, abs=0.015)
        assert not compare_datasets(ref, same, quantile).column("amount").drifted


def test_fast_ks_statistic_equals_scipy_with_ties_and_unequal_sizes():
    from scipy import stats

    from airflow_provider_mlprod.drift.stattests import ks_statistic_sorted

    rng = np.random.default_rng(11)
    for n, m in [(10, 7), (1000, 999), (5000, 20_000)]:
        for a, b in (
            (rng.integers(0, 20, n).astype(float), rng.integers(0, 22, m).astype(float)),
            (rng.normal(size=n), rng.normal(0.1, 1, m)),
        ):
            expected = stats.ks_2samp(a, b).statistic
            assert ks_statistic_sorted(np.sort(a), np.sort(b)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.1, 1.0])
def test_two_sample_p_value_from_the_bins_equals_the_exact_one(shift):
    """A clear shift is decided from the bins' lower bound of KS without searching the samples;
    the p-value is the one the exact statistic gives, and a small shift still gets the exact one."""
    from scipy import stats

    from airflow_provider_mlprod.drift.profile import profile_numeric_array
    from airflow_provider_mlprod.drift.stattests import (
        ColumnSample,
        _cell_counts,
        _two_sample_p_value,
        homogeneity_p_value,
    )

    rng = np.random.default_rng(5)
    reference, current = rng.normal(size=60_000), rng.normal(shift, 1, 50_000)
    ref_profile, ref_sorted = profile_numeric_array(reference, None, 50)
    cur_profile, cur_sorted = profile_numeric_array(current, ref_profile.edges, keep_sorted=True)
    ref_sample, cur_sample = ColumnSample(ref_profile, ref_sorted), ColumnSample(cur_profile, cur_sorted)
    ks = stats.ks_2samp(reference, current, method="asymp")
    ks_p = float(stats.kstwobign.sf(ks.statistic * math.sqrt(60_000 * 50_000 / 110_000)))
    bins_p = homogeneity_p_value(*_cell_counts(ref_sample, cur_sample))
    assert _two_sample_p_value(ref_sample, cur_sample) == pytest.approx(
        min(1.0, 2 * min(ks_p, bins_p)), rel=1e-9, abs=0.0
    )

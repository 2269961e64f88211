"""The default tests account for sample size: few false alarms on identical data, planted shifts caught.

A few cells of the sweep in ``bench/drift.py --sweep`` (which prints the whole table), on raw
DataFrames. The first two cells are the ones where 0.1's Jensen-Shannon default fired on identical
distributions 19 and 20 times out of 20.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import profile_dataframe
from airflow_provider_mlprod.drift.settings import DriftSettings

TRIALS = 100
SETTINGS = DriftSettings(max_workers=1)


def draw(rng: np.random.Generator, shares: np.ndarray, rows: int) -> pd.DataFrame:
    labels = np.array([f"c{index:04d}" for index in range(shares.size)], dtype=object)
    return pd.DataFrame({"c": pd.Series(labels[rng.choice(shares.size, rows, p=shares)], dtype="str")})


def flagged(shares: np.ndarray, moved: np.ndarray, rows: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    return sum(
        compare_datasets(draw(rng, shares, rows), draw(rng, moved, rows), SETTINGS).column("c").drifted
        for _ in range(TRIALS)
    )


def shares_of(categories: int) -> np.ndarray:
    return np.random.default_rng(categories).dirichlet(np.ones(categories))


@pytest.mark.parametrize(("categories", "rows"), [(50, 1500), (200, 5000), (1000, 100)])
def test_identical_distributions_raise_at_most_five_percent_false_alarms(categories, rows):
    shares = shares_of(categories)
    assert flagged(shares, shares, rows, seed=categories + rows) <= TRIALS * 0.05


@pytest.mark.parametrize("categories", [2, 50])
def test_a_share_moved_by_a_tenth_is_caught_at_a_thousand_rows(categories):
    shares = shares_of(categories)
    moved = shares * (1 - shares[0] - 0.1) / (1 - shares[0])
    moved[0] = shares[0] + 0.1
    assert flagged(shares, moved, 1000, seed=categories) >= TRIALS * 0.95


def test_a_quarter_std_mean_shift_is_caught_from_a_stored_profile():
    rng = np.random.default_rng(9)
    caught = false_alarms = 0
    for _ in range(TRIALS):
        reference = profile_dataframe(pd.DataFrame({"x": rng.normal(0, 1, 2000)}))
        caught += compare_datasets(
            reference, pd.DataFrame({"x": rng.normal(0.25, 1, 2000)}), SETTINGS
        ).dataset_drift
        false_alarms += compare_datasets(
            reference, pd.DataFrame({"x": rng.normal(0, 1, 2000)}), SETTINGS
        ).dataset_drift
    assert caught >= TRIALS * 0.95
    assert false_alarms <= TRIALS * 0.05

"""Planted inputs that once slipped past the drift engine: each test names what it broke."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import DatasetProfile, profile_dataframe
from airflow_provider_mlprod.drift.settings import DriftSettings
from airflow_provider_mlprod.exceptions import StoreError

SETTINGS = DriftSettings(max_workers=1)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("std", "Infinity", "std inf is not a finite number"),
        ("std", -1.0, "std -1.0 is negative"),
        ("std", 1e300, "std 1e[+]300 is larger than half the range"),
        ("mean", "NaN", "mean nan is not a finite number"),
        ("mean", 1e6, "mean 1000000.0 is outside"),
        ("mean", True, "mean True is not a finite number"),
        ("std", None, "std None is not a finite number"),
        ("min", 10.0, "min 10.0 is above max"),
    ],
)
def test_a_stored_profile_with_impossible_moments_is_refused_naming_them(field, value, problem):
    # a std of Infinity (valid JSON to Python) made W/std 0: the column could never drift
    rng = np.random.default_rng(1)
    stored = profile_dataframe(pd.DataFrame({"x": rng.normal(size=3000)})).to_dict()
    tampered = json.loads(json.dumps(stored))
    tampered["columns"]["x"][field] = float(value) if isinstance(value, str) else value
    with pytest.raises(StoreError, match=f"column 'x': .*{problem}"):
        DatasetProfile.from_dict(json.loads(json.dumps(tampered)))
    shifted = pd.DataFrame({"x": rng.normal(size=3000) + 1.0})
    assert compare_datasets(DatasetProfile.from_dict(stored), shifted, SETTINGS).column("x").drifted

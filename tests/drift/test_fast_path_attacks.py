"""The lookup of a current batch's text in the reference's categories against hostile columns."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_mlprod.drift import profile as profile_module
from airflow_provider_mlprod.drift.profile import EXPECTED_PROBE_ROWS, category_counts

EXPECTED = (
    "a",
    "A",
    "a ",
    " a",
    "true",
    "1",
    "caf\u00e9",
    unicodedata.normalize("NFD", "caf\u00e9"),
    "",
    "nan",
    "\U0001f600",
    "\u00a0",
)
OTHERS = ["b", "True", "FALSE", "1.0", "x" * 1000, "None"]


def _values(rows: int, *, head_expected: bool) -> list[str | None]:
    """``rows`` values whose first ``EXPECTED_PROBE_ROWS`` are expected (or not) and the rest the other
    way round, with a null every 97 rows."""
    head = min(rows, EXPECTED_PROBE_ROWS)
    expected = [EXPECTED[i % len(EXPECTED)] for i in range(rows)]
    others = [OTHERS[i % len(OTHERS)] + ("" if head_expected else str(i % 50)) for i in range(rows)]
    values = expected[:head] + others[head:] if head_expected else others[:head] + expected[head:]
    return [None if i % 97 == 0 else value for i, value in enumerate(values)]


def _columns(values: list[str | None]):
    yield pd.Series(values, dtype=pd.StringDtype("pyarrow"))
    yield pd.Series(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    yield pd.Series(pd.array(values, dtype=pd.ArrowDtype(pa.large_string())))
    third = len(values) // 3
    chunks = [
        pa.array(values[:third], pa.string()),
        pa.array([], pa.string()),
        pa.array(values[third:], pa.string()),
    ]
    yield pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(chunks)))
    yield pd.Series(pd.array(["zz"] * 7 + values, dtype=pd.ArrowDtype(pa.string()))).iloc[7:]


@pytest.mark.parametrize(
    "rows", [1, EXPECTED_PROBE_ROWS - 1, EXPECTED_PROBE_ROWS, EXPECTED_PROBE_ROWS + 1, 20_000]
)
@pytest.mark.parametrize("head_expected", [True, False])
def test_lookup_counts_like_counting_every_value(rows, head_expected):
    values = _values(rows, head_expected=head_expected)
    every_value = category_counts(pd.Series(values, dtype=object))
    for column in _columns(values):
        assert category_counts(column, EXPECTED) == every_value
        assert category_counts(column) == every_value
        if head_expected:  # the lookup itself is what was compared
            assert profile_module._expected_text_counts(column, EXPECTED) is not None


def test_booleans_and_numbers_as_text_fold_as_in_counting_every_value():
    values = ["True", "true", "TRUE", "False", "1", "1.0", "01", None] * 1000
    column = pd.Series(values, dtype=pd.StringDtype("pyarrow"))
    for expected in (("true", "1"), ("true", "false", "1", "1.0"), ("True",)):
        assert category_counts(column, expected) == category_counts(pd.Series(values, dtype=object))

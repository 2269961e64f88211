"""The summary: counts by severity, success policy, and JSON-safe conversion of every value."""

from __future__ import annotations

import datetime
import decimal
import json

import numpy as np
import pandas as pd

from airflow_provider_mlprod.validation.summary import ExpectationOutcome, ValidationSummary, to_json_safe


def test_counts_and_success_follow_severity():
    outcomes = (
        ExpectationOutcome(0, "expect_column_to_exist", "a", "critical", True),
        ExpectationOutcome(1, "expect_column_to_exist", "b", "warning", False),
        ExpectationOutcome(2, "expect_column_to_exist", "c", "warning", False),
    )
    summary = ValidationSummary("s", "d", 5, outcomes)
    assert summary.success
    assert (summary.evaluated, summary.passed, summary.failed_critical, summary.failed_warning) == (
        3,
        1,
        0,
        2,
    )
    failed = ValidationSummary(
        "s", "d", 5, (*outcomes, ExpectationOutcome(3, "expect_column_to_exist", "d", "critical", False))
    )
    assert not failed.success
    assert [item["position"] for item in failed.to_dict()["failures"]] == [1, 2, 3]
    assert len(failed.to_dict(include_passed=True)["outcomes"]) == 4


def test_with_report_and_quarantine_copy():
    summary = ValidationSummary("s", "d", 1, ())
    updated = summary.with_report("r.html").with_quarantine({"failing_rows": np.int64(2)})
    assert summary.report_location is None
    assert updated.to_dict()["report_location"] == "r.html"
    assert updated.to_dict()["quarantine"] == {"failing_rows": 2}


def test_json_safe_conversion():
    value = {
        "numpy_int": np.int64(3),
        "numpy_bool": np.bool_(True),
        "numpy_float": np.float32(1.5),
        "nan": float("nan"),
        "numpy_nan": np.float64("nan"),
        "inf": float("-inf"),
        "array": np.array([1, 2]),
        "when": datetime.date(2026, 1, 2),
        "timestamp": pd.Timestamp("2026-01-02 03:04:05"),
        "nat": pd.NaT,
        "na": pd.NA,
        "decimal": decimal.Decimal("2.50"),
        "bytes": b"\x00\x01",
        "tuple": (1, "a"),
        "long": "x" * 500,
        1: "key becomes text",
    }
    safe = to_json_safe(value)
    json.dumps(safe, allow_nan=False)
    assert safe["numpy_int"] == 3
    assert type(safe["numpy_int"]) is int
    assert safe["numpy_bool"] is True
    assert safe["numpy_float"] == 1.5
    assert [safe[key] for key in ("nan", "numpy_nan", "nat", "na")] == [None] * 4
    assert safe["inf"] == "-inf"
    assert safe["array"] == [1, 2]
    assert safe["when"] == "2026-01-02"
    assert safe["timestamp"] == "2026-01-02T03:04:05"
    assert safe["decimal"] == 2.5
    assert safe["bytes"] == "base64:AAE="
    assert safe["tuple"] == [1, "a"]
    assert len(safe["long"]) == 201
    assert safe["1"] == "key becomes text"

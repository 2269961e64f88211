"""Validating DataFrames and files: severity policy, summary content, fail-closed errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.validation.runner import (
    gx_context,
    validate_dataframe,
    validate_file,
    validate_sql,
)

from .conftest import make_orders

STATUS_IN_NEW_PAID = {
    "type": "expect_column_values_to_be_in_set",
    "kwargs": {"column": "status", "value_set": ["new", "paid"]},
}
AMOUNT_NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}


def test_all_met_is_success(orders):
    summary = validate_dataframe(orders, [AMOUNT_NOT_NULL], dataset="orders")
    assert summary.success
    assert summary.to_dict()["counts"] == {
        "evaluated": 1,
        "passed": 1,
        "failed_critical": 0,
        "failed_warning": 0,
    }
    assert summary.rows_checked == 10
    assert summary.failures == ()


def test_critical_failure_fails_and_warning_only_reports(orders):
    warning = validate_dataframe(orders, [{**STATUS_IN_NEW_PAID, "severity": "warning"}, AMOUNT_NOT_NULL])
    assert warning.success
    assert (warning.failed_warning, warning.failed_critical, warning.passed) == (1, 0, 1)
    critical = validate_dataframe(orders, [STATUS_IN_NEW_PAID, AMOUNT_NOT_NULL])
    assert not critical.success
    assert (critical.failed_warning, critical.failed_critical) == (0, 1)


def test_failure_details_and_capped_samples(orders):
    summary = validate_dataframe(orders, [STATUS_IN_NEW_PAID], sample_size=2)
    (failure,) = summary.to_dict()["failures"]
    assert failure["expectation_type"] == "expect_column_values_to_be_in_set"
    assert failure["column"] == "status"
    assert failure["severity"] == "critical"
    assert failure["unexpected_count"] == 3
    assert failure["unexpected_percent"] == pytest.approx(30.0)
    assert failure["sample_values"] == ["shipped"]  # three failing rows, one distinct value
    assert failure["parameters"] == {"value_set": ["new", "paid"]}


def test_samples_are_distinct_values_in_the_order_seen_and_capped():
    frame = pd.DataFrame({"code": ["x", "x", "x", "ok", "y", "y", "z", "w"]})
    spec = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "code", "value_set": ["ok"]}}
    (failure,) = validate_dataframe(frame, [spec], sample_size=3).to_dict()["failures"]
    assert failure["unexpected_count"] == 7
    assert failure["sample_values"] == ["x", "y", "z"]


def test_long_value_sets_are_abbreviated_in_the_json_summary_only():
    frame = pd.DataFrame({"code": [f"c{i}" for i in range(30)] + ["bad"]})
    allowed = [f"c{i}" for i in range(30)]
    spec = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "code", "value_set": allowed}}
    summary = validate_dataframe(frame, [spec])
    (failure,) = summary.to_dict()["failures"]
    assert failure["parameters"]["value_set"] == [*allowed[:20], "... 10 more"]
    assert summary.failures[0].parameters["value_set"] == allowed


def test_summary_is_strict_json_with_numpy_values():
    frame = pd.DataFrame(
        {"x": np.array([1.5, np.nan, np.inf, 2.0]), "when": pd.date_range("2026-01-01", periods=4)}
    )
    summary = validate_dataframe(
        frame,
        [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "max_value": 1}},
            {
                "type": "expect_column_quantile_values_to_be_between",
                "kwargs": {
                    "column": "x",
                    "quantile_ranges": {"quantiles": [0.5], "value_ranges": [[100, 200]]},
                },
            },
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}},
        ],
    )
    text = json.dumps(summary.to_dict(include_passed=True), allow_nan=False)
    failures = {item["expectation_type"]: item for item in json.loads(text)["failures"]}
    assert failures["expect_column_values_to_be_between"]["sample_values"] == [1.5, "inf", 2.0]
    assert failures["expect_column_values_to_not_be_null"]["sample_values"] == [None]
    assert failures["expect_column_quantile_values_to_be_between"]["observed_value"]["quantiles"] == [0.5]


def test_missing_column_is_named_before_validating(orders):
    suite = [
        AMOUNT_NOT_NULL,
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "discount", "min_value": 0}},
    ]
    with pytest.raises(
        InputDataError, match=r"orders lacks column\(s\) 'discount' \(read by #1 expect_column_mean"
    ):
        validate_dataframe(orders, suite, dataset="orders")


def test_column_presence_expectation_reports_instead_of_raising(orders):
    summary = validate_dataframe(
        orders, [{"type": "expect_column_to_exist", "kwargs": {"column": "discount"}}]
    )
    assert not summary.success
    assert summary.failures[0].column == "discount"


def test_empty_frame_is_an_error(orders):
    with pytest.raises(InputDataError, match="orders has no rows"):
        validate_dataframe(orders.iloc[0:0], [AMOUNT_NOT_NULL], dataset="orders")


def test_not_a_frame_is_an_error():
    with pytest.raises(InputDataError, match="expected a pandas DataFrame, got list"):
        validate_dataframe([{"a": 1}], [AMOUNT_NOT_NULL])


def test_expectation_gx_cannot_evaluate_is_an_error(orders):
    suite = [{"type": "expect_column_mean_to_be_between", "kwargs": {"column": "status", "min_value": 0}}]
    with pytest.raises(
        InputDataError, match=r"#0 expect_column_mean_to_be_between\(status\) could not be evaluated"
    ):
        validate_dataframe(orders, suite)


def test_unknown_type_and_empty_suite_fail_the_run(orders):
    with pytest.raises(SpecError, match="expect_columns_to_sparkle"):
        validate_dataframe(orders, [AMOUNT_NOT_NULL, {"type": "expect_columns_to_sparkle", "kwargs": {}}])
    with pytest.raises(SpecError, match="no expectations"):
        validate_dataframe(orders, [])


def test_bad_sample_size(orders):
    with pytest.raises(SpecError, match="sample_size"):
        validate_dataframe(orders, [AMOUNT_NOT_NULL], sample_size=-1)


def test_file_validation_names_the_file(tmp_path):
    path = tmp_path / "orders.csv"
    make_orders().to_csv(path, index=False)
    summary = validate_file(path, [STATUS_IN_NEW_PAID], report_location=tmp_path / "report.html")
    assert summary.dataset == str(path)
    assert not summary.success
    assert summary.report_location == str(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text().count("expect_column_values_to_be_in_set") == 1


def test_file_missing_a_suite_column(tmp_path):
    path = tmp_path / "orders.csv"
    make_orders().drop(columns=["amount"]).to_csv(path, index=False)
    with pytest.raises(InputDataError, match=r"orders\.csv lacks column\(s\) 'amount'"):
        validate_file(path, [AMOUNT_NOT_NULL])


def test_one_context_serves_every_run(orders, orders_table):
    context = gx_context()
    validate_dataframe(orders, [AMOUNT_NOT_NULL])
    before = set(context.data_sources.all())
    validate_dataframe(orders, [AMOUNT_NOT_NULL])
    validate_sql(orders_table, [AMOUNT_NOT_NULL], table="orders")
    assert gx_context() is context
    assert set(context.data_sources.all()) == before


def test_a_pyarrow_string_view_column_validates_like_plain_text(orders):
    """pandas cannot work with pyarrow ``string_view`` columns (GX raised a bare NotImplementedError, so
    the task would have been retried forever); they validate as the same values in plain text."""
    pa = pytest.importorskip("pyarrow")
    viewed = orders.assign(status=orders["status"].astype(pd.ArrowDtype(pa.string_view())))
    expected = validate_dataframe(orders, [STATUS_IN_NEW_PAID], sample_size=2).to_dict()
    summary = validate_dataframe(viewed, [STATUS_IN_NEW_PAID], sample_size=2).to_dict()
    assert summary["counts"] == expected["counts"]
    assert summary["failures"] == expected["failures"]
    assert summary["failures"][0]["unexpected_count"] == 3


def test_a_pyarrow_string_view_index_validates_like_plain_text(orders, tmp_path):
    """An index of string_view text (a Parquet file's stored index read back with
    dtype_backend="pyarrow") made GX raise a bare NotImplementedError, which Airflow would retry."""
    from airflow_provider_mlprod.validation.quarantine import FileQuarantine

    pa = pytest.importorskip("pyarrow")
    keys = [f"order{i}" for i in range(len(orders))]
    viewed = orders.set_axis(pd.Index(keys, dtype=pd.ArrowDtype(pa.string_view()), name="key"), axis=0)
    expected = validate_dataframe(orders, [STATUS_IN_NEW_PAID], sample_size=2).to_dict()
    summary = validate_dataframe(viewed, [STATUS_IN_NEW_PAID], sample_size=2).to_dict()
    assert summary["counts"] == expected["counts"]
    assert summary["failures"] == expected["failures"]
    target = FileQuarantine(tmp_path / "clean.csv", tmp_path / "rejected.csv")
    quarantined = validate_dataframe(viewed, [STATUS_IN_NEW_PAID], quarantine=target).quarantine
    assert (quarantined["passing_rows"], quarantined["failing_rows"]) == (7, 3)

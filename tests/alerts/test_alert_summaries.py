"""Alerts built from validation, drift and gate summaries."""

from __future__ import annotations

import copy
import math

import pytest

from airflow_provider_mlprod.alerts.slack import build_slack_payload
from airflow_provider_mlprod.alerts.summaries import alert_from_drift, alert_from_gate, alert_from_validation
from airflow_provider_mlprod.exceptions import InputDataError, SpecError

RUN = {"dag_id": "etl", "run_id": "scheduled__1", "task_id": "check", "report_url": "https://r.example/1"}

VALIDATION_FAILED = {
    "success": False,
    "suite_name": "orders_suite",
    "data_asset": "orders",
    "evaluated": 5,
    "passed": 3,
    "failed": 2,
    "failed_expectations": [
        {"type": "expect_column_values_to_not_be_null", "column": "amount", "unexpected_percent": 12.5},
        {"type": "expect_table_row_count_to_be_between", "column": None, "severity": "warning"},
    ],
}

DRIFT = {
    "dataset_drift": True,
    "dataset": "features_daily",
    "share_threshold": 0.5,
    "columns": [
        {"column": "amount", "test": "wasserstein", "statistic": 0.31, "threshold": 0.1, "drifted": True},
        {"column": "country", "test": "jensen_shannon", "statistic": 0.22, "threshold": 0.1, "drifted": True},
        {"column": "age", "test": "ks", "statistic": 0.01, "threshold": 0.05, "drifted": False},
    ],
}

GATE = {
    "passed": False,
    "model_name": "churn",
    "candidate_version": "v7",
    "baseline_version": "v6",
    "metrics": [
        {
            "metric": "auc",
            "value": 0.81,
            "baseline": 0.84,
            "verdict": "fail",
            "reason": "dropped by 0.03 > 0.01",
        },
        {"metric": "latency_ms", "value": 12.0, "baseline": None, "verdict": "pass", "reason": ""},
    ],
}


def test_failed_validation_is_critical_with_key_numbers() -> None:
    alert = alert_from_validation(VALIDATION_FAILED, **RUN, log_url="https://af.example/log")
    assert alert.severity == "critical"
    assert alert.action == "trigger"
    assert alert.title == "Validation failed: orders (2 of 5 expectations)"
    assert "expect_column_values_to_not_be_null on column 'amount': 12.50% unexpected" in alert.summary
    assert "expect_table_row_count_to_be_between (warning)" in alert.summary
    assert alert.rendered_facts["Failed"] == "2"
    assert alert.rendered_facts["Success rate"] == "60.0%"
    assert [link.label for link in alert.links] == ["Report", "Task log"]
    assert (alert.dag_id, alert.run_id, alert.task_id) == ("etl", "scheduled__1", "check")
    assert alert.dedup_key == "mlprod:validation:etl:check:orders_suite"


def test_validation_with_only_warning_failures_is_a_warning() -> None:
    summary = copy.deepcopy(VALIDATION_FAILED)
    for failure in summary["failed_expectations"]:
        failure["severity"] = "warning"
    assert alert_from_validation(summary).severity == "warning"
    summary["success"] = True
    alert = alert_from_validation(summary)
    assert alert.severity == "warning"
    assert alert.title.startswith("Validation passed with warnings")


def test_passed_validation_resolves_with_the_same_dedup_key() -> None:
    passed = {"success": True, "suite_name": "orders_suite", "evaluated": 5, "failed": 0}
    alert = alert_from_validation(passed, dag_id="etl", task_id="check")
    failed = alert_from_validation(VALIDATION_FAILED, dag_id="etl", task_id="check")
    assert (alert.severity, alert.action) == ("info", "resolve")
    assert alert.dedup_key == failed.dedup_key
    assert alert.rendered_facts["Passed"] == "5"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"success": None}, "'success' must be true or false"),
        ({"evaluated": -1}, "'evaluated' must be a non-negative integer"),
        ({"evaluated": 0, "passed": 0, "failed": 0}, "'evaluated' is 0; nothing was validated"),
        ({"failed": 9}, r"failed \(9\) exceeds evaluated \(5\)"),
        ({"passed": 4}, r"passed \(4\) \+ failed \(2\) != evaluated \(5\)"),
        ({"failed_expectations": "oops"}, "'failed_expectations' must be a list"),
        ({"failed_expectations": [{"column": "a"}]}, r"failed_expectations\[0\] has no 'type'"),
        ({"failed_expectations": [{"type": "t", "unexpected_percent": math.nan}]}, "finite number"),
        ({"failed_expectations": [{"type": "t", "severity": "high"}]}, "severity 'high'"),
    ],
)
def test_bad_validation_summaries_are_rejected(change: dict, message: str) -> None:
    summary = {**copy.deepcopy(VALIDATION_FAILED), **change}
    with pytest.raises(InputDataError, match=message):
        alert_from_validation(summary)


def test_missing_validation_key_is_named() -> None:
    with pytest.raises(InputDataError, match="validation summary: key 'failed' is missing"):
        alert_from_validation({"success": False, "evaluated": 3})
    with pytest.raises(InputDataError, match="expected a dict"):
        alert_from_validation(["success"])  # type: ignore[arg-type]


def test_dataset_drift_is_a_warning_listing_drifted_columns() -> None:
    alert = alert_from_drift(DRIFT, **RUN)
    assert alert.severity == "warning"
    assert alert.title == "Data drift: features_daily (2 of 3 columns drifted)"
    assert "amount: wasserstein = 0.31 (threshold 0.1)" in alert.summary
    assert "age" not in alert.summary
    assert alert.rendered_facts["Drift share"] == "66.7%"
    assert alert.rendered_facts["Share threshold"] == "50.0%"
    assert alert.rendered_facts["Dataset drift"] == "yes"
    assert alert_from_drift(DRIFT, severity_on_drift="critical").severity == "critical"


def test_column_drift_without_dataset_drift_is_info_and_no_drift_resolves() -> None:
    partial = {**DRIFT, "dataset_drift": False}
    assert (alert_from_drift(partial).severity, alert_from_drift(partial).action) == ("info", "trigger")
    none = {"dataset_drift": False, "columns": [dict(DRIFT["columns"][2])]}
    alert = alert_from_drift(none)
    assert (alert.severity, alert.action) == ("info", "resolve")
    assert alert.title == "No drift: dataset (1 columns compared)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"columns": []}, "'columns' is empty"),
        ({"dataset_drift": "yes"}, "'dataset_drift' must be true or false"),
        ({"drift_share": 1.5}, r"drift_share must be within \[0, 1\]"),
        (
            {
                "columns": [
                    {"column": "a", "test": "ks", "statistic": math.nan, "threshold": 0.1, "drifted": False}
                ]
            },
            "column 'a' statistic must be a finite number",
        ),
        (
            {"columns": [{"column": "a", "test": "ks", "statistic": 0.2, "threshold": 0.1}]},
            "column 'a' 'drifted' must be true or false",
        ),
        ({"columns": [{"test": "ks"}]}, r"columns\[0\] has no 'column'"),
    ],
)
def test_bad_drift_summaries_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        alert_from_drift({**DRIFT, **change})


def test_rejected_gate_lists_failed_metrics() -> None:
    alert = alert_from_gate(GATE, **RUN)
    assert alert.severity == "warning"
    assert alert.title == "Model gate rejected: churn v7 (1 of 2 metrics failed)"
    assert "auc = 0.81 vs baseline 0.84: dropped by 0.03 > 0.01" in alert.summary
    assert alert.rendered_facts["auc"] == "0.81 vs baseline 0.84 (fail)"
    assert alert.rendered_facts["latency_ms"] == "12 (pass)"
    assert alert.dedup_key == "mlprod:gate:etl:check:churn"
    assert alert_from_gate(GATE, severity_on_failure="critical").severity == "critical"


def test_passed_gate_resolves() -> None:
    passed = {**GATE, "passed": True}
    alert = alert_from_gate(passed)
    assert (alert.severity, alert.action, alert.title) == ("info", "resolve", "Model gate passed: churn v7")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": []}, "'metrics' is empty"),
        ({"passed": 1}, "'passed' must be true or false"),
        (
            {"metrics": [{"metric": "auc", "value": 0.8, "verdict": "maybe"}]},
            "verdict must be 'pass' or 'fail'",
        ),
        (
            {"metrics": [{"metric": "auc", "value": "high", "verdict": "fail"}]},
            "metric 'auc' value must be a finite",
        ),
        ({"metrics": [{"value": 1.0, "verdict": "pass"}]}, r"metrics\[0\] has no 'metric'"),
    ],
)
def test_bad_gate_summaries_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        alert_from_gate({**GATE, **change})


def test_bad_severity_parameters_are_rejected() -> None:
    with pytest.raises(SpecError, match="severity_on_drift"):
        alert_from_drift(DRIFT, severity_on_drift="loud")
    with pytest.raises(SpecError, match="severity_on_failure"):
        alert_from_gate(GATE, severity_on_failure="loud")


def test_many_failures_are_summarised_and_render_in_slack() -> None:
    summary = {
        "success": False,
        "evaluated": 30,
        "failed": 25,
        "failed_expectations": [{"type": f"expect_{index}", "column": f"c{index}"} for index in range(25)],
    }
    alert = alert_from_validation(summary)
    assert "… and 15 more" in alert.summary
    assert "expect_10 " not in alert.summary
    payload = build_slack_payload(None, alert)
    assert payload["blocks"][0]["type"] == "header"


def test_long_subject_gets_a_hashed_dedup_key() -> None:
    alert = alert_from_validation({"success": False, "evaluated": 1, "failed": 1, "suite_name": "s" * 300})
    assert alert.dedup_key.startswith("mlprod:validation:")
    assert len(alert.dedup_key) <= 255

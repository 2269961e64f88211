"""Alerts built from the summaries the validation, drift and gate producers really return."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest

from airflow_provider_mlprod.alerts import summaries as build
from airflow_provider_mlprod.alerts.channels import build_slack_payload
from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.settings import DriftSettings
from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.gates import evaluate_gate
from airflow_provider_mlprod.summaries import (
    DriftResultSummary,
    GateResultSummary,
    ValidationResultSummary,
    summary_from_dict,
    summary_kind_of,
)
from airflow_provider_mlprod.validation.summary import ExpectationOutcome, ValidationSummary


def alert_from_validation(data, **ids):
    return build.alert_from_validation(ValidationResultSummary.from_dict(data), **ids)


def alert_from_drift(data, **ids):
    return build.alert_from_drift(DriftResultSummary.from_dict(data), **ids)


def alert_from_gate(data, **ids):
    return build.alert_from_gate(GateResultSummary.from_dict(data), **ids)


def alert_from_summary(data, kind=None):
    return build.alert_from_summary(summary_from_dict(data, kind))


RUN = {"dag_id": "etl", "run_id": "scheduled__1", "task_id": "check", "report_url": "https://r.example/1"}


# -- producers -----------------------------------------------------------------------------------


def _outcome(position: int, expectation_type: str, column: str | None, severity: str, success: bool, **more):
    return ExpectationOutcome(position, expectation_type, column, severity, success, **more)


def _validation(*outcomes: ExpectationOutcome, **more) -> dict:
    summary = ValidationSummary("orders_suite", "orders.csv", 200, tuple(outcomes), **more)
    return summary.to_dict()


PASSING = (
    _outcome(0, "expect_column_to_exist", "id", "critical", True),
    _outcome(1, "expect_column_values_to_be_unique", "id", "critical", True),
    _outcome(2, "expect_column_values_to_be_between", "amount", "warning", True),
)
NULL_IDS = _outcome(
    3,
    "expect_column_values_to_not_be_null",
    "amount",
    "critical",
    False,
    unexpected_count=25,
    unexpected_percent=12.5,
    sample_values=["secret-ish-customer-value", None],
)
ROW_COUNT = _outcome(4, "expect_table_row_count_to_be_between", None, "warning", False, observed_value=3)

VALIDATION_FAILED = _validation(
    *PASSING, NULL_IDS, ROW_COUNT, report_location="https://reports.example/orders.html"
)
VALIDATION_WARNINGS = _validation(*PASSING, ROW_COUNT)
VALIDATION_PASSED = _validation(*PASSING)

REFERENCE = pd.DataFrame(
    {"amount": [1.0, 2, 3, 4, 5, 6, 7, 8] * 5, "country": ["a", "b"] * 20, "age": [30.0, 40.0] * 20}
)
CURRENT = pd.DataFrame(
    {"amount": [11.0, 12, 13, 14, 15, 16, 17, 18] * 5, "country": ["a", "c"] * 20, "age": [30.0, 40.0] * 20}
)


def _drift(current: pd.DataFrame = CURRENT, **settings) -> dict:
    settings = {
        "max_workers": 1,
        "column_tests": {"amount": "wasserstein", "country": "chisquare"},
        **settings,
    }
    return compare_datasets(REFERENCE, current, DriftSettings(**settings)).to_dict()


DRIFT = _drift()
THRESHOLDS = {
    "auc": {"min": 0.75, "min_absolute_change": -0.01},
    "latency_ms": {"max": 50, "greater_is_better": False},
    "f1": {"min": 0.5},
}


def _gate(metrics: dict, **extra) -> dict:
    """The summary ModelMetricsGateOperator returns: the gate result plus the model keys."""
    result = evaluate_gate(
        metrics, THRESHOLDS, baseline={"auc": 0.84}, baseline_version="6", if_no_baseline="fail"
    )
    return {
        "model_name": "churn",
        "model_version": "7",
        "metrics_source": "XCom of task 'train'",
        "champion_version": "6",
        **result.to_dict(),
        **extra,
    }


GATE_REJECTED = _gate({"auc": 0.81, "latency_ms": 12})
GATE_PASSED = _gate({"auc": 0.86, "latency_ms": 12, "f1": 0.7})


# -- kinds ---------------------------------------------------------------------------------------


def test_summary_kinds_are_told_from_the_real_shapes() -> None:
    assert summary_kind_of(VALIDATION_FAILED) == "validation"
    assert summary_kind_of(DRIFT) == "drift"
    assert summary_kind_of(GATE_REJECTED) == "gate"
    assert summary_kind_of({"rows": 3}) is None
    assert summary_kind_of(["not", "a", "dict"]) is None


def test_alert_from_summary_picks_the_builder_and_refuses_unknown_kinds() -> None:
    assert alert_from_summary(VALIDATION_FAILED).title.startswith("Validation failed")
    assert alert_from_summary(DRIFT, "drift").title.startswith("Data drift")
    assert alert_from_summary(GATE_REJECTED, "gate").title.startswith("Model gate rejected")
    with pytest.raises(InputDataError, match="not one of"):
        alert_from_summary(VALIDATION_FAILED, "lineage")
    with pytest.raises(InputDataError, match="not a validation, drift or gate summary"):
        alert_from_summary({"rows": 3})
    with pytest.raises(InputDataError, match="expected a dict"):
        alert_from_summary("passed", "gate")  # type: ignore[arg-type]


# -- validation ----------------------------------------------------------------------------------


def test_failed_validation_is_critical_with_key_numbers() -> None:
    alert = alert_from_validation(VALIDATION_FAILED, **RUN, log_url="https://af.example/log")
    assert alert.severity == "critical"
    assert alert.action == "trigger"
    assert alert.title == "Validation failed: orders.csv (2 of 5 expectations)"
    assert "expect_column_values_to_not_be_null on column 'amount': 25 unexpected (12.50%)" in alert.summary
    assert "expect_table_row_count_to_be_between (warning)" in alert.summary
    assert "1 critical, 1 warning" in alert.summary
    assert "secret-ish-customer-value" not in alert.summary + str(alert.facts)  # no row values
    facts = alert.rendered_facts
    assert (facts["Failed"], facts["Failed (critical)"], facts["Failed (warning)"]) == ("2", "1", "1")
    assert facts["Success rate"] == "60.0%"
    assert facts["Rows checked"] == "200"
    assert [link.label for link in alert.links] == ["Report", "Task log"]
    assert alert.links[0].url == RUN["report_url"]  # an explicit report URL wins
    assert (alert.dag_id, alert.run_id, alert.task_id) == ("etl", "scheduled__1", "check")
    assert alert.dedup_key == "mlprod:validation:etl:check:orders_suite"


def test_http_report_location_becomes_the_report_link_and_a_file_one_does_not() -> None:
    assert [link.url for link in alert_from_validation(VALIDATION_FAILED).links] == [
        "https://reports.example/orders.html"
    ]
    local = {**VALIDATION_FAILED, "report_location": "file:///tmp/reports/orders.html"}
    assert list(alert_from_validation(local).links) == []


def test_validation_with_only_warning_failures_passes_with_a_warning() -> None:
    alert = alert_from_validation(VALIDATION_WARNINGS)
    assert VALIDATION_WARNINGS["success"] is True
    assert (alert.severity, alert.action) == ("warning", "trigger")
    assert alert.title == "Validation passed with warnings: orders.csv (1 of 4 expectations failed)"


def test_passed_validation_resolves_with_the_same_dedup_key() -> None:
    alert = alert_from_validation(VALIDATION_PASSED, dag_id="etl", task_id="check")
    failed = alert_from_validation(VALIDATION_FAILED, dag_id="etl", task_id="check")
    assert (alert.severity, alert.action) == ("info", "resolve")
    assert alert.title == "Validation passed: orders.csv (3 expectations)"
    assert alert.dedup_key == failed.dedup_key
    assert alert.rendered_facts["Passed"] == "3"


def test_quarantined_rows_are_a_fact() -> None:
    files = {"passing_location": "s3://b/ok.parquet", "failing_location": "s3://b/bad.parquet"}
    summary = _validation(*PASSING, NULL_IDS, quarantine={**files, "passing_rows": 175, "failing_rows": 25})
    assert alert_from_validation(summary).rendered_facts["Quarantined rows"] == "25"
    table = _validation(*PASSING, NULL_IDS, quarantine={"table": "q.orders", "records": 25})
    assert alert_from_validation(table).rendered_facts["Quarantined rows"] == "25"


def _with_counts(**counts) -> dict:
    summary = copy.deepcopy(VALIDATION_FAILED)
    summary["counts"].update(counts)
    return summary


def _with_failure(**change) -> dict:
    summary = copy.deepcopy(VALIDATION_FAILED)
    summary["failures"][0].update(change)
    return summary


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ({**VALIDATION_FAILED, "success": None}, "'success' must be true or false"),
        ({**VALIDATION_FAILED, "success": True}, "'success' is True but counts.failed_critical is 1"),
        ({**VALIDATION_PASSED, "success": False}, "'success' is False but counts.failed_critical is 0"),
        ({**VALIDATION_FAILED, "counts": [5, 3]}, "'counts' must be a dict"),
        (_with_counts(evaluated=-1), "'counts.evaluated' must be a non-negative integer"),
        (_with_counts(failed_critical="1"), "'counts.failed_critical' must be a non-negative integer"),
        (
            _with_counts(evaluated=0, passed=0, failed_critical=0, failed_warning=0),
            "'counts.evaluated' is 0; nothing was validated",
        ),
        (
            _with_counts(passed=4),
            r"passed \(4\) \+ failed_critical \(1\) \+ failed_warning \(1\) != evaluated",
        ),
        ({**VALIDATION_FAILED, "failures": "oops"}, "'failures' must be a list"),
        (
            {**VALIDATION_PASSED, "failures": VALIDATION_FAILED["failures"]},
            "2 failures listed but counts say 0",
        ),
        (_with_failure(expectation_type=None), r"failures\[0\] has no 'expectation_type'"),
        (_with_failure(unexpected_percent=math.nan), "unexpected_percent must be a finite number"),
        (_with_failure(unexpected_count=-3), "unexpected_count must be a non-negative integer"),
        (_with_failure(severity="high"), "severity 'high'"),
        ({**VALIDATION_FAILED, "quarantine": "s3://b"}, "'quarantine' must be a dict"),
    ],
)
def test_bad_validation_summaries_are_rejected(summary: dict, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        alert_from_validation(summary)


def test_missing_validation_keys_are_named() -> None:
    without_counts = {key: value for key, value in VALIDATION_FAILED.items() if key != "counts"}
    with pytest.raises(InputDataError, match="validation summary: key 'counts' is missing"):
        alert_from_validation(without_counts)
    summary = copy.deepcopy(VALIDATION_FAILED)
    del summary["counts"]["failed_warning"]
    with pytest.raises(InputDataError, match=r"key 'counts\.failed_warning' is missing"):
        alert_from_validation(summary)
    with pytest.raises(InputDataError, match="expected a dict"):
        alert_from_validation(["success"])  # type: ignore[arg-type]


def test_many_failures_are_summarised_and_render_in_slack() -> None:
    failures = [_outcome(index, f"expect_{index}", f"c{index}", "critical", False) for index in range(25)]
    alert = alert_from_validation(_validation(*PASSING, *failures))
    assert "… and 15 more" in alert.summary
    assert "expect_10 " not in alert.summary
    payload = build_slack_payload(None, alert)
    assert payload["blocks"][0]["type"] == "header"


def test_long_subject_gets_a_hashed_dedup_key() -> None:
    summary = ValidationSummary("s" * 300, "orders", 1, (NULL_IDS,)).to_dict()
    alert = alert_from_validation(summary)
    assert alert.dedup_key.startswith("mlprod:validation:")
    assert len(alert.dedup_key) <= 255


# -- drift ---------------------------------------------------------------------------------------


def test_dataset_drift_is_a_warning_listing_why_each_column_drifted() -> None:
    alert = alert_from_drift(DRIFT, **RUN)
    assert alert.severity == "warning"
    assert alert.title == "Data drift: dataset (2 of 3 columns drifted)"
    assert "• amount: wasserstein = 4.364 > 0.1" in alert.summary
    assert (
        "• country: chisquare p-value 0 < 0.05 (statistic inf); new categories (50.0% of current values)"
        in (alert.summary)
    )
    assert "age" not in alert.summary
    facts = alert.rendered_facts
    assert facts["Drift share"] == "66.7%"
    assert facts["Share threshold"] == "50.0%"
    assert facts["Dataset drift"] == "yes"
    assert facts["Rows (reference / current)"] == "40 / 40"
    assert alert_from_drift(DRIFT, severity_on_drift="critical").severity == "critical"


def test_infinite_statistic_is_accepted_and_shown_as_inf() -> None:
    country = next(column for column in DRIFT["columns"] if column["column"] == "country")
    assert country["statistic"] is None
    assert country["distribution_drifted"] is True
    assert "(statistic inf)" in alert_from_drift(DRIFT).summary


def test_a_test_that_did_not_apply_shows_n_a_and_the_missing_signal_decides() -> None:
    reference = pd.DataFrame({"score": [1.0, 2.0, 3.0, None] * 10})
    current = pd.DataFrame({"score": [math.nan] * 40})
    summary = compare_datasets(reference, current, DriftSettings(max_workers=1)).to_dict()
    assert summary["columns"][0]["statistic"] is None
    alert = alert_from_drift(summary)
    assert "• score: missing-value rate changed by 75.0%" in alert.summary
    quiet = copy.deepcopy(summary)
    quiet["columns"][0].update(drifted=False, distribution_drifted=False)
    quiet["columns"][0]["missing"]["drifted"] = False
    assert alert_from_drift({**quiet, "dataset_drift": False}).action == "resolve"


def test_column_drift_without_dataset_drift_is_info_and_no_drift_resolves() -> None:
    partial = _drift(drift_share_threshold=0.9)
    assert partial["dataset_drift"] is False
    alert = alert_from_drift(partial)
    assert (alert.severity, alert.action) == ("info", "trigger")
    assert alert.title == "Column drift below the dataset threshold: dataset (2 of 3 columns)"
    alert = alert_from_drift(_drift(REFERENCE))
    assert (alert.severity, alert.action) == ("info", "resolve")
    assert alert.title == "No drift: dataset (3 columns compared)"


def test_must_not_drift_columns_are_named() -> None:
    alert = alert_from_drift(_drift(must_not_drift=("amount",), drift_share_threshold=0.9))
    assert alert.severity == "warning"
    assert "Columns that must not drift drifted: amount." in alert.summary
    assert alert.rendered_facts["Must-not-drift columns drifted"] == "amount"


def test_drift_operator_summary_shape_is_read_too() -> None:
    """The drift operator's XCom: ``share_drifted``, ``dataset``, flat signals, a report location."""
    columns = [
        {
            key: column[key]
            for key in ("column", "test", "statistic", "p_value", "threshold", "drift_when", "drifted")
        }
        | {
            "distribution_drifted": column["distribution_drifted"],
            "missing_rate_change": column["missing"]["statistic"],
            "missing_rate_drifted": column["missing"]["drifted"],
            "unseen_share": column["unseen_share"],
            "unseen_drifted": bool(column["unseen"] and column["unseen"]["drifted"]),
        }
        for column in DRIFT["columns"]
    ]
    summary = {
        "dataset": "features_daily",
        "dataset_drift": True,
        "share_drifted": DRIFT["drifted_share"],
        "drift_share_threshold": 0.5,
        "columns": columns,
        "report_location": "https://reports.example/drift.html",
    }
    alert = alert_from_drift(summary, dag_id="etl", task_id="drift")
    assert alert.title == "Data drift: features_daily (2 of 3 columns drifted)"
    assert "new categories (50.0% of current values)" in alert.summary
    assert [link.url for link in alert.links] == ["https://reports.example/drift.html"]
    assert alert.dedup_key == "mlprod:drift:etl:drift:features_daily"


def _with_column(**change) -> dict:
    summary = copy.deepcopy(DRIFT)
    summary["columns"][0].update(change)
    return summary


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ({**DRIFT, "columns": []}, "'columns' is empty"),
        ({**DRIFT, "dataset_drift": "yes"}, "'dataset_drift' must be true or false"),
        ({**DRIFT, "drifted_share": 1.5}, r"drifted_share must be within \[0, 1\]"),
        ({**DRIFT, "drift_share_threshold": math.inf}, "drift_share_threshold must be a finite number"),
        (_with_column(statistic=math.nan), "column 'amount' statistic must be a finite number"),
        (_with_column(statistic="big"), "column 'amount' statistic must be a finite number"),
        (_with_column(threshold=None), "column 'amount' threshold must be a finite number"),
        (_with_column(drifted=None), "column 'amount' 'drifted' must be true or false"),
        (_with_column(drift_when="sometimes"), "drift_when 'sometimes' is not"),
        (_with_column(missing="high"), "column 'amount' 'missing' must be a dict"),
        (_with_column(column=None), r"columns\[0\] has no 'column'"),
        (_with_column(test=""), "column 'amount' has no 'test'"),
        (
            _with_column(distribution_drifted=False),
            "column 'amount' drifted but no test or signal says why",
        ),
    ],
)
def test_bad_drift_summaries_are_rejected(summary: dict, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        alert_from_drift(summary)


# -- gate ----------------------------------------------------------------------------------------


def test_rejected_gate_lists_failed_metrics_with_their_reasons() -> None:
    alert = alert_from_gate(GATE_REJECTED, **RUN)
    assert alert.severity == "warning"
    assert alert.title == "Model gate rejected: churn 7 (2 of 3 metrics failed)"
    assert "• auc=0.81 vs baseline 0.84: improvement -0.03" in alert.summary
    assert "• metric 'f1' is missing from the candidate's metrics" in alert.summary
    facts = alert.rendered_facts
    assert facts["auc"] == "0.81 vs baseline 0.84 (fail)"
    assert facts["latency_ms"] == "12 (pass)"
    assert facts["f1"] == "n/a (fail)"  # a missing metric has no value and is still reported
    assert (facts["Version"], facts["Baseline version"]) == ("7", "6")
    assert "Champion version" not in facts  # the same as the baseline
    assert facts["Metrics source"] == "XCom of task 'train'"
    assert alert.dedup_key == "mlprod:gate:etl:check:churn"
    assert alert_from_gate(GATE_REJECTED, severity_on_failure="critical").severity == "critical"


def test_passed_gate_resolves() -> None:
    alert = alert_from_gate(GATE_PASSED)
    assert (alert.severity, alert.action, alert.title) == ("info", "resolve", "Model gate passed: churn 7")
    assert alert.summary == "3 of 3 metrics passed."


def test_gate_without_baseline_or_champion() -> None:
    result = evaluate_gate({"latency_ms": 12}, {"latency_ms": {"max": 50}})
    alert = alert_from_gate(
        {"model_name": "churn", "model_version": "1", "champion_version": None, **result.to_dict()}
    )
    assert alert.title == "Model gate passed: churn 1"
    assert "Baseline version" not in alert.facts
    assert "Champion version" not in alert.facts


def _with_metric(**change) -> dict:
    summary = copy.deepcopy(GATE_REJECTED)
    summary["metrics"][0].update(change)
    return summary


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ({**GATE_REJECTED, "metrics": []}, "'metrics' is empty"),
        ({**GATE_REJECTED, "passed": 1}, "'passed' must be true or false"),
        ({**GATE_REJECTED, "passed": True}, "'passed' is True but 2 of 3 metrics failed"),
        ({**GATE_PASSED, "passed": False}, "'passed' is False but 0 of 3 metrics failed"),
        (_with_metric(verdict="maybe"), "verdict must be 'pass' or 'fail'"),
        (_with_metric(value="high"), "metric 'auc' value must be a finite"),
        (_with_metric(value=math.inf), "metric 'auc' value must be a finite"),
        (_with_metric(metric=None), r"metrics\[0\] has no 'metric'"),
        ({**GATE_REJECTED, "model_version": 7}, "model_version must be a string"),
    ],
)
def test_bad_gate_summaries_are_rejected(summary: dict, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        alert_from_gate(summary)


def test_a_passed_metric_without_value_is_rejected() -> None:
    summary = copy.deepcopy(GATE_PASSED)
    summary["metrics"][1]["value"] = None
    with pytest.raises(InputDataError, match="metric 'latency_ms' passed without a value"):
        alert_from_gate(summary)


def test_bad_severity_parameters_are_rejected() -> None:
    with pytest.raises(SpecError, match="severity_on_drift"):
        alert_from_drift(DRIFT, severity_on_drift="loud")
    with pytest.raises(SpecError, match="severity_on_failure"):
        alert_from_gate(GATE_REJECTED, severity_on_failure="loud")


@pytest.mark.parametrize("data", [VALIDATION_FAILED, DRIFT, GATE_REJECTED])
def test_typed_summaries_round_trip_through_their_dicts(data: dict) -> None:
    summary = summary_from_dict(data)
    assert type(summary).from_dict(summary.to_dict()) == summary
    assert json.loads(json.dumps(summary.to_dict())) == summary.to_dict()


def test_a_report_and_a_run_link_come_after_each_other() -> None:
    alert = alert_from_validation(
        VALIDATION_FAILED,
        report_url="https://af.example/mlprod/reports/x.html",
        run_url="https://af.example/run",
    )
    assert [(link.label, link.url) for link in alert.links] == [
        ("Report", "https://af.example/mlprod/reports/x.html"),
        ("Run", "https://af.example/run"),
    ]


# -- the producers push the typed summary: XCom and store hold exactly its to_dict() ---------------

QUARANTINED = _validation(
    *PASSING, NULL_IDS, quarantine={"location": "s3://quarantine/orders.csv", "failing_rows": 25}
)


@pytest.mark.parametrize("data", [VALIDATION_FAILED, QUARANTINED])
def test_validation_summary_to_dict_is_the_validation_json_unchanged(data: dict) -> None:
    typed = ValidationResultSummary.from_dict(data)
    assert typed.to_dict() == data  # failures keep position, samples, observed value, parameters
    assert typed.failures[0].sample_values == ("secret-ish-customer-value", None)
    assert (ValidationResultSummary.from_dict(QUARANTINED).quarantined_rows, typed.passed) == (25, 3)


def test_drift_operator_summary_is_the_typed_summary_of_the_result() -> None:
    from airflow_provider_mlprod.operators.drift import drift_summary

    result = compare_datasets(REFERENCE, CURRENT, DriftSettings(max_workers=1))
    pushed = drift_summary(result, "orders", "https://reports.example/drift.html")
    assert DriftResultSummary.from_dict(pushed).to_dict() == pushed
    assert set(pushed) == {
        *("dataset", "dataset_drift", "share_drifted", "drift_share_threshold", "drifted_columns"),
        *("must_not_drift", "must_not_drift_drifted", "reference_rows", "current_rows"),
        *("columns_only_in_current", "columns", "report_location"),
    }
    column = pushed["columns"][0]
    assert set(column) == {
        *("column", "kind", "test", "statistic", "p_value", "threshold", "drift_when", "units", "method"),
        *("error_bound", "within_binning_error", "statistic_range", "drifted", "distribution_drifted"),
        *("missing_rate_change", "missing_rate_drifted", "unseen_share", "unseen_drifted"),
        *("null_rate_reference", "null_rate_current", "notes"),
    }
    assert pushed["share_drifted"] == result.drifted_share
    assert pushed["drifted_columns"] == result.drifted_columns


def test_gate_summary_keeps_the_gate_kind_and_bounds() -> None:
    data = {**GATE_REJECTED, "kind": "metrics", "alias": "champion", "revision": 3, "store_id": "s1"}
    typed = GateResultSummary.from_dict(data)
    assert (typed.gate_kind, typed.alias, typed.revision, typed.kind) == ("metrics", "champion", 3, "gate")
    assert typed.to_dict()["kind"] == "metrics"
    assert {"min", "max"} <= set(typed.to_dict()["metrics"][0])
    assert GateResultSummary.from_dict(typed.to_dict()) == typed

"""Threshold arithmetic, fail-closed checks and spec validation of model gates."""

from __future__ import annotations

import math

import pytest

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.gates import evaluate_gate, parse_thresholds, relative_change


def verdicts(result):
    return {v.metric: (v.passed, v.reason) for v in result.verdicts}


def test_absolute_bounds_are_inclusive():
    spec = {"auc": {"min": 0.75, "max": 0.99}}
    assert evaluate_gate({"auc": 0.75}, spec).passed
    assert evaluate_gate({"auc": 0.99}, spec).passed
    low = evaluate_gate({"auc": 0.7499}, spec)
    assert not low.passed
    assert "below the minimum 0.75" in low.verdicts[0].reason
    assert "above the maximum" in evaluate_gate({"auc": 0.995}, spec).verdicts[0].reason


@pytest.mark.parametrize(
    ("value", "baseline", "rule", "passed"),
    [
        (0.82, 0.80, {"min_absolute_change": 0.02}, True),
        (0.81, 0.80, {"min_absolute_change": 0.02}, False),
        (0.79, 0.80, {"min_absolute_change": -0.01}, True),  # tolerance
        (0.78, 0.80, {"min_absolute_change": -0.01}, False),
        (0.88, 0.80, {"min_relative_change": 0.1}, True),
        (0.87, 0.80, {"min_relative_change": 0.1}, False),
        (0.40, 0.50, {"min_relative_change": 0.2, "greater_is_better": False}, True),
        (0.45, 0.50, {"min_relative_change": 0.2, "greater_is_better": False}, False),
        (0.55, 0.50, {"min_absolute_change": 0.0, "greater_is_better": False}, False),
        (0.80, 0.80, {"min_absolute_change": 0.0}, True),
        (0.01, 0.0, {"min_relative_change": 0.5}, True),  # zero baseline, improvement: +inf
        (0.0, 0.0, {"min_relative_change": 0.0}, True),  # zero baseline, no change: 0
        (-0.01, 0.0, {"min_relative_change": 0.0}, False),  # zero baseline, regression: -inf
    ],
)
def test_change_against_baseline(value, baseline, rule, passed):
    result = evaluate_gate(
        {"m": value}, {"m": rule}, baseline={"m": baseline}, baseline_version="7", if_no_baseline="fail"
    )
    assert result.passed is passed, result.verdicts[0].reason
    assert result.baseline_version == "7"


def test_relative_change_definition():
    assert relative_change(1.1, 1.0) == pytest.approx(0.1)
    assert relative_change(-0.9, -1.0) == pytest.approx(0.1)  # |baseline|
    assert relative_change(0.9, 1.0, greater_is_better=False) == pytest.approx(0.1)
    assert relative_change(2.0, 0.0) == math.inf
    assert relative_change(-2.0, 0.0) == -math.inf
    assert relative_change(0.0, 0.0) == 0.0


def test_no_baseline_is_an_explicit_choice():
    spec = {"auc": {"min": 0.5, "min_absolute_change": 0.0}}
    with pytest.raises(SpecError, match="if_no_baseline must be 'pass' or 'fail'"):
        evaluate_gate({"auc": 0.9}, spec)
    assert evaluate_gate({"auc": 0.9}, spec, if_no_baseline="pass").passed
    failed = evaluate_gate({"auc": 0.9}, spec, if_no_baseline="fail")
    assert not failed.passed
    assert "no baseline" in failed.verdicts[0].reason
    # bounds still apply when there is no baseline
    assert not evaluate_gate({"auc": 0.4}, spec, if_no_baseline="pass").passed


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({}, "metric 'auc' is missing from the candidate's metrics"),
        ({"auc": float("nan")}, "metric 'auc' is NaN"),
        ({"auc": float("inf")}, "metric 'auc' is infinite"),
        ({"auc": "0.9x"}, "metric 'auc' is not a number"),
        ({"auc": None}, "metric 'auc' is not a number"),
        ({"auc": True}, "metric 'auc' is not a number"),
    ],
)
def test_fail_closed_on_unusable_metric(metrics, message):
    result = evaluate_gate(metrics, {"auc": {"min": 0.5}})
    assert not result.passed
    assert message in result.verdicts[0].reason


def test_fail_closed_on_unusable_baseline():
    spec = {"auc": {"min_absolute_change": 0.0}}
    missing = evaluate_gate({"auc": 0.9}, spec, baseline={"f1": 0.3}, if_no_baseline="pass")
    assert "baseline lacks metric 'auc'" in missing.verdicts[0].reason
    nan = evaluate_gate({"auc": 0.9}, spec, baseline={"auc": float("nan")}, if_no_baseline="pass")
    assert not nan.passed
    assert "baseline metric 'auc' is NaN" in nan.verdicts[0].reason


def test_numeric_strings_are_accepted_and_summary_is_json_safe():
    import json

    result = evaluate_gate({"auc": "0.9", "f1": 0.7}, {"auc": {"min": 0.8}, "f1": {"min": 0.8}})
    assert verdicts(result)["auc"][0] is True
    assert verdicts(result)["f1"][0] is False
    assert [v.metric for v in result.failures] == ["f1"]
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["metrics"][1]["verdict"] == "fail"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "non-empty mapping"),
        ({"auc": {"minimum": 0.5}}, r"'auc': unknown rule\(s\) \['minimum'\]"),
        ({"auc": {"min": 0.9, "max": 0.5}}, "'auc': min 0.9 is greater than max 0.5"),
        ({"auc": {"min_relative_change": -0.1}}, "'auc': min_relative_change must be >= 0"),
        ({"auc": {"min": "0.5"}}, "'auc': min must be a number"),
        ({"auc": {"min": True}}, "'auc': min must be a number"),
        ({"auc": {"max": float("inf")}}, "'auc': max must be finite"),
        ({"auc": {"greater_is_better": "yes", "min": 0}}, "'auc': greater_is_better must be true or false"),
        ({"auc": {"greater_is_better": False}}, "'auc': no bound or change rule given"),
        ({"auc": 0.5}, "'auc': rules must be a non-empty mapping"),
    ],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(SpecError, match=message):
        parse_thresholds(spec)


def test_a_gate_without_rules_is_refused():
    with pytest.raises(SpecError, match="at least one metric rule"):
        evaluate_gate({"auc": float("nan")}, [])

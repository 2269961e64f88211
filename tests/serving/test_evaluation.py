"""Serving thresholds through the metric gate: side-by-side comparisons, fail closed."""

from __future__ import annotations

import pytest

from airflow_provider_mlprod.serving.evaluation import comparison_metrics, evaluate_serving
from airflow_provider_mlprod.serving.loadgen import EndpointResult, LoadPlan, LoadTestResult
from airflow_provider_mlprod.serving.stats import LatencySummary


def endpoint(name: str, p95: float, errors: int, requests: int = 100) -> EndpointResult:
    latency = LatencySummary(requests, p95 / 2, p95 / 2, p95 * 0.9, p95, p95 * 1.2, p95 * 2)
    return EndpointResult(
        name=name,
        url="http://127.0.0.1/predict",
        requests=requests,
        warmup_requests=0,
        latency=latency,
        throughput_rps=100.0,
        outcomes={"2xx": requests - errors, "5xx": errors} if errors else {"2xx": requests},
        error_rate=errors / requests,
        timeout_rate=0.0,
        output_check_pass_rate=1 - errors / requests,
        check_failures={},
        error_examples=[],
        histogram=[],
        cdf=[],
    )


def result(*endpoints: EndpointResult) -> LoadTestResult:
    return LoadTestResult(LoadPlan(), 1.0, 100.0, 0.0, tuple(endpoints), ("status",))


def test_comparison_metrics():
    compared = comparison_metrics(
        {"p95_latency_ms": 120.0, "error_rate": 0.02}, {"p95_latency_ms": 100.0, "error_rate": 0.01}
    )
    assert compared == {"p95_latency_ms_ratio": pytest.approx(1.2), "error_rate_diff": pytest.approx(0.01)}


def test_candidate_slower_than_champion_by_more_than_allowed_fails():
    gate = evaluate_serving(
        result(endpoint("candidate", 150, 0), endpoint("champion", 100, 0)),
        {"p95_latency_ms_ratio": {"max": 1.2}, "error_rate_diff": {"max": 0.005}},
        champion_version="v1",
    )
    assert not gate.passed
    assert [v.metric for v in gate.failures] == ["p95_latency_ms_ratio"]
    assert gate.baseline_version == "v1"


def test_absolute_change_rules_compare_with_the_champion_endpoint():
    spec = {"p95_latency_ms": {"greater_is_better": False, "min_absolute_change": -20}}
    run = result(endpoint("candidate", 115, 0), endpoint("champion", 100, 0))
    assert evaluate_serving(run, spec, if_no_baseline="fail").passed
    slower = result(endpoint("candidate", 130, 0), endpoint("champion", 100, 0))
    assert not evaluate_serving(slower, spec, if_no_baseline="fail").passed


def test_comparison_without_a_champion_in_the_run_fails_closed():
    gate = evaluate_serving(result(endpoint("candidate", 50, 0)), {"p95_latency_ms_ratio": {"max": 1.2}})
    assert not gate.passed
    assert "missing" in gate.failures[0].reason

"""Serving thresholds: the load-test numbers checked with the metric gate's spec language.

The candidate's metrics are its endpoint's numbers (``p95_latency_ms``, ``error_rate``,
``timeout_rate``, ``output_check_pass_rate``, ``throughput_rps``, ``5xx_rate``, ...; see
``EndpointResult.metrics``). When the champion was loaded in the same run, its numbers are the
baseline (so ``min_absolute_change`` rules compare with it) and the candidate also gets comparison
metrics measured side by side:

- ``<latency>_ratio``: candidate / champion, e.g. ``p95_latency_ms_ratio: {max: 1.2}`` allows a p95
  up to 20 % above the champion's;
- ``<rate>_diff``: candidate - champion, e.g. ``error_rate_diff: {max: 0.005}``.

Thresholds go through ``airflow_provider_mlprod.gates`` unchanged, so they fail closed: a metric
that was not measured (no champion in the run, no successful response for a latency) fails its rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_mlprod.gates import GateResult, NoBaselinePolicy, evaluate_gate
from airflow_provider_mlprod.serving.loadgen import LoadTestResult

CANDIDATE = "candidate"
CHAMPION = "champion"
_RATIO_METRICS = ("p50_latency_ms", "p90_latency_ms", "p95_latency_ms", "p99_latency_ms", "mean_latency_ms")
_DIFF_METRICS = ("error_rate", "timeout_rate", "output_check_pass_rate")


def comparison_metrics(candidate: Mapping[str, float], champion: Mapping[str, float]) -> dict[str, float]:
    """Side-by-side metrics of the candidate against the champion (ratios and differences)."""
    compared: dict[str, float] = {}
    for name in _RATIO_METRICS:
        if name in candidate and name in champion and champion[name] > 0:
            compared[f"{name}_ratio"] = candidate[name] / champion[name]
    for name in _DIFF_METRICS:
        if name in candidate and name in champion:
            compared[f"{name}_diff"] = candidate[name] - champion[name]
    return compared


def serving_metrics(result: LoadTestResult) -> tuple[dict[str, float], dict[str, float] | None]:
    """The candidate's metrics (with comparisons when the champion ran) and the champion's, if any."""
    candidate = result.endpoint(CANDIDATE)
    if candidate is None:
        raise ValueError("the load test has no 'candidate' endpoint")
    metrics = candidate.metrics()
    champion = result.endpoint(CHAMPION)
    if champion is None:
        return metrics, None
    baseline = champion.metrics()
    return {**metrics, **comparison_metrics(metrics, baseline)}, baseline


def evaluate_serving(
    result: LoadTestResult,
    thresholds: Mapping[str, Any],
    *,
    champion_version: str | None = None,
    if_no_baseline: NoBaselinePolicy | None = None,
) -> GateResult:
    """Check the load test against ``thresholds`` (the gate spec language) and the champion's numbers."""
    metrics, baseline = serving_metrics(result)
    return evaluate_gate(
        metrics,
        thresholds,
        baseline=baseline,
        baseline_version=champion_version if baseline is not None else None,
        if_no_baseline=if_no_baseline,
    )

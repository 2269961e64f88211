"""Latency percentiles, histogram and CDF."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from airflow_provider_mlprod.serving.stats import latency_cdf, latency_histogram, summarize_latencies


def test_percentiles_in_milliseconds():
    summary = summarize_latencies([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert summary.count == 100
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(np.percentile(np.arange(1, 101), 99))
    assert summary.max_ms == pytest.approx(100)


def test_no_latency_no_summary():
    assert summarize_latencies([]) is None
    assert latency_histogram([]) == []
    assert latency_cdf([]) == []


def test_histogram_counts_every_value_and_shares_bins():
    values = [0.001] * 10 + [0.1] * 5
    bins = latency_histogram(values, bins=10, low_ms=0.5, high_ms=500)
    assert sum(b["count"] for b in bins) == 15
    assert bins[0]["low_ms"] == pytest.approx(0.5)
    assert bins[-1]["high_ms"] == pytest.approx(500)


def test_cdf_is_monotone_and_ends_at_the_maximum():
    values = list(np.random.default_rng(1).exponential(0.01, 1001))
    cdf = latency_cdf(values, points=50)
    assert len(cdf) <= 52
    assert cdf[-1] == {"latency_ms": pytest.approx(max(values) * 1000), "share": 1.0}
    pairs = list(itertools.pairwise(cdf))
    assert all(a["latency_ms"] <= b["latency_ms"] and a["share"] < b["share"] for a, b in pairs)

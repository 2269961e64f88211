"""SLO windows computed inside SQLite and PostgreSQL over a real request-log table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError
from airflow_provider_mlprod.serving.slo import RequestLog, compute_slo_window, evaluate_slos

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).replace(tzinfo=None)


@pytest.fixture
def request_log(db_url):
    """600 requests of v1 in [12:00, 12:10): latencies 1..600 ms, every 20th a 500, every 50th timed out."""
    engine = sa.create_engine(db_url)
    metadata = sa.MetaData()
    table = sa.Table(
        "request_log",
        metadata,
        sa.Column("ts", sa.DateTime),
        sa.Column("latency_ms", sa.Float),
        sa.Column("status", sa.Integer),
        sa.Column("model_version", sa.String(20)),
        sa.Column("timed_out", sa.Boolean),
        sa.Column("tokens_in", sa.Integer),
        sa.Column("cost", sa.Float),
    )
    metadata.create_all(engine)
    rows = [
        {
            "ts": START + timedelta(seconds=i),
            "latency_ms": float(i + 1),
            "status": 500 if i % 20 == 0 else 200,
            "model_version": "v1",
            "timed_out": i % 50 == 0,
            "tokens_in": 10,
            "cost": 0.01,
        }
        for i in range(600)
    ]
    rows.append(rows[0] | {"ts": START + timedelta(hours=1)})  # outside the window
    rows.append(rows[0] | {"model_version": "v0"})  # another version
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    return engine


LOG = RequestLog("request_log", timed_out="timed_out", tokens_in="tokens_in", cost="cost")


def test_window_rates_and_sums(request_log):
    window = compute_slo_window(request_log, LOG, START, START + timedelta(minutes=10), model_version="v1")
    m = window.metrics
    assert m["requests"] == 600
    assert m["throughput_rps"] == pytest.approx(1.0)
    assert m["error_rate"] == pytest.approx(30 / 600)
    assert m["timeout_rate"] == pytest.approx(12 / 600)
    assert m["tokens_in"] == 6000
    assert m["cost"] == pytest.approx(6.0)
    assert m["cost_per_request"] == pytest.approx(0.01)


def test_percentiles_exact_on_postgres_and_within_the_stated_error_from_buckets(request_log):
    expected = dict(zip(("p50", "p95", "p99"), np.percentile(np.arange(1, 601), [50, 95, 99]), strict=True))
    window = compute_slo_window(request_log, LOG, START, START + timedelta(minutes=10), model_version="v1")
    if request_log.dialect.name == "postgresql":
        assert window.percentile_method.endswith("percentile_cont")
        assert window.metrics["p95_latency_ms"] == pytest.approx(expected["p95"])
    buckets = compute_slo_window(
        request_log, LOG, START, START + timedelta(minutes=10), model_version="v1", force_buckets=True
    )
    for key, value in expected.items():
        name = f"{key}_latency_ms"
        assert abs(buckets.metrics[name] - value) <= buckets.percentile_error_ms[name]
        assert buckets.percentile_error_ms[name] <= 0.25 * value + 1  # buckets x1.25 wide


def test_slo_breach_and_fail_closed_on_an_empty_window(request_log):
    window = compute_slo_window(request_log, LOG, START, START + timedelta(minutes=10), model_version="v1")
    result = evaluate_slos(window, {"p95_latency_ms": {"max": 300}, "error_rate": {"max": 0.01}})
    assert not result.passed
    assert {v.metric for v in result.failures} == {"p95_latency_ms", "error_rate"}
    empty = compute_slo_window(request_log, LOG, START - timedelta(hours=2), START - timedelta(hours=1))
    assert empty.metrics["requests"] == 0
    assert not evaluate_slos(empty, {"error_rate": {"max": 0.01}}).passed  # nothing measured: fails


def test_missing_table_names_it(request_log):
    with pytest.raises(InputDataError, match="request log 'nope'"):
        compute_slo_window(request_log, RequestLog("nope"), START, START + timedelta(minutes=1))

"""SLO windows computed inside SQLite and PostgreSQL over a real request-log table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.serving.slo import RequestLog, compute_slo_window, evaluate_slos
from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError

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


def test_missing_table_names_it_and_the_connection(request_log):
    with pytest.raises(InputDataError, match="request log 'nope' on connection 'warehouse'"):
        compute_slo_window(
            request_log, RequestLog("nope"), START, START + timedelta(minutes=1), conn_id="warehouse"
        )
    missing_column = RequestLog("request_log", cost="price")
    with pytest.raises(InputDataError, match="price"):
        compute_slo_window(
            request_log, missing_column, START, START + timedelta(minutes=1), conn_id="warehouse"
        )


@pytest.mark.parametrize(
    ("table", "schema", "columns", "named"),
    [
        ("request_log; drop table x", None, None, "request log table"),
        ("request_log", "a.b", None, "request log schema"),
        ("request_log", None, {"latency_ms": 'latency" + 1'}, "request log column 'latency_ms'"),
        ("request_log", None, {"cost": "cost --"}, "request log column 'cost'"),
    ],
)
def test_names_that_are_not_plain_identifiers_are_refused_before_any_sql(table, schema, columns, named):
    with pytest.raises(SpecError, match=f"{named} .* is not a plain SQL identifier"):
        RequestLog.from_mapping(table, schema, columns)
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    log = RequestLog(table, schema, **(columns or {}))
    with pytest.raises(SpecError, match="is not a plain SQL identifier"):
        compute_slo_window(engine, log, START, START + timedelta(minutes=1))


def test_a_name_longer_than_postgres_keeps_is_refused(postgres_url):
    engine = sa.create_engine(postgres_url)
    with pytest.raises(SpecError, match="keeps only 63"):
        compute_slo_window(engine, RequestLog("r" * 64), START, START + timedelta(minutes=1))


def test_an_unreachable_database_is_retryable_and_named(closed_port):
    engine = sa.create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{closed_port}/none")
    with pytest.raises(DatabaseUnavailableError, match="connection 'warehouse' is unavailable"):
        compute_slo_window(engine, LOG, START, START + timedelta(minutes=1), conn_id="warehouse")


def test_the_window_is_read_in_a_read_only_session(postgres_url, monkeypatch):
    """The SLO queries run on the SQL layer's read-only snapshot: a write on that connection is refused."""
    import contextlib

    from airflow_provider_mlprod.serving import slo
    from airflow_provider_mlprod.sql.session import read_only_snapshot

    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE request_log (ts timestamp, latency_ms float, status int, model_version text)"
        )
        connection.exec_driver_sql(f"INSERT INTO request_log VALUES ('{START.isoformat()}', 5, 200, 'v1')")
    refused = []

    @contextlib.contextmanager
    def probed(engine_):
        with read_only_snapshot(engine_) as connection:
            try:
                connection.exec_driver_sql("INSERT INTO request_log (latency_ms) VALUES (1)")
            except sa.exc.DBAPIError as exc:
                refused.append(str(exc.orig).splitlines()[0])
                connection.rollback()
            yield connection

    monkeypatch.setattr(slo, "read_only_snapshot", probed)
    window = compute_slo_window(engine, RequestLog("request_log"), START, START + timedelta(minutes=1))
    assert window.metrics["requests"] == 1
    assert len(refused) == 1
    assert "read-only transaction" in refused[0]

"""Benchmark of data validation: our runner against bare GX on a frame, and a large table in PostgreSQL.

1. A 1,000,000-row DataFrame (id, amount, status, code) and a 10-expectation suite (nulls, uniqueness,
   ranges, set membership, regex, lengths, mean, stdev, quantiles, row count; a few hundred rows fail).
   Timed, best of 3 after one warm-up each: ``validate_dataframe`` (our runner: suite checks, column
   checks, severity policy, JSON-safe summary) against a bare GX run of the same suite: ``get_batch``
   for the frame on a ready whole-dataframe batch definition, then ``batch.validate`` with the same
   result format (what any GX code must do per frame; ``get_batch`` fingerprints the frame, so a
   validate on an already held batch is printed too). Goal: ratio <= 1.15.
   The runner with quarantine (passing and failing rows written to Parquet) is timed for information.
2. A 5,000,000-row PostgreSQL table made with ``generate_series`` in a scratch schema (dropped at the
   end) on ``postgresql+psycopg2://postgres@127.0.0.1:5432/test`` (override with
   ``MLPROD_BENCH_POSTGRES_URL``), validated with ``validate_sql``, then again with SQL quarantine.
   Printed: wall time and the process's peak resident memory growth during each run (VmHWM after
   resetting it, minus VmRSS before; GX imported and warmed up on a small table first). Goal: <= 150 MB,
   which shows the work ran in the database.

Run: ``python bench/validation.py [frame_rows] [table_rows]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from airflow_provider_mlprod.validation.quarantine import FileQuarantine, SqlQuarantine
from airflow_provider_mlprod.validation.runner import gx_context, validate_dataframe, validate_sql
from airflow_provider_mlprod.validation.suite import load_suite

POSTGRES_URL = os.environ.get(
    "MLPROD_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)

SUITE = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "amount", "min_value": 0, "max_value": 990},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "status", "value_set": ["new", "paid", "shipped"]},
    },
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": "^[A-Z]{2}[0-9]$"}},
    {
        "type": "expect_column_value_lengths_to_be_between",
        "kwargs": {"column": "code", "min_value": 3, "max_value": 3},
    },
    {
        "type": "expect_column_mean_to_be_between",
        "kwargs": {"column": "amount", "min_value": 400, "max_value": 600},
    },
    {
        "type": "expect_column_stdev_to_be_between",
        "kwargs": {"column": "amount", "min_value": 200, "max_value": 400},
    },
    {
        "type": "expect_column_quantile_values_to_be_between",
        "kwargs": {
            "column": "amount",
            "quantile_ranges": {
                "quantiles": [0.1, 0.5, 0.9],
                "value_ranges": [[50, 150], [450, 550], [850, 950]],
            },
        },
    },
]


def make_frame(rows: int) -> pd.DataFrame:
    """Orders with a few failing rows: 1 in 1000 amounts above 990, 1 in 5000 statuses 'lost'."""
    rng = np.random.default_rng(7)
    ids = np.arange(rows)
    status = np.array(["new", "paid", "shipped"], dtype=object)[ids % 3]
    status[ids % 5000 == 17] = "lost"
    letters = np.array(list("ABCDEFGH"), dtype=object)
    code = letters[ids % 8] + letters[(ids // 8) % 8] + (ids % 10).astype(str).astype(object)
    return pd.DataFrame({"id": ids, "amount": rng.uniform(0, 1000, rows), "status": status, "code": code})


def best_of(runs: int, action) -> float:
    """Best wall time of ``runs`` calls of ``action`` after one warm-up call."""
    action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_frame(rows: int) -> None:
    """Time our runner against bare GX on the same frame and suite."""
    frame = make_frame(rows)
    suite = load_suite(SUITE, name="bench")
    gx_suite = suite.to_gx_suite()
    context = gx_context()
    batch_definition = (
        context.data_sources.add_pandas("bench_bare")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result_format = {"result_format": "BASIC", "partial_unexpected_count": 5}

    def bare_gx_run() -> None:
        batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            gx_suite, result_format=result_format
        )

    bare = best_of(3, bare_gx_run)
    validate_only = best_of(3, lambda: batch.validate(gx_suite, result_format=result_format))
    ours = best_of(3, lambda: validate_dataframe(frame, suite))
    summary = validate_dataframe(frame, suite)
    with tempfile.TemporaryDirectory() as folder:
        target = FileQuarantine(Path(folder) / "clean.parquet", Path(folder) / "rejected.parquet")
        started = time.perf_counter()
        quarantined = validate_dataframe(frame, suite, quarantine=target)
        with_quarantine = time.perf_counter() - started
    print(f"frame: {rows:,} rows x {len(frame.columns)} columns, {len(suite)} expectations")
    print(f"  bare GX get_batch + validate:  {bare:7.3f} s")
    print(f"  (GX validate on a held batch:  {validate_only:7.3f} s; get_batch fingerprints the frame)")
    print(f"  validate_dataframe:            {ours:7.3f} s   ratio {ours / bare:.3f} (goal <= 1.15)")
    print(
        f"  with quarantine to Parquet:    {with_quarantine:7.3f} s   "
        f"({quarantined.quarantine['failing_rows']:,} failing rows set aside)"
    )
    print(f"  summary: success={summary.success}, counts={summary.to_dict()['counts']}")


def rss_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(action) -> tuple[object, float, float]:
    """Run ``action``; return its result, wall time and peak RSS growth in MB over the RSS before."""
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = rss_kib("VmRSS")
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    return result, elapsed, (rss_kib("VmHWM") - before) / 1024


def bench_postgres(rows: int) -> None:
    """Validate a large PostgreSQL table and report the process's peak memory growth."""
    schema = f"mlprod_bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            started = time.perf_counter()
            connection.execute(
                sa.text(
                    f"""
                CREATE TABLE "{schema}".orders AS
                SELECT g AS id,
                       CAST(random() * 1000 AS double precision) AS amount,
                       CASE WHEN g % 5000 = 17 THEN 'lost'
                            ELSE (ARRAY['new', 'paid', 'shipped'])[1 + g % 3] END AS status,
                       chr(65 + g % 8) || chr(65 + (g / 8) % 8) || CAST(g % 10 AS text) AS code
                FROM generate_series(1, {rows}) AS g
                """
                )
            )
            connection.exec_driver_sql(
                f'CREATE TABLE "{schema}".warmup AS SELECT * FROM "{schema}".orders LIMIT 100'
            )
            connection.exec_driver_sql(f'ANALYZE "{schema}".orders')
            created = time.perf_counter() - started
        validate_sql(POSTGRES_URL, SUITE, table=f"{schema}.warmup")  # imports and caches, not data work
        summary, elapsed, growth = measure(
            lambda: validate_sql(POSTGRES_URL, SUITE, table=f"{schema}.orders")
        )
        target = SqlQuarantine(f"{schema}.orders_quarantine", ("id",), batch_id="bench")
        quarantined, q_elapsed, q_growth = measure(
            lambda: validate_sql(POSTGRES_URL, SUITE, table=f"{schema}.orders", quarantine=target)
        )
        print(
            f"postgresql: {rows:,} rows made with generate_series in {created:.1f} s (schema dropped after)"
        )
        print(
            f"  validate_sql:                  {elapsed:7.2f} s   "
            f"peak RSS growth {growth:6.1f} MB (goal <= 150)"
        )
        print(
            f"  with SQL quarantine:           {q_elapsed:7.2f} s   peak RSS growth {q_growth:6.1f} MB   "
            f"({quarantined.quarantine['records']:,} records inserted in the database)"
        )
        print(
            f"  summary: success={summary.success}, rows_checked={summary.rows_checked:,}, "
            f"counts={summary.to_dict()['counts']}"
        )
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


def main() -> None:
    frame_rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    table_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000_000
    bench_frame(frame_rows)
    bench_postgres(table_rows)


if __name__ == "__main__":
    main()

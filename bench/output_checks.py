"""Benchmark of output checks: 1M text outputs checked inside PostgreSQL vs with pandas string methods.

A table ``outputs(id, answer, label)`` of ``rows`` text outputs (lengths uniform in 200..599, mean
about 400 characters; every 50th row gibberish, every 97th a refusal, every 31st label unknown) is
built with ``generate_series`` inside PostgreSQL, in a scratch schema dropped at the end, on
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (override with ``MLPROD_BENCH_POSTGRES_URL``).

Per check with a SQL form on the server, timed best of ``--repeat``:

- SQL path: ``check_sql`` with that one check and ``sample_size=0``: one aggregate query; the rows
  fetched into Python are counted (one row of integers: no text moves);
- pandas path: the check's vectorised Python form (``CheckSpec.passes``, pandas string methods on a
  pyarrow-backed string column, no row loop) on the column already in memory. pandas hands string
  patterns to pyarrow's RE2 kernels where RE2 reads them like Python (``\\w``/``\\d`` only on ASCII-only
  data, as this table is) and falls back to Python's ``re`` otherwise (the ``regex`` check passes a
  compiled DOTALL pattern, so it always runs in ``re``). Loading the column (``SELECT`` into a
  DataFrame) is timed once, separately, and not charged to any check in "pandas s"; "+load s" adds it.

The SQL path reads the table where it lies, so the fair comparison for a warehouse table is "+load";
"vs pandas" is the comparison for data already in memory.

Both paths must give the same pass count (checked). Printed per check: the SQL time; the pandas time
on the column in memory; the pandas time including the load of the text it needs (what checking a
warehouse table in Python costs: fetch, then check); the speed-ups against both (goal: >= 5x against
the pandas path that has to fetch the text); and the process's peak RSS after each section.

Run: ``python bench/output_checks.py [rows] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import uuid

import pandas as pd
import sqlalchemy as sa

from airflow_provider_mlprod.outputs.checks import build_checks
from airflow_provider_mlprod.outputs.runner import check_sql
from airflow_provider_mlprod.sql.session import read_only_snapshot

POSTGRES_URL = os.environ.get(
    "MLPROD_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

CHECKS = [
    {"check": "not_empty", "column": "answer"},
    {"check": "max_length", "column": "answer", "max_chars": 550},
    {"check": "allowed_labels", "column": "label", "labels": ["churn", "stay"]},
    {"check": "regex", "column": "answer", "pattern": "^[A-Z][a-z]+ "},
    {"check": "refusal", "column": "answer"},
    {"check": "non_letter_share", "column": "answer", "max_share": 0.3},
    {"check": "word_count", "column": "answer", "min_words": 20, "max_words": 120},
]

BUILD = """
CREATE TABLE {schema}.outputs AS
SELECT i AS id,
       CASE WHEN mod(i, 50) = 0 THEN repeat('#$&*@!?0123 ', 30)
            WHEN mod(i, 97) = 0
                THEN 'I''m sorry, but I cannot help with that request. ' || repeat('Sorry. ', 50)
            ELSE substr(
                'The model ' || repeat(
                    'predicts churn for customer ' || md5(i::text)
                    || ' because usage fell sharply over weeks ',
                    8),
                1, (200 + mod(i * 7919, 400))::int)
       END AS answer,
       CASE WHEN mod(i, 31) = 0 THEN 'unknown' WHEN mod(i, 2) = 0 THEN 'churn' ELSE 'stay' END AS label
FROM generate_series(1::bigint, {rows}) AS s(i)
"""


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_of(repeat: int, run):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = f"bench_outputs_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES_URL)
    checks = build_checks(CHECKS)
    failures = 0
    try:
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
            connection.exec_driver_sql(BUILD.format(schema=schema, rows=int(args.rows)))
            connection.exec_driver_sql(f"ANALYZE {schema}.outputs")
        with engine.connect() as connection:
            mean_length = connection.exec_driver_sql(
                f"SELECT avg(length(answer)) FROM {schema}.outputs"
            ).scalar()
        print(f"table: {args.rows:,} rows, mean answer length {float(mean_length):.0f} chars, "
              f"built in {time.perf_counter() - started:.1f} s")  # fmt: skip
        table = sa.Table("outputs", sa.MetaData(), schema=schema, autoload_with=engine)
        rss_before = peak_rss_mb()
        sql_times, sql_counts = {}, {}
        with engine.connect() as connection:
            fetched_rows: list[int] = []

            def count_rows(conn, cursor, statement, parameters, context, executemany):
                fetched_rows.append(cursor.rowcount)

            sa.event.listen(engine, "after_cursor_execute", count_rows)
            for check in checks:
                fetched_rows.clear()
                elapsed, summary = best_of(
                    args.repeat,
                    lambda check=check: check_sql(connection, table, [check], dataset="b", sample_size=0),
                )
                (result,) = summary.results
                if result.ran_in != "sql":
                    raise SystemExit(f"{check.name} did not run in SQL on this server")
                sql_times[check.name], sql_counts[check.name] = elapsed, result.passed_rows
                assert set(fetched_rows) == {1}, fetched_rows  # one aggregate row per run, no text
            sa.event.remove(engine, "after_cursor_execute", count_rows)
        rss_sql = peak_rss_mb()
        frame, load_times = pd.DataFrame(), {}
        for column in ("answer", "label"):
            started = time.perf_counter()
            with engine.connect() as connection:
                loaded = pd.read_sql(sa.select(table.c[column]), connection, dtype_backend="pyarrow")
            frame[column] = loaded[column]
            load_times[column] = time.perf_counter() - started
            print(f"pandas load of {column}: {load_times[column]:.1f} s")
        header = ("check", "SQL s", "pandas s", "+load s", "vs pandas", "vs +load", "pass count")
        print("{:28} {:>7} {:>9} {:>8} {:>10} {:>9} {:>11}".format(*header))
        met = 0
        for check in checks:
            values = frame[check.column]
            elapsed, passed = best_of(
                args.repeat, lambda check=check, values=values: int(check.passes(values).sum())
            )
            if passed != sql_counts[check.name]:
                failures += 1
                print(f"  MISMATCH {check.name}: SQL {sql_counts[check.name]} vs pandas {passed}")
            sql_time = sql_times[check.name]
            with_load = elapsed + load_times[check.column]
            met += with_load >= 5 * sql_time
            print(
                f"{check.name:28} {sql_time:7.2f} {elapsed:9.2f} {with_load:8.2f} "
                f"{elapsed / sql_time:9.1f}x {with_load / sql_time:8.1f}x {passed:11,}"
            )
        print(f"goal (SQL >= 5x faster than fetch + pandas) met for {met} of {len(checks)} checks")
        total_sql, rss_pandas = sum(sql_times.values()), peak_rss_mb()
        print(f"all checks in SQL, one at a time: {total_sql:.1f} s")
        combined, _ = best_of(1, lambda: _all_in_one(engine, table, checks))
        print(f"all checks in SQL, one aggregate query (what the operator runs): {combined:.1f} s")
        print(_plan_summary(engine, table, checks))
        print(f"peak RSS: {rss_before:.0f} MB before, {rss_sql:.0f} MB after the SQL path, "
              f"{rss_pandas:.0f} MB after the pandas path")  # fmt: skip
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()
    return 1 if failures else 0


def _all_in_one(engine: sa.Engine, table: sa.Table, checks) -> None:
    with read_only_snapshot(engine) as connection:
        check_sql(connection, table, checks, dataset="b", sample_size=0)


def _plan_summary(engine: sa.Engine, table: sa.Table, checks) -> str:
    """Whether PostgreSQL scans in parallel under the read-only snapshot (EXPLAIN ANALYZE of the query)."""
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with read_only_snapshot(engine) as connection:
            check_sql(connection, table, checks, dataset="b", sample_size=0)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in captured if "count(*)" in s)
    with read_only_snapshot(engine) as connection:
        plan = [
            row[0]
            for row in connection.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", parameters)
        ]
    parallel = any("Parallel Seq Scan" in line for line in plan)
    workers = "; ".join(line.strip() for line in plan if "Workers" in line) or "no workers"
    return f"plan of that query under the read-only snapshot: Parallel Seq Scan {parallel}; {workers}"


if __name__ == "__main__":
    raise SystemExit(main())

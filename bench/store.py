"""Benchmark of the metrics store under contention, on the embedded SQLite store and on PostgreSQL.

1. Promotions per second with 20 contending processes: each round registers and gates 20 versions
   against the current champion, then 20 forked processes promote one each at a barrier (one wins,
   19 get ConcurrentUpdateError). Printed: completed promote calls per second and winners per round
   (must be exactly 1).
2. Read latency while 6 processes write: 6 forked writers record gate verdicts and metrics in a loop
   while one reader process times ``alias_version`` + ``latest_blessing`` + ``metric_history`` reads.
   Printed: read p50 and p99 in milliseconds. Goals: p99 under 100 ms on SQLite, under 20 ms on
   PostgreSQL.

PostgreSQL is ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (override with
``MLPROD_BENCH_POSTGRES_URL``), in a scratch schema dropped at the end.

Run: ``.venv/bin/python bench/store.py [rounds] [read_seconds]`` (defaults 5 and 10).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConcurrentUpdateError
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.registry import ModelRegistry

POSTGRES_URL = os.environ.get(
    "MLPROD_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONTEXT = multiprocessing.get_context("fork")
PROMOTERS, WRITERS = 20, 6


def _promote(url, version, barrier, results):
    registry = ModelRegistry(create_store_engine(url))
    barrier.wait(60)
    try:
        registry.promote(RunIdentity("bench", f"r{version}", "promote"), name="m", version=version)
        results.put("won")
    except ConcurrentUpdateError:
        results.put("lost")


def promotions_per_second(url: str, rounds: int) -> tuple[float, list[int]]:
    registry = ModelRegistry(create_store_engine(url))
    elapsed, winners = 0.0, []
    for round_no in range(rounds):
        champion = registry.alias_version("m")
        versions = [f"{round_no}.{i}" for i in range(PROMOTERS)]
        for version in versions:
            identity = RunIdentity("bench", f"r{version}", "gate")
            registry.register(identity, name="m", version=version, artifact_uri=f"file:///{version}")
            registry.record_blessing(
                identity, name="m", version=version, passed=True, baseline_version=champion, summary={}
            )
        barrier, results = CONTEXT.Barrier(PROMOTERS + 1), CONTEXT.Queue()
        workers = [CONTEXT.Process(target=_promote, args=(url, v, barrier, results)) for v in versions]
        for worker in workers:
            worker.start()
        barrier.wait(60)
        started = time.perf_counter()
        outcomes = [results.get(timeout=120) for _ in workers]
        elapsed += time.perf_counter() - started
        for worker in workers:
            worker.join()
        winners.append(outcomes.count("won"))
    return rounds * PROMOTERS / elapsed, winners


def _write(url, index, stop):
    registry, store = ModelRegistry(create_store_engine(url)), MetricsStore(create_store_engine(url))
    n = 0
    while not stop.is_set():
        identity = RunIdentity("bench", f"w{index}-{n}", "gate")
        registry.record_blessing(
            identity, name="m", version="0.0", passed=True, baseline_version=None, summary={"n": n}
        )
        store.record_metrics(identity, {"auc": 0.8, "loss": 0.3}, model_name="m")
        n += 1


def _read(url, seconds, results):
    registry, store = ModelRegistry(create_store_engine(url)), MetricsStore(create_store_engine(url))
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        registry.alias_version("m")
        registry.latest_blessing("m", "0.0")
        store.metric_history("auc", model_name="m", limit=50)
        latencies.append((time.perf_counter() - started) * 1000)
    results.put(latencies)


def read_latency(url: str, seconds: float) -> tuple[float, float, int]:
    stop, results = CONTEXT.Event(), CONTEXT.Queue()
    writers = [CONTEXT.Process(target=_write, args=(url, i, stop)) for i in range(WRITERS)]
    for writer in writers:
        writer.start()
    time.sleep(1)
    reader = CONTEXT.Process(target=_read, args=(url, seconds, results))
    reader.start()
    latencies = results.get(timeout=seconds + 120)
    reader.join()
    stop.set()
    for writer in writers:
        writer.join(60)
    cuts = statistics.quantiles(latencies, n=100)
    return statistics.median(latencies), cuts[98], len(latencies)


def run(name: str, url: str, rounds: int, seconds: float) -> None:
    rate, winners = promotions_per_second(url, rounds)
    print(f"{name}: {rate:.1f} promote calls/s with {PROMOTERS} contending processes")
    print(f"{name}: winners per round {winners} (each must be 1)")
    p50, p99, count = read_latency(url, seconds)
    print(
        f"{name}: reads while {WRITERS} processes write: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({count} reads)"
    )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    with tempfile.TemporaryDirectory() as folder:
        run("SQLite", f"sqlite:///{folder}/bench.db", rounds, seconds)
    schema = f"mlprod_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        run("PostgreSQL", url.render_as_string(hide_password=False), rounds, seconds)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    main()

"""Benchmark of the model-health view: the model page with 10,000 runs and 500 promotions in the store.

The store (a SQLite file in a temporary folder, or ``--store-url`` such as a PostgreSQL URL) is filled
through the registry's and the metrics store's public methods: 500 versions of ``customer_churn``, each
registered, gated (with per-metric reasons) and promoted (500 promotions, every 10th followed by a
rollback), and 10,000 monitoring runs, each recording ``roc_auc``, ``accuracy`` and ``log_loss`` for
the champion of the time. Then the plugin's FastAPI app serves ``/health/models/customer_churn`` 20
times (after one warm-up request) through Starlette's test client, with Airflow's authentication
dependencies replaced by a stand-in admin user (they check the user, not the page; the page still asks
Airflow's default auth manager which DAGs that user may read). Printed: seeding time, page
size, and the p50 / p95 / max of the complete HTML response times. Goal: p95 under 300 ms.

Run from the repository root: ``python bench/ui.py [--runs 10000] [--promotions 500] [--store-url URL]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

MODEL = "customer_churn"


def seed(url: str, runs: int, promotions: int) -> float:
    from airflow_provider_mlprod.store.engine import create_store_engine
    from airflow_provider_mlprod.store.identity import RunIdentity
    from airflow_provider_mlprod.store.metrics_store import MetricsStore
    from airflow_provider_mlprod.store.registry import ModelRegistry

    started = time.perf_counter()
    engine = create_store_engine(url)
    registry, store = ModelRegistry(engine), MetricsStore(engine)
    for number in range(promotions):
        version = f"v{number:04d}"
        run = RunIdentity("mlprod_ingest_to_deploy", f"manual__{number:04d}", "register")
        metrics = {"roc_auc": 0.8 + (number % 7) / 100, "log_loss": 0.4 - (number % 5) / 100}
        registry.register(
            run, name=MODEL, version=version, artifact_uri=f"file:///m/{version}", metrics=metrics
        )
        registry.record_blessing(
            RunIdentity(run.dag_id, run.run_id, "gate"),
            name=MODEL,
            version=version,
            passed=True,
            baseline_version=registry.alias_version(MODEL),
            summary={
                "passed": True,
                "metrics": [
                    {
                        "metric": name,
                        "value": value,
                        "verdict": "pass",
                        "reason": f"{name} {value:.3f} within bounds",
                    }
                    for name, value in metrics.items()
                ],
            },
        )
        registry.promote(RunIdentity(run.dag_id, run.run_id, "promote"), name=MODEL, version=version)
        if number % 10 == 9:
            registry.rollback(
                RunIdentity("airflow-cli", f"manual__rollback_{number}", "rollback"), name=MODEL
            )
    for number in range(runs):
        champion = f"v{number * promotions // runs:04d}"
        store.record_metrics(
            RunIdentity("mlprod_monitoring", f"scheduled__{number:05d}", "monitor_performance"),
            {"roc_auc": 0.75 + (number % 11) / 100, "accuracy": 0.7 + (number % 3) / 100, "log_loss": 0.45},
            model_name=MODEL,
            model_version=champion,
        )
    engine.dispose()
    return time.perf_counter() - started


def measure(requests: int) -> tuple[list[float], int]:
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from airflow_provider_mlprod.plugin import auth
    from airflow_provider_mlprod.plugin.app import create_app

    create_auth_manager()  # the default SimpleAuthManager: it decides which DAGs the admin may read
    admin = SimpleAuthManagerUser(username="admin", role="admin")
    app = create_app()
    for dependency in (auth.can_read_dags(), auth.can_read_task_instances_of_dag()):
        app.dependency_overrides[dependency.dependency] = lambda: None
    app.dependency_overrides[auth.current_user().dependency] = lambda: admin
    client = TestClient(app)
    warm = client.get(f"/health/models/{MODEL}")
    assert warm.status_code == 200, warm.text[:500]
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(f"/health/models/{MODEL}")
        body = response.text  # the complete HTML response
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
        assert body.endswith("</html>")
    return times, len(warm.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--promotions", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument(
        "--store-url", help="SQLAlchemy URL of an empty store (default: a temporary SQLite file)"
    )
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mlprod-bench-ui-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    url = options.store_url or f"sqlite:///{home / 'metrics.db'}"
    if options.store_url:
        import json

        os.environ["AIRFLOW_CONN_MLPROD_STORE_DEFAULT"] = json.dumps(
            {"conn_type": "mlprodstore", "extra": {"sqlalchemy_url": options.store_url}}
        )
    else:
        os.environ["AIRFLOW__MLPROD__EMBEDDED_STORE_PATH"] = str(home / "metrics.db")
    seconds = seed(url, options.runs, options.promotions)
    print(f"seeded {options.runs} runs and {options.promotions} promotions in {seconds:.1f} s")
    times, size = measure(options.requests)
    times_ms = sorted(t * 1000 for t in times)
    p95 = times_ms[max(0, round(0.95 * len(times_ms)) - 1)]
    print(f"model page: {size / 1024:.0f} KiB of HTML")
    print(
        f"complete HTML response over {len(times_ms)} requests: p50 {statistics.median(times_ms):.0f} ms, "
        f"p95 {p95:.0f} ms, max {times_ms[-1]:.0f} ms (goal: p95 < 300 ms)"
    )
    sys.exit(0 if p95 < 300 else 1)


if __name__ == "__main__":
    main()

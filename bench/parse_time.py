"""What the provider adds to DAG parsing: import time over ``import airflow.sdk``, and heavy modules.

Runs fresh Python processes (default 7) with cached bytecode, as a DAG processor has. In each it
imports ``airflow.sdk``, then every module of ``airflow_provider_mlprod``, then parses ``dags/`` with
DagBag, and reports the median time of each step and whether great_expectations, pandas, scipy or
sklearn got imported. Goal: at most 100 ms for the provider's modules over ``airflow.sdk``.

    python bench/parse_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("great_expectations", "pandas", "scipy", "sklearn")

CHILD = r"""
import importlib, json, pkgutil, sys, time, warnings
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
import airflow_provider_mlprod
names = [m.name for m in pkgutil.walk_packages(airflow_provider_mlprod.__path__, "airflow_provider_mlprod.")]
for name in names:
    importlib.import_module(name)
t2 = time.perf_counter()
from airflow.models import DagBag
t3 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t4 = time.perf_counter()
print(json.dumps({
    "sdk": t1 - t0, "provider": t2 - t1, "dagbag_import": t3 - t2, "dagbag_parse": t4 - t3,
    "modules": len(names), "dags": len(bag.dags), "errors": list(bag.import_errors),
    "heavy": [m for m in sys.argv[2].split(",") if m in sys.modules],
}))
"""


def measure_once(env: dict[str, str]) -> dict:
    """One fresh process: the timings and what it imported."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO / "dags"), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        # Bytecode is cached (in a temporary folder) as it is on any Airflow deployment: the warm-up
        # run compiles, the measured runs load .pyc files, even where PYTHONDONTWRITEBYTECODE is set.
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPYCACHEPREFIX": os.path.join(home, "pycache"),
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        }
        measure_once(env)  # warm the OS file cache and compile .pyc files
        runs = [measure_once(env) for _ in range(args.runs)]
    last = runs[-1]

    def median_ms(key: str) -> float:
        return statistics.median(run[key] for run in runs) * 1000

    print(f"runs: {args.runs} fresh processes, {last['modules']} provider modules, {last['dags']} DAGs")
    print(f"import airflow.sdk:                         {median_ms('sdk'):8.1f} ms (median)")
    print(
        f"provider modules over airflow.sdk:          {median_ms('provider'):8.1f} ms (median, goal <= 100)"
    )
    print(f"DagBag parse of dags/ (after its imports):  {median_ms('dagbag_parse'):8.1f} ms (median)")
    print(f"heavy modules imported: {last['heavy'] or 'none'}")
    print(f"DAG import errors: {last['errors'] or 'none'}")


if __name__ == "__main__":
    main()

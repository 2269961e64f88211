"""DAG parsing stays cheap: importing the provider and parsing dags/ pulls in no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import importlib, json, pkgutil, sys
import airflow_provider_mlprod
names = [m.name for m in pkgutil.walk_packages(airflow_provider_mlprod.__path__, "airflow_provider_mlprod.")]
for name in names:
    importlib.import_module(name)
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1])
errors = {k: str(v) for k, v in bag.import_errors.items()}
heavy = {m: True for m in ["great_expectations", "pandas", "scipy", "sklearn"] if m in sys.modules}
print(json.dumps({"modules": names, "dags": sorted(bag.dags), "errors": errors, "heavy": sorted(heavy)}))
"""


def test_no_heavy_import_from_any_module_or_dag_file():
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO / "dags")], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dags"], "no DAG was parsed"
    assert "airflow_provider_mlprod.hooks.store" in report["modules"]
    assert report["heavy"] == [], f"heavy modules imported at parse time: {report['heavy']}"

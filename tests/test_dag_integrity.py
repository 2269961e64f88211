"""Every example DAG parses without import errors or deprecation warnings."""

from __future__ import annotations

import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_dag_file_parses_cleanly():
    from airflow.models import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dag_files = {Path(dag.fileloc).name for dag in bag.dags.values()}
    assert dag_files == {path.name for path in (REPO / "dags").glob("*.py")}
    deprecations = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning) or "Deprecat" in w.category.__name__
        if "airflow" in w.filename or str(REPO) in w.filename
    ]
    assert deprecations == []

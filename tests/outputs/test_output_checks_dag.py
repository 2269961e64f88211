"""The example DAG mlprod_output_checks: clean answers pass, the gibberish scenario is caught."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_mlprod.validation.output_folder import read_output_manifest

pytestmark = pytest.mark.dagrun


@pytest.fixture
def output_checks_dag(airflow_db):
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(airflow_db / "dags" / "mlprod_output_checks.py"))
    assert bag.import_errors == {}
    return bag.dags["mlprod_output_checks"]


def test_clean_answers_pass_and_gibberish_is_caught(output_checks_dag, airflow_db):
    clean = output_checks_dag.test(run_conf={"scenario": "clean"})
    assert clean.state == "success"

    gibberish = output_checks_dag.test(run_conf={"scenario": "gibberish"})
    assert gibberish.state == "failed"
    (check,) = [ti for ti in gibberish.get_task_instances() if ti.task_id == "check_answers"]
    assert check.state == "failed"
    run_folder = airflow_db / "mlprod" / "outputs" / re.sub(r"[^A-Za-z0-9._-]+", "_", gibberish.run_id)
    failing = Path(read_output_manifest(run_folder / "quarantine")["locations"]["failing"])
    assert failing.name == "failing.jsonl"
    rows = [json.loads(line) for line in failing.read_text().splitlines()]
    reasons = pd.Series([row["failed_checks"] for row in rows])
    assert len(rows) == 50
    assert reasons.str.contains("non_letter_share").sum() == 25
    assert reasons.str.contains("repeated_ngrams").sum() == 25
    assert reasons.str.contains("valid_json").sum() == 25

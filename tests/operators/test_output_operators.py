"""Output operators: sources, outcome policy, report, store, quarantine, golden-set gate and blessing."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_mlprod.hooks.store import MetricsStoreHook
from airflow_provider_mlprod.operators.outputs import PredictionOutputCheckOperator
from airflow_provider_mlprod.operators.reports import ReportLink

CHECKS = [
    {"check": "valid_json", "column": "payload"},
    {"check": "non_letter_share", "column": "answer", "min_pass_rate": 0.9},
    {"check": "refusal", "column": "answer", "severity": "warning", "min_pass_rate": 1.0},
]


def outputs(gibberish: int = 0, refusals: int = 0, broken_json: int = 0) -> pd.DataFrame:
    rows = [
        {"id": i, "answer": f"The customer {i} will likely stay.", "payload": json.dumps({"p": i / 20})}
        for i in range(20)
    ]
    for i in range(gibberish):
        rows[i]["answer"] = "<script>alert(1)</script>#$%&*@!?" * 2
    for i in range(refusals):
        rows[-1 - i]["answer"] = "As an AI language model I cannot answer."
    for i in range(broken_json):
        rows[5 + i]["payload"] = '{"p": 0.'
    return pd.DataFrame(rows)


def operator(**kwargs) -> PredictionOutputCheckOperator:
    kwargs.setdefault("checks", CHECKS)
    return PredictionOutputCheckOperator(task_id="check_outputs", **kwargs)


def test_clean_outputs_pass_with_report_store_and_link(task_context, isolated_store):
    _, reports = isolated_store
    context = task_context(task_id="check_outputs")
    result = operator(dataframe_callable=outputs, dataset_name="answers").execute(context)
    assert result["success"] is True
    assert result["counts"] == {"evaluated": 3, "passed": 3, "failed_critical": 0, "failed_warning": 0}
    assert json.loads(json.dumps(result)) == result
    report = reports / "outputs" / "dag" / "run_1" / "check_outputs.html"
    assert context["ti"].pushed[ReportLink().xcom_key] == f"file://{report}"
    store = MetricsStoreHook().metrics_store()
    (row,) = store.validation_history(suite="output_checks")
    assert (row["dataset"], row["success"], row["rows_checked"]) == ("answers", True, 20)
    (point,) = store.metric_history("output_pass_rate.valid_json(payload)", dataset="answers")
    assert point.value == 1.0


def test_gibberish_fails_with_escaped_examples_in_the_report(task_context, isolated_store):
    _, reports = isolated_store
    context = task_context(task_id="check_outputs")
    with pytest.raises(AirflowFailException, match=r"non_letter_share\(answer\)"):
        operator(dataframe_callable=outputs, dataframe_kwargs={"gibberish": 3}).execute(context)
    summary = context["ti"].pushed["return_value"]
    (failed,) = [c for c in summary["checks"] if not c["success"]]
    assert (failed["failed_rows"], failed["ran_in"]) == (3, "python")
    page = (reports / "outputs" / "dag" / "run_1" / "check_outputs.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_warning_check_reports_and_skip_policy(task_context, isolated_store):
    result = operator(dataframe_callable=outputs, dataframe_kwargs={"refusals": 2}).execute(task_context())
    assert result["success"] is True
    assert result["counts"]["failed_warning"] == 1
    with pytest.raises(AirflowSkipException):
        operator(dataframe_callable=outputs, dataframe_kwargs={"broken_json": 1}, on_failure="skip").execute(
            task_context()
        )
    result = operator(
        dataframe_callable=outputs, dataframe_kwargs={"broken_json": 1}, on_failure="continue"
    ).execute(task_context())
    assert result["success"] is False


def test_quarantine_splits_rows_with_the_checks_they_failed(task_context, isolated_store, tmp_path):
    folder = tmp_path / "quarantine"
    source = tmp_path / "outputs.csv"
    outputs(gibberish=2, broken_json=1, refusals=1).to_csv(source, index=False)
    result = operator(file_path=str(source), quarantine_folder=str(folder), on_failure="continue").execute(
        task_context()
    )
    assert result["quarantine"]["failing_rows"] == 3  # the refusal is a warning: not quarantined
    failing = pd.read_csv(folder / "failing.csv")
    assert sorted(failing["failed_checks"]) == ["non_letter_share(answer)"] * 2 + ["valid_json(payload)"]
    assert len(pd.read_csv(folder / "passing.csv")) == 17


def test_sql_table_checks_run_in_the_database(db_url, airflow_sql_connection, task_context, isolated_store):
    schema = airflow_sql_connection(db_url)
    engine = sa.create_engine(db_url)
    outputs(gibberish=4).to_sql("predictions", engine, index=False)
    engine.dispose()
    table = f"{schema}.predictions" if schema else "predictions"
    context = task_context()
    with pytest.raises(AirflowFailException):
        operator(sql_conn_id="warehouse", table=table).execute(context)
    summary = context["ti"].pushed["return_value"]
    ran = {c["check"]: c["ran_in"] for c in summary["checks"]}
    assert ran["refusal"] == "sql"
    assert ran["non_letter_share"] == ("sql" if schema else "python")
    assert {c["check"]: c["failed_rows"] for c in summary["checks"]}["non_letter_share"] == 4


def test_bad_input_fails_before_reading(task_context, isolated_store, db_url, airflow_sql_connection):
    schema = airflow_sql_connection(db_url)
    with pytest.raises(AirflowFailException, match=r"column.*not found.*'answr'"):
        operator(checks=[{"check": "not_empty", "column": "answr"}], dataframe_callable=outputs).execute(
            task_context()
        )
    with pytest.raises(AirflowFailException, match="invalid regex"):
        operator(
            checks=[{"check": "regex", "column": "answer", "pattern": "["}], dataframe_callable=outputs
        ).execute(task_context())
    table = f"{schema}.missing" if schema else "missing"
    with pytest.raises(AirflowFailException, match="does not exist"):
        operator(sql_conn_id="warehouse", table=table).execute(task_context())


def test_constructor_rejects_two_sources():
    with pytest.raises(ValueError, match="exactly one source"):
        operator(dataframe_callable=outputs, file_path="x.csv")

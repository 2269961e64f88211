"""Metrics sources of the gate and register operators: argument, XCom, JSON file, SQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.operators.metrics_input import MetricsSource
from airflow_provider_mlprod.operators.outcome import FINAL_ERRORS
from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError


def read_metrics(context, **source):
    return MetricsSource(**source).read(context)


def test_from_argument_and_nested_key():
    metrics, _ = read_metrics({}, metrics={"eval": {"auc": 0.9}}, metrics_key="eval")
    assert metrics == {"auc": 0.9}


def test_from_xcom(task_context):
    context = task_context(xcoms={("train", "return_value"): {"auc": 0.9}})
    metrics, source = read_metrics(context, metrics_task_id="train")
    assert (metrics, source) == ({"auc": 0.9}, "XCom 'return_value' of task 'train'")
    with pytest.raises(InputDataError, match="XCom 'return_value' of task 'other' holds no metrics"):
        read_metrics(context, metrics_task_id="other")


def test_from_json_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"test": {"auc": 0.91, "f1": 0.7}}))
    metrics, _ = read_metrics({}, metrics_file=f"file://{path}", metrics_key="test")
    assert metrics == {"auc": 0.91, "f1": 0.7}


@pytest.mark.parametrize(
    ("content", "key", "message"),
    [
        ("{not json", None, "is not valid JSON"),
        ("[1, 2]", None, "must be an object of name to value, got list"),
        ("{}", None, "are empty"),
        ('{"a": {}}', "b", "have no key 'b'"),
    ],
)
def test_bad_json_files_are_named(tmp_path, content, key, message):
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(InputDataError, match=message):
        read_metrics({}, metrics_file=str(path), metrics_key=key)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputDataError, match=r"metrics file '.*nope.json' does not exist"):
        read_metrics({}, metrics_file=str(tmp_path / "nope.json"))


@pytest.fixture
def sql_conn(db_url, airflow_sql_connection):
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE eval_metrics (name VARCHAR(20), value FLOAT)"))
        connection.execute(sa.text("INSERT INTO eval_metrics VALUES ('auc', 0.9), ('f1', 0.7)"))
    engine.dispose()
    schema = airflow_sql_connection(db_url, "eval_db")
    return "eval_db", f"{schema}.eval_metrics" if schema else "eval_metrics"


def test_from_sql_name_value_rows_and_single_row(sql_conn):
    conn_id, table = sql_conn
    metrics, _ = read_metrics({}, metrics_sql=f"SELECT name, value FROM {table}", sql_conn_id=conn_id)
    assert metrics == {"auc": 0.9, "f1": 0.7}
    wide = f"SELECT MAX(CASE WHEN name = 'auc' THEN value END) AS auc, COUNT(*) AS n FROM {table}"
    assert read_metrics({}, metrics_sql=wide, sql_conn_id=conn_id)[0] == {"auc": 0.9, "n": 2}


def test_bad_sql_sources_are_named(sql_conn):
    conn_id, table = sql_conn
    with pytest.raises(InputDataError, match=r"must return exactly one row .* it returned 2 rows"):
        read_metrics({}, metrics_sql=f"SELECT value FROM {table}", sql_conn_id=conn_id)
    with pytest.raises(
        InputDataError, match="query 'SELECT \\* FROM no_such_table' on connection 'eval_db' fails"
    ):
        read_metrics({}, metrics_sql="SELECT * FROM no_such_table", sql_conn_id=conn_id)
    with pytest.raises(ConfigurationError, match="metrics_sql needs sql_conn_id"):
        read_metrics({}, metrics_sql="SELECT 1")


def test_an_unreachable_database_stays_retryable(monkeypatch):
    down = {"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "u", "schema": "d"}
    monkeypatch.setenv("AIRFLOW_CONN_DOWN", json.dumps(down))
    with pytest.raises(DatabaseUnavailableError, match="connection 'down' is unavailable") as raised:
        read_metrics({}, metrics_sql="SELECT 1", sql_conn_id="down")
    assert not isinstance(raised.value, FINAL_ERRORS)


def test_metrics_sql_binds_its_parameters_and_runs_read_only(sql_conn):
    conn_id, table = sql_conn
    query = f"SELECT name, value FROM {table} WHERE name = :metric"
    metrics, _ = read_metrics(
        {}, metrics_sql=query, metrics_sql_parameters={"metric": "auc"}, sql_conn_id=conn_id
    )
    assert metrics == {"auc": 0.9}
    hostile = {"metric": "auc' OR '1'='1"}
    with pytest.raises(InputDataError, match="returned no rows"):
        read_metrics({}, metrics_sql=query, metrics_sql_parameters=hostile, sql_conn_id=conn_id)
    with pytest.raises(
        ConfigurationError, match="metrics_sql uses :metric but metrics_sql_parameters give no value"
    ):
        read_metrics({}, metrics_sql=query, sql_conn_id=conn_id)
    with pytest.raises(ConfigurationError, match="metrics_sql is a DELETE statement"):
        read_metrics({}, metrics_sql=f"DELETE FROM {table}", sql_conn_id=conn_id)
    assert read_metrics({}, metrics_sql=f"SELECT name, value FROM {table}", sql_conn_id=conn_id)[0] == {
        "auc": 0.9,
        "f1": 0.7,
    }  # nothing was deleted
    with pytest.raises(ValueError, match="metrics_sql_parameters need sql_conn_id"):
        MetricsSource(metrics={"a": 1}, metrics_sql_parameters={"x": 1}).check("gate", allow_none=True)
    with pytest.raises(ValueError, match="metrics_sql holds 2 statements"):
        MetricsSource(metrics_sql="SELECT 1; DROP TABLE t", sql_conn_id="w").check("gate")
    with pytest.raises(ValueError, match="metrics_sql_hook_params must be a mapping"):
        MetricsSource(metrics_sql="SELECT 1", sql_conn_id="w", metrics_sql_hook_params=[1]).check("gate")
    with_hook_params = read_metrics(
        {}, metrics_sql=query, metrics_sql_parameters={"metric": "f1"}, sql_conn_id=conn_id,
        metrics_sql_hook_params={"log_sql": False},
    )  # fmt: skip
    assert with_hook_params[0] == {"f1": 0.7}

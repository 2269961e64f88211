"""DataValidationOperator on DataFrames, files and SQL: outcome policy, report, store, quarantine."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_mlprod.hooks.store import MetricsStoreHook
from airflow_provider_mlprod.operators.reports import ReportLink
from airflow_provider_mlprod.operators.validation import DataValidationOperator
from airflow_provider_mlprod.sql.source import SqlSource
from airflow_provider_mlprod.validation.output_folder import read_output_manifest

SUITE = {
    "name": "orders",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "country", "value_set": ["DE", "FR"]},
            "meta": {"severity": "warning"},
        },
    ],
}


def orders(bad_amounts: int = 0, bad_countries: int = 0) -> pd.DataFrame:
    rows = [{"order_id": i, "amount": 10.0 + i, "country": "DE"} for i in range(20)]
    for i in range(bad_amounts):
        rows[i]["amount"] = -1.0
    for i in range(bad_countries):
        rows[-1 - i]["country"] = "XX"
    return pd.DataFrame(rows)


def operator(**kwargs) -> DataValidationOperator:
    kwargs.setdefault("suite", SUITE)
    return DataValidationOperator(task_id="validate", **kwargs)


def test_clean_frame_passes_with_report_store_record_and_link(task_context, isolated_store):
    _, reports = isolated_store
    context = task_context(task_id="validate")
    result = operator(dataframe_callable=orders, dataset_name="orders").execute(context)
    assert result["success"] is True
    assert result["counts"] == {"evaluated": 3, "passed": 3, "failed_critical": 0, "failed_warning": 0}
    assert json.loads(json.dumps(result)) == result
    report = reports / "validation" / "dag" / "run_1" / "validate.html"
    assert report.read_text().startswith("<!DOCTYPE html>")
    assert result["report_location"] == f"file://{report}"
    assert context["ti"].pushed[ReportLink().xcom_key] == f"file://{report}"
    (row,) = MetricsStoreHook().metrics_store().validation_history(suite="orders")
    assert (row["dataset"], row["success"], row["rows_checked"]) == ("orders", True, 20)


def test_warnings_are_reported_but_do_not_fail(task_context, isolated_store):
    result = operator(dataframe_callable=orders, dataframe_kwargs={"bad_countries": 2}).execute(
        task_context()
    )
    assert result["success"] is True
    assert result["counts"]["failed_warning"] == 1
    (failure,) = result["failures"]
    assert (failure["column"], failure["unexpected_count"], failure["severity"]) == ("country", 2, "warning")
    assert failure["sample_values"] == ["XX"]  # two failing rows, one distinct value


def test_critical_failure_fails_after_recording_and_pushing(task_context, isolated_store):
    context = task_context()
    task = operator(dataframe_callable=orders, dataframe_kwargs={"bad_amounts": 3})
    with pytest.raises(AirflowFailException, match=r"failed 1 critical expectation\(s\) of suite 'orders'"):
        task.execute(context)
    summary = context["ti"].pushed["return_value"]
    assert summary["success"] is False
    assert summary["failures"][0]["unexpected_count"] == 3
    # a retry of the same task instance leaves one record
    with pytest.raises(AirflowFailException):
        task.execute(context)
    assert len(MetricsStoreHook().metrics_store().validation_history(suite="orders")) == 1


def test_skip_and_continue_policies(task_context, isolated_store):
    bad = {"bad_amounts": 1}
    with pytest.raises(AirflowSkipException):
        operator(dataframe_callable=orders, dataframe_kwargs=bad, on_failure="skip").execute(task_context())
    result = operator(dataframe_callable=orders, dataframe_kwargs=bad, on_failure="continue").execute(
        task_context()
    )
    assert result["success"] is False


def test_file_source_with_quarantine(task_context, isolated_store, tmp_path):
    source = tmp_path / "orders.csv"
    orders(bad_amounts=2).to_csv(source, index=False)
    out = tmp_path / "quarantine"
    task = operator(file_path=f"file://{source}", quarantine_folder=f"file://{out}", on_failure="continue")
    result = task.execute(task_context())
    assert result["dataset"].endswith("orders.csv")
    published = read_output_manifest(ObjectStoragePath(f"file://{out}"))["locations"]
    passing, failing = (pd.read_csv(published[key].removeprefix("file://")) for key in ("passing", "failing"))
    assert (len(passing), len(failing)) == (18, 2)
    assert all("expect_column_values_to_be_between" in reason for reason in failing["failed_expectations"])
    assert result["quarantine"]["failing_location"] == published["failing"]
    assert result["quarantine"]["manifest_location"] == f"file://{out / 'manifest.json'}"


def test_a_quarantine_folder_holding_the_input_fails_without_retry(task_context, isolated_store, tmp_path):
    source = tmp_path / "orders.csv"
    orders(bad_amounts=2).to_csv(source, index=False)
    before = source.read_bytes()
    task = operator(file_path=f"file://{source}", quarantine_folder=f"file://{tmp_path}")
    with pytest.raises(AirflowFailException, match=r"quarantine folder .* is or contains the input"):
        task.execute(task_context())
    assert source.read_bytes() == before
    assert not (tmp_path / "manifest.json").exists()
    assert not (tmp_path / "tries").exists()


def test_a_retried_quarantine_replaces_the_published_try(task_context, isolated_store, tmp_path):
    source = tmp_path / "orders.csv"
    orders(bad_amounts=2).to_csv(source, index=False)
    out = tmp_path / "quarantine"
    task = operator(file_path=str(source), quarantine_folder=str(out), on_failure="continue")
    first = task.execute(task_context())["quarantine"]
    second = task.execute(task_context())["quarantine"]
    assert first["output_try"] != second["output_try"]
    assert [path.name for path in (out / "tries").iterdir()] == [second["output_try"]]
    assert read_output_manifest(out)["try"] == second["output_try"]


@pytest.mark.parametrize(
    ("blocker", "message"),
    [
        ("tries", "a file is in the way of its folder"),
        ("manifest.json", r"manifest\.json' cannot be written: a directory is in the way"),
    ],
)
def test_storage_in_the_way_of_the_quarantine_fails_without_retry(
    task_context, isolated_store, tmp_path, blocker, message
):
    source = tmp_path / "orders.csv"
    orders(bad_amounts=2).to_csv(source, index=False)
    out = tmp_path / "quarantine"
    out.mkdir()
    if blocker == "manifest.json":
        (out / blocker).mkdir()  # a directory where the manifest goes
    else:
        (out / blocker).write_text("x")  # a file where the tries folder goes
    task = operator(file_path=str(source), quarantine_folder=str(out), on_failure="continue")
    with pytest.raises(AirflowFailException, match=message):
        task.execute(task_context())


@pytest.mark.filterwarnings("ignore:UPath 'droppingmem' filesystem not explicitly implemented")
def test_a_dropped_object_store_connection_leaves_the_quarantine_task_retryable(
    task_context, isolated_store, tmp_path
):
    import fsspec
    from airflow.sdk.io.store import attach

    from airflow_provider_mlprod.validation.output_folder import StorageUnavailableError
    from tests.validation.test_output_folder import DroppingFileSystem

    fsspec.register_implementation("droppingmem", DroppingFileSystem, clobber=True)
    attach("droppingmem", fs=DroppingFileSystem())
    source = tmp_path / "orders.csv"
    orders(bad_amounts=2).to_csv(source, index=False)
    task = operator(
        file_path=str(source),
        quarantine_folder="droppingmem://bucket/operator_quarantine",
        quarantine_format="parquet",
        on_failure="continue",
    )
    with pytest.raises(StorageUnavailableError, match="storage unavailable, a retry may succeed"):
        task.execute(task_context())
    assert not ObjectStoragePath("droppingmem://bucket/operator_quarantine/manifest.json").exists()


def test_a_ragged_csv_row_fails_without_retry_naming_its_line(task_context, isolated_store, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("order_id,amount,country\n1,10.0,DE\n2,11.0\n3,12.0,FR\n")
    with pytest.raises(AirflowFailException, match=r"orders\.csv' line 3: 2 fields where the header"):
        operator(file_path=str(source)).execute(task_context())


def test_ragged_rows_can_count_as_a_failed_check(task_context, isolated_store, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("order_id,amount,country\n1,10.0,DE\n2,11.0\n3,12.0,FR\n4,1,DE,extra\n")
    context = task_context()
    with pytest.raises(AirflowFailException, match="failed 1 critical expectation"):
        operator(file_path=str(source), ragged_rows="fail").execute(context)
    summary = context["ti"].pushed["return_value"]
    (failure,) = summary["failures"]
    assert failure["expectation_type"] == "file_rows_match_header"
    assert failure["unexpected_count"] == 2
    assert failure["sample_values"] == ["line 3: 2 fields", "line 5: 4 fields"]
    assert summary["rows_checked"] == 4
    assert summary["counts"] == {"evaluated": 4, "passed": 3, "failed_critical": 1, "failed_warning": 0}


def test_a_repeated_csv_header_fails_without_retry(task_context, isolated_store, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("order_id,amount,amount,country\n1,10.0,-5,DE\n")
    with pytest.raises(AirflowFailException, match="header repeats column 'amount' \\(fields 2 and 3\\)"):
        operator(file_path=str(source)).execute(task_context())


@pytest.fixture
def warehouse(db_url, airflow_sql_connection):
    engine = sa.create_engine(db_url)
    orders(bad_amounts=4).to_sql("orders", engine, index=False)
    engine.dispose()
    schema = airflow_sql_connection(db_url)
    return db_url, schema


def test_sql_source_runs_in_the_database_and_quarantines_keys(task_context, isolated_store, warehouse):
    db_url, schema = warehouse
    task = operator(
        sql_conn_id="warehouse",
        table="orders",
        schema=schema,
        quarantine_table="orders_quarantine",
        quarantine_key_columns=["order_id"],
        on_failure="continue",
    )
    result = task.execute(task_context())
    assert (result["rows_checked"], result["counts"]["failed_critical"]) == (20, 1)
    (lineage_input,) = task.get_openlineage_facets_on_complete(None).inputs
    expected_name = "orders" if schema is None else f"test.{schema}.orders"
    assert lineage_input.name == expected_name
    assert lineage_input.namespace.startswith("sqlite://" if schema is None else "postgres://127.0.0.1")
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        table = f"{schema}.orders_quarantine" if schema else "orders_quarantine"
        keys = connection.execute(sa.text(f"SELECT order_id FROM {table} ORDER BY order_id")).scalars().all()
    engine.dispose()
    assert keys == [0, 1, 2, 3]
    task.execute(task_context())  # retry: same batch id, records replaced
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() == 4
    engine.dispose()


def test_a_query_with_bound_parameters_validates_only_its_rows(task_context, isolated_store, warehouse):
    _, schema = warehouse
    table = f"{schema}.orders" if schema else "orders"
    task = operator(
        sql_conn_id="warehouse",
        query=f"SELECT * FROM {table} WHERE order_id >= :first AND country = :country",
        parameters={"first": 4, "country": "DE"},  # rows 0..3 have the bad amounts
    )
    assert task.template_fields_renderers["parameters"] == "json"
    assert "parameters" in task.template_fields
    result = task.execute(task_context())
    assert (result["success"], result["rows_checked"]) == (True, 16)
    hostile = operator(
        sql_conn_id="warehouse",
        query=f"SELECT * FROM {table} WHERE country = :country",
        parameters={"country": "DE' OR '1'='1"},
    )
    with pytest.raises(AirflowFailException, match="has no rows"):  # the value stayed a value
        hostile.execute(task_context())


def test_a_ready_sql_source_with_bound_parameters_is_validated(task_context, isolated_store, warehouse):
    _, schema = warehouse
    table = f"{schema}.orders" if schema else "orders"
    source = SqlSource.from_arguments(
        conn_id="warehouse", query=f"SELECT * FROM {table} WHERE order_id < :last", parameters={"last": 6}
    )
    task = operator(sql_source=source, on_failure="continue")
    result = task.execute(task_context())
    # rows 0..3 carry the bad amounts: 6 rows checked, the 4 bad ones among them
    assert (result["success"], result["rows_checked"]) == (False, 6)
    assert [f["unexpected_count"] for f in result["failures"]] == [4]


def test_a_query_that_writes_through_a_function_is_refused_by_the_read_only_session(
    task_context, isolated_store, postgres_url, airflow_sql_connection
):
    engine = sa.create_engine(postgres_url)
    orders().to_sql("orders", engine, index=False)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SEQUENCE probe_seq")
    schema = airflow_sql_connection(postgres_url)
    task = operator(
        sql_conn_id="warehouse", query=f"SELECT *, nextval('{schema}.probe_seq') AS n FROM {schema}.orders"
    )
    with pytest.raises(AirflowFailException, match="read-only transaction"):
        task.execute(task_context())
    with engine.connect() as connection:  # the sequence never moved
        assert connection.exec_driver_sql("SELECT last_value, is_called FROM probe_seq").one() == (1, False)
    engine.dispose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "no_such_table"}, "no_such_table"),
        ({"query": "SELECT * FROM nowhere"}, "query"),
    ],
)
def test_bad_sql_inputs_fail_and_name_the_input(task_context, isolated_store, warehouse, kwargs, message):
    with pytest.raises(AirflowFailException, match=message):
        operator(sql_conn_id="warehouse", **kwargs).execute(task_context())


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        (
            [{"type": "expect_column_values_to_be_purple", "kwargs": {"column": "amount"}}],
            "expect_column_values_to_be_purple",
        ),
        ([], "empty"),
        ("suites/absent.json", "suite file 'suites/absent.json' not found"),
    ],
)
def test_bad_suites_fail_and_name_the_problem(task_context, isolated_store, suite, message):
    with pytest.raises(AirflowFailException, match=message):
        operator(suite=suite, dataframe_callable=orders).execute(task_context())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give exactly one source"),
        ({"file_path": "a.csv", "dataframe_callable": orders}, "give exactly one source"),
        ({"sql_conn_id": "w"}, "give exactly one of table and query"),
        ({"file_path": "a.csv", "quarantine_table": "q"}, "quarantine_table is for SQL sources"),
        ({"sql_conn_id": "w", "table": "t", "quarantine_table": "q"}, "needs quarantine_key_columns"),
        ({"file_path": "a.csv", "on_failure": "explode"}, "on_failure must be one of fail, skip, continue"),
        ({"file_path": "a.csv", "default_severity": "info"}, "default_severity must be"),
        ({"file_path": "a.csv", "ragged_rows": "skip"}, "ragged_rows must be 'error' or 'fail'"),
        ({"file_path": "a.csv", "parameters": {"a": 1}}, "parameters need sql_conn_id"),
        ({"file_path": "a.csv", "hook_params": {"a": 1}}, "hook_params need sql_conn_id"),
        ({"sql_conn_id": "w", "table": "t", "parameters": {"a": 1}}, "table 't' has no placeholders"),
        (
            {"sql_conn_id": "w", "table": "orders; DROP TABLE orders"},
            "'orders; DROP TABLE orders' is not a plain",
        ),
        ({"sql_conn_id": "w", "query": "DELETE FROM t"}, "query"),
        ({"sql_conn_id": "w", "query": "SELECT * FROM t WHERE a = :a"}, "'a'"),
        ({"sql_conn_id": "w", "query": "SELECT 1; DROP TABLE t"}, "query"),
        ({"sql_source": "w.t"}, "sql_source must be a SqlSource"),
        (
            {"sql_source": SqlSource.from_arguments(conn_id="w", table="t"), "sql_conn_id": "w"},
            "give sql_source or sql_conn_id, not both",
        ),
        (
            {"sql_source": SqlSource.from_arguments(conn_id="w", table="t"), "file_path": "a.csv"},
            "give exactly one source",
        ),
        (
            {"sql_source": SqlSource.from_arguments(table="t")},
            "sql_source names no connection",
        ),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs, message):
    with pytest.raises(ValueError, match=message):
        operator(**kwargs)


DAG_SOURCE = """
import pendulum
from airflow.sdk import dag
from airflow_provider_mlprod.operators.validation import DataValidationOperator

@dag(dag_id="validate_file", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def validate_file():
    DataValidationOperator(
        task_id="validate",
        suite="expectations/orders_suite.json",
        file_path="file://{data}/orders_{{{{ params.day }}}}.csv",
        params={{"day": "1"}},
    )

validate_file()
"""


def test_in_a_dag_run_with_a_suite_file_next_to_the_dag(dag_file, airflow_db, isolated_store, tmp_path):
    suite_file = airflow_db / "dags" / "expectations" / "orders_suite.json"
    suite_file.parent.mkdir(exist_ok=True)
    suite_file.write_text(json.dumps(SUITE))
    orders().to_csv(tmp_path / "orders_1.csv", index=False)
    orders(bad_amounts=1).to_csv(tmp_path / "orders_2.csv", index=False)
    dag = dag_file("validate_file", DAG_SOURCE.format(data=tmp_path))
    assert dag.test(run_conf={"day": "1"}).state == "success"
    assert dag.test(run_conf={"day": "2"}).state == "failed"


SQL_DAG_SOURCE = """
import pendulum
from airflow.sdk import dag
from airflow_provider_mlprod.operators.validation import DataValidationOperator

@dag(dag_id="validate_query", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def validate_query():
    DataValidationOperator(
        task_id="validate",
        suite={suite!r},
        sql_conn_id="warehouse",
        query="SELECT * FROM orders WHERE order_id >= :first",
        parameters={{"first": "{{{{ params.first }}}}"}},
        params={{"first": 0}},
    )

validate_query()
"""


def test_in_a_dag_run_templated_parameters_are_bound(
    dag_file, airflow_db, isolated_store, sqlite_url, airflow_sql_connection
):
    engine = sa.create_engine(sqlite_url)
    orders(bad_amounts=4).to_sql("orders", engine, index=False)  # rows 0..3 have bad amounts
    engine.dispose()
    airflow_sql_connection(sqlite_url)
    dag = dag_file("validate_query", SQL_DAG_SOURCE.format(suite=SUITE))
    assert dag.test(run_conf={"first": "4"}).state == "success"
    assert dag.test(run_conf={"first": "0"}).state == "failed"
    assert dag.test(run_conf={"first": "0' OR '1'='1"}).state == "failed"  # bound as a value


def test_openlineage_facet_lists_every_expectation(task_context, isolated_store, tmp_path):
    source = tmp_path / "orders.csv"
    orders(bad_amounts=1).to_csv(source, index=False)
    task = operator(file_path=f"file://{source}", on_failure="continue")
    task.execute(task_context())
    lineage = task.get_openlineage_facets_on_complete(None)
    (dataset,) = lineage.inputs
    assert (dataset.namespace, dataset.name) == ("file", str(source))
    assertions = dataset.facets["dataQualityAssertions"].assertions
    assert [(a.assertion, a.column, a.success) for a in assertions] == [
        ("expect_column_values_to_not_be_null", "order_id", True),
        ("expect_column_values_to_be_between", "amount", False),
        ("expect_column_values_to_be_in_set", "country", True),
    ]


def test_without_openlineage_installed_nothing_breaks(monkeypatch, task_context, isolated_store, tmp_path):
    import sys

    source = tmp_path / "orders.csv"
    orders().to_csv(source, index=False)
    task = operator(file_path=str(source))
    task.execute(task_context())
    assert task.get_openlineage_facets_on_complete(None) is not None
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    assert task.get_openlineage_facets_on_complete(None) is None

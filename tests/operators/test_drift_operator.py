"""DataDriftOperator: sources, in-database profiles, store records, report, XCom summary and policy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_mlprod.assets import dataset_drift_asset
from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import DatasetProfile, profile_dataframe
from airflow_provider_mlprod.operators.drift import DataDriftOperator
from airflow_provider_mlprod.operators.reports import ReportLink
from airflow_provider_mlprod.sql.source import SqlSource
from airflow_provider_mlprod.store.engine import create_store_engine, embedded_store_url
from airflow_provider_mlprod.store.metrics_store import MetricsStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROWS = 2000
COLUMNS = ["amount", "quantity", "segment"]


class FakeTI:
    """The part of a task instance the operator uses."""

    def __init__(self, task_id: str = "check_drift", run_id: str = "run_1") -> None:
        self.dag_id = "drift_dag"
        self.run_id = run_id
        self.task_id = task_id
        self.map_index = -1
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


class FakeAssetEvent:
    def __init__(self) -> None:
        self.extra: dict = {}


class FakeOutletEvents(dict):
    def __missing__(self, key):
        self[key] = FakeAssetEvent()
        return self[key]


def make_context(ti: FakeTI | None = None) -> dict:
    return {"ti": ti or FakeTI(), "outlet_events": FakeOutletEvents()}


@pytest.fixture(autouse=True)
def store_path(monkeypatch, tmp_path: Path) -> Path:
    """Each test has its own embedded metrics store and report folder."""
    path = tmp_path / "store.db"
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE_PATH", str(path))
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", str(tmp_path / "reports"))
    return path


def store_of(path: Path) -> MetricsStore:
    return MetricsStore(create_store_engine(embedded_store_url(path)))


def drift_result_count(path: Path) -> int:
    engine = store_of(path).engine
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT COUNT(*) FROM mlprod_drift_results")).scalar()


def orders(seed: int, rows: int = ROWS, drifted: bool = False) -> pd.DataFrame:
    """Orders: amount (normal), quantity (Poisson) and segment (3 categories); drift moves amount/segment."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(100.0, 15.0, rows) + (30.0 if drifted else 0.0)
    shares = [0.7, 0.2, 0.1] if drifted else [0.2, 0.3, 0.5]
    return pd.DataFrame(
        {
            "amount": amount,
            "quantity": rng.poisson(3.0, rows).astype("float64"),
            "segment": pd.Series(rng.choice(["retail", "online", "partner"], rows, p=shares), dtype="str"),
        }
    )


REFERENCE = orders(seed=1)
STABLE = orders(seed=2)
DRIFTED = orders(seed=3, drifted=True)


def reference_frame() -> pd.DataFrame:
    return REFERENCE


def stable_frame() -> pd.DataFrame:
    return STABLE


def drifted_frame() -> pd.DataFrame:
    return DRIFTED


def frame_operator(current=stable_frame, **kwargs) -> DataDriftOperator:
    kwargs.setdefault("task_id", "check_drift")
    kwargs.setdefault("reference_dataframe_callable", reference_frame)
    return DataDriftOperator(dataframe_callable=current, dataset_name="orders", **kwargs)


# -- DataFrame sources, summary, report, store ------------------------------------------------------


def test_no_drift_succeeds_with_json_summary_report_and_store_row(store_path: Path):
    context = make_context()
    summary = frame_operator().execute(context)

    assert summary["dataset_drift"] is False
    assert summary["drifted_columns"] == []
    assert [c["column"] for c in summary["columns"]] == COLUMNS
    amount = summary["columns"][0]
    assert amount["test"] == "wasserstein"
    assert amount["method"] == "exact"
    assert amount["statistic"] < amount["threshold"]
    assert amount["drifted"] is False
    json.dumps(summary, allow_nan=False)  # JSON-safe: no numpy types, no NaN
    assert "return_value" not in context["ti"].xcom  # on success Airflow pushes the returned summary
    report = Path(summary["report_location"].removeprefix("file://"))
    assert report.is_file()
    assert "<svg" in report.read_text()
    assert context["ti"].xcom[ReportLink().xcom_key] == summary["report_location"]
    history = store_of(store_path).drift_history("orders")
    assert sorted(row["column_name"] for row in history) == sorted(COLUMNS)
    assert not any(row["drifted"] for row in history)


def test_summary_holds_statistics_never_rows():
    summary = frame_operator(current=drifted_frame, on_failure="continue").execute(make_context())
    text = json.dumps(summary)
    assert "retail" not in text  # no category value, no row of data
    assert len(text) < 10_000


@pytest.mark.parametrize(
    ("on_failure", "raised"),
    [("fail", AirflowFailException), ("skip", AirflowSkipException), ("continue", None)],
)
def test_drift_ends_the_task_per_policy(store_path: Path, on_failure, raised):
    context = make_context()
    operator = frame_operator(current=drifted_frame, on_failure=on_failure)
    if raised is None:
        summary = operator.execute(context)
    else:
        with pytest.raises(raised, match=r"orders: dataset drift: 2 of 3 columns drifted .*amount, segment"):
            operator.execute(context)
        summary = operator.drift_summary
    assert summary["dataset_drift"] is True
    assert summary["drifted_columns"] == ["amount", "segment"]
    assert context["ti"].xcom["return_value"] == summary  # pushed before the task ends
    assert [row["dataset_drift"] for row in store_of(store_path).drift_history("orders", "amount")] == [True]


def test_must_not_drift_column_makes_the_dataset_drift_alone():
    def amount_only() -> pd.DataFrame:
        return STABLE.assign(amount=DRIFTED["amount"])

    summary = frame_operator(current=amount_only, must_not_drift=["amount"], on_failure="continue").execute(
        make_context()
    )
    assert summary["drifted_columns"] == ["amount"]
    assert summary["share_drifted"] == pytest.approx(1 / 3)
    assert summary["dataset_drift"] is True
    assert summary["must_not_drift_drifted"] == ["amount"]


def test_column_settings_reach_the_engine():
    summary = frame_operator(
        columns=["amount", "segment"],
        column_tests={"amount": "ks", "segment": "psi"},
        column_thresholds={"segment": 0.25},
    ).execute(make_context())
    by_name = {c["column"]: c for c in summary["columns"]}
    assert list(by_name) == ["amount", "segment"]
    assert by_name["amount"]["test"] == "ks"
    assert by_name["amount"]["drift_when"] == "p_value_below"
    assert by_name["segment"]["test"] == "psi"
    assert by_name["segment"]["threshold"] == 0.25


def test_store_history_judges_p_value_tests_on_their_p_value(store_path: Path):
    summary = frame_operator(column_tests={"amount": "ks"}).execute(make_context())
    amount = summary["columns"][0]
    row = store_of(store_path).drift_history("orders", "amount")[0]
    assert row["statistic"] == pytest.approx(amount["p_value"])
    assert row["threshold"] == 0.01
    assert amount["statistic"] != pytest.approx(amount["p_value"])


def test_retry_records_the_result_once(store_path: Path):
    context = make_context()
    operator = frame_operator(current=drifted_frame, on_failure="continue")
    operator.execute(context)
    operator.execute(context)  # a retry of the same task instance
    assert drift_result_count(store_path) == 1
    assert len(store_of(store_path).drift_history("orders")) == len(COLUMNS)
    make_context_next = make_context(FakeTI(run_id="run_2"))
    operator.execute(make_context_next)
    assert drift_result_count(store_path) == 2


def test_empty_current_batch_fails_closed(store_path: Path):
    def empty() -> pd.DataFrame:
        return REFERENCE.iloc[0:0]

    with pytest.raises(AirflowFailException, match="current batch is empty"):
        frame_operator(current=empty, on_failure="continue").execute(make_context())
    assert drift_result_count(store_path) == 0


def test_missing_column_fails_naming_it():
    def without_segment() -> pd.DataFrame:
        return STABLE.drop(columns=["segment"])

    with pytest.raises(
        AirflowFailException, match=r"\['segment'\] are in the reference but not in the current"
    ):
        frame_operator(current=without_segment).execute(make_context())


def test_prediction_drift_on_score_and_predicted_class():
    rng = np.random.default_rng(7)

    def predictions(shift: float, positive_share: float) -> pd.DataFrame:
        score = np.clip(rng.beta(2, 5, ROWS) + shift, 0, 1)
        predicted = np.where(rng.random(ROWS) < positive_share, "churn", "stay")
        return pd.DataFrame({"churn_score": score, "predicted_class": pd.Series(predicted, dtype="str")})

    training, live = predictions(0.0, 0.2), predictions(0.25, 0.6)
    summary = DataDriftOperator(
        task_id="prediction_drift",
        reference_dataframe_callable=lambda: training,
        dataframe_callable=lambda: live,
        column_tests={"churn_score": "psi"},
        column_thresholds={"churn_score": 0.2},
        must_not_drift=["churn_score"],
        dataset_name="churn_predictions",
        on_failure="continue",
    ).execute(make_context())
    by_name = {c["column"]: c for c in summary["columns"]}
    assert by_name["churn_score"]["test"] == "psi"
    assert by_name["churn_score"]["drifted"] is True
    assert by_name["predicted_class"]["test"] == "homogeneity"
    assert by_name["predicted_class"]["drifted"]
    assert summary["dataset_drift"] is True


def test_asset_event_carries_key_figures():
    operator = frame_operator(current=drifted_frame, on_failure="continue", emit_asset=True)
    assert [outlet.uri for outlet in operator.outlets] == ["mlprod://datasets/orders/drift"]
    context = make_context()
    summary = operator.execute(context)
    extra = context["outlet_events"][dataset_drift_asset("orders")].extra
    assert extra["dataset_drift"] is True
    assert extra["drifted_columns"] == ["amount", "segment"]
    assert extra["share_drifted"] == summary["share_drifted"]
    assert extra["current_rows"] == ROWS
    json.dumps(extra, allow_nan=False)


# -- files and profiles ---------------------------------------------------------------------------


def test_file_sources(tmp_path: Path):
    reference_file, current_file = tmp_path / "reference.csv", tmp_path / "current.jsonl"
    REFERENCE.to_csv(reference_file, index=False)
    DRIFTED.to_json(current_file, orient="records", lines=True)
    summary = DataDriftOperator(
        task_id="file_drift",
        reference_file_path=str(reference_file),
        file_path=f"file://{current_file}",
        on_failure="continue",
    ).execute(make_context())
    assert summary["dataset"] == "file_drift"
    assert summary["drifted_columns"] == ["amount", "segment"]
    assert summary["current_rows"] == ROWS


def test_header_only_current_file_fails_closed(tmp_path: Path):
    current_file = tmp_path / "current.csv"
    current_file.write_text("amount,quantity,segment\n")
    operator = DataDriftOperator(
        task_id="file_drift", reference_dataframe_callable=reference_frame, file_path=str(current_file)
    )
    with pytest.raises(AirflowFailException, match=r"has a header .* but no rows"):
        operator.execute(make_context())


def test_a_failed_or_skipped_run_never_saves_the_reference_profile(store_path: Path):
    from airflow_provider_mlprod.exceptions import StoreError

    with pytest.raises(AirflowFailException, match="dataset drift"):
        frame_operator(current=drifted_frame, save_reference_profile_as="orders_reference").execute(
            make_context()
        )
    with pytest.raises(AirflowSkipException):
        frame_operator(
            current=drifted_frame, save_reference_profile_as="orders_reference", on_failure="skip"
        ).execute(make_context())
    with pytest.raises(StoreError):
        store_of(store_path).load_profile("orders_reference")
    frame_operator(
        current=drifted_frame, save_reference_profile_as="orders_reference", on_failure="continue"
    ).execute(make_context())
    assert DatasetProfile.from_dict(store_of(store_path).load_profile("orders_reference")).row_count == ROWS


def test_saved_reference_profile_is_used_by_later_runs(store_path: Path):
    frame_operator(save_reference_profile_as="orders_reference").execute(make_context())
    stored = DatasetProfile.from_dict(store_of(store_path).load_profile("orders_reference"))
    assert stored.row_count == ROWS
    assert list(stored.columns) == COLUMNS

    operator = DataDriftOperator(
        task_id="check_drift",
        reference_profile="orders_reference",
        dataframe_callable=drifted_frame,
        dataset_name="orders",
        on_failure="continue",
    )
    summary = operator.execute(make_context(FakeTI(run_id="run_2")))
    assert summary["drifted_columns"] == ["amount", "segment"]
    assert summary["columns"][0]["method"] == "binned"
    assert summary["columns"][0]["error_bound"] is not None
    expected = compare_datasets(stored, DRIFTED).to_dict()
    assert [c["statistic"] for c in summary["columns"]] == [c["statistic"] for c in expected["columns"]]


def test_reference_profile_file(tmp_path: Path):
    location = tmp_path / "profiles" / "orders.json"
    location.parent.mkdir()
    profile_dataframe(REFERENCE).save(location)
    summary = DataDriftOperator(
        task_id="check_drift", reference_profile_path=f"file://{location}", dataframe_callable=stable_frame
    ).execute(make_context())
    assert summary["dataset_drift"] is False
    assert summary["reference_rows"] == ROWS


def test_missing_or_incompatible_profile_fails_without_retry(store_path: Path, tmp_path: Path):
    operator = DataDriftOperator(
        task_id="check_drift", reference_profile="nowhere", dataframe_callable=stable_frame
    )
    with pytest.raises(AirflowFailException, match="no reference profile named 'nowhere'"):
        operator.execute(make_context())

    old = {**profile_dataframe(REFERENCE).to_dict(), "format_version": 0}
    store_of(store_path).save_profile("old_reference", old)
    operator = DataDriftOperator(
        task_id="check_drift", reference_profile="old_reference", dataframe_callable=stable_frame
    )
    with pytest.raises(AirflowFailException, match=r"'old_reference'.*format version 0 is not supported"):
        operator.execute(make_context())

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    operator = DataDriftOperator(
        task_id="check_drift", reference_profile_path=str(broken), dataframe_callable=stable_frame
    )
    with pytest.raises(AirflowFailException, match=r"broken\.json' cannot be read"):
        operator.execute(make_context())


# -- SQL sources: counts computed in the database -------------------------------------------------


def _create_orders_table(url: str, name: str, frame: pd.DataFrame) -> None:
    engine = sa.create_engine(url)
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("amount", sa.Float),
        sa.Column("quantity", sa.Float),
        sa.Column("segment", sa.String(20)),
    )
    with engine.begin() as connection:
        table.create(connection)
        if len(frame):
            connection.execute(table.insert(), frame.to_dict("records"))
    engine.dispose()


@pytest.fixture
def statements():
    """Every SQL statement any engine runs during the test."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def _data_queries(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH")) and table in s]


def test_sql_current_is_profiled_in_the_database(airflow_sql_connection, db_url, store_path, statements):
    schema = airflow_sql_connection(db_url)
    _create_orders_table(db_url, "orders_today", DRIFTED)
    store_of(store_path).save_profile("orders_reference", profile_dataframe(REFERENCE).to_dict())
    statements.clear()

    operator = DataDriftOperator(
        task_id="sql_drift",
        reference_profile="orders_reference",
        sql_conn_id="warehouse",
        table="orders_today",
        schema=schema,
        on_failure="continue",
    )
    summary = operator.execute(make_context())

    assert summary["dataset"] == (f"{schema}.orders_today" if schema else "orders_today")
    assert summary["drifted_columns"] == ["amount", "segment"]
    assert summary["current_rows"] == ROWS
    # the same numbers as profiling the rows in Python on the reference's bins
    expected = compare_datasets(profile_dataframe(REFERENCE), DRIFTED).to_dict()["columns"]
    for got, want in zip(summary["columns"], expected, strict=True):
        assert got["statistic"] == pytest.approx(want["statistic"], abs=1e-9)
    queries = _data_queries(statements, "orders_today")
    assert len(queries) == 1  # one aggregate statement reads all columns in one scan
    assert "GROUP BY" in queries[0].upper()


def test_sql_reference_and_current_both_profiled_in_the_database(airflow_sql_connection, db_url, statements):
    schema = airflow_sql_connection(db_url)
    _create_orders_table(db_url, "orders_reference", REFERENCE)
    _create_orders_table(db_url, "orders_today", STABLE)
    statements.clear()
    summary = DataDriftOperator(
        task_id="sql_drift",
        reference_sql_conn_id="warehouse",
        reference_table="orders_reference",
        reference_schema=schema,
        sql_conn_id="warehouse",
        query=f"SELECT * FROM {schema + '.' if schema else ''}orders_today",
        dataset_name="orders",
        save_reference_profile_as="orders_reference",
    ).execute(make_context())
    assert summary["dataset_drift"] is False
    assert summary["reference_rows"] == ROWS
    assert {c["column"]: c["kind"] for c in summary["columns"]} == {
        "amount": "numeric",
        "quantity": "numeric",
        "segment": "categorical",
    }
    for table in ("orders_reference", "orders_today"):
        queries = _data_queries(statements, table)
        assert queries
        assert all(
            "GROUP BY" in query.upper()
            or ("MIN(" in query.upper() and "MAX(" in query.upper())
            or query.rstrip().endswith("WHERE 1 = 0")  # a query's column names, from an empty result
            for query in queries
        ), queries


def test_sql_sources_bind_parameters_and_take_a_source_object(
    airflow_sql_connection, db_url, store_path, statements
):
    """A reference SqlSource and a current query whose hostile value stays a value; '%' is a modulo."""
    schema = airflow_sql_connection(db_url)
    prefix = f"{schema}." if schema else ""
    _create_orders_table(db_url, "orders_reference", REFERENCE)
    _create_orders_table(db_url, "orders_today", DRIFTED)
    statements.clear()
    reference = SqlSource.from_arguments(
        conn_id="warehouse",
        query=f"SELECT amount, segment FROM {prefix}orders_reference WHERE length(segment) % :one = 0",
        parameters={"one": 1},
        hook_params={"log_sql": False},
    )
    operator = DataDriftOperator(
        task_id="sql_drift",
        reference_sql_source=reference,
        sql_conn_id="warehouse",
        query=f"SELECT amount, segment FROM {prefix}orders_today WHERE segment <> :excluded",
        parameters={"excluded": "x' OR '1'='1"},
        hook_params={"log_sql": False},
        columns=["amount", "segment"],
        column_kinds={"amount": "numeric", "segment": "categorical"},
        dataset_name="orders",
        on_failure="continue",
    )
    summary = operator.execute(make_context())
    assert (summary["reference_rows"], summary["current_rows"]) == (ROWS, ROWS)
    assert summary["drifted_columns"] == ["amount", "segment"]
    current_queries = _data_queries(statements, "orders_today")
    assert current_queries
    assert all("x' OR" not in statement for statement in current_queries)


def test_sql_empty_current_table_fails_closed(airflow_sql_connection, db_url, store_path):
    schema = airflow_sql_connection(db_url)
    _create_orders_table(db_url, "orders_today", REFERENCE.iloc[0:0])
    store_of(store_path).save_profile("orders_reference", profile_dataframe(REFERENCE).to_dict())
    operator = DataDriftOperator(
        task_id="sql_drift",
        reference_profile="orders_reference",
        sql_conn_id="warehouse",
        table="orders_today",
        schema=schema,
        on_failure="continue",
    )
    with pytest.raises(AirflowFailException, match="current batch is empty"):
        operator.execute(make_context())


def test_sql_query_with_duplicate_column_names_fails_before_reading_rows(
    airflow_sql_connection, db_url, store_path, statements
):
    """SQLite read the first of two columns named 'amount' for both; PostgreSQL failed on the
    ambiguous name deep in the profile statement. Both now fail naming the duplicates, without a retry,
    before any row is read."""
    schema = airflow_sql_connection(db_url)
    prefix = f"{schema}." if schema else ""
    _create_orders_table(db_url, "orders_today", DRIFTED)
    store_of(store_path).save_profile("orders_reference", profile_dataframe(REFERENCE).to_dict())
    statements.clear()
    operator = DataDriftOperator(
        task_id="sql_drift",
        reference_profile="orders_reference",
        sql_conn_id="warehouse",
        query=f"SELECT amount, quantity AS amount, quantity, segment FROM {prefix}orders_today",
        dataset_name="orders",
    )
    with pytest.raises(
        AirflowFailException, match=r"query has duplicate column names \['amount'\]; rename them"
    ):
        operator.execute(make_context())
    reads = [query.upper() for query in _data_queries(statements, "orders_today")]
    assert any(query.rstrip().endswith("WHERE 1 = 0") for query in reads)  # the names, from no row
    assert not any("GROUP BY" in query or "MIN(" in query for query in reads), reads  # no profile scan
    assert drift_result_count(store_path) == 0


def test_sql_missing_column_fails_naming_the_source(airflow_sql_connection, sqlite_url, store_path):
    airflow_sql_connection(sqlite_url)
    _create_orders_table(sqlite_url, "orders_today", STABLE)
    profile = profile_dataframe(REFERENCE.assign(discount=0.5))
    store_of(store_path).save_profile("orders_reference", profile.to_dict())
    operator = DataDriftOperator(
        task_id="sql_drift",
        reference_profile="orders_reference",
        sql_conn_id="warehouse",
        table="orders_today",
    )
    with pytest.raises(AirflowFailException, match=r"table 'orders_today' has no columns \['discount'\]"):
        operator.execute(make_context())


# -- parse-time checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dataframe_callable": stable_frame}, "exactly one reference source .* got none"),
        (
            {
                "reference_profile": "a",
                "reference_profile_path": "/p.json",
                "dataframe_callable": stable_frame,
            },
            "exactly one reference source",
        ),
        ({"reference_profile": "a"}, "exactly one current source"),
        ({"reference_profile": "a", "sql_conn_id": "w"}, "give exactly one of table and query"),
        (
            {"reference_profile": "a", "table": "t", "dataframe_callable": stable_frame},
            "table need sql_conn_id",
        ),
        (
            {"reference_profile": "a", "dataframe_callable": stable_frame, "column_tests": {"x": "nope"}},
            "nope",
        ),
        (
            {"reference_profile": "a", "dataframe_callable": stable_frame, "drift_share_threshold": 1.5},
            "drift_share_threshold",
        ),
        ({"reference_profile": "a", "dataframe_callable": stable_frame, "on_failure": "warn"}, "on_failure"),
        (
            {"reference_profile": "a", "dataframe_callable": stable_frame, "emit_asset": True},
            "emit_asset needs a fixed dataset_name",
        ),
        (
            {
                "reference_sql_conn_id": "w",
                "reference_query": "SELECT 1 AS x",
                "dataframe_callable": stable_frame,
                "columns": ["x"],
            },
            r"declare the kind of each in column_kinds \(undeclared: \['x'\]\)",
        ),
        (
            {"reference_profile": "a", "dataframe_callable": stable_frame, "reference_parameters": {"x": 1}},
            "reference_parameters need reference_sql_conn_id",
        ),
        (
            {"reference_sql_source": "SELECT 1", "dataframe_callable": stable_frame},
            "reference_sql_source must be a SqlSource",
        ),
        (
            {
                "reference_sql_source": SqlSource.from_arguments(conn_id="w", table="t"),
                "reference_sql_conn_id": "w",
                "dataframe_callable": stable_frame,
            },
            "give reference_sql_source or reference_sql_conn_id, not both",
        ),
        (
            {"reference_profile": "a", "sql_conn_id": "w", "query": "SELECT 1) AS t; DROP TABLE t; --"},
            "query holds 2 statements",
        ),
        (
            {"reference_profile": "a", "sql_conn_id": "w", "table": "t", "parameters": {"day": "1"}},
            r"parameters \['day'\] apply to a query",
        ),
    ],
)
def test_bad_arguments_fail_at_parse_time(arguments, message):
    with pytest.raises(ValueError, match=message):
        DataDriftOperator(task_id="bad", **arguments)


def test_constructor_does_no_io():
    def refuse(*args, **kwargs):
        raise AssertionError("called at parse time")

    operator = DataDriftOperator(
        task_id="lazy", reference_dataframe_callable=refuse, dataframe_callable=refuse, dataset_name="x"
    )
    assert operator.drift_settings.drift_share_threshold == 0.5


# -- one real DAG run -----------------------------------------------------------------------------

DAG_SOURCE = """
from datetime import datetime

import numpy as np
import pandas as pd
from airflow.sdk import dag

from airflow_provider_mlprod.operators.drift import DataDriftOperator


def frame(seed, shift):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.normal(100.0 + shift, 15.0, 500)})


@dag(dag_id="drift_operator_run", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def build():
    DataDriftOperator(
        task_id="stable",
        reference_dataframe_callable=frame,
        reference_dataframe_kwargs={"seed": 1, "shift": 0.0},
        dataframe_callable=frame,
        dataframe_kwargs={"seed": 2, "shift": 0.0},
        dataset_name="amounts",
        emit_asset=True,
    )
    DataDriftOperator(
        task_id="drifted",
        reference_dataframe_callable=frame,
        reference_dataframe_kwargs={"seed": 1, "shift": 0.0},
        dataframe_callable=frame,
        dataframe_kwargs={"seed": 3, "shift": 40.0},
        dataset_name="amounts_{{ dag.dag_id }}",
        on_failure="continue",
    )


build()
"""


def test_dag_run(dag_file, store_path: Path):
    dag = dag_file("drift_operator_run", DAG_SOURCE)
    run = dag.test()
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"stable": "success", "drifted": "success"}
    store = store_of(store_path)
    assert [row["dataset_drift"] for row in store.drift_history("amounts")] == [False]
    drifted = store.drift_history("amounts_drift_operator_run")
    assert [row["dataset_drift"] for row in drifted] == [True]
    assert all(math.isfinite(row["statistic"]) for row in drifted)

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.scalars(sa.select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)).all()
        extras = [(event.source_task_id, event.extra) for event in events]
    assert len(extras) == 1
    assert extras[0][0] == "stable"
    assert extras[0][1]["dataset_drift"] is False
    assert extras[0][1]["dataset"] == "amounts"


def _string_view_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` written to Parquet with its text column as pyarrow ``string_view``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.cast(table.schema.set(2, pa.field("segment", pa.string_view()))), path)
    return path


def test_pyarrow_string_view_frames_give_the_plain_frames_verdict(tmp_path: Path, store_path: Path):
    """pandas reads a Parquet file written with string_view text back as string_view columns
    (dtype_backend="pyarrow"); drift crashed on them (pandas cannot tell their kind nor count them).
    As reference and as current batch they now give the plain frames' summary."""
    reference_file = _string_view_parquet(REFERENCE, tmp_path / "reference.parquet")
    current_file = _string_view_parquet(DRIFTED, tmp_path / "current.parquet")

    def read(path: Path) -> pd.DataFrame:
        return pd.read_parquet(path, dtype_backend="pyarrow")

    assert str(read(current_file)["segment"].dtype) == "string_view[pyarrow]"
    reference_profile = profile_dataframe(REFERENCE)
    raw = compare_datasets(REFERENCE, DRIFTED)  # what the plain frames give
    current = {"current": read, "dataframe_kwargs": {"path": current_file}}
    runs = [
        (current, raw),
        (
            {
                **current,
                "reference_dataframe_callable": read,
                "reference_dataframe_kwargs": {"path": reference_file},
                "save_reference_profile_as": "orders_reference",
            },
            raw,
        ),
        (  # the profile saved from the string_view reference is the plain reference's profile
            {**current, "reference_dataframe_callable": None, "reference_profile": "orders_reference"},
            compare_datasets(reference_profile, DRIFTED),
        ),
        ({"current": None, "file_path": f"file://{current_file}"}, raw),
        (
            {"current": None, "file_path": f"file://{current_file}", "file_reader": "duckdb"},
            compare_datasets(REFERENCE, profile_dataframe(DRIFTED, specs=reference_profile.spec())),
        ),
    ]
    for arguments, expected in runs:
        summary = frame_operator(on_failure="continue", **arguments).execute(make_context())
        assert summary["drifted_columns"] == expected.drifted_columns == ["amount", "segment"], arguments
        for got, want in zip(summary["columns"], expected.to_dict()["columns"], strict=True):
            assert got["statistic"] == pytest.approx(want["statistic"], abs=1e-9), (arguments, got["column"])
    assert store_of(store_path).load_profile("orders_reference") == reference_profile.to_dict()


# -- DuckDB: an Airflow connection for tables, and Parquet/CSV files read without pandas ----------


def test_duckdb_connection_table_is_profiled_in_duckdb(monkeypatch, tmp_path: Path, store_path: Path):
    import duckdb

    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.register("drifted_frame", DRIFTED)
        connection.execute("CREATE TABLE orders_today AS SELECT * FROM drifted_frame")
    monkeypatch.setenv("AIRFLOW_CONN_DUCK", json.dumps({"conn_type": "mlprodduckdb", "host": str(database)}))
    store_of(store_path).save_profile("orders_reference", profile_dataframe(REFERENCE).to_dict())
    summary = DataDriftOperator(
        task_id="duck_drift",
        reference_profile="orders_reference",
        sql_conn_id="duck",
        table="orders_today",
        on_failure="continue",
    ).execute(make_context())
    expected = compare_datasets(profile_dataframe(REFERENCE), DRIFTED).to_dict()["columns"]
    assert summary["drifted_columns"] == ["amount", "segment"]
    for got, want in zip(summary["columns"], expected, strict=True):
        assert got["statistic"] == pytest.approx(want["statistic"], abs=1e-9)
    monkeypatch.setenv("AIRFLOW_CONN_DUCK", json.dumps({"conn_type": "mlprodduckdb", "host": str(tmp_path)}))
    with pytest.raises(AirflowFailException, match=r"'duck'.*DuckDB cannot open it"):
        DataDriftOperator(
            task_id="duck_drift",
            reference_profile="orders_reference",
            sql_conn_id="duck",
            table="orders_today",
        ).execute(make_context())


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_duckdb_file_reader_profiles_the_current_file(tmp_path: Path, suffix: str):
    current_file = tmp_path / f"orders.{suffix}"
    if suffix == "parquet":
        DRIFTED.to_parquet(current_file)
    else:
        DRIFTED.to_csv(current_file, index=False)
    summary = frame_operator(
        file_path=f"file://{current_file}", file_reader="duckdb", current=None, on_failure="continue"
    ).execute(make_context())
    current_profile = profile_dataframe(DRIFTED, specs=profile_dataframe(REFERENCE).spec())
    expected = compare_datasets(REFERENCE, current_profile).to_dict()["columns"]
    assert summary["drifted_columns"] == ["amount", "segment"]
    for got, want in zip(summary["columns"], expected, strict=True):
        assert got["statistic"] == pytest.approx(want["statistic"], abs=1e-9)
    with pytest.raises(ValueError, match="file_reader 'duckdb' reads csv or parquet"):
        frame_operator(file_path="x.jsonl", file_reader="duckdb", file_format="jsonl", current=None)

"""Quarantine: failing rows split from passing rows in files, failing keys recorded in SQL tables."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.validation.quarantine import FileQuarantine, SqlQuarantine
from airflow_provider_mlprod.validation.runner import validate_dataframe, validate_file, validate_sql

from .conftest import make_orders

STATUS_NOT_SHIPPED = {
    "type": "expect_column_values_to_not_be_in_set",
    "kwargs": {"column": "status", "value_set": ["shipped"]},
}
AMOUNT_AT_MOST_8 = {
    "type": "expect_column_values_to_be_between",
    "kwargs": {"column": "amount", "max_value": 8},
}
CODE_NOT_ABC_WARNING = {
    "type": "expect_column_values_to_not_be_in_set",
    "kwargs": {"column": "code", "value_set": ["ABC"]},
    "severity": "warning",
}
MEAN_BELOW_100 = {
    "type": "expect_column_mean_to_be_between",
    "kwargs": {"column": "amount", "max_value": 100},
}
SUITE = [STATUS_NOT_SHIPPED, AMOUNT_AT_MOST_8, CODE_NOT_ABC_WARNING, MEAN_BELOW_100]


def test_frame_rows_split_with_reasons(tmp_path):
    frame = make_orders()
    frame.index = [f"row{i}" for i in range(10)]  # a non-positional index must not confuse positions
    target = FileQuarantine(tmp_path / "clean.csv", tmp_path / "rejected.csv")
    summary = validate_dataframe(frame, SUITE, quarantine=target)
    assert summary.quarantine == {
        "passing_location": str(tmp_path / "clean.csv"),
        "failing_location": str(tmp_path / "rejected.csv"),
        "passing_rows": 6,
        "failing_rows": 4,
    }
    clean = pd.read_csv(tmp_path / "clean.csv")
    rejected = pd.read_csv(tmp_path / "rejected.csv")
    assert clean["id"].tolist() == [1, 2, 4, 5, 7, 8]
    assert dict(zip(rejected["id"], rejected["failed_expectations"], strict=True)) == {
        3: "expect_column_values_to_not_be_in_set(status)",
        6: "expect_column_values_to_not_be_in_set(status)",
        9: "expect_column_values_to_not_be_in_set(status); expect_column_values_to_be_between(amount)",
        10: "expect_column_values_to_be_between(amount)",
    }


def test_warnings_quarantine_only_when_asked(tmp_path):
    target = FileQuarantine(
        tmp_path / "clean.parquet", tmp_path / "rejected.parquet", severities=("critical", "warning")
    )
    summary = validate_dataframe(make_orders(), SUITE, quarantine=target)
    assert summary.quarantine["failing_rows"] == 7  # 3, 6, 9, 10 critical; 1, 4, 7 (and 10) code ABC
    rejected = pd.read_parquet(tmp_path / "rejected.parquet").set_index("id")["failed_expectations"]
    assert rejected[1] == "expect_column_values_to_not_be_in_set(code)"
    assert (
        rejected[10]
        == "expect_column_values_to_be_between(amount); expect_column_values_to_not_be_in_set(code)"
    )


def test_rows_are_quarantined_even_when_mostly_lets_the_expectation_pass(tmp_path):
    suite = [{**STATUS_NOT_SHIPPED, "kwargs": {**STATUS_NOT_SHIPPED["kwargs"], "mostly": 0.5}}]
    summary = validate_dataframe(
        make_orders(), suite, quarantine=FileQuarantine(tmp_path / "ok.csv", tmp_path / "bad.csv")
    )
    assert summary.success
    assert summary.quarantine["failing_rows"] == 3


def test_file_outputs_default_to_the_input_format(tmp_path):
    source = tmp_path / "orders.parquet"
    make_orders().drop(columns=["note"]).to_parquet(source, index=False)
    target = FileQuarantine(tmp_path / "clean.out", tmp_path / "rejected.out")
    summary = validate_file(source, SUITE, quarantine=target)
    assert len(pd.read_parquet(tmp_path / "clean.out")) == summary.quarantine["passing_rows"] == 6
    assert len(pd.read_parquet(tmp_path / "rejected.out")) == 4


def test_all_rows_passing_writes_an_empty_failing_output(tmp_path):
    target = FileQuarantine(tmp_path / "clean.csv", tmp_path / "rejected.csv")
    summary = validate_dataframe(make_orders(), [MEAN_BELOW_100], quarantine=target)
    assert (summary.quarantine["passing_rows"], summary.quarantine["failing_rows"]) == (10, 0)
    assert list(pd.read_csv(tmp_path / "rejected.csv").columns)[-1] == "failed_expectations"


def test_reason_column_clash_is_rejected(tmp_path):
    target = FileQuarantine(tmp_path / "a.csv", tmp_path / "b.csv", reason_column="status")
    with pytest.raises(ConfigurationError, match="reason column 'status' already exists"):
        validate_dataframe(make_orders(), SUITE, quarantine=target)


def test_bad_quarantine_settings():
    with pytest.raises(ConfigurationError, match="severities"):
        FileQuarantine("a.csv", "b.csv", severities=("fatal",))
    with pytest.raises(ConfigurationError, match="file format 'xlsx'"):
        FileQuarantine("a.csv", "b.csv", file_format="xlsx")


def _quarantined(url: str, table: str = "orders_quarantine") -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = f"SELECT id, failed_expectation, batch_id FROM {table} ORDER BY id, failed_expectation"
            return [tuple(row) for row in connection.exec_driver_sql(query)]
    finally:
        engine.dispose()


SQL_SUITE = [
    STATUS_NOT_SHIPPED,
    AMOUNT_AT_MOST_8,
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "code"}, "severity": "warning"},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": "^[A-D]"}},
    {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "status", "max_value": 3}},
    MEAN_BELOW_100,
]


def test_sql_failing_keys_go_to_the_quarantine_table(orders_table):
    target = SqlQuarantine("orders_quarantine", ("id",), batch_id="run-1")
    summary = validate_sql(orders_table, SQL_SUITE, table="orders", quarantine=target)
    assert summary.quarantine["table"] == "orders_quarantine"
    assert summary.quarantine["records_by_expectation"] == {
        "expect_column_values_to_not_be_in_set(status)": 3,
        "expect_column_values_to_be_between(amount)": 2,
        "expect_column_values_to_match_regex(code)": 3,
        "expect_column_value_lengths_to_be_between(status)": 6,
    }
    rows = _quarantined(orders_table)
    assert len(rows) == summary.quarantine["records"] == 14
    assert {row[0] for row in rows if row[1] == "expect_column_values_to_not_be_in_set(status)"} == {3, 6, 9}
    assert {row[0] for row in rows if row[1] == "expect_column_values_to_match_regex(code)"} == {3, 6, 9}
    assert {row[2] for row in rows} == {"run-1"}


def test_sql_quarantine_is_idempotent_per_batch(orders_table):
    target = SqlQuarantine("orders_quarantine", ("id",), batch_id="run-1")
    validate_sql(orders_table, [STATUS_NOT_SHIPPED], table="orders", quarantine=target)
    validate_sql(orders_table, [STATUS_NOT_SHIPPED], table="orders", quarantine=target)
    assert len(_quarantined(orders_table)) == 3
    validate_sql(
        orders_table,
        [STATUS_NOT_SHIPPED],
        table="orders",
        quarantine=SqlQuarantine("orders_quarantine", "id"),
    )
    assert len(_quarantined(orders_table)) == 6


def test_sql_quarantine_of_a_query_with_unique_and_warnings(orders_table):
    suite = [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "code"}, "severity": "warning"}
    ]
    target = SqlQuarantine("orders_quarantine", ("id",), batch_id="q", severities=("warning",))
    summary = validate_sql(orders_table, suite, query="SELECT * FROM orders WHERE id <= 4", quarantine=target)
    assert summary.success
    assert summary.quarantine["records"] == 2
    assert [row[0] for row in _quarantined(orders_table)] == [1, 4]


def test_sql_quarantine_rejects_types_it_cannot_express(orders_table):
    suite = [
        {
            "type": "expect_column_pair_values_a_to_be_greater_than_b",
            "kwargs": {"column_A": "start_day", "column_B": "end_day"},
        }
    ]
    with pytest.raises(ConfigurationError, match="SQL quarantine cannot express #0 expect_column_pair"):
        validate_sql(
            orders_table, suite, table="orders", quarantine=SqlQuarantine("orders_quarantine", ("id",))
        )


def test_sql_quarantine_table_missing_columns(orders_table):
    engine = sa.create_engine(orders_table)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE orders_quarantine (id INTEGER)")
    engine.dispose()
    with pytest.raises(
        ConfigurationError, match=r"'orders_quarantine' exists but lacks column.*failed_expectation, batch_id"
    ):
        validate_sql(
            orders_table,
            [STATUS_NOT_SHIPPED],
            table="orders",
            quarantine=SqlQuarantine("orders_quarantine", ("id",)),
        )


def test_sql_quarantine_key_column_must_exist(orders_table):
    with pytest.raises(InputDataError, match=r"table 'orders' lacks quarantine key column\(s\) order_no"):
        validate_sql(
            orders_table,
            [STATUS_NOT_SHIPPED],
            table="orders",
            quarantine=SqlQuarantine("orders_quarantine", ("order_no",)),
        )


def test_a_quarantine_table_name_longer_than_the_database_keeps_is_refused(orders_table):
    long_name = "orders_quarantine_" + "x" * 82  # 100 characters; PostgreSQL keeps 63
    target = SqlQuarantine(long_name, ("id",), batch_id="long")
    engine = sa.create_engine(orders_table)
    try:
        if engine.dialect.name == "postgresql":
            for _ in range(2):  # a retry fails the same way: no truncated table left behind
                with pytest.raises(ConfigurationError, match=f"quarantine table '{long_name}' is 100 bytes"):
                    validate_sql(orders_table, [STATUS_NOT_SHIPPED], table="orders", quarantine=target)
            assert not [name for name in sa.inspect(engine).get_table_names() if name.startswith("orders_q")]
        else:  # SQLite keeps long names whole
            for _ in range(2):
                summary = validate_sql(orders_table, [STATUS_NOT_SHIPPED], table="orders", quarantine=target)
                assert summary.quarantine["table"] == long_name
    finally:
        engine.dispose()


@pytest.mark.parametrize("nested", ["struct", "list", "map"])
def test_a_nested_column_of_string_view_text_is_quarantined_like_plain_text(tmp_path, nested):
    """pyarrow could not take the rows of a struct, list or map column holding string_view text (a
    Parquet file read with dtype_backend="pyarrow"): the split crashed inside pyarrow, which Airflow
    would retry. The rows split, and are written, as those of the same column with plain text."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    frame = make_orders()
    tags = [f"t{i % 3}" for i in range(len(frame))]

    def column(text_type):
        if nested == "struct":
            arrow_type = pa.struct([("tag", text_type)])
            values = [{"tag": tag} for tag in tags]
        elif nested == "list":
            arrow_type = pa.list_(text_type)
            values = [[tag, "x"] for tag in tags]
        else:
            arrow_type = pa.map_(text_type, pa.int64())
            values = [[(tag, 1)] for tag in tags]
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values, type=arrow_type)), index=frame.index)

    results = {}
    for name, text_type in (("plain", pa.large_string()), ("view", pa.string_view())):
        folder = tmp_path / name
        target = FileQuarantine(folder / "clean.parquet", folder / "rejected.parquet")
        summary = validate_dataframe(frame.assign(meta=column(text_type)), SUITE, quarantine=target)
        written = [
            pq.read_table(folder / part, columns=columns).to_pylist()
            for part, columns in (
                ("clean.parquet", ["id", "meta"]),
                ("rejected.parquet", ["id", "meta", "failed_expectations"]),
            )
        ]
        results[name] = (summary.quarantine["passing_rows"], summary.quarantine["failing_rows"], *written)
    assert results["plain"][:2] == (6, 4)
    assert [row["id"] for row in results["plain"][2]] == [1, 2, 4, 5, 7, 8]
    assert results["view"] == results["plain"]

"""Validating SQL tables and queries inside the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, MlprodError, SpecError
from airflow_provider_mlprod.validation.quarantine import SqlQuarantine
from airflow_provider_mlprod.validation.runner import validate_sql

from .conftest import make_orders, write_table

# Nothing listens on port 1: any attempt to connect fails, so an error other than the connection
# error proves the check ran before any SQL.
UNREACHABLE_URL = "postgresql+psycopg2://mlprod:s3cret-pw@127.0.0.1:1/nothing"

STATUS_IN_NEW_PAID = {
    "type": "expect_column_values_to_be_in_set",
    "kwargs": {"column": "status", "value_set": ["new", "paid"]},
}
AMOUNT_NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}

HOSTILE_NAMES = [
    'orders"; DROP TABLE orders; --',
    "orders -- comment",
    "o'rders",
    "orders;",
    "1orders",
    "or ders",
]


def test_table_in_the_database(orders_table):
    summary = validate_sql(orders_table, [STATUS_IN_NEW_PAID, AMOUNT_NOT_NULL], table="orders", sample_size=2)
    assert summary.dataset == "table 'orders'"
    assert summary.rows_checked == 10
    assert not summary.success
    (failure,) = summary.failures
    assert (failure.unexpected_count, failure.sample_values) == (3, ["shipped"])  # distinct values


def test_query_in_the_database(orders_table):
    summary = validate_sql(
        orders_table, [STATUS_IN_NEW_PAID], query="SELECT * FROM orders WHERE status <> 'shipped';"
    )
    assert summary.success
    assert summary.rows_checked == 7
    assert summary.dataset == "query \"SELECT * FROM orders WHERE status <> 'shipped'\""


def test_schema_qualified_table(postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS mlprod_sales")
    make_orders().to_sql("orders", engine, schema="mlprod_sales", index=False, dtype={"note": sa.String(20)})
    try:
        summary = validate_sql(postgres_url, [AMOUNT_NOT_NULL], table="mlprod_sales.orders")
        assert (summary.success, summary.dataset, summary.rows_checked) == (
            True,
            "table 'mlprod_sales.orders'",
            10,
        )
        assert validate_sql(postgres_url, [AMOUNT_NOT_NULL], table="orders", schema="mlprod_sales").success
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA mlprod_sales CASCADE")
        engine.dispose()


def test_missing_table(db_url):
    with pytest.raises(InputDataError, match="table 'no_such_orders' does not exist"):
        validate_sql(db_url, [AMOUNT_NOT_NULL], table="no_such_orders")


def test_failing_query(orders_table):
    with pytest.raises(InputDataError, match="query 'SELECT amount FROM no_such_orders' fails"):
        validate_sql(orders_table, [AMOUNT_NOT_NULL], query="SELECT amount FROM no_such_orders")


def test_missing_column(orders_table):
    suite = [{"type": "expect_column_max_to_be_between", "kwargs": {"column": "discount", "max_value": 5}}]
    with pytest.raises(InputDataError, match=r"table 'orders' lacks column\(s\) 'discount'"):
        validate_sql(orders_table, suite, table="orders")


def test_empty_table(db_url):
    write_table(db_url, "orders", make_orders().iloc[0:0])
    with pytest.raises(InputDataError, match="table 'orders' has no rows"):
        validate_sql(db_url, [AMOUNT_NOT_NULL], table="orders")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_table_names_are_rejected_before_any_sql(name):
    with pytest.raises(ConfigurationError, match="is not a plain SQL identifier"):
        validate_sql(UNREACHABLE_URL, [AMOUNT_NOT_NULL], table=name)


def test_hostile_schema_is_rejected_before_any_sql():
    with pytest.raises(ConfigurationError, match="schema 'x\"; --'"):
        validate_sql(UNREACHABLE_URL, [AMOUNT_NOT_NULL], table="orders", schema='x"; --')


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_column_names_are_rejected_before_any_sql(name):
    suite = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": name}}]
    with pytest.raises(SpecError, match=r"column of expectation #0 .* is not a plain SQL identifier"):
        validate_sql(UNREACHABLE_URL, suite, table="orders")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_quarantine_names_are_rejected_before_any_sql(name):
    with pytest.raises(ConfigurationError, match="quarantine key column"):
        validate_sql(
            UNREACHABLE_URL, [AMOUNT_NOT_NULL], table="orders", quarantine=SqlQuarantine("q", (name,))
        )
    with pytest.raises(ConfigurationError, match="not a plain SQL identifier"):
        validate_sql(
            UNREACHABLE_URL, [AMOUNT_NOT_NULL], table="orders", quarantine=SqlQuarantine(name, ("id",))
        )


def test_table_and_query_are_exclusive():
    with pytest.raises(ConfigurationError, match="exactly one of table and query"):
        validate_sql(UNREACHABLE_URL, [AMOUNT_NOT_NULL], table="orders", query="SELECT 1")
    with pytest.raises(ConfigurationError, match="exactly one of table and query"):
        validate_sql(UNREACHABLE_URL, [AMOUNT_NOT_NULL])


def test_unreachable_database_never_shows_the_password():
    with pytest.raises(MlprodError, match="cannot connect to the database of table 'orders'") as raised:
        validate_sql(UNREACHABLE_URL, [AMOUNT_NOT_NULL], table="orders")
    assert "s3cret-pw" not in str(raised.value)


HOSTILE_QUERY = "SELECT * FROM orders) AS mlprod_probe; COMMIT; DROP TABLE orders; SELECT * FROM (SELECT 1"


def _orders_exist(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).has_table("orders")
    finally:
        engine.dispose()


def test_a_query_that_closes_the_subquery_and_commits_a_drop_is_refused(orders_table):
    with pytest.raises(ConfigurationError, match="query holds 4 statements"):
        validate_sql(orders_table, [AMOUNT_NOT_NULL], query=HOSTILE_QUERY)
    assert _orders_exist(orders_table)


@pytest.mark.parametrize("method", ["column_names", "row_count"])
def test_past_the_parser_the_read_only_session_still_keeps_the_table(orders_table, method):
    from airflow_provider_mlprod.sql.session import read_only_snapshot
    from airflow_provider_mlprod.sql.source import SqlSource

    source = SqlSource(query=HOSTILE_QUERY)  # built directly: no parser check
    engine = sa.create_engine(orders_table)
    try:
        with pytest.raises((InputDataError, sa.exc.DBAPIError)), read_only_snapshot(engine) as connection:
            getattr(source, method)(connection)
    finally:
        engine.dispose()
    assert _orders_exist(orders_table)


def _commit_bad_rows_after_the_row_count(engine: sa.Engine, url: str):
    """After the provider counted the rows, another session commits two orders without an amount."""
    writer = sa.create_engine(url)
    done = []

    def after(conn, cursor, statement, parameters, context, executemany):
        if not done and "count(" in statement.lower() and "mlprod_count" in statement:
            done.append(statement)
            with writer.begin() as other:
                other.exec_driver_sql(
                    "INSERT INTO orders (id, amount, status, code, start_day, end_day) "
                    "VALUES (101, NULL, 'new', 'ABC', 0, 1), (102, NULL, 'new', 'ABC', 0, 1)"
                )

    sa.event.listen(engine, "after_cursor_execute", after)
    return writer, done


def test_on_postgresql_gx_and_the_quarantine_read_the_validated_snapshot(postgres_url):
    write_table(postgres_url, "orders", make_orders())
    engine = sa.create_engine(postgres_url)
    writer, done = _commit_bad_rows_after_the_row_count(engine, postgres_url)
    quarantine = SqlQuarantine(table="orders_quarantine", key_columns=("id",), batch_id="b1")
    try:
        summary = validate_sql(
            postgres_url, [AMOUNT_NOT_NULL], table="orders", engine=engine, quarantine=quarantine
        )
    finally:
        writer.dispose()
        engine.dispose()
    assert done, "the concurrent rows were committed during the validation"
    assert summary.rows_checked == 10
    assert summary.success  # GX did not see the two null amounts committed after the snapshot
    assert summary.quarantine["source_snapshot"] == "validated"
    assert summary.quarantine["records"] == 0


def test_elsewhere_the_quarantine_reads_the_latest_rows_and_says_so(sqlite_url):
    write_table(sqlite_url, "orders", make_orders().assign(amount=[None] + [1.0] * 9))
    quarantine = SqlQuarantine(table="orders_quarantine", key_columns=("id",), batch_id="b1")
    summary = validate_sql(sqlite_url, [AMOUNT_NOT_NULL], table="orders", quarantine=quarantine)
    assert (summary.quarantine["source_snapshot"], summary.quarantine["records"]) == ("latest", 1)


def test_a_query_with_parameters_reaches_gx_intact(orders_table):
    """Rendered for GX's text(): a value holding 'a:b' stays text; ' :word' in a value is refused by name."""
    query = "SELECT * FROM orders WHERE status = :status AND code <> :marker"
    summary = validate_sql(
        orders_table, [AMOUNT_NOT_NULL], query=query, parameters={"status": "paid", "marker": "a:b"}
    )
    assert (summary.success, summary.rows_checked) == (True, 3)
    with pytest.raises(ConfigurationError, match="holds ':y' inside a value or quoted text"):
        validate_sql(
            orders_table, [AMOUNT_NOT_NULL], query=query, parameters={"status": "paid", "marker": "x :y"}
        )


PERCENT_NAMES = ["abc", "a%x", "b", "a%%y", "%(name)s"]
"""Names holding '%' as a LIKE wildcard would, a literal '%%' and text that looks like a placeholder."""

AMOUNT_UP_TO_3 = {
    "type": "expect_column_values_to_be_between",
    "kwargs": {"column": "amount", "min_value": 0, "max_value": 3},
}


@pytest.mark.parametrize(
    ("where", "parameters", "rows", "names_outside_set"),
    [
        ("name LIKE 'a%'", None, ["abc", "a%x", "a%%y"], 1),
        ("id % 2 = 0", None, ["a%x", "a%%y"], 1),
        ("name = 'a%%y'", None, ["a%%y"], 1),
        ("name = '%(name)s'", None, ["%(name)s"], 1),
        ("name = 'a%x'", None, ["a%x"], 0),
        ("name LIKE :pattern AND id % :modulus = 0", {"pattern": "a%", "modulus": 2}, ["a%x", "a%%y"], 1),
    ],
)
def test_a_query_with_percent_signs_is_validated_as_written(
    db_url, where, parameters, rows, names_outside_set
):
    """'%' in a query means what it says on every driver: GX's own queries see the rows the parser saw.

    On psycopg GX used to hand the server every '%' doubled: the modulo failed, and the literals matched
    other rows (or none) than the provider's own count.
    """
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE names (id integer, name varchar(20), amount float)"))
        connection.execute(
            sa.text("INSERT INTO names VALUES (:id, :name, :amount)"),
            [{"id": i, "name": name, "amount": float(i)} for i, name in enumerate(PERCENT_NAMES, start=1)],
        )
    engine.dispose()
    in_set = {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "name", "value_set": ["abc", "a%x", "b"]},
    }
    summary = validate_sql(
        db_url,
        [AMOUNT_NOT_NULL, AMOUNT_UP_TO_3, in_set],
        query=f"SELECT * FROM names WHERE {where}",
        parameters=parameters,
    )
    assert summary.rows_checked == len(rows)
    expected_amounts = [PERCENT_NAMES.index(name) + 1 for name in rows]
    unexpected = {outcome.expectation_type: outcome.unexpected_count for outcome in summary.outcomes}
    assert unexpected == {
        "expect_column_values_to_not_be_null": 0,
        "expect_column_values_to_be_between": sum(1 for amount in expected_amounts if amount > 3),
        "expect_column_values_to_be_in_set": names_outside_set,
    }

"""The SQL source value: checks before any SQL, bound parameters, one snapshot, errors naming the source."""

from __future__ import annotations

import datetime

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.sql.session import read_only_snapshot, read_only_url
from airflow_provider_mlprod.sql.source import SqlSource


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE orders (id INTEGER, day VARCHAR(10), amount FLOAT)")
        connection.exec_driver_sql(
            "INSERT INTO orders VALUES (1, '2026-01-01', 5), (2, '2026-01-01', 7), (3, '2026-01-02', 9)"
        )
    yield engine
    engine.dispose()


def test_a_query_with_bound_parameters_reads_its_rows(engine):
    source = SqlSource.from_arguments(
        query="SELECT id, amount FROM orders WHERE day = :day AND amount > :low",
        parameters={"day": "2026-01-01", "low": 5},
        conn_id="warehouse",
    )
    with read_only_snapshot(engine) as connection:
        assert source.column_names(connection) == ["id", "amount"]
        assert source.row_count(connection) == 1
    assert source.to_dict()["parameters"] == {"day": "2026-01-01", "low": 5}
    assert source.where.endswith("on connection 'warehouse'")


def test_a_hostile_parameter_value_stays_a_value(engine):
    hostile = "2026-01-01' OR '1'='1"
    source = SqlSource.from_arguments(
        query="SELECT id FROM orders WHERE day = :day", parameters={"day": hostile}
    )
    with read_only_snapshot(engine) as connection:
        assert source.row_count(connection) == 0
    # rendered for a library that takes only text: the quote is escaped, still one SELECT
    rendered = source.rendered_query(engine.dialect)
    assert "''" in rendered
    with engine.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT count(*) FROM ({rendered}) AS t").scalar_one() == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": "SELECT * FROM orders WHERE day = :day"}, r"query uses :day but parameters give no value"),
        (
            {"query": "SELECT * FROM orders", "parameters": {"day": "x"}},
            r"parameters \['day'\] are not used by query",
        ),
        (
            {"query": "SELECT * FROM orders WHERE id IN (:ids)", "parameters": {"ids": [1, 2]}},
            "parameter 'ids' of query is a list; give a single value",
        ),
        ({"query": "SELECT 1", "parameters": ["x"]}, "must be a mapping of name to value, got list"),
        (
            {"query": "SELECT * FROM orders WHERE day = :day::date", "parameters": {"day": "2026-01-01"}},
            r"query writes :day:: \(a cast right after a placeholder\).*write CAST\(:day AS type\)",
        ),
        (
            {"query": "SELECT * FROM orders WHERE id = :id", "parameters": {"id": 10**400}},
            r"parameter 'id' of query is 10000000000000000000… \(401 digits\), outside the 64-bit",
        ),
        (
            {"query": "SELECT * FROM orders WHERE id = :id", "parameters": {"id": 2**63}},
            "parameter 'id' of query is 9223372036854775808, outside the 64-bit integer range",
        ),
        (
            {"query": "SELECT * FROM orders WHERE amount > :low", "parameters": {"low": float("nan")}},
            "parameter 'low' of query is NaN",
        ),
        (
            {"query": "SELECT * FROM orders WHERE day = :day", "parameters": {"day": "2026\x00"}},
            "parameter 'day' of query holds a NUL character",
        ),
        (
            {"table": "orders", "parameters": {"day": "x"}},
            r"apply to a query; table 'orders' has no placeholders",
        ),
        ({"table": "orders", "query": "SELECT 1"}, "give exactly one of table and query"),
        ({"query": "SELECT 1", "schema": "s"}, "schema applies to a table"),
        ({"query": "SELECT 1; DELETE FROM orders"}, "query holds 2 statements"),
        ({"table": "orders", "hook_params": {"x": object()}}, "hook_params must hold JSON values"),
        ({"table": "orders", "conn_id": ""}, "connection id '' must be a non-empty string"),
    ],
)
def test_bad_sources_are_refused_before_any_sql(arguments, message):
    with pytest.raises(ConfigurationError, match=message):
        SqlSource.from_arguments(**arguments)


def test_dates_are_bound_with_their_type(engine):
    source = SqlSource.from_arguments(
        query="SELECT id FROM orders WHERE day >= :since",
        parameters={"since": datetime.date(2026, 1, 2).isoformat()},
    )
    with read_only_snapshot(engine) as connection:
        assert source.row_count(connection) == 1


def test_a_failing_query_names_the_source_and_the_connection(engine):
    source = SqlSource.from_arguments(query="SELECT nope FROM orders", conn_id="warehouse")
    with (
        pytest.raises(
            InputDataError, match=r"query 'SELECT nope FROM orders' on connection 'warehouse' fails"
        ),
        read_only_snapshot(engine) as connection,
    ):
        source.column_names(connection)
    missing = SqlSource.from_arguments(table="absent", conn_id="warehouse")
    absent = "table 'absent' on connection 'warehouse' does not exist"
    with pytest.raises(InputDataError, match=absent), read_only_snapshot(engine) as connection:
        missing.column_names(connection)


def test_a_read_only_url_refuses_writes_and_keeps_its_options(engine, db_url):
    url = sa.make_url(db_url)
    read_only = sa.create_engine(read_only_url(url))
    try:
        with read_only.connect() as connection:
            assert (
                connection.exec_driver_sql("SELECT count(*) FROM orders").scalar_one() == 3
            )  # search_path kept
            with pytest.raises(sa.exc.DBAPIError):
                connection.exec_driver_sql("DELETE FROM orders")
    finally:
        read_only.dispose()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM orders").scalar_one() == 3


def test_a_templated_text_parameter_compares_with_a_number(engine):
    """Rendered templates are text: '2' must still compare with an integer column (PostgreSQL too)."""
    source = SqlSource.from_arguments(
        query="SELECT id FROM orders WHERE id >= :first", parameters={"first": "2"}
    )
    with read_only_snapshot(engine) as connection:
        assert source.row_count(connection) == 2
        assert source.column_names(connection) == ["id"]
    typed = SqlSource.from_arguments(
        query="SELECT id FROM orders WHERE id >= :first", parameters={"first": 2}
    )
    with read_only_snapshot(engine) as connection:
        assert typed.row_count(connection) == 2


def test_a_colon_inside_quoted_text_is_named_and_can_be_escaped(engine):
    hint = r"query uses :b .* inside quoted text .* write it as '\\:'"
    with pytest.raises(ConfigurationError, match=hint):
        SqlSource.from_arguments(query="SELECT 'a :b' AS z FROM orders")
    escaped = SqlSource.from_arguments(query="SELECT 'a \\:b' AS z FROM orders")
    with read_only_snapshot(engine) as connection:
        assert escaped.row_count(connection) == 3
    with pytest.raises(ConfigurationError, match="holds ':b' inside a value or quoted text"):
        escaped.rendered_query(engine.dialect)  # GX reads the text twice: the escape would not survive


def test_the_largest_bound_integers_are_read_back(engine):
    source = SqlSource.from_arguments(
        query="SELECT count(*) AS n FROM orders WHERE id < :high AND id > :low",
        parameters={"high": 2**63 - 1, "low": -(2**63)},
    )
    with read_only_snapshot(engine) as connection:
        assert connection.execute(source.statement()).scalar_one() == 3


def test_a_datetime_with_an_offset_compares_as_the_same_instant(db_url):
    # naive database timestamps are UTC; SQLite would drop the offset and compare 10:00 instead of 05:00
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE events (id INTEGER, happened_at TIMESTAMP)")
            connection.exec_driver_sql(
                "INSERT INTO events VALUES (1, '2026-01-01 04:00:00'), (2, '2026-01-01 06:00:00')"
            )
        since = datetime.datetime(2026, 1, 1, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=5)))
        source = SqlSource.from_arguments(
            query="SELECT id FROM events WHERE happened_at > :since", parameters={"since": since}
        )
        with read_only_snapshot(engine) as connection:
            assert connection.execute(source.statement()).scalars().all() == [2]
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", ["orders#1.db", "orders 100%.db", "orders?.db"])
def test_a_read_only_sqlite_url_opens_the_file_whose_name_holds_uri_characters(tmp_path, name):
    path = tmp_path / name
    writer = sa.create_engine(sa.URL.create("sqlite", database=str(path)))
    with writer.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE orders (id INTEGER)")
        connection.exec_driver_sql("INSERT INTO orders VALUES (1)")
    writer.dispose()
    url = read_only_url(sa.URL.create("sqlite", database=str(path)))
    reader = sa.create_engine(url.render_as_string(hide_password=False))  # as GX receives it
    try:
        with reader.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM orders").scalar_one() == 1
            with pytest.raises(sa.exc.OperationalError, match="readonly"):
                connection.exec_driver_sql("DELETE FROM orders")
    finally:
        reader.dispose()
    assert sorted(child.name for child in tmp_path.iterdir()) == [name]  # no stray file was created

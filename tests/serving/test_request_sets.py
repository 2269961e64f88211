"""Request sets from JSON lines and SQL rows: streamed, re-readable, bad input named."""

from __future__ import annotations

import io
import itertools
import json

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError
from airflow_provider_mlprod.serving.request_sets import json_lines_request_set, sql_request_set
from airflow_provider_mlprod.sql.source import SqlSource


def lines(text: str):
    return json_lines_request_set("set.jsonl", lambda: io.BytesIO(text.encode()))


def test_json_lines_skip_blank_lines_and_keep_line_numbers():
    items = list(lines('{"a": 1}\n\n{"a": 2}\n').open())
    assert [(json.loads(i.body), i.position) for i in items] == [({"a": 1}, 1), ({"a": 2}, 3)]


def test_cycle_reads_the_set_again():
    items = list(itertools.islice(lines('{"a": 1}\n{"a": 2}\n').cycle(), 5))
    assert [json.loads(i.body)["a"] for i in items] == [1, 2, 1, 2, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "set.jsonl: it holds no requests"),
        ("\n\n", "it holds no requests"),
        ('{"a": 1}\n{"a": \n', "line 2 is not valid JSON"),
        ('{"a": 1}\n"text"\n', "line 2 is a JSON str, expected an object"),
    ],
)
def test_bad_sets_name_the_line(text, message):
    with pytest.raises(InputDataError, match=message):
        list(itertools.islice(lines(text).cycle(), 3))


def test_the_file_is_read_lazily():
    """A malformed line far down is reported only when reached: the set is streamed, not loaded."""
    text = "".join(json.dumps({"i": i}) + "\n" for i in range(1000)) + "oops\n"
    first = list(itertools.islice(lines(text).open(), 10))
    assert len(first) == 10


def test_sql_rows_as_bodies_and_body_column(db_url):
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE reqs (plan VARCHAR(10), tenure_months INTEGER, body TEXT)"))
        connection.execute(
            sa.text("INSERT INTO reqs VALUES ('basic', 3, '{\"x\": 1}'), ('premium', 9, 'not json')")
        )
    rows = sql_request_set(engine, query("SELECT plan, tenure_months FROM reqs ORDER BY tenure_months"))
    assert [json.loads(i.body) for i in rows.open()] == [
        {"plan": "basic", "tenure_months": 3},
        {"plan": "premium", "tenure_months": 9},
    ]
    bodies = sql_request_set(engine, query("SELECT body FROM reqs ORDER BY tenure_months"))
    with pytest.raises(InputDataError, match="row 2 column 'body' is not valid JSON"):
        list(bodies.open())
    engine.dispose()


def query(text, parameters=None):
    return SqlSource.from_arguments(
        query=text, parameters=parameters, conn_id="warehouse", role="requests_sql"
    )


def test_sql_request_set_binds_parameters_and_streams_in_chunks(db_url):
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE reqs (plan VARCHAR(20), tenure_months INTEGER)"))
        connection.execute(
            sa.text("INSERT INTO reqs VALUES (:plan, :months)"),
            [
                {"plan": plan, "months": months}
                for months, plan in enumerate(["basic", "50%", "x' OR '1'='1"] * 3)
            ],
        )
    source = query(
        "SELECT plan, tenure_months FROM reqs WHERE plan = :plan AND tenure_months % 2 = 1 ORDER BY 2",
        {"plan": "50%"},
    )
    found = [json.loads(item.body) for item in sql_request_set(engine, source, chunk_rows=1).open()]
    assert found == [{"plan": "50%", "tenure_months": 1}, {"plan": "50%", "tenure_months": 7}]
    hostile = query("SELECT plan FROM reqs WHERE plan = :plan", {"plan": "x' OR '1'='1"})
    assert len(list(sql_request_set(engine, hostile).open())) == 3  # a value, never SQL
    engine.dispose()


def test_sql_request_set_errors_name_the_source_and_are_final(db_url):
    engine = sa.create_engine(db_url)
    broken = sql_request_set(engine, query("SELECT body FROM no_such_requests"))
    with pytest.raises(
        InputDataError, match=r"query 'SELECT body FROM no_such_requests' on connection 'warehouse' fails"
    ):
        list(broken.open())
    engine.dispose()


def test_sql_request_set_reads_in_a_read_only_session(postgres_url):
    """A PostgreSQL function with a side effect cannot write through the request query."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE reqs (plan VARCHAR(20))"))
        connection.execute(
            sa.text(
                "CREATE FUNCTION mlprod_sneaky() RETURNS integer AS "
                "$$ INSERT INTO reqs VALUES ('written'); SELECT 1 $$ LANGUAGE sql"
            )
        )
    with pytest.raises(InputDataError, match="read-only transaction"):
        list(sql_request_set(engine, query("SELECT mlprod_sneaky() AS written")).open())
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM reqs")).scalar_one() == 0
    engine.dispose()

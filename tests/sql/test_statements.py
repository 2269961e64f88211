"""The parser barrier: only one read-only SELECT passes, refused before anything runs."""

from __future__ import annotations

import pytest

from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.sql.statements import check_select


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT 1", "SELECT 1"),
        ("  with a AS (SELECT 1 AS x) SELECT * FROM a ;  ", "with a AS (SELECT 1 AS x) SELECT * FROM a"),
        ("SELECT 'a;b' AS x", "SELECT 'a;b' AS x"),
        ("SELECT $$;DROP TABLE t$$ AS x", "SELECT $$;DROP TABLE t$$ AS x"),
        ("SELECT amount FROM orders WHERE day = :day", "SELECT amount FROM orders WHERE day = :day"),
        ("SELECT 1 -- ; DROP TABLE t", "SELECT 1 -- ; DROP TABLE t"),
        ("SELECT 'it''s' AS a, '\\d+' AS b", "SELECT 'it''s' AS a, '\\d+' AS b"),
        ("SELECT data #> '{a}' AS a FROM t", "SELECT data #> '{a}' AS a FROM t"),
        ("SELECT 1 /*+ hint */ /* note */", "SELECT 1 /*+ hint */ /* note */"),
    ],
)
def test_one_select_passes(query, expected):
    assert check_select(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1) AS p; COMMIT; DROP TABLE victim; SELECT * FROM (SELECT 1", "holds 4 statements"),
        ("SELECT 1; SELECT 2", "holds 2 statements"),
        ("DROP TABLE victim", "is a DROP statement"),
        ("UPDATE t SET a = 1", "is a UPDATE statement"),
        ("SELECT * INTO copy_of_t FROM t", "contains INTO"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "contains DELETE"),
        ("WITH d AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d", "contains INSERT"),
        ("PRAGMA query_only = OFF", "is an unrecognised statement"),
        ("", "is empty"),
        ("  ;  ", "holds 0 statements"),
        (None, "is empty"),
        ("SELECT '\\' AS a; DROP TABLE victim; SELECT 1 AS a --'", "a backslash before a quote"),
        ("SELECT '\\\\' AS a; DROP TABLE victim; SELECT 1 AS a --'", "a backslash before a quote"),
        ('SELECT 1 AS "\\"; DROP TABLE victim; --"', "a backslash before a quote"),
        ("SELECT E'it\\'s' AS a", "a backslash before a quote"),
        ("SELECT 1 # 1 ; DROP TABLE victim", "'#' comment"),
        ("SELECT * FROM t /*!50000 INTO OUTFILE '/tmp/x' */", "run the text of a '/\\*!' comment"),
        ("SELECT 1 /*M! , sleep(5) */", "run the text of a '/\\*!' comment"),
    ],
)
def test_anything_else_is_refused_naming_why(query, message):
    with pytest.raises(ConfigurationError, match=message):
        check_select(query)


QUOTE_DESYNC = [
    # sqlparse reads \' as an escaped quote (one string); PostgreSQL ends the string at the quote
    "SELECT '\\' AS a; COMMIT; BEGIN READ WRITE; DROP TABLE victim; COMMIT; SELECT 1 AS a --'",
    # sqlparse reads '# ' as a comment; PostgreSQL reads '#' as XOR
    "SELECT 1 # 1 AS a; COMMIT; BEGIN READ WRITE; DROP TABLE victim; COMMIT; SELECT 1 AS a",
]


@pytest.fixture
def postgres_victim(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE victim (id INTEGER)")
    yield engine
    engine.dispose()


@pytest.mark.parametrize("hostile", QUOTE_DESYNC)
def test_text_postgres_splits_differently_is_refused_before_it_runs(postgres_victim, hostile):
    from airflow_provider_mlprod.sql.session import read_only_snapshot
    from airflow_provider_mlprod.sql.source import SqlSource

    # the server really runs it as several statements, and BEGIN READ WRITE leaves the read-only
    # session: without the parser barrier the table is gone (shown on a copy)
    with postgres_victim.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE victim_copy (id INTEGER)")
    with read_only_snapshot(postgres_victim) as connection:
        connection.exec_driver_sql(hostile.replace("victim;", "victim_copy;"))
    assert not _has_table(postgres_victim, "victim_copy")

    with pytest.raises(ConfigurationError, match=r"backslash before a quote|'#' comment"):
        SqlSource.from_arguments(query=hostile, conn_id="warehouse", role="golden_query")
    assert _has_table(postgres_victim, "victim")


def _has_table(engine, name: str) -> bool:
    import sqlalchemy as sa

    return sa.inspect(engine).has_table(name)

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
    ],
)
def test_anything_else_is_refused_naming_why(query, message):
    with pytest.raises(ConfigurationError, match=message):
        check_select(query)

"""Hostile inputs to the output checks: schemas that reach out or loop, type mismatches, odd characters."""

from __future__ import annotations

import http.server
import json
import threading
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.outputs.checks import build_checks, evaluate_value
from airflow_provider_mlprod.outputs.golden import load_golden_set, score_answers
from airflow_provider_mlprod.outputs.runner import check_frame, check_sql, failing_sql_rows, source_selectable
from airflow_provider_mlprod.sql.source import SqlSource


@pytest.fixture
def schema_server():
    """A real local HTTP server serving a permissive schema; ``hits`` lists every request it got."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("nested", [False, True])
def test_a_remote_schema_ref_is_refused_and_never_fetched(schema_server, nested):
    base, hits = schema_server
    ref = {"$ref": f"{base}/schema.json"}
    schema = {"properties": {"a": ref}} if nested else ref
    with pytest.raises(SpecError, match=r"does not resolve within the schema .*not fetched"):
        build_checks([{"check": "json_schema", "column": "p", "schema": schema}])
    assert hits == []


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "#"}, r"\$ref loop # -> #"),
        (
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
            r"\$ref loop #/\$defs/a -> #/\$defs/b -> #/\$defs/a",
        ),
        ({"properties": {"a": {"$ref": "#/properties/a"}}}, r"\$ref loop"),
        ({"allOf": [{"$ref": "#"}]}, "loop back to themselves"),
        ({"$ref": "#/$defs/missing"}, r"\$ref '#/\$defs/missing' does not resolve"),
    ],
)
def test_schema_ref_loops_and_dangling_refs_fail_before_any_row(schema, message):
    with pytest.raises(SpecError, match=message):
        build_checks([{"check": "json_schema", "column": "p", "schema": schema}])


def test_recursive_schemas_that_descend_still_work_and_deep_documents_fail_their_row():
    tree = {
        "type": "object",
        "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}},
    }
    checks = build_checks([{"check": "json_schema", "column": "p", "schema": tree}])
    deep = '{"v": 1, "kids": [' * 400 + '{"v": 1}' + "]}" * 400
    verdicts = [
        evaluate_value(checks, doc)["json_schema(p)"]
        for doc in ('{"v": 1, "kids": [{"v": 2, "kids": []}]}', '{"v": 1, "kids": [{"v": "x"}]}', deep)
    ]
    assert verdicts == [True, False, False]
    nested_id = {
        "$id": "https://example.com/root",
        "$defs": {
            "n": {"$id": "https://example.com/n", "$defs": {"i": {"type": "integer"}}, "$ref": "#/$defs/i"}
        },
        "$ref": "n",
    }
    checks = build_checks([{"check": "json_schema", "column": "p", "schema": nested_id}])
    assert [evaluate_value(checks, doc)["json_schema(p)"] for doc in ("1", '"x"')] == [True, False]


KIND_MISMATCHES = [
    ({"check": "allowed_labels", "column": "code", "labels": ["1", "2"]}, "needs a text column, 'code' is"),
    (
        {"check": "allowed_labels", "column": "answer", "labels": [1, 2]},
        "needs a numeric column, 'answer' is",
    ),
    (
        {"check": "numeric_range", "column": "answer", "min_value": 0, "max_value": 10},
        "needs a numeric column",
    ),
    ({"check": "not_empty", "column": "code"}, r"not_empty\(code\) needs a text column, 'code' is"),
    ({"check": "max_length", "column": "code", "max_chars": 3}, "needs a text column, 'code' is"),
]
ROWS = [{"code": 1, "answer": "5"}, {"code": 2, "answer": "50"}, {"code": 3, "answer": "abc"}]


def _kind_tables(engine_name: str, url: str | None):
    """(connection, table, query subquery or None) holding ``ROWS`` on a real engine."""
    import duckdb

    from airflow_provider_mlprod.sql.duckdb import DuckDBConnection

    if engine_name == "duckdb":
        raw = duckdb.connect()
        raw.execute("CREATE TABLE predictions (code INTEGER, answer VARCHAR)")
        raw.executemany("INSERT INTO predictions VALUES (?, ?)", [[r["code"], r["answer"]] for r in ROWS])
        connection = DuckDBConnection(raw, "duckdb test")
        return connection, connection.table("predictions"), None
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE predictions (code INTEGER, answer VARCHAR(20))"))
        connection.execute(sa.text("INSERT INTO predictions VALUES (:code, :answer)"), ROWS)
    connection = engine.connect()
    table = sa.Table("predictions", sa.MetaData(), autoload_with=connection)
    query = None
    if engine_name == "postgresql":
        source = SqlSource(conn_id="wh", query="SELECT code, answer FROM predictions")
        query = source_selectable(connection, source)
    return connection, table, query


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "duckdb"])
@pytest.mark.parametrize(("spec", "message"), KIND_MISMATCHES)
def test_a_check_on_a_column_of_the_wrong_kind_fails_naming_it(request, engine_name, spec, message):
    """Without the kind check, PostgreSQL refused the comparison (an unclear ProgrammingError) and SQLite
    and DuckDB cast it: ``1 IN ('1')`` passed there and failed in Python."""
    url = (
        None
        if engine_name == "duckdb"
        else request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "postgres_url"}[engine_name])
    )
    checks = build_checks([spec])
    connection, table, query = _kind_tables(engine_name, url)
    try:
        for source in (table, query):
            if source is None:
                continue
            with pytest.raises(InputDataError, match=message):
                check_sql(connection, source, checks, dataset="predictions")
            with pytest.raises(InputDataError, match=message):
                failing_sql_rows(connection, source, checks, key_columns=["code"])
    finally:
        (connection.raw if engine_name == "duckdb" else connection).close()
    frame = pd.DataFrame({"code": [1, 2, 3], "answer": pd.Series(["5", "50", "abc"], dtype="string")})
    with pytest.raises(InputDataError, match=message):
        check_frame(frame, checks)


def test_numbers_written_as_text_fail_numeric_range_in_python_as_in_sql():
    checks = build_checks([{"check": "numeric_range", "column": "s", "min_value": 0, "max_value": 10}])
    values = pd.Series(["5", 5, 5.0, True, Decimal("3"), None, float("nan"), float("inf")], dtype=object)
    summary, positions = check_frame(pd.DataFrame({"s": values}), checks)
    assert summary.results[0].passed_rows == 3
    assert list(positions["numeric_range(s)"]) == [0, 3, 5, 6, 7]


def _text_tables(request, engine_name: str, texts: list):
    """(connection, table, closer) holding ``texts`` in column ``answer`` on a real engine."""
    import duckdb

    from airflow_provider_mlprod.sql.duckdb import DuckDBConnection

    if engine_name == "duckdb":
        raw = duckdb.connect()
        raw.execute("CREATE TABLE predictions (answer VARCHAR)")
        raw.executemany("INSERT INTO predictions VALUES (?)", [[text] for text in texts])
        connection = DuckDBConnection(raw, "duckdb test")
        return connection, connection.table("predictions"), raw.close
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "postgres_url"}[engine_name])
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE predictions (answer TEXT)"))
        connection.execute(sa.text("INSERT INTO predictions VALUES (:a)"), [{"a": text} for text in texts])
    connection = engine.connect()
    return connection, sa.Table("predictions", sa.MetaData(), autoload_with=connection), connection.close


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "duckdb"])
def test_an_escaped_non_ascii_character_in_a_regex_runs_in_python_and_counts_alike(request, engine_name):
    """DuckDB's RE2 refused ``\\é`` (an escaped non-ASCII letter) and the check crashed there."""
    texts = ["é", "x_y", "a`b", "a b", "~", "٣", "plain", None]
    patterns = [r"\é", r"\٣", r"\_", r"\`", r"a\ b", r"\~"]
    checks = build_checks([{"check": "regex", "column": "answer", "pattern": p, "name": p} for p in patterns])
    expected, _ = check_frame(pd.DataFrame({"answer": pd.Series(texts, dtype=object)}), checks)
    connection, table, close = _text_tables(request, engine_name, texts)
    try:
        summary = check_sql(connection, table, checks, dataset="predictions")
    finally:
        close()
    assert [r.passed_rows for r in summary.results] == [r.passed_rows for r in expected.results] == [1] * 6
    ran_in = {r.name: r.ran_in for r in summary.results}
    assert ran_in[r"\é"] == ran_in[r"\٣"] == "python"


@pytest.mark.parametrize("engine_name", ["sqlite", "duckdb"])
def test_a_text_with_a_nul_character_fails_every_text_check_on_every_engine(request, engine_name):
    """SQLite's length(), trim() and json_valid() stop at a NUL: ``"a\\x00" + 5000 * "b"`` passed
    ``max_length(5)`` and ``"{}\\x00garbage"`` passed ``valid_json`` there while Python failed them."""
    texts = ["a\x00" + "b" * 5000, '{"a": 1}\x00garbage', " \x00 ", "\x00", '{"a": 1}', "fine text", None]
    specs = [
        {"check": "max_length", "max_chars": 10},
        {"check": "not_empty"},
        {"check": "valid_json"},
        {"check": "refusal"},
        {"check": "regex", "pattern": "^[^0-9]*$"},
        {"check": "word_count", "min_words": 1},
        {"check": "non_letter_share", "max_share": 1.0},
        {"check": "repeated_ngrams"},
    ]
    checks = build_checks(specs, default_column="answer")
    expected, positions = check_frame(pd.DataFrame({"answer": pd.Series(texts, dtype=object)}), checks)
    for name, failing in positions.items():
        assert {0, 1, 2, 3, 6} <= set(failing), name
    connection, table, close = _text_tables(request, engine_name, texts)
    try:
        summary = check_sql(connection, table, checks, dataset="predictions")
        quarantined = failing_sql_rows(connection, table, checks[:2], key_columns=["answer"])
    finally:
        close()
    assert [r.passed_rows for r in summary.results] == [r.passed_rows for r in expected.results]
    assert len(quarantined) == 5


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a*)*b", r"(\w+\s*)+$", "(.*x)+", "(a|b+)*c", "(x+x+)+y"])
def test_a_regex_that_can_backtrack_exponentially_is_refused_before_any_row(pattern):
    """``(a+)+$`` on a 40-character text ran for days in Python (DataFrames, SQLite, served responses,
    golden answers): each extra character doubled the time (0.9 s at 22 characters)."""
    with pytest.raises(SpecError, match="repeats a part that itself repeats without bound"):
        build_checks([{"check": "regex", "column": "answer", "pattern": pattern}])
    with pytest.raises(SpecError, match=r"golden item 'q1'.*repeats a part"):
        load_golden_set([{"id": "q1", "expected": pattern, "match": "regex"}])


def test_possessive_and_atomic_rewrites_are_accepted_and_finish_on_long_texts():
    checks = build_checks(
        [
            {"check": "regex", "column": "answer", "pattern": p, "name": p}
            for p in ("(?:a++)+$", "(?>a+)+$", r"(\d{1,3}\.){3}\d{1,3}", "^[A-Z].*[.]$")
        ]
    )
    texts = ["a" * 5000 + "!", "a" * 5000, "10.0.0.1", "A sentence."]
    summary, _ = check_frame(pd.DataFrame({"answer": texts}), checks)
    assert [r.passed_rows for r in summary.results] == [1, 1, 1, 1]


@pytest.mark.parametrize("labels", [[float("nan"), 1], [1, float("inf")], [float("-inf")]])
def test_non_finite_numeric_labels_are_refused(labels):
    """``NaN = NaN`` is true in PostgreSQL and DuckDB: a NaN prediction passed there and failed in Python
    (and PostgreSQL refused to bind infinity as an integer)."""
    with pytest.raises(SpecError, match="numeric labels must be finite"):
        build_checks([{"check": "allowed_labels", "column": "score", "labels": labels}])


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "duckdb"])
def test_nan_predictions_fail_finite_labels_on_every_engine(request, engine_name):
    checks = build_checks([{"check": "allowed_labels", "column": "score", "labels": [1, 2.5]}])
    values = [float("nan"), 1.0, 2.5, 3.0, None]
    expected, _ = check_frame(pd.DataFrame({"score": values}), checks)
    if engine_name == "duckdb":
        import duckdb

        from airflow_provider_mlprod.sql.duckdb import DuckDBConnection

        raw = duckdb.connect()
        raw.execute("CREATE TABLE predictions (score DOUBLE)")
        raw.executemany("INSERT INTO predictions VALUES (?)", [[v] for v in values])
        connection = DuckDBConnection(raw, "duckdb test")
        summary = check_sql(connection, connection.table("predictions"), checks, dataset="predictions")
        raw.close()
    else:
        url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "postgres_url"}[engine_name])
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE predictions (score DOUBLE PRECISION)"))
            connection.execute(sa.text("INSERT INTO predictions VALUES (:v)"), [{"v": v} for v in values])
        with engine.connect() as connection:
            table = sa.Table("predictions", sa.MetaData(), autoload_with=connection)
            summary = check_sql(connection, table, checks, dataset="predictions")
    assert summary.results[0].passed_rows == expected.results[0].passed_rows == 2


def test_a_boolean_or_underscored_answer_is_not_a_number_for_the_golden_gate():
    items = load_golden_set(
        [{"id": "one", "expected": 1, "match": "numeric"}, {"id": "ten", "expected": 10, "match": "numeric"}]
    )
    assert score_answers(items, {"one": True, "ten": "1_0"}).passed == 0
    assert score_answers(items, {"one": 1, "ten": " 10.0 "}).passed == 2


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "duckdb"])
@pytest.mark.parametrize(
    ("column_type", "labels", "values", "passing"),
    [
        ("DOUBLE PRECISION", [1, 2.5], [1.0, 2.0, 2.5, 3.0], [1.0, 2.5]),
        ("INTEGER", [1, 2.5], [1, 2, 3], [1]),
        ("DOUBLE PRECISION", [1, 2], [1.0, 1.5, 2.0], [1.0, 2.0]),
        ("BIGINT", [3_000_000_000], [3_000_000_000, 1], [3_000_000_000]),
    ],
)
def test_numeric_labels_pass_the_same_rows_as_python(
    request, engine_name, column_type, labels, values, passing
):
    """psycopg bound ``IN (1, 2.5)`` as ``::INTEGER`` on a float column: 2.0 passed and 2.5 failed."""
    checks = build_checks([{"check": "allowed_labels", "column": "score", "labels": labels}])
    frame = pd.DataFrame({"score": values})
    expected, _ = check_frame(frame, checks)
    assert expected.results[0].passed_rows == len(passing)
    if engine_name == "duckdb":
        import duckdb

        from airflow_provider_mlprod.sql.duckdb import DuckDBConnection

        raw = duckdb.connect()
        raw.execute(f"CREATE TABLE predictions (score {column_type.replace('DOUBLE PRECISION', 'DOUBLE')})")
        raw.executemany("INSERT INTO predictions VALUES (?)", [[v] for v in values])
        connection = DuckDBConnection(raw, "duckdb test")
        table = connection.table("predictions")
        quarantined = failing_sql_rows(connection, table, checks, key_columns=["score"])
        raw.close()
    else:
        url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "postgres_url"}[engine_name])
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE TABLE predictions (score {column_type})"))
            connection.execute(sa.text("INSERT INTO predictions VALUES (:v)"), [{"v": v} for v in values])
        with engine.connect() as connection:
            table = sa.Table("predictions", sa.MetaData(), autoload_with=connection)
            quarantined = failing_sql_rows(connection, table, checks, key_columns=["score"])
    assert sorted(float(v) for v in quarantined["score"]) == sorted(
        float(v) for v in values if v not in passing
    )


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "duckdb"])
def test_refusals_with_a_typographic_apostrophe_are_caught_on_every_engine(request, engine_name):
    """``I\u2019m sorry, but`` (as models often write it) passed the default refusal check everywhere."""
    texts = [
        "I\u2019m sorry, but no",
        "I CAN\u2019T HELP WITH that",
        "i'm sorry, but",
        "I\u2019M UNABLE TO",
        "fine",
    ]
    checks = build_checks(
        [{"check": "refusal"}, {"check": "refusal", "phrases": ["won't do", "n/a"], "name": "custom"}],
        default_column="answer",
    )
    expected, _ = check_frame(pd.DataFrame({"answer": texts}), checks)
    assert [r.passed_rows for r in expected.results] == [1, 5]
    connection, table, close = _text_tables(request, engine_name, [*texts, "We won\u2019t do it"])
    try:
        summary = check_sql(connection, table, checks, dataset="predictions")
    finally:
        close()
    assert [(r.passed_rows, r.ran_in) for r in summary.results] == [(2, "sql"), (5, "sql")]

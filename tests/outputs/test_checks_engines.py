"""Every SQL form counts like its Python form, on PostgreSQL, SQLite and DuckDB, on a hostile corpus.

The corpus (``conftest.generate_edge_corpus``) holds planted gibberish, refusals, truncated JSON, schema
violations, unicode (scripts without spaces, emoji, combining accents), empty and whitespace-only
texts, NULLs, JSON corner cases (NaN, trailing commas, lone surrogates) and NaN or infinite scores.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError
from airflow_provider_mlprod.outputs.checks import OUTPUT_CHECKS, Dialect, build_checks
from airflow_provider_mlprod.outputs.runner import check_frame, check_sql, failing_sql_rows, source_selectable
from airflow_provider_mlprod.sql.duckdb import DuckDBConnection
from airflow_provider_mlprod.sql.source import SqlSource
from tests.outputs.conftest import generate_edge_corpus
from tests.outputs.test_checks import ALL_CHECKS, load

PORTABLE_PATTERNS = [
    "^[A-Z].*[.]$",
    "churn|stay",
    "(ab)+c?",
    "[^,]{3,5}$",
    "^$",
    "x{2}",
    "[]a]",
    "\\.\\.?",
    "^[a-z0-9_ ]+$",
    "é",
    "model.*customer",
    "^.$",
]

CHECKS = [
    *ALL_CHECKS,
    *({"check": "regex", "column": "answer", "pattern": p, "name": f"regex {p}"} for p in PORTABLE_PATTERNS),
    {"check": "numeric_range", "column": "score", "min_value": 0, "name": "score at least 0"},
    {"check": "numeric_range", "column": "score", "max_value": 1, "name": "score at most 1"},
    {"check": "allowed_labels", "column": "label", "labels": ["churn", "stay\u00e9", ""], "name": "labels"},
    {
        "check": "refusal",
        "column": "answer",
        "phrases": ["can't", "n/a", "(sorry)", "a.i.", "100%", "snake_case"],
        "name": "ref",
    },
    {"check": "non_letter_share", "column": "answer", "max_share": 0.0, "name": "no non-letter"},
    {"check": "non_letter_share", "column": "answer", "max_share": 0.1, "name": "non-letter 0.1"},
    {"check": "word_count", "column": "answer", "min_words": 1, "name": "one word or more"},
    {"check": "word_count", "column": "answer", "max_words": 4, "name": "at most 4 words"},
    {"check": "max_length", "column": "answer", "max_chars": 20, "name": "20 chars"},
    {"check": "max_length", "column": "payload", "max_chars": 0, "name": "empty payload"},
    {"check": "not_empty", "column": "payload"},
]

SQL_ON = {
    "sqlite": {"valid_json", "allowed_labels", "numeric_range", "not_empty", "max_length", "refusal"},
    "postgresql": {
        "allowed_labels", "numeric_range", "not_empty", "max_length", "regex", "refusal",
        "non_letter_share", "word_count",
    },
    "duckdb": {
        "allowed_labels", "numeric_range", "not_empty", "max_length", "regex", "refusal",
        "non_letter_share", "word_count",
    },
}  # fmt: skip
"""Checks with a SQL form per dialect (PostgreSQL 15 here: JSON validity needs 16+)."""


def load_duckdb(rows: list[dict]) -> DuckDBConnection:
    raw = duckdb.connect()
    raw.execute(
        "CREATE TABLE predictions (id INTEGER, answer VARCHAR, payload VARCHAR, label VARCHAR, "
        "score DOUBLE, kind VARCHAR)"
    )
    raw.executemany(
        "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?)",
        [[r["id"], r["answer"], r["payload"], r["label"], r["score"], r["kind"]] for r in rows],
    )
    return DuckDBConnection(raw, "DuckDB test database")


@pytest.fixture(params=["sqlite", "postgres", "duckdb"])
def engine_rows(request: pytest.FixtureRequest):
    """(connection, predictions table, the rows loaded) on each engine; PostgreSQL without the texts whose
    letters its ctype locale decides."""
    rows = generate_edge_corpus(ctype_dependent=request.param != "postgres")
    if request.param == "duckdb":
        connection = load_duckdb(rows)
        yield connection, connection.table("predictions"), rows
        connection.raw.close()
        return
    engine, table = load(request.getfixturevalue(f"{request.param}_url"), rows)
    with engine.connect() as connection:
        yield connection, table, rows
    engine.dispose()


def test_every_sql_form_counts_like_its_python_form(engine_rows):
    connection, table, rows = engine_rows
    checks = build_checks(CHECKS)
    frame = pd.DataFrame(rows)
    python, _ = check_frame(frame, checks, chunk_size=53)
    in_db = check_sql(connection, table, checks, dataset="predictions", sample_size=2, chunk_size=61)
    assert in_db.rows == python.rows == len(rows)
    got = {r.name: r.passed_rows for r in in_db.results}
    assert got == {r.name: r.passed_rows for r in python.results}
    dialect = Dialect.of(connection).name
    ran = {r.check for r in in_db.results if r.ran_in == "sql"}
    assert ran == SQL_ON[dialect]
    for result in in_db.results:
        if result.failed_rows:
            assert result.failing_examples, result.name
    # the corpus exercises every check: each one both passes and fails some rows
    for result in python.results:
        assert 0 < result.passed_rows < result.rows, result.name


def test_failing_rows_name_the_checks_python_names(engine_rows):
    connection, table, rows = engine_rows
    checks = build_checks(CHECKS)
    _, positions = check_frame(pd.DataFrame(rows), checks)
    expected: dict[int, list[str]] = {}
    for check in checks:
        for position in positions[check.name]:
            expected.setdefault(rows[position]["id"], []).append(check.name)
    failing = failing_sql_rows(connection, table, checks, key_columns=["id"], chunk_size=71)
    got = dict(zip(failing["id"].astype(int), failing["failed_checks"], strict=True))
    assert got == {key: "; ".join(names) for key, names in expected.items()}


def test_duckdb_json_valid_is_lenient_so_valid_json_runs_in_python():
    """DuckDB's json_valid accepts what RFC 8259 refuses; the check counts strict JSON in Python there."""
    connection = load_duckdb(generate_edge_corpus())
    lenient = ["NaN", '{"a": Infinity}', "[1, 2,]"]
    accepted = [connection.raw.execute("SELECT json_valid(?)", [text]).fetchone()[0] for text in lenient]
    assert accepted == [True, True, True]  # if DuckDB turns strict, its SQL form can come back
    (check,) = build_checks([{"check": "valid_json", "column": "payload"}])
    assert check.sql_condition(sa.column("payload"), Dialect.of(connection)) is None
    summary = check_sql(connection, connection.table("predictions"), [check], dataset="p")
    (result,) = summary.results
    assert result.ran_in == "python"
    assert result.passed_rows == sum(
        check.passes(pd.Series([r["payload"] for r in generate_edge_corpus()], dtype=object))
    )
    connection.raw.close()


def test_duckdb_reads_a_query_and_names_a_missing_table():
    connection = load_duckdb(generate_edge_corpus())
    checks = build_checks([{"check": "allowed_labels", "column": "label", "labels": ["churn", "stay"]}])
    query = SqlSource.from_arguments(
        query="SELECT label FROM predictions WHERE id < :below AND id % 1 = 0", parameters={"below": 100}
    )
    source = source_selectable(connection, query)
    summary = check_sql(connection, source, checks, dataset="q")
    assert summary.rows == 100
    with pytest.raises(InputDataError, match=r"DuckDB test database: .*nowhere"):
        connection.table("nowhere")
    connection.raw.close()


@pytest.mark.parametrize("name", sorted(OUTPUT_CHECKS))
def test_sql_on_documents_the_registry(name):
    """``SQL_ON`` above is what the registry builds (a check added without a test fails here)."""
    column = sa.column("c")
    params = {
        "valid_json": {}, "json_schema": {"schema": {}}, "allowed_labels": {"labels": ["a"]},
        "numeric_range": {"min_value": 0}, "not_empty": {}, "max_length": {"max_chars": 1},
        "regex": {"pattern": "a"}, "refusal": {}, "non_letter_share": {}, "repeated_ngrams": {},
        "word_count": {"min_words": 1},
    }[name]  # fmt: skip
    (check,) = build_checks([{"check": name, "column": "c", **params}])
    for dialect, version in (("sqlite", (3, 40)), ("postgresql", (15, 2)), ("duckdb", (2, 0))):
        has_sql = check.sql_condition(column, Dialect(dialect, version)) is not None
        assert has_sql == (name in SQL_ON[dialect]), (name, dialect)


@pytest.mark.parametrize("engine", ["postgres", "duckdb"])
def test_sql_non_letter_count_counts_each_text_like_python(engine, request):
    """Both PostgreSQL shapes (byte arithmetic on ASCII text, regex otherwise) count per row."""
    from airflow_provider_mlprod.outputs.checks import non_letter_counts, sql_non_letter_count

    texts = [r["answer"] for r in generate_edge_corpus(ctype_dependent=engine == "duckdb")]
    texts += ["", "a-b/c (d) 'e' \"f\"; g: h! i? j, k.", "0123456789", "-", "a\tb\x0bc", "naïve-1"]
    texts += ["UPPER lower 12", "\x01\x7f~", "a\x0cb\rc\nd\te\x0bf g", "".join(map(chr, range(1, 128)))]
    rows = [{"id": i, "t": t} for i, t in enumerate(texts)]
    if engine == "duckdb":
        raw = duckdb.connect()
        raw.execute("CREATE TABLE texts (id INTEGER, t VARCHAR)")
        raw.executemany("INSERT INTO texts VALUES (?, ?)", [[r["id"], r["t"]] for r in rows])
        connection = DuckDBConnection(raw)
        table = connection.table("texts")
        counted = connection.execute(
            sa.select(table.c.id, sql_non_letter_count(table.c.t, Dialect.of(connection))).order_by(
                table.c.id
            )
        ).all()
    else:
        engine_ = sa.create_engine(request.getfixturevalue("postgres_url"))
        table = sa.Table("texts", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("t", sa.Text))
        table.create(engine_)
        with engine_.begin() as connection:
            connection.execute(table.insert(), rows)
            counted = connection.execute(
                sa.select(table.c.id, sql_non_letter_count(table.c.t, Dialect.of(connection))).order_by(
                    table.c.id
                )
            ).all()
        engine_.dispose()
    expected, _ = non_letter_counts(pd.Series(texts, dtype=object))
    assert [count for _, count in counted] == [None if pd.isna(v) else int(v) for v in expected]

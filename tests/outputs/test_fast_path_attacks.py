"""The PostgreSQL fast forms of refusal, non_letter_share and word_count against hostile sources."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.outputs.checks import build_checks
from airflow_provider_mlprod.outputs.row_values import LATERAL_NAME
from airflow_provider_mlprod.outputs.runner import check_frame, check_sql, failing_sql_rows, source_selectable
from airflow_provider_mlprod.sql.source import SqlSource

TEXTS = [
    "I'm sorry, but I cannot help with that.",
    "I\u2019m sorry, but no.",
    "As an AI language model, I can't",
    "AS AN AI LANGUAGE MODEL",
    "",
    None,
    "tab\there and  two spaces ",
    "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e",
    '100%_done \\ back\'slash "quoted"',
    "### 1234 !!!",
    "plain words only",
]


def _specs(columns: list[str]) -> list[dict]:
    specs = []
    for column in columns:
        specs += [
            {"check": "refusal", "column": column, "name": f"refusal {column}"},
            {
                "check": "refusal",
                "column": column,
                "phrases": ["can't", "cannot", "100%_"],
                "name": f"own {column}",
            },
            {"check": "non_letter_share", "column": column, "max_share": 0.2, "name": f"gibberish {column}"},
            {
                "check": "word_count",
                "column": column,
                "min_words": 2,
                "max_words": 6,
                "name": f"words {column}",
            },
        ]
    return specs


def _assert_sql_counts_like_python(
    connection: sa.Connection, source: sa.FromClause, rows: list[dict], checks
):
    summary = check_sql(connection, source, checks, dataset="p", sample_size=2)
    failing = failing_sql_rows(connection, source, checks, key_columns=["id"])
    python, positions = check_frame(pd.DataFrame(rows), checks)
    assert [(r.name, r.passed_rows) for r in summary.results] == [
        (r.name, r.passed_rows) for r in python.results
    ]
    assert {r.ran_in for r in summary.results} == {"sql"}
    assert set(failing["id"].astype(int)) == {rows[p]["id"] for parts in positions.values() for p in parts}


def _filled_table(
    url: str, name: str, columns: list[sa.Column], rows: list[dict]
) -> tuple[sa.Engine, sa.Table]:
    """Table ``name`` (an integer key ``id`` plus ``columns``) created at ``url`` holding ``rows``."""
    engine = sa.create_engine(url)
    table = sa.Table(name, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), *columns)
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    return engine, table


@pytest.mark.parametrize("table_name", [LATERAL_NAME, f"{LATERAL_NAME}1", "Predictions With Spaces"])
def test_a_table_named_like_the_shared_row_values_counts_like_python(postgres_url, table_name):
    """A table called ``mlprod_row_values`` made PostgreSQL refuse the statement (one FROM name twice)."""
    columns = ["v0", "mlprod_row_values", 'odd "name"']
    rows = [{"id": i, **dict.fromkeys(columns, text)} for i, text in enumerate(TEXTS)]
    engine, _ = _filled_table(postgres_url, table_name, [sa.Column(c, sa.Text) for c in columns], rows)
    try:
        with engine.connect() as connection:
            source = source_selectable(connection, SqlSource(table=table_name))
            _assert_sql_counts_like_python(connection, source, rows, build_checks(_specs(columns)))
            query = f'SELECT id, v0 AS {LATERAL_NAME} FROM "{table_name}" ORDER BY id LIMIT 100'
            source = source_selectable(connection, SqlSource(query=query))
            rows_of_query = [{"id": r["id"], LATERAL_NAME: r["v0"]} for r in rows]
            _assert_sql_counts_like_python(
                connection, source, rows_of_query, build_checks(_specs([LATERAL_NAME]))
            )
    finally:
        engine.dispose()


def _fresh_database(server_url: str, options: str = ""):
    """A URL of a fresh PostgreSQL database (``CREATE DATABASE ... <options>``), dropped afterwards."""
    name = f"mlprod_fresh_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name} {options} TEMPLATE template0")
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def latin1_url(postgres_server_url: str):
    """A URL of a fresh PostgreSQL database whose server encoding is LATIN1 (C collation and ctype)."""
    yield from _fresh_database(postgres_server_url, "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")


@pytest.fixture
def database_url(postgres_server_url: str):
    """A URL of a fresh PostgreSQL database (for extensions, which are per database)."""
    yield from _fresh_database(postgres_server_url)


def test_refusal_on_a_latin1_database_counts_like_python(latin1_url):
    """The default phrases include a typographic apostrophe that LATIN1 cannot hold: sending it failed
    the whole statement; no LATIN1 text holds it, so it is not searched there."""
    latin1 = [
        text for text in TEXTS if text is None or text.encode("latin-1", "ignore").decode("latin-1") == text
    ]
    rows = [{"id": i, "t": text} for i, text in enumerate(latin1)]
    engine, table = _filled_table(latin1_url, "predictions", [sa.Column("t", sa.Text)], rows)
    checks = build_checks(
        [
            {"check": "refusal", "column": "t"},
            {
                "check": "refusal",
                "column": "t",
                "phrases": ["i'm sorry", "can't"],
                "name": "apostrophes only",
            },
            {"check": "word_count", "column": "t", "min_words": 2},
        ]
    )
    try:
        with engine.connect() as connection:
            for conforming in ("on", "off"):
                connection.exec_driver_sql(f"SET standard_conforming_strings = {conforming}")
                _assert_sql_counts_like_python(connection, table, rows, checks)
    finally:
        engine.dispose()


def test_checks_leave_the_callers_connection_as_it_was(postgres_url):
    """Streaming a column set ``stream_results`` on the caller's connection itself: its next ``SET`` or
    ``SHOW`` then failed (PostgreSQL cannot declare a cursor for them)."""
    rows = [{"id": i, "t": text} for i, text in enumerate(TEXTS)]
    engine, table = _filled_table(postgres_url, "predictions", [sa.Column("t", sa.Text)], rows)
    python_only = build_checks([{"check": "repeated_ngrams", "column": "t", "n": 2}])
    try:
        with engine.connect() as connection:
            check_sql(connection, table, python_only, dataset="p")
            failing_sql_rows(connection, table, python_only, key_columns=["id"])
            assert "stream_results" not in connection.get_execution_options()
            assert connection.exec_driver_sql("SHOW server_encoding").scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["postgres_url", "latin1_url"])
def test_text_drift_in_sql_on_a_table_named_mlprod_row_values(request, database):
    """Text-descriptor drift shares the per-row values and the refusal phrases: it failed on both."""
    from datetime import timedelta

    from airflow_provider_mlprod.outputs.text_drift import text_drift_sql, text_reference
    from tests.outputs.test_text_drift import WEEK, week_of_outputs

    engine = sa.create_engine(request.getfixturevalue(database))
    table = sa.Table(LATERAL_NAME, sa.MetaData(), sa.Column("ts", sa.DateTime), sa.Column("answer", sa.Text))
    table.create(engine)
    reference = [{"ts": r["ts"], "answer": r["answer"]} for r in week_of_outputs(WEEK, seed=1)]
    current = week_of_outputs(WEEK + timedelta(days=7), seed=2, gibberish_share=0.3)
    with engine.begin() as connection:
        connection.execute(
            table.insert(), reference + [{"ts": r["ts"], "answer": r["answer"]} for r in current]
        )
    try:
        drift = text_drift_sql(
            engine,
            text_reference(pd.DataFrame(reference), ["answer"]),
            table=LATERAL_NAME,
            window=("ts", WEEK + timedelta(days=7), WEEK + timedelta(days=14)),
        )
    finally:
        engine.dispose()
    assert "answer__refusal" in drift.compared
    assert "answer__non_letter_share" in drift.result.drifted_columns


CHAR_TEXTS = ["abc", "a b", "", "I am sorry, but no", None, "#!", "a  b", "x x x x"]


@pytest.mark.parametrize("from_query", [False, True])
def test_a_blank_padded_char_column_is_checked_as_the_text_it_holds(postgres_url, from_query):
    """A ``character(n)`` value comes padded with blanks to Python but unpadded to most PostgreSQL
    functions: the byte counts of the fast forms mixed both (non_letter_share), and max_length,
    regex and allowed_labels disagreed with the Python forms."""
    rows = [{"id": i, "t": text} for i, text in enumerate(CHAR_TEXTS)]
    engine, _ = _filled_table(postgres_url, "predictions", [sa.Column("t", sa.CHAR(20))], rows)
    checks = build_checks(
        [
            {"check": "refusal", "column": "t"},
            {"check": "non_letter_share", "column": "t", "max_share": 0.2},
            {"check": "word_count", "column": "t", "min_words": 2, "max_words": 3},
            {"check": "not_empty", "column": "t"},
            {"check": "max_length", "column": "t", "max_chars": 4},
            {"check": "regex", "column": "t", "pattern": "c$"},
            {"check": "allowed_labels", "column": "t", "labels": ["abc", "a b"]},
            {"check": "repeated_ngrams", "column": "t", "n": 1, "max_share": 0.5},
        ]
    )
    try:
        with engine.connect() as connection:
            query = (
                SqlSource(query="SELECT id, t FROM predictions")
                if from_query
                else SqlSource(table="predictions")
            )
            source = source_selectable(connection, query)
            summary = check_sql(connection, source, checks, dataset="p", sample_size=2)
            failing = failing_sql_rows(connection, source, checks, key_columns=["id"])
    finally:
        engine.dispose()
    python, positions = check_frame(pd.DataFrame(rows), checks)
    assert [(r.name, r.passed_rows) for r in summary.results] == [
        (r.name, r.passed_rows) for r in python.results
    ]
    reasons = {rows[p]["id"]: [] for parts in positions.values() for p in parts}
    for name, parts in positions.items():
        for p in parts:
            reasons[rows[p]["id"]].append(name)
    assert {int(k): v for k, v in zip(failing["id"], failing["failed_checks"], strict=True)} == {
        k: "; ".join(c.name for c in checks if c.name in v) for k, v in reasons.items()
    }


def test_labels_and_patterns_a_latin1_database_cannot_hold_are_checked_in_python(latin1_url):
    """Sending ``stay\u2019`` or ``\u4e2d`` to a LATIN1 database failed the whole run."""
    rows = [{"id": i, "t": text} for i, text in enumerate(["caf\u00e9", "stay", "x", None, "sorry"])]
    engine, table = _filled_table(latin1_url, "predictions", [sa.Column("t", sa.Text)], rows)
    checks = build_checks(
        [
            {"check": "allowed_labels", "column": "t", "labels": ["stay\u2019", "caf\u00e9"]},
            {"check": "regex", "column": "t", "pattern": "\u4e2d|^s"},
            {
                "check": "allowed_labels",
                "column": "t",
                "labels": ["stay", "caf\u00e9"],
                "name": "latin1 labels",
            },
        ]
    )
    try:
        with engine.connect() as connection:
            summary = check_sql(connection, table, checks, dataset="p", sample_size=2)
            failing = failing_sql_rows(connection, table, checks, key_columns=["id"])
    finally:
        engine.dispose()
    python, positions = check_frame(pd.DataFrame(rows), checks)
    assert [r.passed_rows for r in summary.results] == [r.passed_rows for r in python.results] == [1, 2, 2]
    assert [r.ran_in for r in summary.results] == ["python", "python", "sql"]
    assert set(failing["id"].astype(int)) == {rows[p]["id"] for parts in positions.values() for p in parts}


def test_a_citext_column_matches_patterns_case_sensitively_as_in_python(database_url):
    """citext overrides ``~`` to ignore case: ``^[A-Z]`` passed ``stay`` in SQL, not in Python."""
    texts = ["Stay", "stay", "sTAY", "ABC", "I'm sorry, but no", "", None, "x X"]
    rows = [{"id": i, "t": text} for i, text in enumerate(texts)]
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            try:
                connection.exec_driver_sql("CREATE EXTENSION citext")
            except sa.exc.DBAPIError as exc:  # the contrib package is not installed
                pytest.skip(f"no citext extension: {exc.orig}")
            connection.exec_driver_sql("CREATE TABLE predictions (id int PRIMARY KEY, t citext)")
            connection.execute(sa.text("INSERT INTO predictions VALUES (:id, :t)"), rows)
        checks = build_checks(
            [
                {"check": "regex", "column": "t", "pattern": "^[A-Z]"},
                {"check": "allowed_labels", "column": "t", "labels": ["stay", "ABC"]},
                {"check": "refusal", "column": "t", "phrases": ["STAY", "x x"], "name": "own phrases"},
                {"check": "max_length", "column": "t", "max_chars": 4},
            ]
        )
        with engine.connect() as connection:
            for source in (
                sa.Table("predictions", sa.MetaData(), autoload_with=connection),
                source_selectable(connection, SqlSource(query="SELECT id, t FROM predictions")),
            ):
                _assert_sql_counts_like_python(connection, source, rows, checks)
    finally:
        engine.dispose()

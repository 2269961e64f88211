"""Output checks: SQL forms agree with Python forms, planted bad outputs are caught, bad specs fail."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.outputs.checks import OUTPUT_CHECKS, build_checks, evaluate_value, portable_regex
from airflow_provider_mlprod.outputs.runner import check_frame, check_sql, source_selectable
from airflow_provider_mlprod.sql.source import SqlSource

SCHEMA = {
    "type": "object",
    "required": ["label", "score"],
    "properties": {
        "label": {"enum": ["churn", "stay"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

ALL_CHECKS = [
    {"check": "valid_json", "column": "payload"},
    {"check": "json_schema", "column": "payload", "schema": SCHEMA},
    {"check": "allowed_labels", "column": "label", "labels": ["churn", "stay"]},
    {"check": "numeric_range", "column": "score", "min_value": 0, "max_value": 1},
    {"check": "not_empty", "column": "answer"},
    {"check": "max_length", "column": "answer", "max_chars": 120},
    {"check": "regex", "column": "answer", "pattern": "^[A-Z].*[.]$"},
    {"check": "regex", "column": "answer", "pattern": r"\bchurn\b", "name": "mentions_churn"},
    {"check": "refusal", "column": "answer"},
    {"check": "non_letter_share", "column": "answer", "max_share": 0.3},
    {"check": "repeated_ngrams", "column": "answer", "n": 2, "max_share": 0.5},
    {"check": "word_count", "column": "answer", "min_words": 3, "max_words": 25},
]


def load(url: str, rows: list[dict]) -> tuple[sa.Engine, sa.Table]:
    engine = sa.create_engine(url)
    table = sa.Table(
        "predictions",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("answer", sa.Text),
        sa.Column("payload", sa.Text),
        sa.Column("label", sa.Text),
        sa.Column("score", sa.Float),
        sa.Column("kind", sa.Text),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    return engine, table


def test_registry_covers_the_issue_checks():
    assert set(OUTPUT_CHECKS) == {
        "valid_json", "json_schema", "allowed_labels", "numeric_range", "not_empty", "max_length",
        "regex", "refusal", "non_letter_share", "repeated_ngrams", "word_count",
    }  # fmt: skip


def test_sql_forms_count_like_python_forms(db_url, corpus):
    checks = build_checks(ALL_CHECKS)
    engine, table = load(db_url, corpus)
    frame = pd.DataFrame(corpus)
    python, _ = check_frame(frame, checks, chunk_size=37)
    with engine.connect() as connection:
        in_db = check_sql(connection, table, checks, dataset="predictions", chunk_size=50)
    assert in_db.rows == python.rows == len(corpus)
    for sql_result, py_result in zip(in_db.results, python.results, strict=True):
        assert (sql_result.name, sql_result.passed_rows) == (py_result.name, py_result.passed_rows)
    ran = {r.name: r.ran_in for r in in_db.results}
    dialect = engine.dialect.name
    assert ran["allowed_labels(label)"] == ran["max_length(answer)"] == ran["refusal(answer)"] == "sql"
    assert ran["json_schema(payload)"] == ran["repeated_ngrams(answer)"] == "python"
    assert ran["mentions_churn"] == "python"  # \b is outside the portable subset
    assert ran["regex(answer)"] == ("sql" if dialect == "postgresql" else "python")
    assert ran["non_letter_share(answer)"] == ("sql" if dialect == "postgresql" else "python")
    expected_json = "sql" if dialect == "sqlite" or engine.dialect.server_version_info >= (16,) else "python"
    assert ran["valid_json(payload)"] == expected_json
    engine.dispose()


def test_sql_on_a_query_reads_its_columns(sqlite_url, corpus):
    engine, _ = load(sqlite_url, corpus)
    checks = build_checks([{"check": "allowed_labels", "column": "label", "labels": ["churn", "stay"]}])
    with engine.connect() as connection:
        query = SqlSource.from_arguments(
            query="SELECT label FROM predictions WHERE id < :below", parameters={"below": 100}
        )
        source = source_selectable(connection, query)
        summary = check_sql(connection, source, checks, dataset="q")
    assert summary.rows == 100
    assert summary.results[0].failed_rows == sum(
        1 for r in corpus[:100] if r["label"] not in ("churn", "stay")
    )


def test_planted_bad_outputs_fail_their_checks(corpus):
    checks = build_checks(ALL_CHECKS)
    _, positions = check_frame(pd.DataFrame(corpus), checks)
    failing = {name: {corpus[i]["kind"] for i in rows} for name, rows in positions.items()}
    assert {"truncated_json", "nan_json", "null"} == failing["valid_json(payload)"]
    assert {"truncated_json", "nan_json", "null", "schema_violation"} == failing["json_schema(payload)"]
    assert {"gibberish", "null"} <= failing["non_letter_share(answer)"]
    assert "clean" not in failing["non_letter_share(answer)"]
    assert failing["refusal(answer)"] == {"refusal", "null"}
    assert failing["not_empty(answer)"] == {"empty", "null"}
    assert "loop" in failing["repeated_ngrams(answer)"]
    assert failing["allowed_labels(label)"] == failing["numeric_range(score)"] == {"bad_label", "null"}


def test_one_value_entry_point():
    checks = build_checks([{"check": "valid_json"}, {"check": "refusal"}], default_column="body")
    assert evaluate_value(checks, '{"a": 1}') == {"valid_json(body)": True, "refusal(body)": True}
    assert evaluate_value(checks, "As an AI language model, no") == {
        "valid_json(body)": False,
        "refusal(body)": False,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"check": "json_schema", "column": "p", "schema": {"type": "nonsense"}}, "malformed JSON schema"),
        ({"check": "json_schema", "column": "p", "schema": "{not json"}, "schema is not valid JSON"),
        ({"check": "regex", "column": "a", "pattern": "(unclosed"}, "invalid regex '\\(unclosed'"),
        ({"check": "nope", "column": "a"}, "unknown check 'nope'"),
        ({"check": "numeric_range", "column": "s", "min_value": 2, "max_value": 1}, "above max_value"),
        ({"check": "max_length", "column": "a", "max_chars": "10"}, "max_chars must be a finite number"),
        ({"check": "not_empty", "column": "a", "min_pass_rate": 2}, "min_pass_rate must be in"),
        ({"check": "refusal", "column": "a", "phrases": ["désolé"]}, "phrases must be ASCII"),
        ({"check": "not_empty", "column": "a", "pattern": "x"}, "unknown parameter"),
    ],
)
def test_bad_specs_fail_naming_the_problem(spec, message):
    with pytest.raises(SpecError, match=message):
        build_checks([spec])


def test_missing_column_fails_before_any_row_is_read(sqlite_url, corpus):
    checks = build_checks([{"check": "not_empty", "column": "answr"}])
    with pytest.raises(InputDataError, match=r"not_empty\(answr\) -> 'answr'"):
        check_frame(pd.DataFrame(corpus), checks)
    engine, table = load(sqlite_url, corpus)
    with engine.connect() as connection, pytest.raises(InputDataError, match="'answr'"):
        check_sql(connection, table, checks, dataset="predictions")


@pytest.mark.parametrize(
    ("pattern", "portable"),
    [("^[A-Z].*[.]$", r"^[A-Z].*[.]\Z"), (r"a\.b{2,3}(x|y)", r"a\.b{2,3}(x|y)"), (r"\d+", None),
     ("(?i)x", None), ("[\\w]", None), (r"(a)\1", None), ("a{255}", "a{255}"), ("a{2,256}", None)],
)  # fmt: skip
def test_portable_regex_subset(pattern, portable):
    assert portable_regex(pattern) == portable


@pytest.mark.parametrize("subset", ["all", "sql_only"])
def test_failing_sql_rows_match_the_python_failures(db_url, corpus, subset):
    from airflow_provider_mlprod.outputs.runner import failing_sql_rows

    specs = (
        ALL_CHECKS
        if subset == "all"
        else [s for s in ALL_CHECKS if s["check"] in ("allowed_labels", "refusal")]
    )
    checks = build_checks(specs)
    _, positions = check_frame(pd.DataFrame(corpus), checks)
    expected: dict[int, list[str]] = {}
    for check in checks:
        for position in positions[check.name]:
            expected.setdefault(corpus[position]["id"], []).append(check.name)
    engine, table = load(db_url, corpus)
    with engine.connect() as connection:
        failing = failing_sql_rows(connection, table, checks, key_columns=["id"], chunk_size=64)
    engine.dispose()
    got = dict(zip(failing["id"].astype(int), failing["failed_checks"], strict=True))
    assert got == {key: "; ".join(names) for key, names in expected.items()}
    assert len(got) > 40


def test_json_validity_runs_in_sql_only_where_the_dialect_has_it():
    from sqlalchemy.dialects import postgresql, sqlite

    from airflow_provider_mlprod.outputs.checks import Dialect

    (check,) = build_checks([{"check": "valid_json", "column": "p"}])
    column = sa.table("t", sa.column("p")).c.p
    assert check.sql_condition(column, Dialect("postgresql", (15, 20))) is None
    pg16 = check.sql_condition(column, Dialect("postgresql", (16, 2)))
    assert str(pg16.compile(dialect=postgresql.dialect())) == "t.p IS JSON"
    assert "json_valid(t.p)" in str(
        check.sql_condition(column, Dialect("sqlite")).compile(dialect=sqlite.dialect())
    )


WORD_COUNT_EDGES = [
    "", " ", "  ", "a", " a", "a ", " a ", "a b", "a  b", "  a   b  ", "a\tb", "a\nb c", "a\r\nb",
    "a\x0bb\x0cc", "\t", "café naïve Über", "a\u00a0b", "one, two; three.", "x" * 500, "w " * 300,
    "ends in é ", "é", " é", "a b ", "a b\u3000",
]  # fmt: skip


def test_sql_word_count_counts_each_text_like_python(postgres_url):
    """Both SQL shapes (single-spaced arithmetic, regexp_count otherwise) agree with Python per row."""
    from airflow_provider_mlprod.outputs.checks import Dialect, sql_word_count, word_counts

    engine = sa.create_engine(postgres_url)
    table = sa.Table("texts", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("t", sa.Text))
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"id": i, "t": t} for i, t in enumerate(WORD_COUNT_EDGES)])
        dialect = Dialect.of(connection)
        counted = connection.execute(
            sa.select(table.c.id, sql_word_count(table.c.t, dialect)).order_by(table.c.id)
        ).all()
    expected = word_counts(pd.Series(WORD_COUNT_EDGES)).tolist()
    assert [count for _, count in counted] == expected
    engine.dispose()


def test_non_letter_share_before_postgresql_14_counts_with_the_regex():
    """bit_count(bytea) came with PostgreSQL 14: before it every text is counted by regexp_replace."""
    from sqlalchemy.dialects import postgresql

    from airflow_provider_mlprod.outputs.checks import Dialect

    (check,) = build_checks([{"check": "non_letter_share", "column": "t"}])
    for version, popcounts in (((13, 9), False), ((14, 0), True), ((), True)):
        condition = check.sql_condition(sa.column("t"), Dialect("postgresql", version))
        sql = str(condition.compile(dialect=postgresql.dialect()))
        assert ("bit_count(" in sql) is popcounts, (version, sql)
        assert "regexp_replace(" in sql


def _text_as(frame: pd.DataFrame, arrow_type) -> pd.DataFrame:
    import pyarrow as pa

    columns = {}
    for name in frame.columns:
        values = frame[name]
        if not pd.api.types.is_numeric_dtype(values.dtype):
            texts = values.astype(object).where(values.notna(), None).tolist()
            values = pd.Series(pa.array(texts, type=arrow_type), dtype=pd.ArrowDtype(arrow_type))
        columns[name] = values
    return pd.DataFrame(columns)


def test_pyarrow_string_view_text_is_checked_like_plain_text(corpus):
    """A pyarrow string_view column crashed the checks (pandas cannot filter or count it): every check
    now counts and samples it as the same text held as plain pyarrow strings."""
    import pyarrow as pa

    checks = build_checks(ALL_CHECKS)
    frame = pd.DataFrame(corpus)
    views = _text_as(frame, pa.string_view())
    assert str(views["answer"].dtype) == "string_view[pyarrow]"
    plain, plain_positions = check_frame(_text_as(frame, pa.string()), checks, chunk_size=37)
    summary, positions = check_frame(views, checks, chunk_size=37)
    assert summary == plain
    assert {name: list(rows) for name, rows in positions.items()} == {
        name: list(rows) for name, rows in plain_positions.items()
    }
    assert sum(result.failed_rows for result in summary.results) > 0

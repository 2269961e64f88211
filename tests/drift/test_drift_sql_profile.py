"""Profiles computed inside SQLite and PostgreSQL equal the in-memory profiles of the same data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import (
    CategoricalColumnProfile,
    ColumnSpec,
    DatasetProfile,
    NumericColumnProfile,
    profile_dataframe,
)
from airflow_provider_mlprod.drift.sql_profile import profile_sql
from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, SpecError

CITIES = np.array(["paris", "oslo", "rome", "lima", "kyiv", "new york"], dtype=object)


def make_frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(1000 + shift, 25, rows)
    amount[::97] = np.nan
    amount[5:6], amount[6:7] = np.inf, -np.inf
    city = rng.choice(CITIES, rows, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]).astype(object)
    city[::53] = None
    items = rng.integers(0, 12, rows)
    return pd.DataFrame({"amount": amount, "city": city, "items": items})


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


def write_table(engine: sa.Engine, frame: pd.DataFrame, name: str) -> None:
    """Create table ``name`` and insert ``frame`` (NaN kept as NaN where the database allows it)."""
    metadata = sa.MetaData()
    table = sa.Table(
        name,
        metadata,
        sa.Column("amount", sa.Double()),
        sa.Column("city", sa.String(40)),
        sa.Column("items", sa.Integer()),
    )
    metadata.create_all(engine)
    rows = [
        {"amount": float(amount), "city": None if pd.isna(city) else city, "items": int(items)}
        for amount, city, items in frame.itertuples(index=False)
    ]
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)


def assert_same_profile(actual: DatasetProfile, expected: DatasetProfile) -> None:
    assert actual.row_count == expected.row_count
    assert list(actual.columns) == list(expected.columns)
    for name, column in expected.columns.items():
        got = actual.columns[name]
        assert type(got) is type(column), name
        if isinstance(column, NumericColumnProfile):
            assert got.edges == column.edges, name
            assert got.counts == column.counts, name
            assert (got.null_count, got.infinite_count, got.count) == (
                column.null_count, column.infinite_count, column.count,
            ), name  # fmt: skip
            for field in ("mean", "std", "min", "max"):
                assert getattr(got, field) == pytest.approx(getattr(column, field), rel=1e-9), (name, field)
        else:
            assert got == column, name


def test_sql_profile_on_reference_spec_equals_in_memory(engine):
    reference = profile_dataframe(make_frame(3000, seed=1), n_bins=30)
    current = make_frame(2000, seed=2, shift=40.0)
    write_table(engine, current, "current_batch")
    in_database = profile_sql(engine, reference.spec(), table="current_batch")
    assert_same_profile(in_database, profile_dataframe(current, specs=reference.spec()))
    assert in_database.columns["amount"].infinite_count == 2
    assert in_database.columns["amount"].counts[-1] > 0  # shifted values reach the overflow bin


def test_sql_reference_profile_without_edges_uses_equal_width_bins(engine):
    frame = make_frame(1500, seed=3)
    write_table(engine, frame, "reference_table")
    specs = {
        "amount": ColumnSpec("numeric"),
        "items": ColumnSpec("numeric"),
        "city": ColumnSpec("categorical"),
    }
    in_database = profile_sql(engine, specs, table="reference_table", n_bins=8, top_k=3)
    edges = in_database.columns["amount"].edges
    finite = frame["amount"][np.isfinite(frame["amount"])]
    assert edges == pytest.approx(tuple(np.linspace(finite.min(), finite.max(), 9)), rel=1e-12)
    same_edges = {
        "amount": ColumnSpec("numeric", edges=edges),
        "items": ColumnSpec("numeric", edges=in_database.columns["items"].edges),
        "city": ColumnSpec("categorical"),
    }
    assert_same_profile(in_database, profile_dataframe(frame, specs=same_edges, top_k=3))
    city = in_database.columns["city"]
    assert isinstance(city, CategoricalColumnProfile)
    assert len(city.counts) == 3
    assert city.other_count > 0


def test_sql_profile_of_a_query_and_a_schema_qualified_table(engine):
    frame = make_frame(1200, seed=4)
    write_table(engine, frame, "events")
    reference = profile_dataframe(frame, n_bins=10)
    specs = {name: reference.spec()[name] for name in ("amount", "city")}
    from_query = profile_sql(engine, specs, query="SELECT amount, city FROM events WHERE items > 3")
    assert_same_profile(from_query, profile_dataframe(frame[frame["items"] > 3], specs=specs))
    with engine.connect() as conn:
        schema = (
            "main"
            if engine.dialect.name == "sqlite"
            else conn.execute(sa.text("SELECT current_schema()")).scalar()
        )
    qualified = profile_sql(engine, specs, table=f"{schema}.events")
    assert_same_profile(qualified, profile_dataframe(frame, specs=specs))
    assert_same_profile(profile_sql(engine, specs, table="events", schema=schema), qualified)


def test_query_parameters_are_bound_never_interpolated(engine):
    frame = make_frame(1200, seed=4)
    write_table(engine, frame, "events")
    reference = profile_dataframe(frame, n_bins=10)
    specs = {name: reference.spec()[name] for name in ("amount", "city")}
    query = "SELECT amount, city FROM events WHERE items > :min_items AND city <> :city"
    hostile = "x' OR '1'='1"
    bound = profile_sql(engine, specs, query=query, parameters={"min_items": 3, "city": hostile})
    expected = frame[(frame["items"] > 3) & frame["city"].notna()]  # NULL <> 'x' is not true in SQL
    assert_same_profile(bound, profile_dataframe(expected, specs=specs))
    # a templated value arrives as text: the database still compares it with the integer column
    as_text = profile_sql(engine, specs, query=query, parameters={"min_items": "3", "city": hostile})
    assert as_text.row_count == bound.row_count
    with pytest.raises(ConfigurationError, match="uses :city but parameters give no value"):
        profile_sql(engine, specs, query=query, parameters={"min_items": 3})
    with pytest.raises(ConfigurationError, match=r"apply to a query; table 'events' has no placeholders"):
        profile_sql(engine, specs, table="events", parameters={"min_items": 3})


def test_drift_from_sql_profile_matches_raw_comparison(engine):
    reference_frame = make_frame(3000, seed=5)
    current = make_frame(2500, seed=6, shift=15.0)
    write_table(engine, current, "scored")
    reference = profile_dataframe(reference_frame)
    from_database = compare_datasets(reference, profile_sql(engine, reference.spec(), table="scored"))
    from_memory = compare_datasets(reference, current)
    assert from_database.drifted_columns == from_memory.drifted_columns == ["amount"]
    for database_column, memory_column in zip(from_database.columns, from_memory.columns, strict=True):
        assert database_column.statistic == pytest.approx(memory_column.statistic, rel=1e-9)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"table": "batch; DROP TABLE batch"}, ConfigurationError, "not a plain SQL identifier"),
        ({"table": 'batch"--'}, ConfigurationError, "not a plain SQL identifier"),
        ({"table": "batch", "schema": "public' OR 1=1"}, ConfigurationError, "not a plain SQL identifier"),
        ({"table": "batch", "columns": ["amount/*x*/"]}, SpecError, "column 'amount/\\*x\\*/'"),
        ({"query": "SELECT amount FROM batch; DROP TABLE batch"}, ConfigurationError, "without ';'"),
        ({"query": "DELETE FROM batch"}, ConfigurationError, "single SELECT"),
        ({}, ConfigurationError, "exactly one of table and query"),
    ],
)
def test_hostile_names_are_rejected_before_any_sql(engine, arguments, error, message):
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    arguments = dict(arguments)
    columns = arguments.pop("columns", ["amount"])
    with pytest.raises(error, match=message):
        profile_sql(engine, {name: ColumnSpec("numeric", edges=(0.0, 1.0)) for name in columns}, **arguments)
    assert statements == []


def test_missing_table_names_the_table(engine):
    with pytest.raises(InputDataError, match="table 'absent' does not exist"):
        profile_sql(engine, {"amount": ColumnSpec("numeric", edges=(0.0, 1.0))}, table="absent")


def test_empty_table_and_empty_specs(engine):
    write_table(engine, make_frame(0, seed=7), "empty_batch")
    specs = {
        "amount": ColumnSpec("numeric", edges=(0.0, 1.0)),
        "city": ColumnSpec("categorical", categories=("a",)),
    }
    empty = profile_sql(engine, specs, table="empty_batch")
    assert empty.row_count == 0
    assert empty.columns["amount"].mean is None
    with pytest.raises(InputDataError, match="current batch is empty"):
        compare_datasets(profile_dataframe(make_frame(50, seed=8), columns=["amount", "city"]), empty)
    with pytest.raises(SpecError, match="no column"):
        profile_sql(engine, {}, table="empty_batch")


def test_sql_profile_reads_the_source_once_in_one_statement(engine):
    frame = make_frame(3000, seed=9)
    write_table(engine, frame, "wide")
    reference = profile_dataframe(frame, n_bins=20)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    result = profile_sql(engine, reference.spec(), table="wide")
    assert result.row_count == 3000
    reads = [statement for statement in statements if '"wide"' in statement or " wide " in statement]
    reads = [statement for statement in reads if "GROUP BY" in statement or "min(" in statement]
    assert len(reads) == 1
    scans = reads[0].count("FROM wide") + reads[0].count('FROM "wide"')
    assert scans == 1  # histograms and moments of every column from one read of the table
    assert math.isfinite(result.columns["amount"].mean)
    statements.clear()
    query = "SELECT amount, city, items FROM wide WHERE items >= 0"
    from_query = profile_sql(engine, reference.spec(), query=query)
    # the user's query runs once; its column names come first from an empty result (no row read)
    assert [s.rstrip().endswith("WHERE 1 = 0") for s in statements if query in s] == [True, False]
    assert sum(statement.count(query) for statement in statements) == 2
    assert_same_profile(from_query, result)
    statements.clear()
    profile_sql(engine, {"amount": ColumnSpec("numeric"), "city": ColumnSpec("categorical")}, query=query)
    assert sum(statement.count(query) for statement in statements) == 3  # plus one range statement


def test_a_query_with_duplicate_column_names_is_refused(engine):
    """SQLite profiled the first of two columns named 'a' for both (PostgreSQL failed on the ambiguous
    name), and SQLite reads 'a' and "A" as one name: refused, naming them, also when the repeated
    name is not profiled."""
    frame = make_frame(300, seed=31)
    write_table(engine, frame, "pairs")
    renamed = frame.rename(columns={"amount": "a"})
    spec = {"a": profile_dataframe(renamed, columns=["a"], n_bins=10).spec()["a"]}
    with pytest.raises(InputDataError, match=r"query has duplicate column names \['a'\]; rename them"):
        profile_sql(engine, spec, query="SELECT amount AS a, items AS a FROM pairs")
    with pytest.raises(InputDataError, match=r"duplicate column names \['a', 'b'\]"):
        profile_sql(engine, spec, query="SELECT amount AS a, items AS b, items AS b, amount AS a FROM pairs")
    with pytest.raises(InputDataError, match=r"duplicate column names \['city'\]"):
        profile_sql(engine, spec, query="SELECT amount AS a, city, city FROM pairs")
    expected = profile_dataframe(renamed, specs=spec)
    apart = 'SELECT amount AS a, items AS "A" FROM pairs'
    if engine.dialect.name == "sqlite":
        with pytest.raises(InputDataError, match=r"\['A', 'a'\] \(SQLite compares column names ignoring"):
            profile_sql(engine, spec, query=apart)
    else:  # PostgreSQL: a quoted "A" is another name
        assert_same_profile(profile_sql(engine, spec, query=apart), expected)
    # a column named like SQLite's renamed duplicates ('a:1') is a name of its own
    lookalike = profile_sql(engine, spec, query='SELECT amount AS a, items AS "a:1" FROM pairs')
    assert_same_profile(lookalike, expected)


def test_every_sql_shape_gives_the_same_profile(engine):
    from airflow_provider_mlprod.drift.sql_profile import SHAPES

    frame = make_frame(2000, seed=21)
    write_table(engine, frame, "shaped")
    reference = profile_dataframe(make_frame(3000, seed=22), n_bins=16)
    expected = profile_dataframe(frame, specs=reference.spec())
    postgres = [shape for shape in SHAPES if shape != "aggregate_maps"]  # histogram maps are DuckDB's
    shapes = postgres if engine.dialect.name == "postgresql" else ("cross_join_case",)
    for shape in shapes:
        assert_same_profile(profile_sql(engine, reference.spec(), table="shaped", shape=shape), expected)
    with pytest.raises(ConfigurationError, match="unknown SQL shape 'pivot'"):
        profile_sql(engine, reference.spec(), table="shaped", shape="pivot")


def test_a_query_with_a_percent_sign_is_profiled(engine):
    frame = make_frame(400, seed=23)
    write_table(engine, frame, "percent")
    spec = profile_dataframe(frame).spec()
    names = {"amount": spec["amount"], "city": spec["city"]}
    profile = profile_sql(engine, names, query="SELECT amount, city FROM percent WHERE city LIKE 'p%'")
    assert profile.row_count == int((frame["city"] == "paris").sum())
    assert set(profile.columns["city"].counts) - {"paris"} <= set(spec["city"].categories)
    assert profile.columns["city"].counts["paris"] == profile.row_count

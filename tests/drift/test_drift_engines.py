"""pandas, SQLite, PostgreSQL and DuckDB give the same profiles of the same data; DuckDB reads files.

The data holds what differs between engines: NaN and +-inf, a discrete column (exact profiles),
booleans, integral floats declared categorical, text, and datetimes (epoch seconds).
"""

from __future__ import annotations

import subprocess
import sys

import duckdb
import fsspec
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb
from airflow_provider_mlprod.drift.profile import (
    ColumnSpec,
    DatasetProfile,
    NumericColumnProfile,
    profile_dataframe,
)
from airflow_provider_mlprod.drift.sql_profile import profile_sql
from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError

KINDS = {"level": "categorical"}


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 1, rows)
    amount[::41] = np.nan
    amount[7], amount[8] = np.inf, -np.inf
    return pd.DataFrame(
        {
            "amount": amount,
            "stars": rng.integers(1, 6, rows),
            "flag": rng.uniform(size=rows) < 0.3,
            "level": rng.choice([1.0, 2.0, 2.5], rows),
            "city": pd.Series(rng.choice(["paris", "oslo", "lima"], rows), dtype="str"),
            "at": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.uniform(0, 30, rows), unit="D").round("us"),
        }
    )


def assert_same(actual: DatasetProfile, expected: DatasetProfile, engine: str) -> None:
    assert actual.row_count == expected.row_count, engine
    for name, column in expected.columns.items():
        got = actual.columns[name]
        if isinstance(column, NumericColumnProfile):
            assert (got.edges, got.counts, got.values) == (column.edges, column.counts, column.values), (
                engine,
                name,
            )
            assert (got.null_count, got.infinite_count, got.count) == (
                column.null_count, column.infinite_count, column.count,
            ), (engine, name)  # fmt: skip
            for field in ("mean", "std", "min", "max"):
                assert getattr(got, field) == pytest.approx(getattr(column, field), rel=1e-9), (engine, name)
        else:
            assert got == column, (engine, name)


def write_sql(engine: sa.Engine, frame: pd.DataFrame, name: str) -> None:
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("amount", sa.Double()),
        sa.Column("stars", sa.Integer()),
        sa.Column("flag", sa.Boolean()),
        sa.Column("level", sa.Double()),
        sa.Column("city", sa.String(20)),
        sa.Column("at", sa.DateTime()),
    )
    table.create(engine)
    rows = [
        {
            "amount": None if np.isnan(r.amount) else float(r.amount),
            "stars": int(r.stars),
            "flag": bool(r.flag),
            "level": float(r.level),
            "city": r.city,
            "at": r.at.to_pydatetime(),
        }
        for r in frame.itertuples(index=False)
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_frame(3000, seed=1), make_frame(2000, seed=2)


def test_pandas_sqlite_postgresql_and_duckdb_give_the_same_profiles(frames, db_url):
    reference_frame, current = frames
    reference = profile_dataframe(reference_frame, column_kinds=KINDS)
    spec = reference.spec()
    expected = profile_dataframe(current, specs=spec)
    engine = sa.create_engine(db_url)
    try:
        write_sql(engine, current, "engines_now")
        assert_same(profile_sql(engine, spec, table="engines_now"), expected, engine.dialect.name)
    finally:
        engine.dispose()
    connection = duckdb.connect()
    connection.register("current_frame", current)
    connection.execute("CREATE TABLE engines_now AS SELECT * FROM current_frame")
    assert_same(profile_duckdb(connection, spec, table="engines_now"), expected, "duckdb")
    # and the verdicts agree: identical profiles, identical comparisons
    assert compare_datasets(reference, profile_duckdb(connection, spec, table="engines_now")).to_dict() == (
        compare_datasets(reference, expected).to_dict()
    )


def test_duckdb_profiles_parquet_and_csv_files_like_pandas(frames, tmp_path):
    reference_frame, current = frames
    spec = profile_dataframe(reference_frame, column_kinds=KINDS).spec()
    expected = profile_dataframe(current, specs=spec)
    current.to_parquet(tmp_path / "current.parquet")
    assert_same(
        profile_duckdb(duckdb.connect(), spec, file=str(tmp_path / "current.parquet")), expected, "parquet"
    )
    numeric_and_text = {name: spec[name] for name in ("amount", "stars", "flag", "city")}
    current.to_csv(tmp_path / "current.csv", index=False)
    from_csv = profile_duckdb(duckdb.connect(), numeric_and_text, file=str(tmp_path / "current.csv"))
    assert_same(from_csv, profile_dataframe(current, specs=numeric_and_text), "csv")


def test_duckdb_reads_a_file_through_an_fsspec_filesystem(frames):
    reference_frame, current = frames
    spec = profile_dataframe(reference_frame, column_kinds=KINDS).spec()
    memory = fsspec.filesystem("memory")
    with memory.open("/drift/current.parquet", "wb") as handle:
        current.to_parquet(handle)
    profile = profile_duckdb(duckdb.connect(), spec, file="/drift/current.parquet", filesystem=memory)
    assert_same(profile, profile_dataframe(current, specs=spec), "memory://")


def test_duckdb_profiles_a_parquet_file_without_pandas(frames, tmp_path):
    reference_frame, current = frames
    current.to_parquet(tmp_path / "current.parquet")
    reference = profile_dataframe(reference_frame, column_kinds=KINDS)
    reference.save(tmp_path / "reference.json")
    script = (
        "import sys, duckdb\n"
        "from airflow_provider_mlprod.drift.profile import DatasetProfile\n"
        "from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb\n"
        f"reference = DatasetProfile.load({str(tmp_path / 'reference.json')!r})\n"
        "profile = profile_duckdb(\n"
        f"    duckdb.connect(), reference.spec(), file={str(tmp_path / 'current.parquet')!r}\n"
        ")\n"
        "print(profile.row_count, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2000", "False"]


def test_duckdb_errors_name_the_source(tmp_path):
    spec = profile_dataframe(pd.DataFrame({"x": np.arange(50.0)})).spec()
    connection = duckdb.connect()
    with pytest.raises(InputDataError, match=r"file '.*absent.parquet': profile query failed"):
        profile_duckdb(connection, spec, file=str(tmp_path / "absent.parquet"))
    connection.execute("CREATE TABLE t AS SELECT 1.0 AS y")
    with pytest.raises(InputDataError, match=r"table 't' has no columns \['x'\]"):
        profile_duckdb(connection, spec, table="t")
    with pytest.raises(ConfigurationError, match="exactly one of table, query and file"):
        profile_duckdb(connection, spec, table="t", query="SELECT 1")
    with pytest.raises(ConfigurationError, match=r"only a read-only SELECT|statements"):
        profile_duckdb(connection, spec, query="SELECT 1; DROP TABLE t")
    with pytest.raises(ConfigurationError, match="format 'txt'"):
        profile_duckdb(connection, spec, file="data.txt")


def test_values_on_and_next_to_every_edge_fall_in_the_same_bins_on_every_engine(db_url):
    """Each engine bins without a per-value CASE (PostgreSQL ``width_bucket``, DuckDB ``histogram``
    on shifted boundaries): values on each edge, one float either side, beyond both ends, and the
    missing and infinite values must land where pandas puts them."""
    edges = (-2.5, -1.0, 0.0, 0.1, 3.0)
    around = (
        [np.nextafter(e, -np.inf) for e in edges] + list(edges) + [np.nextafter(e, np.inf) for e in edges]
    )
    values = np.array([*around, -1e6, 1e6, np.nan, np.inf, -np.inf, 0.05, 2.0] * 3)
    frame = pd.DataFrame({"x": values})
    spec = {"x": ColumnSpec("numeric", edges=edges, shift=0.2)}
    expected = profile_dataframe(frame, specs=spec)
    assert expected.columns["x"].counts == (6, 9, 9, 12, 15, 6)  # [e(i), e(i+1)), the last bin closed
    engine = sa.create_engine(db_url)
    try:
        metadata = sa.MetaData()
        table = sa.Table("edges_now", metadata, sa.Column("x", sa.Double()))
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"x": None if np.isnan(v) else float(v)} for v in values])
        assert_same(profile_sql(engine, spec, table="edges_now"), expected, engine.dialect.name)
    finally:
        engine.dispose()
    connection = duckdb.connect()
    connection.register("edges_frame", frame)
    assert_same(profile_duckdb(connection, spec, table="edges_frame"), expected, "duckdb")

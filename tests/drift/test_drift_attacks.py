"""Planted inputs that once slipped past the drift engine: each test names what it broke."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import DatasetProfile, profile_dataframe
from airflow_provider_mlprod.drift.settings import DriftSettings
from airflow_provider_mlprod.exceptions import StoreError

SETTINGS = DriftSettings(max_workers=1)


class _TaskInstance:
    """The part of a task instance the drift operator reads."""

    dag_id, run_id, task_id, map_index = "attacks", "run_1", "event_drift", -1

    def xcom_push(self, key: str, value: object) -> None:
        pass


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("std", "Infinity", "std inf is not a finite number"),
        ("std", -1.0, "std -1.0 is negative"),
        ("std", 1e300, "std 1e[+]300 is larger than half the range"),
        ("mean", "NaN", "mean nan is not a finite number"),
        ("mean", 1e6, "mean 1000000.0 is outside"),
        ("mean", True, "mean True is not a finite number"),
        ("std", None, "std None is not a finite number"),
        ("min", 10.0, "min 10.0 is above max"),
    ],
)
def test_a_stored_profile_with_impossible_moments_is_refused_naming_them(field, value, problem):
    # a std of Infinity (valid JSON to Python) made W/std 0: the column could never drift
    rng = np.random.default_rng(1)
    stored = profile_dataframe(pd.DataFrame({"x": rng.normal(size=3000)})).to_dict()
    tampered = json.loads(json.dumps(stored))
    tampered["columns"]["x"][field] = float(value) if isinstance(value, str) else value
    with pytest.raises(StoreError, match=f"column 'x': .*{problem}"):
        DatasetProfile.from_dict(json.loads(json.dumps(tampered)))
    shifted = pd.DataFrame({"x": rng.normal(size=3000) + 1.0})
    assert compare_datasets(DatasetProfile.from_dict(stored), shifted, SETTINGS).column("x").drifted


def draw_categories(rng: np.random.Generator, shares: np.ndarray, rows: int) -> pd.DataFrame:
    labels = np.array([f"c{index:05d}" for index in range(shares.size)], dtype=object)
    return pd.DataFrame({"c": pd.Series(labels[rng.choice(shares.size, rows, p=shares)], dtype="str")})


def test_a_top_k_reference_profile_raises_no_false_alarms_on_identical_data():
    # the reference keeps its 1,000 most counted of 1,500 categories: those it over-counted by chance
    # looked shrunk in every other sample, and identical data drifted 20 times out of 20
    rng = np.random.default_rng(15)
    shares = rng.dirichlet(np.ones(1500))
    alarms = 0
    for _ in range(20):
        stored = profile_dataframe(draw_categories(rng, shares, 5000))
        assert stored.columns["c"].other_count > 0
        alarms += compare_datasets(stored, draw_categories(rng, shares, 5000), SETTINGS).column("c").drifted
    assert alarms <= 1
    moved = shares * 0.9
    moved[np.argmax(shares)] += 0.1  # a share moved by 0.1 is still seen
    assert compare_datasets(stored, draw_categories(rng, moved, 5000), SETTINGS).column("c").drifted


def test_a_raw_reference_of_many_categories_and_a_sql_current_of_the_same_data_do_not_drift(db_url):
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.sql_profile import profile_sql

    rng = np.random.default_rng(16)
    shares = np.full(1500, 1 / 1500)
    reference, current = draw_categories(rng, shares, 20_000), draw_categories(rng, shares, 20_000)
    engine = sa.create_engine(db_url)
    try:
        current.to_sql("many_categories_now", engine, index=False)
        # the operator's path: the raw reference profiled (top-K), the current counted in the database
        stored = profile_dataframe(reference)
        profiled = profile_sql(engine, stored.spec(), table="many_categories_now")
    finally:
        engine.dispose()
    assert not compare_datasets(reference, current, SETTINGS).column("c").drifted
    assert not compare_datasets(stored, profiled, SETTINGS).column("c").drifted
    assert not compare_datasets(reference, profiled, SETTINGS).column("c").drifted  # the operator's call


def test_a_query_current_counts_booleans_and_numbers_in_the_reference_category_text(db_url):
    # a query's column types are unknown: SQLite printed booleans as 1/0 and 1.0 as '1.0', PostgreSQL
    # 1e20 as '1e+20', so identical data drifted with every value "unseen"
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.sql_profile import profile_sql

    rng = np.random.default_rng(17)

    def batch(rows: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "flag": rng.uniform(size=rows) < 0.3,
                "level": rng.choice([1.0, 2.5, 1e20, 1e-7], rows),
                "code": pd.Series(rng.choice(["1.0", "007", " 7"], rows), dtype="str"),
            }
        )

    reference, current = batch(3000), batch(2000)
    settings = DriftSettings(max_workers=1, column_kinds={"level": "categorical"})
    stored = profile_dataframe(reference, column_kinds=settings.column_kinds)
    engine = sa.create_engine(db_url)
    try:
        current.to_sql("typed_later", engine, index=False)
        profiled = profile_sql(engine, stored.spec(), query="SELECT flag, level, code FROM typed_later")
    finally:
        engine.dispose()
    expected = profile_dataframe(current, specs=stored.spec())
    assert profiled.columns == expected.columns
    assert not compare_datasets(stored, profiled, settings).dataset_drift


def test_sqlite_datetime_text_in_a_numeric_query_column_is_refused_naming_the_column(sqlite_url):
    # SQLite keeps datetimes as text and CAST('2026-01-03 10:00:00' AS REAL) is 2026: the verdict
    # compared years with epoch seconds (W/std 1,186) instead of failing
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.sql_profile import profile_sql
    from airflow_provider_mlprod.exceptions import InputDataError

    rng = np.random.default_rng(18)
    start = pd.Timestamp("2026-01-01")
    reference = pd.DataFrame({"at": start + pd.to_timedelta(rng.uniform(0, 30, 3000), unit="D")})
    stored = profile_dataframe(reference)
    engine = sa.create_engine(sqlite_url)
    try:
        reference.to_sql("events", engine, index=False)
        with pytest.raises(InputDataError, match="column 'at' is compared as numbers but 3000 of its values"):
            profile_sql(engine, stored.spec(), query="SELECT at FROM events")
        with pytest.raises(InputDataError, match=r"column 'at' .* 1 of its values are text"):
            profile_sql(engine, stored.spec(), query="SELECT '2026-01-03' AS at UNION ALL SELECT 1.5e9")
        numbers = profile_sql(engine, stored.spec(), query="SELECT ' 1.767e9' AS at UNION ALL SELECT '-2E+3'")
        assert numbers.columns["at"].count == 2  # numbers kept as text still count
        seconds = "SELECT (julianday(at) - 2440587.5) * 86400 AS at FROM events"
        assert not compare_datasets(
            stored, profile_sql(engine, stored.spec(), query=seconds), SETTINGS
        ).dataset_drift
    finally:
        engine.dispose()


def test_duckdb_profiles_an_empty_batch_and_all_null_columns_like_pandas():
    # DuckDB's sums over no rows are NULL: a raw TypeError escaped instead of "the batch is empty"
    import duckdb

    from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb
    from airflow_provider_mlprod.exceptions import InputDataError

    rng = np.random.default_rng(19)
    reference = pd.DataFrame({"x": rng.normal(size=500), "stars": rng.integers(1, 6, 500).astype(float)})
    stored = profile_dataframe(reference)
    connection = duckdb.connect()
    try:
        for name, rows in (("nothing", 0), ("all_null", 50)):
            batch = pd.DataFrame({"x": np.full(rows, np.nan), "stars": np.full(rows, np.nan)})
            connection.register("batch", batch)
            connection.execute(f"CREATE TABLE {name} AS SELECT * FROM batch")
            connection.unregister("batch")
            profiled = profile_duckdb(connection, stored.spec(), table=name)
            assert profiled.to_dict() == profile_dataframe(batch, specs=stored.spec()).to_dict(), name
        with pytest.raises(InputDataError, match="current batch is empty"):
            compare_datasets(stored, profile_duckdb(connection, stored.spec(), table="nothing"), SETTINGS)
        missing = compare_datasets(
            stored, profile_duckdb(connection, stored.spec(), table="all_null"), SETTINGS
        )
        assert missing.column("x").missing.drifted
    finally:
        connection.close()


@pytest.mark.parametrize("scale", [1e-308, 1e-200, 1e-170])
def test_tiny_magnitudes_do_not_drift_on_identical_data(scale):
    # the squares of values below ~1e-154 underflow: the reference std was 0, the column "constant",
    # and W/std infinite, so identical data always drifted
    rng = np.random.default_rng(20)
    reference = pd.DataFrame({"x": rng.uniform(0, 1, 3000) * scale})
    same = pd.DataFrame({"x": rng.uniform(0, 1, 3000) * scale})
    stored = profile_dataframe(reference)
    assert stored.columns["x"].std == pytest.approx(scale / 12**0.5, rel=0.05)
    assert not compare_datasets(reference, same, SETTINGS).dataset_drift
    assert not compare_datasets(stored, same, SETTINGS).dataset_drift
    assert compare_datasets(stored, same * 1.5, SETTINGS).column("x").drifted


def test_a_reference_whose_std_underflowed_in_sql_is_refused_naming_the_column(sqlite_url):
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.profile import ColumnSpec
    from airflow_provider_mlprod.drift.sql_profile import profile_sql
    from airflow_provider_mlprod.exceptions import InputDataError

    rng = np.random.default_rng(21)
    reference = pd.DataFrame({"x": rng.uniform(0, 1, 3000) * 1e-300})
    engine = sa.create_engine(sqlite_url)
    try:
        reference.to_sql("tiny", engine, index=False)
        stored = profile_sql(engine, {"x": ColumnSpec("numeric")}, table="tiny")
    finally:
        engine.dispose()
    with pytest.raises(InputDataError, match="column 'x': the reference's standard deviation is 0 although"):
        compare_datasets(stored, reference, SETTINGS)


def test_the_operator_compares_datetime_columns_of_a_sql_reference_as_epoch_seconds(
    airflow_sql_connection, db_url, monkeypatch, tmp_path
):
    # a raw SQL reference's timestamp column was taken as categorical: each timestamp a category,
    # a meaningless verdict; it is numeric (epoch seconds), as on every other path
    import sqlalchemy as sa

    from airflow_provider_mlprod.operators.drift import DataDriftOperator

    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE_PATH", str(tmp_path / "store.db"))
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", str(tmp_path / "reports"))
    schema = airflow_sql_connection(db_url)
    rng = np.random.default_rng(22)
    start = pd.Timestamp("2026-01-01")

    def events(low: float, high: float) -> pd.DataFrame:
        at = start + pd.to_timedelta(rng.uniform(low, high, 2000), unit="D").round("us")
        return pd.DataFrame({"at": at, "stars": rng.integers(1, 6, 2000)})

    engine = sa.create_engine(db_url)
    try:
        for name, frame in (
            ("events_then", events(0, 30)),
            ("events_now", events(0, 30)),
            ("events_later", events(20, 50)),
        ):
            frame.to_sql(name, engine, index=False)
    finally:
        engine.dispose()

    def run(table: str) -> dict:
        return DataDriftOperator(
            task_id="event_drift",
            reference_sql_conn_id="warehouse",
            reference_table="events_then",
            reference_schema=schema,
            sql_conn_id="warehouse",
            table=table,
            schema=schema,
            on_failure="continue",
        ).execute({"ti": _TaskInstance(), "outlet_events": {}})

    same = run("events_now")
    assert {c["column"]: c["kind"] for c in same["columns"]} == {"at": "numeric", "stars": "numeric"}
    assert not same["dataset_drift"]
    later = {c["column"]: c for c in run("events_later")["columns"]}
    assert later["at"]["drifted"]
    assert not later["stars"]["drifted"]


def test_a_category_named_like_the_other_cell_is_not_taken_for_it():
    rng = np.random.default_rng(23)
    labels = np.array(["(other)", "a", "b"], dtype=object)

    def batch(rows: int) -> pd.DataFrame:
        return pd.DataFrame({"c": pd.Series(labels[rng.choice(3, rows, p=[0.2, 0.4, 0.4])], dtype="str")})

    reference = profile_dataframe(batch(3000))
    assert list(reference.columns["c"].counts)[-1] == "(other)"
    assert reference.columns["c"].other_count == 0
    moved = pd.DataFrame({"c": pd.Series(labels[rng.choice(3, 3000, p=[0.2, 0.6, 0.2])], dtype="str")})
    assert compare_datasets(reference, moved, SETTINGS).column("c").drifted
    assert not compare_datasets(reference, batch(3000), SETTINGS).column("c").drifted


def test_float_categories_are_the_same_text_on_every_engine(db_url):
    # pandas printed a float32 0.1 widened (0.10000000149011612) where PostgreSQL and DuckDB print a
    # REAL as 0.1, and SQLite's text of a REAL keeps 15 digits (0.30000000000000004 became 0.3):
    # identical data drifted with every value unseen
    import duckdb
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb
    from airflow_provider_mlprod.drift.sql_profile import profile_sql

    rng = np.random.default_rng(24)

    def batch(rows: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "narrow": rng.choice(np.array([0.1, 0.2, 0.7, 3.0], dtype=np.float32), rows),
                "wide": rng.choice([0.1 + 0.2, 0.1, 1 / 3, 2.0], rows),
            }
        )

    kinds = {"narrow": "categorical", "wide": "categorical"}
    settings = DriftSettings(max_workers=1, column_kinds=kinds)
    reference, current = batch(3000), batch(2000)
    stored = profile_dataframe(reference, column_kinds=kinds)
    assert set(stored.columns["narrow"].counts) == {"0.1", "0.2", "0.7", "3"}
    expected = profile_dataframe(current, specs=stored.spec())
    engine = sa.create_engine(db_url)
    try:
        current.to_sql("floats_now", engine, index=False, dtype={"narrow": sa.REAL(), "wide": sa.Double()})
        profiled = {
            "table": profile_sql(engine, stored.spec(), table="floats_now"),
            "query": profile_sql(engine, stored.spec(), query="SELECT narrow, wide FROM floats_now"),
        }
    finally:
        engine.dispose()
    connection = duckdb.connect()
    try:
        connection.register("batch", current)
        profiled["duckdb"] = profile_duckdb(connection, stored.spec(), query="SELECT * FROM batch")
    finally:
        connection.close()
    for path, profile in profiled.items():
        assert profile.columns == expected.columns, path
        assert not compare_datasets(stored, profile, settings).dataset_drift, path


def test_a_raw_sql_reference_gives_discrete_columns_a_bin_per_value_like_pandas(db_url):
    # a raw SQL reference was cut into equal-width bins: a 0/1 or star-rating column was compared
    # binned with Wasserstein (its verdict "within the binning error") instead of per value
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.profile import ColumnSpec
    from airflow_provider_mlprod.drift.sql_profile import profile_sql

    rng = np.random.default_rng(25)
    rows = 3000
    stars = rng.integers(1, 6, rows).astype(float)
    stars[::17] = np.nan
    reference = pd.DataFrame(
        {
            "stars": stars,
            "flag": rng.integers(0, 2, rows),
            "step": rng.choice([-0.2, 0.1, 0.2], rows),
            "same": np.full(rows, 7.0),
            "amount": rng.normal(size=rows),
        }
    )
    engine = sa.create_engine(db_url)
    try:
        reference.to_sql("discrete_then", engine, index=False)
        specs = {name: ColumnSpec("numeric") for name in reference.columns}
        in_sql = profile_sql(engine, specs, table="discrete_then")
    finally:
        engine.dispose()
    in_memory = profile_dataframe(reference)
    for name in ("stars", "flag", "step", "same"):
        got, expected = in_sql.columns[name], in_memory.columns[name]
        assert (got.edges, got.counts, got.values) == (expected.edges, expected.counts, expected.values), name
    assert in_sql.columns["amount"].values is None
    moved = reference.copy()
    moved.loc[rng.uniform(size=rows) < 0.2, "flag"] = 1  # the share of 1 moved by 0.1
    result = compare_datasets(in_sql, moved, SETTINGS)
    assert result.column("flag").test == "homogeneity"
    assert result.column("flag").drifted
    assert not result.column("flag").within_binning_error


def test_sqlite_datetimes_on_whole_seconds_are_the_same_epoch_seconds_as_in_pandas(sqlite_url):
    # julianday's double put 10:00:00 at 9:59:59.99999: hourly timestamps left the reference's
    # values (an exact profile became binned) and values on a bin edge fell in the bin below
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.sql_profile import profile_sql

    rng = np.random.default_rng(26)
    start = pd.Timestamp("2026-01-01")
    hourly = pd.DataFrame({"at": start + pd.to_timedelta(rng.integers(0, 48, 3000), unit="h")})
    seconds = pd.DataFrame({"at": start + pd.to_timedelta(rng.integers(0, 10**6, 3000), unit="s")})
    engine = sa.create_engine(sqlite_url)
    try:
        for name, frame in (("hourly", hourly), ("seconds", seconds)):
            stored = profile_dataframe(frame)
            frame.to_sql(name, engine, index=False)
            got = profile_sql(engine, stored.spec(), table=name).columns["at"]
            expected = profile_dataframe(frame, specs=stored.spec()).columns["at"]
            assert (got.counts, got.values, got.min, got.max) == (
                expected.counts, expected.values, expected.min, expected.max,
            ), name  # fmt: skip
            assert got.std == pytest.approx(expected.std, rel=1e-12)
    finally:
        engine.dispose()
    assert got.min == seconds["at"].min().timestamp()


def test_infinite_and_nan_float_categories_are_the_same_on_every_engine(db_url):
    # PostgreSQL and DuckDB print infinities 'Infinity' / 'inf' (read back as 'Infinity') where pandas
    # has 'inf', and a stored NaN became a category 'NaN' instead of a null: identical data drifted
    import duckdb
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb
    from airflow_provider_mlprod.drift.sql_profile import profile_sql

    rng = np.random.default_rng(27)
    current = pd.DataFrame({"level": rng.choice([1.0, 2.5, np.nan, np.inf, -np.inf], 2000)})
    kinds = {"level": "categorical"}
    stored = profile_dataframe(
        pd.DataFrame({"level": rng.choice([1.0, 2.5, np.nan, np.inf, -np.inf], 3000)}), column_kinds=kinds
    )
    expected = profile_dataframe(current, specs=stored.spec())
    engine = sa.create_engine(db_url)
    table = sa.Table("levels_now", sa.MetaData(), sa.Column("level", sa.Double()))
    try:
        table.create(engine)
        with engine.begin() as connection:  # NaN stays NaN in PostgreSQL (SQLite stores NULL)
            connection.execute(table.insert(), [{"level": float(v)} for v in current["level"]])
        profiled = {
            "table": profile_sql(engine, stored.spec(), table="levels_now"),
            "query": profile_sql(engine, stored.spec(), query="SELECT level FROM levels_now"),
        }
    finally:
        engine.dispose()
    connection = duckdb.connect()
    try:
        connection.register("batch", current)
        profiled["duckdb"] = profile_duckdb(connection, stored.spec(), query="SELECT * FROM batch")
    finally:
        connection.close()
    settings = DriftSettings(max_workers=1, column_kinds=kinds)
    for path, profile in profiled.items():
        assert profile.columns == expected.columns, path
        assert not compare_datasets(stored, profile, settings).dataset_drift, path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "cannot be read: RecursionError"),
        ("\xff\xfe{}", "cannot be read: UnicodeDecodeError"),
        ('{"format_version": true, "row_count": 0, "columns": {}}', "format version True is not supported"),
        ('{"format_version": 1, "row_count": 1e400, "columns": {}}', "row_count inf is not a whole number"),
        ('{"format_version": 1, "row_count": 2.5, "columns": {}}', "row_count 2.5 is not a whole number"),
    ],
)
def test_a_hostile_profile_file_is_refused_naming_the_problem(tmp_path, text, problem):
    # nesting raised a raw RecursionError and 1e400 a raw OverflowError (both retried as transient)
    path = tmp_path / "profile.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(StoreError, match=f"profile file .*{problem}"):
        DatasetProfile.load(path)


def test_a_count_of_1e400_in_a_stored_profile_is_refused_naming_the_column():
    stored = profile_dataframe(pd.DataFrame({"x": np.arange(100.0)})).to_dict()
    text = json.dumps(stored).replace('"count": 100', '"count": 1e400')
    with pytest.raises(StoreError, match=r"column 'x': .*count inf is not a whole number"):
        DatasetProfile.from_dict(json.loads(text))


def test_a_profile_file_above_the_size_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    from airflow_provider_mlprod.drift import profile as profile_module
    from airflow_provider_mlprod.operators.drift import _load_profile_file

    path = tmp_path / "huge.json"
    profile_dataframe(pd.DataFrame({"x": np.arange(100.0)})).save(path)
    monkeypatch.setattr(profile_module, "MAX_PROFILE_BYTES", 100)
    for load in (DatasetProfile.load, _load_profile_file):
        with pytest.raises(StoreError, match="is larger than 0 MB"):
            load(str(path))


@pytest.mark.parametrize("file_reader", ["pandas", "duckdb"])
def test_datetimes_in_a_csv_can_be_declared_numeric_and_are_flagged_when_left_categorical(
    tmp_path, monkeypatch, file_reader
):
    # a CSV's datetimes are text to pandas: compared as categories (3,000 of one row each) the verdict
    # was meaningless and silent, and declaring them numeric was refused ("has dtype str")
    from airflow_provider_mlprod.operators.drift import DataDriftOperator

    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE_PATH", str(tmp_path / "store.db"))
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", str(tmp_path / "reports"))
    rng = np.random.default_rng(28)
    start = pd.Timestamp("2026-01-01")
    for name, low in (("then", 0), ("same", 0), ("later", 20)):
        at = start + pd.to_timedelta(rng.uniform(low, low + 30, 3000), unit="D").round("s")
        pd.DataFrame({"at": at}).to_csv(tmp_path / f"{name}.csv", index=False)

    def run(current: str, **kinds) -> dict:
        summary = DataDriftOperator(
            task_id="event_drift",
            reference_file_path=str(tmp_path / "then.csv"),
            file_path=str(tmp_path / f"{current}.csv"),
            file_reader=file_reader,
            on_failure="continue",
            **kinds,
        ).execute({"ti": _TaskInstance(), "outlet_events": {}})
        return summary["columns"][0]

    declared = {"column_kinds": {"at": "numeric"}}
    assert run("same", **declared)["kind"] == "numeric"
    assert not run("same", **declared)["drifted"]
    assert run("later", **declared)["drifted"]
    left = run("later")
    assert left["kind"] == "categorical"
    assert any("declare the column numeric" in note for note in left["notes"])


def test_a_duckdb_query_with_duplicate_column_names_is_refused():
    # DuckDB renames a query's second 'a' (a_1) and profiled the first one silently; PostgreSQL
    # refuses the ambiguous name, and pandas inputs are refused naming it
    import duckdb

    from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb
    from airflow_provider_mlprod.exceptions import InputDataError

    rng = np.random.default_rng(29)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200) + 5})
    spec = {"a": profile_dataframe(frame).spec()["a"]}
    connection = duckdb.connect()
    try:
        connection.register("pairs", frame)
        with pytest.raises(InputDataError, match=r"duplicate column names \['a'\]"):
            profile_duckdb(connection, spec, query="SELECT a, b AS a FROM pairs")
        # DuckDB reads 'a' and "A" as one name (its "A" was the first column too)
        with pytest.raises(InputDataError, match=r"\['A', 'a'\] \(DuckDB compares column names ignoring"):
            profile_duckdb(connection, spec, query='SELECT a, b AS "A" FROM pairs')
        assert profile_duckdb(connection, spec, query="SELECT a, b FROM pairs").columns["a"].count == 200
    finally:
        connection.close()


@pytest.mark.parametrize("magnitude", [1e200, 1e308])
def test_a_sql_reference_too_large_to_summarise_is_refused_like_in_pandas(db_url, magnitude):
    # pandas refuses such a column; SQLite and DuckDB stored a NaN std (the comparison could not decide
    # or the profile could not be saved) and a range that overflows gave 'column spec: bin edges must
    # be finite' without the column's name
    import duckdb
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.duckdb_profile import profile_duckdb
    from airflow_provider_mlprod.drift.profile import ColumnSpec
    from airflow_provider_mlprod.drift.sql_profile import profile_sql
    from airflow_provider_mlprod.exceptions import InputDataError

    frame = pd.DataFrame({"x": np.random.default_rng(30).uniform(-1, 1, 500) * magnitude})
    spec = {"x": ColumnSpec("numeric")}
    with pytest.raises(InputDataError, match="column 'x': values too large to summarise"):
        profile_dataframe(frame)
    engine = sa.create_engine(db_url)
    try:
        frame.to_sql("huge", engine, index=False)
        with pytest.raises(InputDataError, match=r"'x'|out of range"):  # PostgreSQL's sum may overflow first
            profile_sql(engine, spec, table="huge")
    finally:
        engine.dispose()
    connection = duckdb.connect()
    try:
        connection.register("huge", frame)
        with pytest.raises(InputDataError, match="column 'x': values too large to summarise"):
            profile_duckdb(connection, spec, table="huge")
    finally:
        connection.close()


def test_a_value_moved_inside_a_bin_of_a_discrete_column_is_seen_with_raw_current_data():
    # a {0, 100} column whose 100s all became 51: 51 falls in the bin of 100 (edges 0, 50, 100), and
    # the per-bin homogeneity test said "no drift", even raw against raw with method "exact"
    rng = np.random.default_rng(31)
    reference = pd.DataFrame({"x": rng.choice([0.0, 100.0], 3000)})
    moved = pd.DataFrame({"x": rng.choice([0.0, 51.0], 3000)})
    same = pd.DataFrame({"x": rng.choice([0.0, 100.0], 3000)})
    stored = profile_dataframe(reference)
    for ref in (reference, stored):
        column = compare_datasets(ref, moved, SETTINGS).column("x")
        assert column.test == "homogeneity"
        assert column.drifted
        assert column.statistic == pytest.approx(0.5, abs=0.05)
        assert not compare_datasets(ref, same, SETTINGS).column("x").drifted
    # a current profile (e.g. from SQL) keeps only bin counts: the verdict says what it cannot see
    binned = compare_datasets(stored, profile_dataframe(moved, specs=stored.spec()), SETTINGS).column("x")
    assert any("a value moved within a bin cannot show" in note for note in binned.notes)


def test_a_postgresql_query_datetime_column_fails_telling_how_to_give_it(postgres_url):
    import sqlalchemy as sa

    from airflow_provider_mlprod.drift.sql_profile import profile_sql
    from airflow_provider_mlprod.exceptions import InputDataError

    rng = np.random.default_rng(32)
    frame = pd.DataFrame(
        {"at": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.uniform(0, 9, 300), unit="D")}
    )
    stored = profile_dataframe(frame)
    engine = sa.create_engine(postgres_url)
    try:
        frame.to_sql("stamps", engine, index=False)
        with pytest.raises(
            InputDataError, match=r"give datetimes as epoch seconds, e.g. EXTRACT\(EPOCH FROM col\)"
        ):
            profile_sql(engine, stored.spec(), query="SELECT at FROM stamps")
        seconds = profile_sql(engine, stored.spec(), query="SELECT EXTRACT(EPOCH FROM at) AS at FROM stamps")
    finally:
        engine.dispose()
    assert not compare_datasets(stored, seconds, SETTINGS).dataset_drift

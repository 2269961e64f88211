"""Freshness probes: latest timestamp and new rows of a table, newest files under a location."""

from __future__ import annotations

import datetime as dt
import os

import fsspec
import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.monitoring.freshness import (
    FileFreshnessProbe,
    TableFreshnessProbe,
    file_modification_time,
    parse_timestamp,
)

UTC = dt.timezone.utc
BOUND = dt.datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url)
    yield engine
    engine.dispose()


def make_events(engine, timestamps, with_time_zone=False):
    metadata = sa.MetaData()
    events = sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("updated_at", sa.DateTime(timezone=with_time_zone)),
    )
    metadata.create_all(engine)
    if timestamps:
        with engine.begin() as connection:
            connection.execute(events.insert(), [{"updated_at": moment} for moment in timestamps])
    return events


def naive(*args):
    return dt.datetime(*args)


def test_latest_before_the_bound_is_not_fresh(engine):
    make_events(engine, [naive(2024, 2, 27), naive(2024, 2, 29, 23, 59, 59)])
    seen = TableFreshnessProbe("events", "updated_at", newer_than=BOUND).run(engine)
    assert not seen.satisfied
    assert seen.latest == dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert (seen.total, seen.new_count) == (2, 0)
    assert "2024-02-29T23:59:59+00:00" in seen.message
    assert "not yet satisfied" in seen.message


def test_latest_equal_to_the_bound_counts(engine):
    make_events(engine, [naive(2024, 2, 27), naive(2024, 3, 1)])
    seen = TableFreshnessProbe("events", "updated_at", newer_than="2024-03-01T00:00:00Z").run(engine)
    assert seen.satisfied
    assert seen.new_count == 1


def test_min_new_rows_counts_rows_at_or_after_the_bound(engine):
    make_events(engine, [naive(2024, 2, 1), naive(2024, 3, 1, 1), naive(2024, 3, 2), naive(2024, 3, 3)])
    three = TableFreshnessProbe("events", "updated_at", newer_than=BOUND, min_new_rows=3).run(engine)
    four = TableFreshnessProbe("events", "updated_at", newer_than=BOUND, min_new_rows=4).run(engine)
    assert (three.satisfied, three.new_count) == (True, 3)
    assert (four.satisfied, four.new_count) == (False, 3)
    assert "at least 4 new rows" in four.message


def test_min_rows_without_bound_counts_the_whole_table(engine):
    make_events(engine, [naive(2024, 2, 1), naive(2024, 2, 2)])
    assert TableFreshnessProbe("events", "updated_at", min_new_rows=2).run(engine).satisfied
    assert not TableFreshnessProbe("events", "updated_at", min_new_rows=3).run(engine).satisfied


def test_empty_table_is_not_fresh(engine):
    make_events(engine, [])
    seen = TableFreshnessProbe("events", "updated_at", newer_than=BOUND).run(engine)
    assert (seen.satisfied, seen.latest, seen.total) == (False, None, 0)
    assert "no data" in seen.message


def test_bound_with_offset_is_compared_as_an_instant(engine):
    make_events(engine, [naive(2024, 3, 1, 1, 30)])  # 01:30 UTC
    # 03:00+02:00 is 01:00 UTC: the row is newer; 04:00+02:00 is 02:00 UTC: it is not.
    assert (
        TableFreshnessProbe("events", "updated_at", newer_than="2024-03-01T03:00:00+02:00")
        .run(engine)
        .satisfied
    )
    assert (
        not TableFreshnessProbe("events", "updated_at", newer_than="2024-03-01T04:00:00+02:00")
        .run(engine)
        .satisfied
    )


def test_time_zone_aware_column(postgres_url):
    # SQLite keeps no offset in its DateTime type, so a time-zone-aware column is a server feature.
    engine = sa.create_engine(postgres_url)
    make_events(engine, [dt.datetime(2024, 3, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))], True)
    seen = TableFreshnessProbe("events", "updated_at", newer_than="2024-03-01T00:00:00+00:00").run(engine)
    assert seen.satisfied
    assert seen.latest == dt.datetime(2024, 3, 1, tzinfo=UTC)
    assert (
        not TableFreshnessProbe("events", "updated_at", newer_than="2024-03-01T00:00:01Z")
        .run(engine)
        .satisfied
    )


def test_sqlite_iso_text_with_t_separator(sqlite_url):
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE events (updated_at TEXT)"))
        connection.execute(
            sa.text("INSERT INTO events VALUES ('2024-03-01T00:00:00'), ('2024-02-29T10:00:00Z')")
        )
    seen = TableFreshnessProbe("events", "updated_at", newer_than="2024-03-01 00:00:00").run(engine)
    assert (seen.satisfied, seen.new_count) == (True, 1)
    strict = TableFreshnessProbe("events", "updated_at", newer_than="2024-03-01 00:00:00.001").run(engine)
    assert (strict.satisfied, strict.new_count) == (False, 0)


def test_schema_qualified_table(postgres_url):
    engine = sa.create_engine(postgres_url)
    schema = sa.make_url(postgres_url).query["options"].split("=", 1)[1]
    make_events(engine, [naive(2024, 3, 2)])
    plain = sa.create_engine(sa.make_url(postgres_url).difference_update_query(["options"]))
    try:
        assert TableFreshnessProbe(f"{schema}.events", "updated_at", newer_than=BOUND).run(plain).satisfied
        assert (
            TableFreshnessProbe("events", "updated_at", schema=schema, newer_than=BOUND).run(plain).satisfied
        )
    finally:
        plain.dispose()
        engine.dispose()


def test_missing_table_and_column_are_named(engine):
    with pytest.raises(InputDataError, match="table 'nowhere' does not exist"):
        TableFreshnessProbe("nowhere", "updated_at", newer_than=BOUND).run(engine)
    make_events(engine, [])
    with pytest.raises(InputDataError, match="table 'events' has no column 'created_at'"):
        TableFreshnessProbe("events", "created_at", newer_than=BOUND).run(engine)


def test_non_timestamp_column_is_rejected(engine):
    make_events(engine, [])
    with pytest.raises(InputDataError, match="timestamp column 'id' of table 'events' is INTEGER"):
        TableFreshnessProbe("events", "id", newer_than=BOUND).run(engine)


def sqlite_text_events(sqlite_url, values):
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE events (updated_at TEXT)"))
        for value in values:
            connection.execute(sa.text("INSERT INTO events VALUES (:v)"), {"v": value})
    return engine


def test_sqlite_latest_is_the_latest_time_not_the_greatest_text(sqlite_url):
    # As text, '2024-03-02T05:00:00+05:00' (00:00 UTC) sorts after '2024-03-02 00:30:00' (00:30 UTC).
    engine = sqlite_text_events(sqlite_url, ["2024-03-02 00:30:00", "2024-03-02T05:00:00+05:00"])
    try:
        seen = TableFreshnessProbe("events", "updated_at", newer_than="2024-03-02T00:20:00Z").run(engine)
    finally:
        engine.dispose()
    assert seen.latest == dt.datetime(2024, 3, 2, 0, 30, tzinfo=UTC)
    assert seen.satisfied
    assert (seen.total, seen.new_count) == (2, 1)


def test_unparseable_sqlite_text_is_not_counted_nor_the_latest(sqlite_url):
    engine = sqlite_text_events(sqlite_url, ["2024-03-02 00:30:00", "n/a", "yesterday", None])
    try:
        seen = TableFreshnessProbe("events", "updated_at", newer_than="2024-03-02T00:20:00Z").run(engine)
        only_text = sqlite_text_events(sqlite_url.replace("test.db", "text.db"), ["yesterday"])
        nothing = TableFreshnessProbe("events", "updated_at", min_new_rows=1).run(only_text)
        only_text.dispose()
    finally:
        engine.dispose()
    assert seen.latest == dt.datetime(2024, 3, 2, 0, 30, tzinfo=UTC)
    assert seen.satisfied
    assert (seen.total, seen.new_count) == (1, 1)
    assert not nothing.satisfied
    assert (nothing.latest, nothing.total) == (None, 0)


def test_older_than_ignores_rows_of_later_windows(engine):
    # A cleared run of the 1 March window: the table already holds 2 and 3 March rows.
    make_events(engine, [naive(2024, 2, 29, 23), naive(2024, 3, 2, 1), naive(2024, 3, 3, 1)])
    window = {"newer_than": BOUND, "older_than": "2024-03-02T00:00:00Z"}
    seen = TableFreshnessProbe("events", "updated_at", min_new_rows=1, **window).run(engine)
    assert not seen.satisfied
    assert seen.latest == dt.datetime(2024, 2, 29, 23, tzinfo=UTC)
    assert (seen.total, seen.new_count) == (1, 0)
    assert seen.older_than == dt.datetime(2024, 3, 2, tzinfo=UTC)
    assert "0 rows in [2024-03-01T00:00:00+00:00, 2024-03-02T00:00:00+00:00)" in seen.message
    assert seen.to_dict()["older_than"] == "2024-03-02T00:00:00+00:00"
    make_events(engine, [naive(2024, 3, 1, 12), naive(2024, 3, 2)])  # the bound itself is excluded
    seen = TableFreshnessProbe("events", "updated_at", min_new_rows=1, **window).run(engine)
    assert seen.satisfied
    assert seen.latest == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert (seen.total, seen.new_count) == (2, 1)


def test_older_than_must_follow_newer_than():
    with pytest.raises(ConfigurationError, match="must be before older_than"):
        TableFreshnessProbe("events", "updated_at", newer_than=BOUND, older_than=BOUND)
    with pytest.raises(ConfigurationError, match="older_than 'soon' is not an ISO 8601 timestamp"):
        FileFreshnessProbe("/data", min_new_files=1, older_than="soon")


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("events; DROP TABLE events", "updated_at"),
        ('events"', "updated_at"),
        ("a.b.c", "updated_at"),
        ("events", "updated_at -- comment"),
        ("events", "1col"),
    ],
)
def test_hostile_identifiers_are_rejected_when_built(table, column):
    with pytest.raises(ConfigurationError, match="not a plain SQL identifier"):
        TableFreshnessProbe(table, column, newer_than=BOUND)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give newer_than and/or min_new_rows"),
        ({"newer_than": "last tuesday"}, "newer_than 'last tuesday' is not an ISO 8601 timestamp"),
        ({"min_new_rows": 0}, "min_new_rows must be an integer of at least 1"),
        ({"min_new_rows": True}, "min_new_rows must be an integer of at least 1"),
        ({"min_new_rows": 2.5}, "min_new_rows must be an integer of at least 1"),
    ],
)
def test_bad_conditions_are_rejected(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        TableFreshnessProbe("events", "updated_at", **kwargs)


def test_parse_timestamp_reads_naive_as_utc():
    assert parse_timestamp("2024-03-01 12:00", "x") == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert parse_timestamp(dt.date(2024, 3, 1), "x") == dt.datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(ConfigurationError, match="x None is not a timestamp"):
        parse_timestamp(None, "x")


def test_observation_to_dict_is_json_text():
    import json

    seen = TableFreshnessProbe("events", "updated_at", newer_than=BOUND)
    as_dict = json.loads(json.dumps(seen_dict := _fake_observation(seen)))
    assert as_dict == seen_dict
    assert as_dict["newer_than"] == "2024-03-01T00:00:00+00:00"


def _fake_observation(probe):
    from airflow_provider_mlprod.monitoring.freshness import observe

    return observe(
        source="table 'events'",
        unit="rows",
        latest=None,
        total=0,
        newer_than=probe.newer_than,
        new_count=0,
        min_new=None,
    ).to_dict()


# --- file locations -----------------------------------------------------------------------------


def touch(path, moment):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    os.utime(path, (moment.timestamp(), moment.timestamp()))


def test_file_location_newest_file_and_count(tmp_path):
    fs = fsspec.filesystem("file")
    touch(tmp_path / "in" / "old.csv", dt.datetime(2024, 2, 1, tzinfo=UTC))
    touch(tmp_path / "in" / "day=2024-03-01" / "part-0.csv", dt.datetime(2024, 3, 1, 5, tzinfo=UTC))
    touch(tmp_path / "in" / "day=2024-03-01" / "part-1.csv", dt.datetime(2024, 3, 1, 6, tzinfo=UTC))
    location = str(tmp_path / "in")
    seen = FileFreshnessProbe(location, newer_than=BOUND, min_new_files=2).run(fs)
    assert seen.satisfied
    assert (seen.total, seen.new_count) == (3, 2)
    assert seen.latest == dt.datetime(2024, 3, 1, 6, tzinfo=UTC)
    assert not FileFreshnessProbe(location, newer_than=BOUND, min_new_files=3).run(fs).satisfied
    assert not FileFreshnessProbe(location, newer_than="2024-03-02").run(fs).satisfied


def test_file_location_older_than_ignores_later_files(tmp_path):
    fs = fsspec.filesystem("file")
    touch(tmp_path / "in" / "day=2024-02-29.csv", dt.datetime(2024, 2, 29, 5, tzinfo=UTC))
    touch(tmp_path / "in" / "day=2024-03-02.csv", dt.datetime(2024, 3, 2, 5, tzinfo=UTC))
    window = {"newer_than": BOUND, "older_than": "2024-03-02T00:00:00+00:00"}
    location = str(tmp_path / "in")
    seen = FileFreshnessProbe(location, min_new_files=1, **window).run(fs)
    assert not seen.satisfied
    assert (seen.total, seen.new_count) == (1, 0)
    assert seen.latest == dt.datetime(2024, 2, 29, 5, tzinfo=UTC)
    touch(tmp_path / "in" / "day=2024-03-01.csv", dt.datetime(2024, 3, 1, 5, tzinfo=UTC))
    seen = FileFreshnessProbe(location, min_new_files=1, **window).run(fs)
    assert seen.satisfied
    assert (seen.total, seen.new_count, seen.latest) == (2, 1, dt.datetime(2024, 3, 1, 5, tzinfo=UTC))


def test_single_file_and_missing_location(tmp_path):
    fs = fsspec.filesystem("file")
    touch(tmp_path / "model.pkl", dt.datetime(2024, 3, 1, 1, tzinfo=UTC))
    assert FileFreshnessProbe(str(tmp_path / "model.pkl"), newer_than=BOUND).run(fs).satisfied
    missing = FileFreshnessProbe("file:///not-yet", min_new_files=1).run(fs, str(tmp_path / "not-yet"))
    assert (missing.satisfied, missing.total, missing.latest) == (False, 0, None)
    assert missing.message.startswith("location 'file:///not-yet': no timestamp")


def test_modification_time_from_object_store_listings():
    when = dt.datetime(2024, 3, 1, tzinfo=UTC)
    assert file_modification_time("s3://b/k", {"LastModified": when}) == when
    assert file_modification_time("gs://b/k", {"updated": "2024-03-01T00:00:00.000Z"}) == when
    with pytest.raises(InputDataError, match="file 'x://k': the file system reports no modification time"):
        file_modification_time("x://k", {"size": 3})


def test_file_probe_needs_a_condition():
    with pytest.raises(ConfigurationError, match="give newer_than and/or min_new_files"):
        FileFreshnessProbe("/data")

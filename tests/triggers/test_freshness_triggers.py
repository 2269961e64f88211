"""Freshness and label-coverage triggers: clean serialization, firing on the right condition, timeouts."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import os
import threading

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.triggers.freshness import DataFreshnessTrigger, LabelCoverageTrigger

UTC = dt.timezone.utc
BOUND = "2024-03-01T00:00:00+00:00"
#: Seconds to a deadline that a trigger's first poll (open the engine, connect, query) ends well before,
#: also on a busy machine, where it has taken over 0.5 s: the timeout events then say what that poll saw.
AFTER_A_POLL = 3.0


@pytest.fixture
def warehouse(db_url, airflow_sql_connection):
    """(conn id, schema for the trigger, engine to write with) on SQLite or PostgreSQL."""
    schema = airflow_sql_connection(db_url)
    engine = sa.create_engine(db_url)
    yield "warehouse", schema, engine
    engine.dispose()


def create_events(engine, timestamps):
    metadata = sa.MetaData()
    events = sa.Table("events", metadata, sa.Column("updated_at", sa.DateTime))
    metadata.create_all(engine)
    insert_events(engine, events, timestamps)
    return events


def insert_events(engine, events, timestamps):
    if timestamps:
        with engine.begin() as connection:
            connection.execute(events.insert(), [{"updated_at": moment} for moment in timestamps])


def later(seconds, action):
    """Run ``action`` in another thread after ``seconds``; returns the thread."""
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def first_event(trigger, limit=30):
    async def collect():
        async for event in trigger.run():
            return event.payload
        return None

    return asyncio.run(asyncio.wait_for(collect(), limit))


def deadline_in(seconds):
    return (dt.datetime.now(UTC) + dt.timedelta(seconds=seconds)).isoformat()


def rebuilt(trigger):
    classpath, kwargs = trigger.serialize()
    module_name, _, class_name = classpath.rpartition(".")
    json.dumps(kwargs)  # JSON-safe, or this raises
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)


def test_freshness_trigger_round_trip():
    trigger = DataFreshnessTrigger(
        conn_id="warehouse",
        table="events",
        timestamp_column="updated_at",
        schema="sales",
        newer_than=BOUND,
        min_new_rows=5,
        poll_interval=30,
        deadline="2024-03-02T00:00:00+00:00",
    )
    again = rebuilt(trigger)
    assert type(again) is DataFreshnessTrigger
    assert again.serialize() == trigger.serialize()
    assert again.serialize()[0] == "airflow_provider_mlprod.triggers.freshness.DataFreshnessTrigger"
    assert again.serialize()[1]["min_new_rows"] == 5


def test_label_trigger_round_trip():
    trigger = LabelCoverageTrigger(
        conn_id="warehouse",
        predictions_table="predictions",
        labels_table="labels",
        key_column="prediction_id",
        timestamp_column="scored_at",
        window_start="2024-03-01T00:00:00+00:00",
        window_end="2024-03-02T00:00:00+00:00",
        min_label_share=0.9,
        label_column="outcome",
        poll_interval=5,
        deadline=None,
    )
    again = rebuilt(trigger)
    assert again.serialize() == trigger.serialize()
    assert again.serialize()[1]["label_column"] == "outcome"


def test_freshness_trigger_fires_when_new_rows_arrive(warehouse):
    conn_id, schema, engine = warehouse
    events = create_events(engine, [dt.datetime(2024, 2, 28)])
    arrival = dt.datetime(2024, 3, 1, 6)
    timer = later(0.6, lambda: insert_events(engine, events, [arrival, arrival]))
    trigger = DataFreshnessTrigger(
        conn_id=conn_id,
        table="events",
        timestamp_column="updated_at",
        schema=schema,
        newer_than=BOUND,
        min_new_rows=2,
        poll_interval=0.2,
        deadline=deadline_in(20),
    )
    event = first_event(trigger)
    timer.join()
    assert event["status"] == "success"
    assert event["observation"]["latest"] == "2024-03-01T06:00:00+00:00"
    assert event["observation"]["new_count"] == 2


def test_freshness_trigger_times_out_with_what_it_saw(warehouse):
    conn_id, schema, engine = warehouse
    create_events(engine, [dt.datetime(2024, 2, 28, 23)])
    trigger = DataFreshnessTrigger(
        conn_id=conn_id,
        table="events",
        timestamp_column="updated_at",
        schema=schema,
        newer_than=BOUND,
        poll_interval=0.2,
        deadline=deadline_in(AFTER_A_POLL),
    )
    event = first_event(trigger)
    assert event["status"] == "timeout"
    assert "still waiting at the deadline" in event["message"]
    assert "last saw: table" in event["message"]
    assert "latest timestamp 2024-02-28T23:00:00+00:00" in event["message"]
    assert event["observation"]["satisfied"] is False


def test_label_trigger_fires_when_labels_arrive(warehouse):
    conn_id, schema, engine = warehouse
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE predictions (prediction_id INTEGER, scored_at TIMESTAMP)"))
        connection.execute(sa.text("CREATE TABLE labels (prediction_id INTEGER, outcome INTEGER)"))
        connection.execute(
            sa.text("INSERT INTO predictions VALUES (1, :t), (2, :t), (3, :t), (4, :t)"),
            {"t": dt.datetime(2024, 3, 1, 12)},
        )
        connection.execute(sa.text("INSERT INTO labels VALUES (1, 0)"))

    def labels_arrive():
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO labels VALUES (2, 1), (3, 0)"))

    timer = later(0.6, labels_arrive)
    trigger = LabelCoverageTrigger(
        conn_id=conn_id,
        predictions_table="predictions",
        labels_table="labels",
        key_column="prediction_id",
        timestamp_column="scored_at",
        window_start="2024-03-01T00:00:00+00:00",
        window_end="2024-03-02T00:00:00+00:00",
        min_label_share=0.75,
        schema=schema,
        poll_interval=0.2,
        deadline=deadline_in(20),
    )
    event = first_event(trigger)
    timer.join()
    assert event["status"] == "success"
    assert (event["observation"]["labelled"], event["observation"]["predictions"]) == (3, 4)

    trigger.min_label_share = 1.0
    trigger.deadline = deadline_in(AFTER_A_POLL)
    timed_out = first_event(trigger)
    assert timed_out["status"] == "timeout"
    assert "last saw: 3 of 4 predictions" in timed_out["message"]
    assert "share 0.7500" in timed_out["message"]


def test_file_location_trigger_fires_when_a_file_lands(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "old.csv").write_text("x")
    old = dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    os.utime(landing / "old.csv", (old, old))
    timer = later(0.5, lambda: (landing / "new.csv").write_text("y"))
    trigger = DataFreshnessTrigger(
        location=f"file://{landing}",
        newer_than=BOUND,
        min_new_files=1,
        poll_interval=0.2,
        deadline=deadline_in(20),
    )
    event = first_event(trigger)
    timer.join()
    assert event["status"] == "success"
    assert (event["observation"]["total"], event["observation"]["new_count"]) == (2, 1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"table": "events; DROP TABLE events", "conn_id": "warehouse"}, "is not a plain SQL identifier"),
        ({"table": "events", "conn_id": "nowhere"}, "connection 'nowhere': is not defined"),
        ({"table": "events", "conn_id": "warehouse", "newer_than": "soon"}, "newer_than 'soon' is not"),
    ],
)
def test_bad_inputs_end_with_an_error_event(arguments, message, sqlite_url, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps({"conn_type": "sqlite", "host": sa.make_url(sqlite_url).database}),
    )
    trigger = DataFreshnessTrigger(
        **{"timestamp_column": "updated_at", "newer_than": BOUND, **arguments},
        poll_interval=0.1,
        deadline=deadline_in(5),
    )
    event = first_event(trigger)
    assert event["status"] == "error"
    assert message in event["message"]


def test_missing_table_is_an_error_event(warehouse):
    conn_id, schema, _engine = warehouse
    trigger = DataFreshnessTrigger(
        conn_id=conn_id,
        table="nowhere",
        timestamp_column="t",
        schema=schema,
        min_new_rows=1,
        poll_interval=0.1,
    )
    event = first_event(trigger)
    assert event["status"] == "error"
    assert "nowhere' does not exist" in event["message"]


def test_older_than_round_trips_and_bounds_the_probe():
    trigger = DataFreshnessTrigger(
        location="file:///landing",
        newer_than=BOUND,
        older_than="2024-03-02T00:00:00+00:00",
        min_new_files=1,
    )
    again = rebuilt(trigger)
    assert again.serialize() == trigger.serialize()
    assert again.serialize()[1]["older_than"] == "2024-03-02T00:00:00+00:00"
    assert again.build_probe().older_than == dt.datetime(2024, 3, 2, tzinfo=UTC)


def test_freshness_trigger_with_older_than_ignores_later_rows(warehouse):
    conn_id, schema, engine = warehouse
    create_events(engine, [dt.datetime(2024, 3, 2, 6)])  # a later window's row
    trigger = DataFreshnessTrigger(
        conn_id=conn_id,
        table="events",
        timestamp_column="updated_at",
        schema=schema,
        newer_than=BOUND,
        older_than="2024-03-02T00:00:00+00:00",
        poll_interval=0.1,
        deadline=deadline_in(AFTER_A_POLL),
    )
    event = first_event(trigger)
    assert event["status"] == "timeout"
    assert event["observation"]["latest"] is None
    assert "no timestamp before 2024-03-02T00:00:00+00:00" in event["message"]


class StuckSecondPoll(DataFreshnessTrigger):
    """The first poll answers; the next one hangs (a query stuck behind a lock) until released."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.polls = 0
        self.release = threading.Event()
        self.closed_in = None

    def observe(self, probe, resource):
        self.polls += 1
        if self.polls > 1:
            self.release.wait(20)
        return super().observe(probe, resource)

    def close_resource(self, resource):
        self.closed_in = threading.current_thread()
        super().close_resource(resource)


def test_deadline_bounds_a_poll_in_progress(warehouse):
    conn_id, schema, engine = warehouse
    create_events(engine, [dt.datetime(2024, 2, 28, 23)])
    trigger = StuckSecondPoll(
        conn_id=conn_id,
        table="events",
        timestamp_column="updated_at",
        schema=schema,
        newer_than=BOUND,
        poll_interval=0.1,
        deadline=deadline_in(AFTER_A_POLL),
    )

    async def collect():
        loop_thread = threading.current_thread()
        emitted = []
        try:
            async for event in trigger.run():  # to the end: the trigger closes its engine after the event
                emitted.append((event.payload, dt.datetime.now(UTC)))
        finally:
            trigger.release.set()  # let the stuck poll end, so the loop can shut down
        assert len(emitted) == 1
        return *emitted[0], loop_thread

    payload, emitted_at, loop_thread = asyncio.run(asyncio.wait_for(collect(), 8))
    deadline = dt.datetime.fromisoformat(trigger.deadline)
    assert trigger.polls >= 2
    assert payload["status"] == "timeout"
    assert emitted_at - deadline < dt.timedelta(seconds=1)
    assert "a poll was still running" in payload["message"]
    assert "last saw: table" in payload["message"]
    assert "latest timestamp 2024-02-28T23:00:00+00:00" in payload["message"]
    assert payload["observation"]["latest"] == "2024-02-28T23:00:00+00:00"
    assert trigger.closed_in is not None  # the engine was disposed of...
    assert trigger.closed_in is not loop_thread  # ...in a worker thread


def test_deadline_during_the_first_poll_says_nothing_was_seen(sqlite_url, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps({"conn_type": "sqlite", "host": sa.make_url(sqlite_url).database}),
    )
    trigger = StuckSecondPoll(
        conn_id="warehouse",
        table="events",
        timestamp_column="updated_at",
        newer_than=BOUND,
        poll_interval=0.1,
        deadline=deadline_in(0.8),
    )
    trigger.polls = 1  # the first poll is stuck already

    async def collect():
        try:
            async for event in trigger.run():
                return event.payload
        finally:
            trigger.release.set()

    payload = asyncio.run(asyncio.wait_for(collect(), 8))
    assert payload["status"] == "timeout"
    assert payload["observation"] is None
    assert "last saw: nothing (no poll completed)" in payload["message"]

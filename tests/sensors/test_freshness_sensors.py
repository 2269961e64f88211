"""DataFreshnessSensor and GroundTruthSensor: poke mode, deferral, resumption, argument checks, a real run."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import textwrap

import pytest
import sqlalchemy as sa
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, TaskDeferred

from airflow_provider_mlprod.sensors.freshness import DataFreshnessSensor
from airflow_provider_mlprod.sensors.ground_truth import GroundTruthSensor
from airflow_provider_mlprod.triggers.freshness import DataFreshnessTrigger, LabelCoverageTrigger

UTC = dt.timezone.utc
BOUND = "2024-03-01T00:00:00+00:00"


@pytest.fixture
def warehouse(db_url, airflow_sql_connection):
    """(conn id, schema, engine) with tables ``events`` and ``predictions``/``labels`` on either backend."""
    schema = airflow_sql_connection(db_url)
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE events (id INTEGER, updated_at TIMESTAMP)"))
        connection.execute(
            sa.text("INSERT INTO events VALUES (1, :a), (2, :b), (3, :b)"),
            {"a": dt.datetime(2024, 2, 28), "b": dt.datetime(2024, 3, 1, 6)},
        )
        connection.execute(sa.text("CREATE TABLE predictions (prediction_id INTEGER, scored_at TIMESTAMP)"))
        connection.execute(sa.text("CREATE TABLE labels (prediction_id INTEGER, outcome INTEGER)"))
        connection.execute(
            sa.text("INSERT INTO predictions VALUES (1, :t), (2, :t), (3, :t), (4, :t)"),
            {"t": dt.datetime(2024, 3, 1, 12)},
        )
        connection.execute(sa.text("INSERT INTO labels VALUES (1, 1), (2, 0), (3, NULL)"))
    yield "warehouse", schema, engine
    engine.dispose()


def freshness_sensor(schema, /, **overrides):
    arguments = {
        "task_id": "wait_for_events",
        "sql_conn_id": "warehouse",
        "table": "events",
        "timestamp_column": "updated_at",
        "schema": schema,
        "newer_than": BOUND,
        "poke_interval": 0.1,
        "timeout": 10,
    }
    return DataFreshnessSensor(**{**arguments, **overrides})


def ground_truth_sensor(schema, /, **overrides):
    arguments = {
        "task_id": "wait_for_labels",
        "sql_conn_id": "warehouse",
        "predictions_table": "predictions",
        "labels_table": "labels",
        "key_column": "prediction_id",
        "timestamp_column": "scored_at",
        "window_start": "2024-03-01",
        "window_end": "2024-03-02",
        "min_label_share": 0.75,
        "schema": schema,
        "poke_interval": 0.1,
        "timeout": 10,
    }
    return GroundTruthSensor(**{**arguments, **overrides})


# --- poke mode ----------------------------------------------------------------------------------


def test_freshness_poke_done_with_the_observation(warehouse):
    _conn, schema, _engine = warehouse
    result = freshness_sensor(schema, min_new_rows=2).poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value["latest"] == "2024-03-01T06:00:00+00:00"
    assert result.xcom_value["new_count"] == 2


def test_freshness_poke_not_done(warehouse):
    _conn, schema, _engine = warehouse
    result = freshness_sensor(schema, min_new_rows=3).poke({})
    assert not result.is_done
    assert result.xcom_value["new_count"] == 2
    assert not freshness_sensor(schema, newer_than="2024-03-01T06:00:01Z").poke({}).is_done


def test_poke_mode_timeout_says_what_it_last_saw(warehouse):
    _conn, schema, _engine = warehouse
    sensor = freshness_sensor(schema, newer_than="2030-01-01", timeout=0.3)
    with pytest.raises(AirflowSensorTimeout) as raised:
        sensor.execute({})
    message = str(raised.value)
    assert "task 'wait_for_events' timed out after 0.3 s" in message
    assert "last saw: table" in message
    assert "latest timestamp 2024-03-01T06:00:00+00:00" in message


def test_poke_mode_execute_returns_the_observation(warehouse):
    _conn, schema, _engine = warehouse
    assert freshness_sensor(schema).execute({})["satisfied"] is True


ODD_EVENTS = "SELECT * FROM {prefix}events WHERE id % 2 = :odd AND CAST(id AS VARCHAR(10)) <> :excluded"
"""Events 1 and 3 (a '%' modulo; a hostile value that must stay a value)."""


def test_freshness_watches_a_query_with_bound_parameters(warehouse):
    _conn, schema, _engine = warehouse
    query = ODD_EVENTS.format(prefix=f"{schema}." if schema else "")
    parameters = {"odd": 1, "excluded": "x' OR '1'='1"}
    sensor = freshness_sensor(None, table=None, query=query, parameters=parameters, min_new_rows=1)
    assert sensor.template_fields_renderers["parameters"] == "json"
    seen = sensor.poke({})
    assert seen.is_done
    assert (seen.xcom_value["total"], seen.xcom_value["new_count"]) == (2, 1)  # the table has 3 and 2
    assert seen.xcom_value["source"].startswith("query 'SELECT * FROM")
    assert not freshness_sensor(None, table=None, query=query, parameters=parameters, min_new_rows=2).poke({})


def test_freshness_takes_a_source_object_in_poke_and_deferrable_mode(warehouse):
    from airflow_provider_mlprod.sql.source import SqlSource

    _conn, schema, _engine = warehouse
    source = SqlSource.from_arguments(
        conn_id="warehouse",
        query=ODD_EVENTS.format(prefix=f"{schema}." if schema else ""),
        parameters={"odd": 1, "excluded": "3"},
        hook_params={"log_sql": False},
    )
    sensor = freshness_sensor(None, sql_conn_id=None, table=None, source=source, min_new_rows=1)
    assert sensor.poke({}).xcom_value["total"] == 1  # event 1 only: 3 is excluded
    sensor.deferrable = True
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    kwargs = rebuilt(deferred.value.trigger).serialize()[1]
    assert (kwargs["conn_id"], kwargs["query"], kwargs["parameters"]) == (
        "warehouse",
        source.query,
        source.parameters,
    )
    assert kwargs["hook_params"] == {"log_sql": False}
    with pytest.raises(ValueError, match="give source or sql_conn_id, table, not both"):
        freshness_sensor(None, source=source)
    with pytest.raises(ValueError, match="source must be a SqlSource"):
        freshness_sensor(None, sql_conn_id=None, table=None, source="events")


def test_a_failing_query_is_final_and_names_the_source(warehouse):
    sensor = freshness_sensor(None, table=None, query="SELECT * FROM no_such_events")
    with pytest.raises(
        AirflowFailException, match="query 'SELECT \\* FROM no_such_events' on connection 'warehouse' fails"
    ):
        sensor.poke({})


def test_ground_truth_poke(warehouse):
    _conn, schema, _engine = warehouse
    done = ground_truth_sensor(schema).poke({})
    assert done.is_done
    assert (done.xcom_value["labelled"], done.xcom_value["predictions"]) == (3, 4)
    waiting = ground_truth_sensor(schema, label_column="outcome").poke({})
    assert not waiting.is_done
    assert waiting.xcom_value["share"] == 0.5


def test_ground_truth_reads_predictions_from_a_query_or_a_source(warehouse):
    from airflow_provider_mlprod.sql.source import SqlSource

    _conn, schema, _engine = warehouse
    prefix = f"{schema}." if schema else ""
    query = f"SELECT * FROM {prefix}predictions WHERE prediction_id % 2 = :odd"  # predictions 1 and 3
    sensor = ground_truth_sensor(
        schema, predictions_table=None, predictions_query=query, predictions_parameters={"odd": 1}
    )
    seen = sensor.poke({})
    assert (seen.xcom_value["labelled"], seen.xcom_value["predictions"]) == (2, 2)
    source = SqlSource.from_arguments(conn_id="warehouse", query=query, parameters={"odd": 0})
    sensor = ground_truth_sensor(schema, sql_conn_id=None, predictions_table=None, predictions_source=source)
    seen = sensor.poke({})  # predictions 2 and 4: only 2 is labelled
    assert (seen.xcom_value["labelled"], seen.xcom_value["predictions"], seen.is_done) == (1, 2, False)
    sensor.deferrable = True
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    kwargs = rebuilt(deferred.value.trigger).serialize()[1]
    assert (kwargs["predictions_query"], kwargs["predictions_parameters"]) == (source.query, {"odd": 0})
    assert rebuilt(deferred.value.trigger).build_probe().run(_engine).labelled == 1


def test_older_than_keeps_a_cleared_old_window_waiting(warehouse):
    # Re-running the 29 February window: the 1 March rows of a later window must not satisfy it.
    _conn, schema, _engine = warehouse
    old_window = {"newer_than": "2024-02-29T00:00:00Z", "older_than": "{{ params.window_end }}"}
    sensor = freshness_sensor(schema, min_new_rows=1, **old_window)
    assert "older_than" in sensor.template_fields
    sensor.older_than = "2024-03-01T00:00:00Z"  # as rendered
    waiting = sensor.poke({})
    assert not waiting.is_done
    assert waiting.xcom_value["latest"] == "2024-02-28T00:00:00+00:00"
    assert waiting.xcom_value["new_count"] == 0
    assert waiting.xcom_value["older_than"] == BOUND
    assert freshness_sensor(schema, min_new_rows=1, newer_than="2024-02-28").poke({}).is_done
    with_old = freshness_sensor(schema, newer_than="2024-02-28", older_than=BOUND, min_new_rows=1)
    assert with_old.poke({}).xcom_value["new_count"] == 1


def test_older_than_bounds_a_file_location(tmp_path):
    import os

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "later.csv").write_text("x")
    later_window = dt.datetime(2024, 3, 2, tzinfo=UTC).timestamp()
    os.utime(landing / "later.csv", (later_window, later_window))
    sensor = DataFreshnessSensor(
        task_id="wait_for_files",
        location=f"file://{landing}",
        newer_than="2024-03-01T00:00:00Z",
        older_than="2024-03-02T00:00:00Z",
        poke_interval=0.1,
    )
    assert not sensor.poke({}).is_done
    sensor.older_than = None
    assert sensor.poke({}).is_done


def test_file_location_poke(tmp_path):
    sensor = DataFreshnessSensor(
        task_id="wait_for_files", location=f"file://{tmp_path}/landing", min_new_files=1, poke_interval=0.1
    )
    assert not sensor.poke({}).is_done
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "part-0.csv").write_text("x")
    assert sensor.poke({}).is_done


# --- names checked before any SQL ---------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"table": "events; DROP TABLE events"},
        {"table": 'events" --'},
        {"timestamp_column": "updated_at) OR (1=1"},
        {"schema": "public; DELETE FROM x"},
    ],
)
def test_hostile_identifiers_fail_the_dag_parse(overrides):
    with pytest.raises(ValueError, match=r"task 'wait_for_events': .*not a plain SQL identifier"):
        freshness_sensor(None, **overrides)


def test_hostile_rendered_identifiers_fail_before_sql(warehouse):
    _conn, schema, engine = warehouse
    sensor = freshness_sensor(schema, table="{{ params.table }}")
    sensor.table = "events; DROP TABLE events"  # as rendered
    with pytest.raises(AirflowFailException, match="is not a plain SQL identifier"):
        sensor.poke({})
    sensor.deferrable = True
    with pytest.raises(AirflowFailException, match="is not a plain SQL identifier"):
        sensor.execute({})
    labels = ground_truth_sensor(schema, labels_table="{{ params.labels }}")
    labels.labels_table = "labels; DROP TABLE predictions"
    with pytest.raises(AirflowFailException, match="is not a plain SQL identifier"):
        labels.poke({})
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM events")).scalar_one() == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"newer_than": None}, "task 'wait_for_events': give newer_than and/or min_new_rows"),
        ({"table": None}, "give exactly one of table and query for a SQL source"),
        ({"location": "file:///data"}, "give exactly one of a SQL source .* and location"),
        ({"sql_conn_id": None}, "table need sql_conn_id"),
        ({"timestamp_column": None}, "a table or query needs timestamp_column"),
        ({"parameters": {"day": "1"}}, r"parameters \['day'\] apply to a query"),
        ({"table": None, "query": "SELECT * FROM events; DROP TABLE events"}, "query holds 2 statements"),
        ({"table": None, "query": "SELECT * FROM events WHERE kind = :kind"}, "parameters give no value"),
        (
            {"table": None, "query": "SELECT * FROM events", "parameters": [1]},
            "parameters must be a mapping of name to value, got list",
        ),
        ({"min_new_files": 2}, "min_new_files applies to a location"),
        ({"min_new_rows": 0}, "min_new_rows must be an integer of at least 1"),
        ({"newer_than": "yesterday"}, "newer_than 'yesterday' is not an ISO 8601 timestamp"),
        ({"older_than": "tomorrow"}, "older_than 'tomorrow' is not an ISO 8601 timestamp"),
        ({"older_than": BOUND}, "newer_than 2024-03-01T00:00:00\\+00:00 must be before older_than"),
    ],
)
def test_freshness_arguments_checked_at_parse_time(overrides, message):
    with pytest.raises(ValueError, match=message):
        freshness_sensor(None, **overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_label_share": 0}, "min_label_share must be a number in"),
        ({"window_end": "2024-02-01"}, "must be before window_end"),
        ({"key_column": "id;"}, "key column 'id;' is not a plain"),
        ({"window_start": "{{ ds }}", "window_end": "soon"}, "window_end 'soon' is not"),
        ({"sql_conn_id": ""}, "predictions_table need sql_conn_id"),
        (
            {
                "predictions_table": None,
                "predictions_query": "SELECT * FROM predictions WHERE scored_at > :d",
            },
            "predictions_query uses :d but predictions_parameters give no value",
        ),
        (
            {"predictions_table": None, "predictions_query": "SELECT 1; DROP TABLE labels"},
            "predictions_query holds 2 statements",
        ),
        ({"predictions_parameters": {"d": 1}}, r"predictions_parameters \['d'\] apply to a query"),
    ],
)
def test_ground_truth_arguments_checked_at_parse_time(overrides, message):
    with pytest.raises(ValueError, match=f"task 'wait_for_labels': .*{message}"):
        ground_truth_sensor(None, **overrides)


def test_templated_arguments_pass_the_parse():
    sensor = ground_truth_sensor(
        None,
        predictions_table="preds_{{ ds_nodash }}",
        window_start="{{ data_interval_start }}",
        window_end="{{ data_interval_end }}",
    )
    assert sensor.predictions_table == "preds_{{ ds_nodash }}"
    assert (
        freshness_sensor(None, newer_than="{{ data_interval_end }}").newer_than == "{{ data_interval_end }}"
    )


# --- deferrable mode ----------------------------------------------------------------------------


def rebuilt(trigger):
    classpath, kwargs = trigger.serialize()
    module_name, _, class_name = classpath.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**json.loads(json.dumps(kwargs)))


def test_deferrable_freshness_defers_to_a_serializable_trigger():
    sensor = freshness_sensor("sales", deferrable=True, min_new_rows=10, timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, DataFreshnessTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout > dt.timedelta(seconds=600)
    kwargs = rebuilt(trigger).serialize()[1]
    assert kwargs["newer_than"] == BOUND
    assert kwargs["older_than"] is None
    assert (kwargs["schema"], kwargs["min_new_rows"], kwargs["poll_interval"]) == ("sales", 10, 0.1)
    deadline = dt.datetime.fromisoformat(kwargs["deadline"])
    assert dt.timedelta(seconds=590) < deadline - dt.datetime.now(UTC) <= dt.timedelta(seconds=600)


def test_hook_params_reach_the_trigger_and_survive_serialization():
    sensor = freshness_sensor("sales", deferrable=True, min_new_rows=10, hook_params={"schema": "reporting"})
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = rebuilt(deferred.value.trigger)
    assert trigger.hook_params == {"schema": "reporting"}
    assert trigger.serialize()[1]["hook_params"] == {"schema": "reporting"}


def test_deferrable_freshness_passes_older_than_to_the_trigger():
    sensor = freshness_sensor(
        None,
        deferrable=True,
        older_than=dt.datetime(2024, 3, 2, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    again = rebuilt(deferred.value.trigger)
    assert again.serialize()[1]["older_than"] == "2024-03-02T00:00:00+00:00"
    assert again.build_probe().older_than == dt.datetime(2024, 3, 2, tzinfo=UTC)


def test_deferrable_ground_truth_defers_to_a_serializable_trigger():
    sensor = ground_truth_sensor(None, deferrable=True, window_start=dt.datetime(2024, 3, 1, 2))
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert isinstance(deferred.value.trigger, LabelCoverageTrigger)
    kwargs = rebuilt(deferred.value.trigger).serialize()[1]
    assert kwargs["window_start"] == "2024-03-01T02:00:00+00:00"
    assert kwargs["window_end"] == "2024-03-02T00:00:00+00:00"


def test_execute_complete_paths():
    sensor = freshness_sensor(None, deferrable=True)
    observation = {"satisfied": True, "message": "fine"}
    assert sensor.execute_complete({}, {"status": "success", "observation": observation}) == observation
    with pytest.raises(
        AirflowSensorTimeout, match="timed out after 10 s: still waiting; last saw: latest 2024"
    ):
        sensor.execute_complete({}, {"status": "timeout", "message": "still waiting; last saw: latest 2024"})
    with pytest.raises(AirflowFailException, match="task 'wait_for_events': table 'x' does not exist"):
        sensor.execute_complete({}, {"status": "error", "message": "table 'x' does not exist"})
    with pytest.raises(AirflowFailException, match="unknown status 'odd'"):
        sensor.execute_complete({}, {"status": "odd"})
    with pytest.raises(AirflowFailException, match="no usable event"):
        sensor.execute_complete({}, None)


def test_deferrable_defaults_to_airflow_setting():
    import os
    import subprocess
    import sys

    script = (
        "from airflow_provider_mlprod.sensors.freshness import DataFreshnessSensor\n"
        "print(DataFreshnessSensor(task_id='t', location='/data', min_new_files=1).deferrable)\n"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "True"
    assert freshness_sensor(None).deferrable is False  # this session's default
    assert freshness_sensor(None, deferrable=True).deferrable is True


# --- a real DAG run -----------------------------------------------------------------------------

DAG_SOURCE = textwrap.dedent(
    """
    import datetime as dt

    from airflow.sdk import DAG

    from airflow_provider_mlprod.sensors.freshness import DataFreshnessSensor
    from airflow_provider_mlprod.sensors.ground_truth import GroundTruthSensor

    with DAG("mlprod_sensors_deferred", schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False):
        fresh = DataFreshnessSensor(
            task_id="wait_for_events",
            sql_conn_id="mlprod_sensor_db",
            table="events",
            timestamp_column="updated_at",
            newer_than="{{ macros.ds_add(ds, -1) }}",
            min_new_rows=2,
            deferrable=True,
            poke_interval=0.2,
            timeout=60,
        )
        labels = GroundTruthSensor(
            task_id="wait_for_labels",
            sql_conn_id="mlprod_sensor_db",
            predictions_table="predictions",
            labels_table="labels",
            key_column="prediction_id",
            timestamp_column="scored_at",
            window_start="{{ macros.ds_add(ds, -1) }}",
            window_end="{{ ds }}",
            min_label_share=0.75,
            deferrable=True,
            poke_interval=0.2,
            timeout=60,
        )
        fresh >> labels
    """
)


@pytest.mark.dagrun
def test_deferred_sensors_in_a_dag_run(dag_file, tmp_path, monkeypatch):
    database = tmp_path / "sensor.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    day = dt.datetime(2024, 3, 1)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE events (updated_at TIMESTAMP)"))
        connection.execute(
            sa.text("INSERT INTO events VALUES (:t), (:t)"), {"t": str(day + dt.timedelta(hours=3))}
        )
        connection.execute(sa.text("CREATE TABLE predictions (prediction_id INTEGER, scored_at TIMESTAMP)"))
        connection.execute(sa.text("CREATE TABLE labels (prediction_id INTEGER)"))
        connection.execute(
            sa.text("INSERT INTO predictions VALUES (1, :t), (2, :t), (3, :t), (4, :t)"),
            {"t": str(day + dt.timedelta(hours=12))},
        )
        connection.execute(sa.text("INSERT INTO labels VALUES (1), (2), (3)"))
    engine.dispose()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLPROD_SENSOR_DB", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    dag = dag_file("mlprod_sensors_deferred", DAG_SOURCE)
    dr = dag.test(logical_date=dt.datetime(2024, 3, 2, tzinfo=UTC))
    assert dr.state == "success"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states == {"wait_for_events": "success", "wait_for_labels": "success"}

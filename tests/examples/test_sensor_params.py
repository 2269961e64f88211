"""Example sensors take their timing from the run's Params, also when they resume after deferral."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_provider_mlprod.examples.sensor_params import ParamsFreshnessSensor, ParamsGroundTruthSensor

PARAMS = {"sensor_poke_seconds": 2, "freshness_timeout_seconds": 60, "label_timeout_seconds": 45}


def test_timeout_message_after_deferral_states_the_timeout_of_the_params():
    sensor = ParamsFreshnessSensor(
        task_id="wait_for_orders",
        sql_conn_id="warehouse",
        table="orders",
        timestamp_column="updated_at",
        min_new_rows=1,
    )
    assert sensor.timeout == 604800  # the default, until a run's Params apply
    event = {"status": "timeout", "message": "0 rows at or after 2026-01-01T00:00:00+00:00"}
    with pytest.raises(AirflowSensorTimeout, match=r"timed out after 60 s: 0 rows"):
        sensor.execute_complete({"params": PARAMS}, event)
    assert sensor.poke_interval == 2


def test_ground_truth_sensor_uses_the_label_timeout():
    sensor = ParamsGroundTruthSensor(
        task_id="wait_for_labels",
        sql_conn_id="warehouse",
        predictions_table="predictions",
        labels_table="labels",
        key_column="prediction_id",
        timestamp_column="scored_at",
        window_start="2026-01-01T00:00:00+00:00",
        window_end="2026-01-02T00:00:00+00:00",
        min_label_share=0.8,
    )
    with pytest.raises(AirflowSensorTimeout, match=r"timed out after 45 s"):
        sensor.execute_complete({"params": PARAMS}, {"status": "timeout", "message": "30 % labelled"})

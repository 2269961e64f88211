"""Sensors of the example DAGs whose poke interval and timeout come from the run's Params.

A demo can then watch a timeout fire in seconds; in your own DAG, set ``poke_interval`` and ``timeout``
directly. The Params are applied both when the sensor starts and when it resumes after deferral, so the
timeout message states the timeout that applied.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mlprod.sensors.freshness import DataFreshnessSensor
from airflow_provider_mlprod.sensors.ground_truth import GroundTruthSensor

POKE_PARAM = "sensor_poke_seconds"


class _TimingFromParams:
    timeout_param = ""

    def _apply_params(self, context: Any) -> None:
        params = context["params"]
        self.poke_interval = float(params[POKE_PARAM])
        self.timeout = float(params[self.timeout_param])

    def execute(self, context: Any) -> Any:
        self._apply_params(context)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        self._apply_params(context)
        return super().execute_complete(context, event)


class ParamsFreshnessSensor(_TimingFromParams, DataFreshnessSensor):
    """DataFreshnessSensor timed by the Params ``sensor_poke_seconds`` and ``freshness_timeout_seconds``."""

    timeout_param = "freshness_timeout_seconds"


class ParamsGroundTruthSensor(_TimingFromParams, GroundTruthSensor):
    """GroundTruthSensor timed by the Params ``sensor_poke_seconds`` and ``label_timeout_seconds``."""

    timeout_param = "label_timeout_seconds"

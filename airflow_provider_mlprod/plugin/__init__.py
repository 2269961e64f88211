"""The provider's Airflow plugin: report serving and the model-health view inside the API server.

Declared under ``plugins`` in ``get_provider_info``; Airflow mounts :data:`MlprodPlugin.fastapi_apps` in
the API server under ``/mlprod`` and shows its external views in the navigation and on DAG and task
pages. Every route sits behind Airflow's own authentication and authorisation (the auth manager).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mlprod.operators.reports import PLUGIN_PREFIX
from airflow_provider_mlprod.plugin.app import create_app

_HEALTH = PLUGIN_PREFIX.lstrip("/") + "/health"


class MlprodPlugin(AirflowPlugin):
    """Reports and model health for airflow-provider-mlprod."""

    name = "mlprod"
    fastapi_apps = [{"app": create_app(), "url_prefix": PLUGIN_PREFIX, "name": "mlprod"}]
    external_views = [
        {
            "name": "Model health",
            "href": f"{_HEALTH}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "mlprod-health",
        },
        {
            "name": "Model health",
            "href": f"{_HEALTH}/dags/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "mlprod-health-dag",
        },
        {
            "name": "Model health",
            "href": f"{_HEALTH}/dags/{{DAG_ID}}?task_id={{TASK_ID}}",
            "destination": "task",
            "url_route": "mlprod-health-task",
        },
    ]

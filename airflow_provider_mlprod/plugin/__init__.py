"""The provider's Airflow plugin: report serving and the model-health view inside the API server.

Declared under ``plugins`` in ``get_provider_info`` (and as an ``airflow.plugins`` entry point); Airflow
mounts :data:`MlprodPlugin.fastapi_apps` in the API server under ``/mlprod`` and shows its external views
in the navigation and on DAG and task pages. Every route sits behind Airflow's own authentication and
authorisation (the auth manager).

Every Airflow process that loads plugins (scheduler, DAG processor, workers) imports this module, so it
stays light: the FastAPI app, with the API server's security dependencies, is built on its first request.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mlprod.operators.reports import PLUGIN_PREFIX

_HEALTH = PLUGIN_PREFIX.lstrip("/") + "/health"


class LazyApp:
    """An ASGI app that builds ``airflow_provider_mlprod.plugin.app.create_app()`` on its first call."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_provider_mlprod.plugin.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class MlprodPlugin(AirflowPlugin):
    """Reports and model health for airflow-provider-mlprod."""

    name = "mlprod"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": PLUGIN_PREFIX, "name": "mlprod"}]
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

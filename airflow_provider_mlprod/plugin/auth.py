"""Airflow's own authentication and authorisation for the plugin's routes.

The routes reuse the API server's dependencies: the user comes from the ``Authorization: Bearer`` header
or the UI's session cookie (401 without one, 403 for an invalid token), and the auth manager decides
whether that user may read the DAG in the path (403 otherwise).
"""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends

can_read_task_instances_of_dag = Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))
"""The user may read the task instances (and so the reports) of the DAG named ``dag_id`` in the path."""

can_read_dags = Depends(requires_access_dag("GET"))
"""The user may read DAGs (the model-health view summarises what DAG runs recorded)."""

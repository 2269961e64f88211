"""Airflow's own authentication and authorisation for the plugin's routes.

The routes reuse the API server's dependencies: the user comes from the ``Authorization: Bearer`` header
or the UI's session cookie (401 without one, 403 for an invalid token), and the auth manager decides
whether that user may read the DAG in the path (403 otherwise). Imported only when the app is built in
the API server (the security module costs ~0.8 s to import, which no other process should pay).
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def can_read_task_instances_of_dag() -> Any:
    """``Depends``: the user may read the task instances (and so the reports) of the DAG ``dag_id``."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends

    return Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))


@cache
def can_read_dags() -> Any:
    """``Depends``: the user may read DAGs (the model-health view summarises what DAG runs recorded)."""
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends

    return Depends(requires_access_dag("GET"))


@cache
def current_user() -> Any:
    """``Depends``: the authenticated user (401 without credentials, 403 for an invalid token)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends

    return Depends(get_user)


def readable_dag_ids(user: Any, dag_ids: set[str]) -> set[str]:
    """Which of ``dag_ids`` the auth manager lets ``user`` read (the model-health view shows no other)."""
    from airflow.api_fastapi.app import get_auth_manager

    if not dag_ids:
        return set()
    return set(get_auth_manager().filter_authorized_dag_ids(dag_ids=set(dag_ids), user=user, method="GET"))

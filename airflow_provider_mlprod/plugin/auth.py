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
    """Which of ``dag_ids`` the auth manager lets ``user`` read (the model-health view shows no other).

    With ``[core] multi_team``, asked per team as the API server asks for a DAG's own pages: a DAG of a
    team's bundle is decided with that team's name, any other DAG (also one no longer in Airflow)
    without a team.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.configuration import conf

    if not dag_ids:
        return set()
    teams: dict[str, str | None] = {}
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        teams = DagModel.get_dag_id_to_team_name_mapping(sorted(dag_ids))
    by_team: dict[str | None, set[str]] = {}
    for dag_id in dag_ids:
        by_team.setdefault(teams.get(dag_id), set()).add(dag_id)
    manager, readable = get_auth_manager(), set()
    for team_name, team_dag_ids in by_team.items():
        readable |= set(
            manager.filter_authorized_dag_ids(
                dag_ids=team_dag_ids, user=user, method="GET", team_name=team_name
            )
        )
    return readable

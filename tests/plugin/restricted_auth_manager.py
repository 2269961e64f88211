"""A test auth manager: Airflow's SimpleAuthManager that can deny chosen users any access to chosen DAGs.

SimpleAuthManager grants by role only, so it cannot show that a user without access to one DAG gets
none of its reports. The environment variable ``MLPROD_TEST_DENIED_DAGS`` holds a JSON object
``{"user name": ["dag id", ...]}``; those users are refused every action on those DAGs, everything else
is decided by SimpleAuthManager. Loaded by the API server of tests/test_airflow_runtime.py through
``[core] auth_manager`` (this folder is put on its PYTHONPATH).
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

DENIED_DAGS_VARIABLE = "MLPROD_TEST_DENIED_DAGS"


class RestrictedDagAuthManager(SimpleAuthManager):
    """SimpleAuthManager, except that the users in ``MLPROD_TEST_DENIED_DAGS`` are denied those DAGs."""

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None):
        denied = json.loads(os.environ.get(DENIED_DAGS_VARIABLE, "{}")).get(user.get_name(), [])
        if details is not None and details.id in denied:
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )

    def filter_authorized_dag_ids(self, *, dag_ids: set[str], user: Any, method: Any = "GET", **kwargs: Any):
        denied = set(json.loads(os.environ.get(DENIED_DAGS_VARIABLE, "{}")).get(user.get_name(), []))
        allowed = super().filter_authorized_dag_ids(dag_ids=dag_ids, user=user, method=method, **kwargs)
        return set(allowed) - denied

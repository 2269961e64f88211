"""What an operator needs from its Airflow context: the identity of the running task instance."""

from __future__ import annotations

from typing import Any

from airflow_provider_mlprod.store.identity import RunIdentity


def run_identity(context: Any) -> RunIdentity:
    """The task instance's identity (dag_id, run_id, task_id, map_index); a retry keeps it."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return RunIdentity(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=-1 if map_index is None else int(map_index),
    )

"""Where the running task runs: its executor, and whether every task of the deployment shares its disk.

A local file (the embedded SQLite store, a SQLite store connection, the default report folder under
``$AIRFLOW_HOME``) is only safe where every task runs on one machine: the LocalExecutor or
``dag.test()``. The executor is the running task's ``executor`` argument, else ``[core] executor``;
but a task started by a Celery worker runs on the CeleryExecutor whatever the worker's own
``[core] executor`` says (a worker whose setting is missing or misspelt reads the default,
LocalExecutor, and would otherwise keep files of its own).
"""

from __future__ import annotations

import sys

CELERY_EXECUTOR = "CeleryExecutor"


def in_celery_worker() -> bool:
    """Whether this process is a Celery worker or a task process it started (a fork inherits its modules)."""
    return "celery.apps.worker" in sys.modules


def running_executor() -> tuple[str, bool]:
    """The executor of the running task, and whether it runs in-process under ``dag.test()``.

    A Celery worker's task is on the CeleryExecutor; otherwise the running task's ``executor``
    argument, else ``[core] executor`` (its first entry).
    """
    if in_celery_worker():
        return CELERY_EXECUTOR, False
    task_executor = None
    in_dag_test = False
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except Exception:  # not inside a running task
        context = None
    if context is not None:
        task = getattr(context.get("ti"), "task", None)
        task_executor = getattr(task, "executor", None)
        try:
            from airflow.sdk.execution_time import task_runner

            comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
            in_dag_test = type(comms).__name__ == "InProcessSupervisorComms"
        except ImportError:
            in_dag_test = False
    if not task_executor:
        from airflow.sdk import conf

        task_executor = (conf.get("core", "executor", fallback="LocalExecutor") or "").split(",")[0]
    return task_executor.strip() or "LocalExecutor", in_dag_test


def is_local_executor(executor: str) -> bool:
    """Whether ``executor`` (a name or an import path, optionally ``alias:path``) is the LocalExecutor."""
    name = executor.split(":")[-1].strip().rsplit(".", 1)[-1]
    return name == "LocalExecutor"


def single_machine(executor: str | None = None) -> tuple[bool, str]:
    """Whether every task shares this machine's disk, and the executor that decided it.

    :param executor: the executor to judge (default: the running task's, see :func:`running_executor`).
    """
    in_dag_test = False
    if executor is None:
        executor, in_dag_test = running_executor()
    elif in_celery_worker():
        executor = CELERY_EXECUTOR
    return in_dag_test or is_local_executor(executor), executor

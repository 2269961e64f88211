"""RunIdentity: which task run wrote a record. The try number is deliberately not part of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_mlprod.exceptions import ConfigurationError


@dataclass(frozen=True)
class RunIdentity:
    """The identity of one task instance: a retry of it is the same identity.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the task.
    :param map_index: the mapped task index, ``-1`` for unmapped tasks.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    def __post_init__(self) -> None:
        for name in ("dag_id", "run_id", "task_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"run identity: {name} must be a non-empty string, got {value!r}")
        if not isinstance(self.map_index, int) or isinstance(self.map_index, bool):
            raise ConfigurationError(f"run identity: map_index must be an integer, got {self.map_index!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
        }

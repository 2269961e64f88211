"""How an operator ends: fail, skip downstream or continue; and engine errors as Airflow failures.

Errors a retry cannot fix (a bad spec, bad data, a failed gate, a lost compare-and-swap, a missing
connection) become ``AirflowFailException`` so Airflow does not retry them; anything else (a database
or network hiccup) propagates and stays retryable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from airflow_provider_mlprod.exceptions import (
    ConcurrentUpdateError,
    ConfigurationError,
    ConnectionConfigError,
    InputDataError,
    SpecError,
    StoreRefusal,
)

OnFailure = Literal["fail", "skip", "continue"]
ON_FAILURE_CHOICES: tuple[str, ...] = ("fail", "skip", "continue")

#: Engine errors that no retry can fix.
FINAL_ERRORS = (
    SpecError,
    InputDataError,
    ConfigurationError,
    ConnectionConfigError,
    ConcurrentUpdateError,
    StoreRefusal,
)


def check_on_failure(value: str, task_id: str) -> str:
    """Validate an ``on_failure`` argument at DAG parse time."""
    if value not in ON_FAILURE_CHOICES:
        raise ValueError(
            f"task {task_id!r}: on_failure must be one of {', '.join(ON_FAILURE_CHOICES)}, got {value!r}"
        )
    return value


def settle(on_failure: str, passed: bool, message: str, log: logging.Logger) -> None:
    """End the task per ``on_failure`` when a check did not pass; do nothing when it passed.

    - ``fail``: the task fails without retry;
    - ``skip``: the task is skipped, so downstream tasks with the default trigger rule skip too;
    - ``continue``: the task succeeds and the problem is logged as a warning.
    """
    if passed:
        return
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    if on_failure == "fail":
        raise AirflowFailException(message)
    if on_failure == "skip":
        log.warning("%s; skipping downstream tasks (on_failure='skip')", message)
        raise AirflowSkipException(message)
    log.warning("%s; continuing (on_failure='continue')", message)


@contextmanager
def final_errors_fail_the_task() -> Iterator[None]:
    """Turn engine errors that a retry cannot fix into ``AirflowFailException`` with the same message."""
    try:
        yield
    except FINAL_ERRORS as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc

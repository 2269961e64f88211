"""How an operator ends: fail, skip downstream or continue; and engine errors as Airflow failures.

Errors a retry cannot fix (a bad spec, bad data, a failed gate, a lost compare-and-swap, a missing
connection, a value the store refuses such as a NaN metric, a number too large for a float, a directory
where a file is expected) become ``AirflowFailException`` so Airflow does not retry them; anything else
(a database or network hiccup) propagates and stays retryable.
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
    MlprodError,
    SpecError,
    StoreError,
)

OnFailure = Literal["fail", "skip", "continue"]
ON_FAILURE_CHOICES: tuple[str, ...] = ("fail", "skip", "continue")

#: Errors that no retry can fix. ``StoreError`` covers its subclasses ``StoreRefusal`` and
#: ``ConcurrentUpdateError``: the store raises it for values it refuses (NaN, unknown kinds, a schema
#: newer than this release), while an unreachable store surfaces as a database error and stays retryable.
FINAL_ERRORS: tuple[type[BaseException], ...] = (
    SpecError,
    InputDataError,
    ConfigurationError,
    ConnectionConfigError,
    StoreError,
    ConcurrentUpdateError,
    OverflowError,
    IsADirectoryError,
    NotADirectoryError,
)


def check_on_failure(value: str, task_id: str, argument: str = "on_failure") -> str:
    """Validate an ``on_failure`` argument (named ``argument`` in the operator) at DAG parse time."""
    if value not in ON_FAILURE_CHOICES:
        raise ValueError(
            f"task {task_id!r}: {argument} must be one of {', '.join(ON_FAILURE_CHOICES)}, got {value!r}"
        )
    return value


def settle(
    on_failure: str, passed: bool, message: str, log: logging.Logger, argument: str = "on_failure"
) -> None:
    """End the task per ``on_failure`` (named ``argument`` in the operator, for the log) when a check did
    not pass; do nothing when it passed.

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
        log.warning("%s; skipping downstream tasks (%s='skip')", message, argument)
        raise AirflowSkipException(message)
    log.warning("%s; continuing (%s='continue')", message, argument)


@contextmanager
def final_errors_fail_the_task() -> Iterator[None]:
    """Turn engine errors that a retry cannot fix into ``AirflowFailException`` with the same message."""
    try:
        yield
    except FINAL_ERRORS as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(final_message(exc)) from exc


def final_message(exc: BaseException) -> str:
    """The message of a final error: the provider's own text, or the built-in error's kind and text."""
    if isinstance(exc, MlprodError):
        return str(exc)
    if isinstance(exc, OverflowError):
        return f"a number is too large for a float ({exc}); a retry cannot change it"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename!r}; a retry cannot change it"
    return f"{type(exc).__name__}: {exc}; a retry cannot change it"

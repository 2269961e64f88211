"""The errors the provider raises. Every message names the input and what is wrong with it.

These classes carry no Airflow dependency. Operators translate them: an error that a retry cannot
fix (a bad spec, bad data, a failed gate) becomes ``AirflowFailException``; an error that may pass
on retry (a database or network hiccup) stays retryable.
"""

from __future__ import annotations


class MlprodError(Exception):
    """Base class of every error raised by airflow-provider-mlprod."""


class ConnectionConfigError(MlprodError):
    """An Airflow connection is missing, of the wrong type, or lacks a required field."""

    def __init__(self, conn_id: str | None, problem: str) -> None:
        self.conn_id = conn_id
        self.problem = problem
        where = f"connection {conn_id!r}" if conn_id else "connection"
        super().__init__(f"{where}: {problem}")


class ConfigurationError(MlprodError):
    """A provider setting (``[mlprod]`` section or an operator argument) is invalid."""


class SpecError(MlprodError):
    """A declarative spec (expectation suite, threshold spec, drift config) is invalid."""


class InputDataError(MlprodError):
    """Input data cannot be used: missing, empty, unreadable, or not shaped as expected."""


class StoreError(MlprodError):
    """The metrics store cannot be used (unreachable, incompatible schema version, bad record)."""


class StoreRefusal(StoreError):
    """The store refuses a request that no retry can change (unregistered version, failed gate, ...)."""


class ConcurrentUpdateError(StoreError):
    """A compare-and-swap in the store lost: someone else changed the record first."""


class DeliveryError(MlprodError):
    """An alert could not be delivered on any of its channels."""

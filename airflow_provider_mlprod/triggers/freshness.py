"""Triggers of the deferrable freshness and ground-truth sensors.

Each trigger polls one probe of :mod:`airflow_provider_mlprod.monitoring` in the triggerer: the
synchronous probe runs in a thread (``asyncio.to_thread``) so the event loop is never blocked, and the
connection is resolved, and released, there too. Between polls the trigger sleeps ``poll_interval``
seconds; the worker slot stays free the whole time.

Every trigger ends with exactly one event:

- ``{"status": "success", "observation": {...}, "message": ...}`` when the condition holds;
- ``{"status": "timeout", "observation": {...}, "message": ...}`` at ``deadline`` (ISO 8601 UTC), the
  message saying what the last completed poll saw (``observation`` is None when none completed). The
  deadline bounds a poll in progress too: a probe still running at the deadline (say, a query stuck
  behind a lock) is no longer waited for, and the event reports the previous poll;
- ``{"status": "error", "message": ...}`` on an input no retry can fix (a hostile or missing table or
  column, a failing query, a bad timestamp, a missing connection). Database or network errors that a
  retry can fix (as ``sql.errors`` classifies them) propagate, so Airflow retries the task per its
  ``retries``.

``serialize()`` returns only JSON-safe keyword arguments (ids, names, ISO timestamps, numbers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mlprod.exceptions import MlprodError

UTC = dt.timezone.utc


def is_final(exc: MlprodError) -> bool:
    """Whether a retry cannot fix ``exc`` (a transient database error can be fixed by one)."""
    from airflow_provider_mlprod.sql.errors import DatabaseUnavailableError

    return not isinstance(exc, DatabaseUnavailableError)


class ProbePollingTrigger(BaseTrigger):
    """Poll a monitoring probe until it is satisfied, an input error occurs or the deadline passes.

    Subclasses say how to build the probe (:meth:`build_probe`), what it needs open while polling
    (:meth:`open_resource`, :meth:`close_resource`) and how to run it once (:meth:`observe`).

    :param poll_interval: seconds between polls.
    :param deadline: ISO 8601 time after which the trigger reports a timeout (None: wait forever).
    """

    def __init__(self, *, poll_interval: float = 60.0, deadline: str | None = None) -> None:
        super().__init__()
        self.poll_interval = float(poll_interval)
        self.deadline = deadline

    def common_kwargs(self) -> dict[str, Any]:
        """The serialized keyword arguments shared by every probe trigger."""
        return {"poll_interval": self.poll_interval, "deadline": self.deadline}

    def classpath(self) -> str:
        """The import path of this trigger class."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def build_probe(self) -> Any:
        """The probe to poll; raises MlprodError on bad arguments."""
        raise NotImplementedError

    def open_resource(self) -> Any:
        """Open what the probe reads (an engine, a file system), in a worker thread."""
        raise NotImplementedError

    def close_resource(self, resource: Any) -> None:
        """Release what :meth:`open_resource` opened."""

    def observe(self, probe: Any, resource: Any) -> Any:
        """Run the probe once (in a worker thread); returns an observation with ``satisfied``/``message``."""
        return probe.run(resource)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until satisfied, timed out or failed; yield exactly one event."""
        from airflow_provider_mlprod.monitoring.freshness import parse_timestamp

        try:
            probe = self.build_probe()
            deadline = parse_timestamp(self.deadline, "deadline") if self.deadline is not None else None
        except MlprodError as exc:
            yield TriggerEvent({"status": "error", "message": str(exc)})
            return
        resource = None
        previous = None  # the last completed poll's observation
        try:
            while True:
                try:
                    if resource is None:
                        opened, resource = await _in_thread_until(deadline, self.open_resource)
                        if not opened:
                            yield self._timeout_event(deadline, previous, in_progress=True)  # type: ignore[arg-type]
                            return
                    done, observation = await _in_thread_until(deadline, self.observe, probe, resource)
                except MlprodError as exc:
                    if not is_final(exc):
                        raise  # the database could not answer this time: Airflow retries the task
                    yield TriggerEvent({"status": "error", "message": str(exc)})
                    return
                if not done:
                    yield self._timeout_event(deadline, previous, in_progress=True)  # type: ignore[arg-type]
                    return
                previous = observation
                if observation.satisfied:
                    yield TriggerEvent(
                        {
                            "status": "success",
                            "observation": observation.to_dict(),
                            "message": observation.message,
                        }
                    )
                    return
                self.log.info("%s", observation.message)
                now = dt.datetime.now(UTC)
                if deadline is not None and now >= deadline:
                    yield self._timeout_event(deadline, observation, in_progress=False)
                    return
                pause = self.poll_interval
                if deadline is not None:
                    pause = min(pause, (deadline - now).total_seconds())
                await asyncio.sleep(max(pause, 0.0))
        finally:
            if resource is not None:
                await asyncio.to_thread(self.close_resource, resource)

    @staticmethod
    def _timeout_event(deadline: dt.datetime, observation: Any, *, in_progress: bool) -> TriggerEvent:
        """The timeout event, saying what the last completed poll saw."""
        seen = observation.message if observation is not None else "nothing (no poll completed)"
        running = " (a poll was still running)" if in_progress else ""
        return TriggerEvent(
            {
                "status": "timeout",
                "observation": observation.to_dict() if observation is not None else None,
                "message": f"still waiting at the deadline {deadline.isoformat()}{running}; last saw: {seen}",
            }
        )


async def _in_thread_until(deadline: dt.datetime | None, function: Any, *args: Any) -> tuple[bool, Any]:
    """Run ``function(*args)`` in a worker thread, waiting at most until ``deadline``.

    Returns ``(True, result)``, or ``(False, None)`` when the deadline passes first: the thread cannot
    be stopped (a query stuck behind a lock goes on until the database answers), but the trigger no
    longer waits for it. Exceptions of ``function`` propagate.
    """
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        if deadline is None:
            return True, await work
        remaining = (deadline - dt.datetime.now(UTC)).total_seconds()
        try:
            return True, await asyncio.wait_for(asyncio.shield(work), max(remaining, 0.0))
        except asyncio.TimeoutError:
            if work.done():
                # it finished just as the deadline passed (its result counts), or it raised its own
                # TimeoutError, e.g. a socket timeout (re-raised by result())
                return True, work.result()
            return False, None
    finally:
        if not work.done():
            work.cancel()


class SqlProbeTrigger(ProbePollingTrigger):
    """A probe trigger reading a database through an Airflow SQL connection."""

    def __init__(self, *, conn_id: str, hook_params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.hook_params = dict(hook_params or {})

    def open_resource(self) -> Any:
        """A SQLAlchemy Engine on the connection, built by its hook with ``hook_params``, in the triggerer."""
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection

        return engine_for_connection(self.conn_id, self.hook_params or None)

    def close_resource(self, resource: Any) -> None:
        """Close the engine's pooled connections."""
        resource.dispose()


class DataFreshnessTrigger(SqlProbeTrigger):
    """Wait until a table, or a file location, holds data at or after ``newer_than`` and/or enough new data.

    Give ``conn_id`` with ``table`` (and optionally ``schema``) or ``query`` (with its bind
    ``parameters``) and ``timestamp_column``, or ``location`` (any ObjectStoragePath URI; ``conn_id`` is
    then unused).

    :param conn_id: an Airflow SQL connection.
    :param table: the table, optionally ``schema.table``.
    :param query: or a read-only SELECT whose rows are watched.
    :param parameters: the query's bind parameters (``:name`` in the SQL).
    :param timestamp_column: the column holding each row's time.
    :param schema: the table's schema.
    :param location: a file location URI instead of a table.
    :param newer_than: ISO 8601 bound (inclusive).
    :param min_new_rows: rows at or after the bound (or in all) to wait for.
    :param min_new_files: files at or after the bound (or in all) to wait for.
    :param older_than: ISO 8601 upper bound (exclusive): rows or files at or after it are ignored.
    """

    def __init__(
        self,
        *,
        conn_id: str | None = None,
        table: str | None = None,
        timestamp_column: str | None = None,
        schema: str | None = None,
        location: str | None = None,
        newer_than: str | None = None,
        min_new_rows: int | None = None,
        min_new_files: int | None = None,
        poll_interval: float = 60.0,
        deadline: str | None = None,
        older_than: str | None = None,
        hook_params: dict[str, Any] | None = None,
        query: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(  # type: ignore[arg-type]
            conn_id=conn_id, hook_params=hook_params, poll_interval=poll_interval, deadline=deadline
        )
        self.table = table
        self.query = query
        self.parameters = dict(parameters or {})
        self.timestamp_column = timestamp_column
        self.schema = schema
        self.location = location
        self.newer_than = newer_than
        self.min_new_rows = min_new_rows
        self.min_new_files = min_new_files
        self.older_than = older_than

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and JSON-safe keyword arguments that rebuild this trigger."""
        return self.classpath(), {
            "conn_id": self.conn_id,
            "table": self.table,
            "timestamp_column": self.timestamp_column,
            "schema": self.schema,
            "location": self.location,
            "newer_than": self.newer_than,
            "min_new_rows": self.min_new_rows,
            "min_new_files": self.min_new_files,
            "older_than": self.older_than,
            "hook_params": self.hook_params,
            "query": self.query,
            "parameters": self.parameters,
            **self.common_kwargs(),
        }

    def build_probe(self) -> Any:
        """A table, query or file probe from the arguments; raises ConfigurationError on bad ones."""
        from airflow_provider_mlprod.exceptions import ConfigurationError
        from airflow_provider_mlprod.monitoring.freshness import FileFreshnessProbe, TableFreshnessProbe
        from airflow_provider_mlprod.sql.source import SqlSource

        if self.location is not None:
            if self.table is not None or self.query is not None:
                raise ConfigurationError("give a table or query, or a location to probe, not both")
            return FileFreshnessProbe(
                self.location, self.newer_than, self.min_new_files, older_than=self.older_than
            )
        if not self.conn_id:
            raise ConfigurationError(f"table {self.table!r}: no SQL connection id given")
        source = SqlSource.from_arguments(
            conn_id=self.conn_id,
            table=self.table,
            schema=self.schema,
            query=self.query,
            parameters=self.parameters or None,
            hook_params=self.hook_params or None,
        )
        return TableFreshnessProbe(
            timestamp_column=self.timestamp_column,
            newer_than=self.newer_than,
            min_new_rows=self.min_new_rows,
            older_than=self.older_than,
            source=source,
        )

    def open_resource(self) -> Any:
        """An Engine for a table; an ObjectStoragePath for a location."""
        if self.location is not None:
            from airflow.sdk import ObjectStoragePath

            return ObjectStoragePath(self.location)
        return super().open_resource()

    def close_resource(self, resource: Any) -> None:
        """Dispose of the engine (nothing to close for a location)."""
        if self.location is None:
            super().close_resource(resource)

    def observe(self, probe: Any, resource: Any) -> Any:
        """Run the probe once: on the engine, or on the location's file system and path."""
        if self.location is not None:
            return probe.run(resource.fs, resource.path)
        return probe.run(resource)


class LabelCoverageTrigger(SqlProbeTrigger):
    """Wait until the share of a window's predictions that have a label reaches ``min_label_share``.

    :param conn_id: an Airflow SQL connection holding both tables.
    :param predictions_table: the predictions, optionally ``schema.table``.
    :param labels_table: the labels, optionally ``schema.table``.
    :param key_column: the key joining a prediction to its label.
    :param timestamp_column: the predictions' timestamp column.
    :param window_start: ISO 8601 start of the window (inclusive).
    :param window_end: ISO 8601 end of the window (exclusive).
    :param min_label_share: the share to reach, in (0, 1].
    :param schema: schema of tables given without one.
    :param labels_key_column: the key's name in the labels table (default ``key_column``).
    :param label_column: when given, a label counts only if this column is not null.
    :param predictions_query: or a read-only SELECT returning the predictions (instead of the table).
    :param predictions_parameters: its bind parameters (``:name`` in the SQL).
    """

    def __init__(
        self,
        *,
        conn_id: str,
        predictions_table: str | None,
        labels_table: str,
        key_column: str,
        timestamp_column: str,
        window_start: str,
        window_end: str,
        min_label_share: float,
        schema: str | None = None,
        labels_key_column: str | None = None,
        label_column: str | None = None,
        poll_interval: float = 60.0,
        deadline: str | None = None,
        hook_params: dict[str, Any] | None = None,
        predictions_query: str | None = None,
        predictions_parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            conn_id=conn_id, hook_params=hook_params, poll_interval=poll_interval, deadline=deadline
        )
        self.predictions_table = predictions_table
        self.predictions_query = predictions_query
        self.predictions_parameters = dict(predictions_parameters or {})
        self.labels_table = labels_table
        self.key_column = key_column
        self.timestamp_column = timestamp_column
        self.window_start = window_start
        self.window_end = window_end
        self.min_label_share = min_label_share
        self.schema = schema
        self.labels_key_column = labels_key_column
        self.label_column = label_column

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and JSON-safe keyword arguments that rebuild this trigger."""
        return self.classpath(), {
            "conn_id": self.conn_id,
            "predictions_table": self.predictions_table,
            "labels_table": self.labels_table,
            "key_column": self.key_column,
            "timestamp_column": self.timestamp_column,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "min_label_share": self.min_label_share,
            "schema": self.schema,
            "labels_key_column": self.labels_key_column,
            "label_column": self.label_column,
            "hook_params": self.hook_params,
            "predictions_query": self.predictions_query,
            "predictions_parameters": self.predictions_parameters,
            **self.common_kwargs(),
        }

    def build_probe(self) -> Any:
        """The label-coverage probe; raises ConfigurationError on bad arguments."""
        from airflow_provider_mlprod.monitoring.labels import LabelCoverageProbe
        from airflow_provider_mlprod.sql.source import SqlSource

        predictions = None
        if self.predictions_query is not None or self.predictions_parameters:
            predictions = SqlSource.from_arguments(
                conn_id=self.conn_id,
                table=self.predictions_table,
                query=self.predictions_query,
                parameters=self.predictions_parameters or None,
                hook_params=self.hook_params or None,
                role="predictions_query",
            )
        return LabelCoverageProbe(
            predictions_table=self.predictions_table if predictions is None else None,
            predictions_source=predictions,
            labels_table=self.labels_table,
            key_column=self.key_column,
            timestamp_column=self.timestamp_column,
            window_start=self.window_start,
            window_end=self.window_end,
            min_label_share=self.min_label_share,
            schema=self.schema,
            labels_key_column=self.labels_key_column,
            label_column=self.label_column,
        )

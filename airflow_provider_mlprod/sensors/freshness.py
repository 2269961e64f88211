"""DataFreshnessSensor: wait until a table or a file location holds data at or after a bound, or enough of it.

The probe lives in :mod:`airflow_provider_mlprod.monitoring.freshness` (no Airflow there). Poke mode
and deferrable mode share one code path: :meth:`ProbeSensor.poke` runs the same trigger's probe
synchronously that the triggerer runs asynchronously in deferrable mode.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.operators.outcome import final_errors_fail_the_task
from airflow_provider_mlprod.operators.sql_arguments import (
    check_sql_source_arguments,
    is_templated,
    mapping_argument,
)
from airflow_provider_mlprod.sql.source import ArgumentNames

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.sql.source import SqlSource
    from airflow_provider_mlprod.triggers.freshness import ProbePollingTrigger

FRESHNESS_SQL = ArgumentNames()
"""The freshness sensor's names of its SQL source's arguments (``sql_conn_id``, ``table``, ``query``...)."""

DEFERRAL_GRACE_SECONDS = 60.0
"""How long past its own deadline a trigger may take to report before Airflow times the task out."""


def check_at_parse_time(task_id: str, check: Any, *args: Any) -> None:
    """Run an engine argument check now; its ConfigurationError becomes a ValueError naming the task."""
    try:
        check(*args)
    except ConfigurationError as exc:
        raise ValueError(f"task {task_id!r}: {exc}") from None


def timestamp_text(value: object, role: str) -> str | None:
    """A rendered bound (ISO text or datetime) as ISO 8601 UTC text, for the trigger's kwargs."""
    from airflow_provider_mlprod.monitoring.freshness import parse_timestamp

    return None if value is None else parse_timestamp(value, role).isoformat()


class ProbeSensor(BaseSensorOperator):
    """A sensor polling a monitoring probe, in poke/reschedule mode or deferred to the triggerer.

    Subclasses give :meth:`build_trigger`; everything else (poke, deferral, timeout messages) is here.

    - Poke mode: each ``poke()`` runs the probe once and returns a ``PokeReturnValue`` whose XCom value
      is the observation (``to_dict()``); on timeout the task fails with ``AirflowSensorTimeout`` whose
      message says what the last poke saw.
    - Deferrable mode: ``execute()`` checks the rendered arguments, then defers to the trigger with a
      deadline of ``timeout`` seconds from now; ``execute_complete`` returns the observation, or raises
      ``AirflowSensorTimeout`` (timeout) or ``AirflowFailException`` (bad input) with the trigger's message.

    :param deferrable: free the worker slot while waiting (default ``[operators] default_deferrable``).
    """

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.last_observation: dict[str, Any] | None = None

    def build_trigger(self, deadline: str | None) -> ProbePollingTrigger:
        """The trigger for the rendered arguments (no I/O), with the given deadline."""
        raise NotImplementedError

    def poke(self, context: Context) -> PokeReturnValue:
        """Run the probe once; done when its condition holds. Final input errors fail without retry."""
        trigger = self.build_trigger(deadline=None)
        with final_errors_fail_the_task():
            probe = trigger.build_probe()
            resource = trigger.open_resource()
            try:
                observation = trigger.observe(probe, resource)
            finally:
                trigger.close_resource(resource)
        self.last_observation = observation.to_dict()
        self.log.info("%s", observation.message)
        return PokeReturnValue(is_done=observation.satisfied, xcom_value=observation.to_dict())

    def execute(self, context: Context) -> Any:
        """Defer to the trigger (deferrable) or poke until done; a timeout says what was last seen."""
        from airflow.sdk.exceptions import AirflowSensorTimeout

        if self.deferrable:
            deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.timeout)
            trigger = self.build_trigger(deadline=deadline.isoformat())
            with final_errors_fail_the_task():
                trigger.build_probe()  # names and bounds are checked here, before any SQL
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=dt.timedelta(
                    seconds=self.timeout + max(DEFERRAL_GRACE_SECONDS, 2 * self.poke_interval)
                ),
            )
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            seen = (
                self.last_observation["message"] if self.last_observation else "nothing (no poke completed)"
            )
            raise AirflowSensorTimeout(
                f"task {self.task_id!r} timed out after {self.timeout:g} s; last saw: {seen}"
            ) from exc

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: return the observation, or fail with the trigger's message."""
        from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

        if not isinstance(event, dict) or "status" not in event:
            raise AirflowFailException(f"task {self.task_id!r}: the trigger sent no usable event ({event!r})")
        status, message = event["status"], event.get("message", "")
        if status == "success":
            self.log.info("%s", message)
            return event.get("observation")
        if status == "timeout":
            raise AirflowSensorTimeout(f"task {self.task_id!r} timed out after {self.timeout:g} s: {message}")
        if status == "error":
            raise AirflowFailException(f"task {self.task_id!r}: {message}")
        raise AirflowFailException(f"task {self.task_id!r}: the trigger sent an unknown status {status!r}")


class DataFreshnessSensor(ProbeSensor):
    """Wait until a SQL table or a file location holds data at or after ``newer_than`` and/or enough new data.

    Source, exactly one of:

    - ``table`` (optionally ``schema.table``, or with ``schema``) or ``query`` (one read-only SELECT with
      its bind ``parameters``) on the SQL connection ``sql_conn_id`` (any Airflow SQL connection;
      ``hook_params`` go to its hook), or a ready ``source``
      (:class:`~airflow_provider_mlprod.sql.source.SqlSource`), with its ``timestamp_column``: the probe
      reads ``max(timestamp_column)`` and ``count(*)`` (counted from ``newer_than`` when given) in the
      database, in one read-only snapshot;
    - ``location``: a folder or file at any ObjectStoragePath URI (``file://``, ``s3://``...): the probe
      reads the modification times of the files below it.

    Condition, at least one of (all given must hold):

    - ``newer_than``: the newest timestamp is at or after this bound (inclusive), e.g.
      ``"{{ data_interval_end }}"``; naive times are UTC;
    - ``min_new_rows`` (table) / ``min_new_files`` (location): at least this many rows/files at or after
      ``newer_than``, or in all when there is no bound.

    Optional upper bound ``older_than`` (exclusive), e.g. ``"{{ data_interval_end }}"``: rows/files at
    or after it are ignored (by the latest timestamp and by every count), so the wait is for the
    window ``[newer_than, older_than)`` only, and a cleared or backfilled old run is not satisfied by
    later windows' data.

    The XCom value is the last observation: latest timestamp, counts, bound and a one-line message.
    Names are checked to be plain identifiers before any SQL runs (when the DAG is parsed, or after
    rendering when templated); a missing table or column fails the task without retry.

    :param sql_conn_id: the SQL connection of ``table`` or ``query`` (templated).
    :param table: the table to watch (templated).
    :param query: or a read-only SELECT whose rows are watched (templated, or a ``.sql`` file).
    :param parameters: the query's bind parameters, written ``:name`` in the SQL (templated: never put
        values into the SQL with Jinja).
    :param source: or a ready ``SqlSource`` instead of ``sql_conn_id``, ``table``/``query``,
        ``parameters`` and ``hook_params`` (not templated).
    :param timestamp_column: the column holding each row's time (templated).
    :param schema: the table's schema (templated).
    :param location: a file location URI instead of a table (templated).
    :param newer_than: the bound, ISO 8601 text or a datetime (templated).
    :param older_than: the exclusive upper bound, ISO 8601 text or a datetime (templated).
    :param min_new_rows: rows to wait for.
    :param min_new_files: files to wait for.
    :param hook_params: arguments for the SQL connection's Airflow hook when the engine is built.
    :param deferrable: free the worker slot while waiting (default ``[operators] default_deferrable``).

    .. seealso:: README section "Freshness and ground-truth sensors".
    """

    template_fields: Sequence[str] = (
        "sql_conn_id",
        "table",
        "timestamp_column",
        "schema",
        "query",
        "parameters",
        "location",
        "newer_than",
        "older_than",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"query": "sql", "parameters": "json"}
    ui_color = "#d9ecf2"

    def __init__(
        self,
        *,
        sql_conn_id: str | None = None,
        table: str | None = None,
        timestamp_column: str | None = None,
        schema: str | None = None,
        location: str | None = None,
        newer_than: str | dt.datetime | None = None,
        min_new_rows: int | None = None,
        min_new_files: int | None = None,
        older_than: str | dt.datetime | None = None,
        hook_params: dict[str, Any] | None = None,
        query: str | None = None,
        parameters: dict[str, Any] | None = None,
        source: SqlSource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.query = query
        self.parameters = mapping_argument(parameters)
        self.source = source
        self.timestamp_column = timestamp_column
        self.schema = schema
        self.location = location
        self.newer_than = newer_than
        self.min_new_rows = min_new_rows
        self.min_new_files = min_new_files
        self.older_than = older_than
        self.hook_params = mapping_argument(hook_params)
        self._check_arguments()

    def _check_arguments(self) -> None:
        from airflow_provider_mlprod.monitoring.freshness import check_positive_count, parse_timestamp
        from airflow_provider_mlprod.sql.identifiers import check_identifier

        task = f"task {self.task_id!r}"
        from_sql = check_sql_source_arguments(
            self.task_id,
            FRESHNESS_SQL,
            source=self.source,
            source_argument="source",
            conn_id=self.sql_conn_id,
            table=self.table,
            schema=self.schema,
            query=self.query,
            parameters=self.parameters,
            hook_params=self.hook_params,
            required=False,
        )
        if from_sql == (self.location is not None):
            raise ValueError(
                f"{task}: give exactly one of a SQL source (sql_conn_id with table or query, or source, "
                "and timestamp_column) and location"
            )
        if from_sql:
            if not self.timestamp_column:
                raise ValueError(f"{task}: a table or query needs timestamp_column")
            if self.min_new_files is not None:
                raise ValueError(
                    f"{task}: min_new_files applies to a location; use min_new_rows for a table or query"
                )
            if not is_templated(self.timestamp_column):
                check_at_parse_time(self.task_id, check_identifier, self.timestamp_column, "timestamp column")
        else:
            if self.timestamp_column:
                raise ValueError(f"{task}: timestamp_column applies to a table or query, not a location")
            if self.min_new_rows is not None:
                raise ValueError(f"{task}: min_new_rows applies to a table; use min_new_files for a location")
        if self.newer_than is None and self.min_new_rows is None and self.min_new_files is None:
            raise ValueError(
                f"{task}: give newer_than and/or {'min_new_rows' if from_sql else 'min_new_files'}, "
                "else there is nothing to wait for"
            )
        check_at_parse_time(self.task_id, check_positive_count, self.min_new_rows, "min_new_rows")
        check_at_parse_time(self.task_id, check_positive_count, self.min_new_files, "min_new_files")
        for role in ("newer_than", "older_than"):
            value = getattr(self, role)
            if value is not None and not is_templated(value):
                check_at_parse_time(self.task_id, parse_timestamp, value, role)
        bounds = (self.newer_than, self.older_than)
        if None not in bounds and not any(is_templated(value) for value in bounds):
            newer_than, older_than = (parse_timestamp(value, "bound") for value in bounds)
            if not newer_than < older_than:
                raise ValueError(
                    f"{task}: newer_than {newer_than.isoformat()} must be before older_than "
                    f"{older_than.isoformat()} (older_than is exclusive)"
                )

    def build_trigger(self, deadline: str | None) -> ProbePollingTrigger:
        """The freshness trigger for the rendered arguments."""
        from airflow_provider_mlprod.triggers.freshness import DataFreshnessTrigger

        with final_errors_fail_the_task():
            newer_than = timestamp_text(self.newer_than, "newer_than")
            older_than = timestamp_text(self.older_than, "older_than")
        source = self.source
        return DataFreshnessTrigger(
            conn_id=source.conn_id if source else self.sql_conn_id,
            table=source.table if source else self.table,
            schema=source.schema if source else (self.schema or None),
            query=source.query if source else self.query,
            parameters=dict(source.parameters if source else self.parameters) or None,
            timestamp_column=self.timestamp_column,
            location=self.location,
            newer_than=newer_than,
            min_new_rows=self.min_new_rows,
            min_new_files=self.min_new_files,
            poll_interval=self.poke_interval,
            deadline=deadline,
            older_than=older_than,
            hook_params=dict(source.hook_params if source else self.hook_params) or None,
        )

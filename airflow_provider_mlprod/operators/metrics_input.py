"""Where an operator reads a model's metrics from: an argument, XCom, a JSON file or SQL.

At most one source is given; it is declared on the operator and read in ``execute()``. Its fields
are templated through the operator (``MetricsSource`` has its own ``template_fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.metric_sources import (
    metrics_from_json_text,
    metrics_from_mapping,
    metrics_from_rows,
)
from airflow_provider_mlprod.operators.sql_arguments import build_sql_source, check_sql_source_arguments
from airflow_provider_mlprod.sql.source import ArgumentNames

METRICS_SQL = ArgumentNames(
    table=None,
    schema=None,
    query="metrics_sql",
    parameters="metrics_sql_parameters",
    hook_params="metrics_sql_hook_params",
)
"""The names of a metrics query's arguments."""

SOURCE_ARGUMENTS = ("metrics", "metrics_task_id", "metrics_file", "metrics_sql")
MAX_METRIC_ROWS = 10_000
"""Rows of a ``(name, value)`` metrics query read at most (one more is fetched to notice an excess)."""


class MetricsSource:
    """One of: ``metrics`` (a mapping), ``metrics_task_id`` (an upstream task's XCom),
    ``metrics_file`` (a JSON file at any ObjectStoragePath URI) or ``metrics_sql`` on ``sql_conn_id``
    (one row with a column per metric, or ``(name, value)`` rows; ``metrics_sql_parameters`` are its
    bind parameters, written ``:name`` in the SQL; ``metrics_sql_hook_params`` go to the connection's
    hook). ``metrics_key`` selects a nested object (dotted)
    inside a mapping, XCom value or file. The query is checked to be one read-only SELECT and runs in a
    read-only session.
    """

    template_fields = (
        "metrics",
        "metrics_task_id",
        "metrics_file",
        "metrics_sql",
        "metrics_sql_parameters",
        "metrics_key",
    )

    def __init__(
        self,
        *,
        metrics: Any = None,
        metrics_task_id: str | None = None,
        metrics_xcom_key: str = "return_value",
        metrics_file: str | None = None,
        metrics_sql: str | None = None,
        sql_conn_id: str | None = None,
        metrics_key: str | None = None,
        metrics_sql_parameters: Mapping[str, Any] | None = None,
        metrics_sql_hook_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.metrics = metrics
        self.metrics_task_id = metrics_task_id
        self.metrics_xcom_key = metrics_xcom_key
        self.metrics_file = metrics_file
        self.metrics_sql = metrics_sql
        self.sql_conn_id = sql_conn_id
        self.metrics_key = metrics_key
        self.metrics_sql_parameters = dict(metrics_sql_parameters or {})
        self.metrics_sql_hook_params = metrics_sql_hook_params or {}

    @property
    def given(self) -> list[str]:
        """The source arguments that were given."""
        return [name for name in SOURCE_ARGUMENTS if getattr(self, name) is not None]

    def check(self, task_id: str, *, allow_none: bool = False) -> MetricsSource:
        """Raise at DAG parse time unless exactly one source (or, if allowed, none) is given."""
        given = self.given
        if len(given) > 1 or (not given and not allow_none):
            raise ValueError(
                f"task {task_id!r}: give {'at most' if allow_none else 'exactly'} one metrics source out of "
                f"{', '.join(SOURCE_ARGUMENTS)}; got {given or 'none'}"
            )
        if self.metrics_sql is not None or self.metrics_sql_parameters or self.metrics_sql_hook_params:
            check_sql_source_arguments(
                task_id,
                METRICS_SQL,
                conn_id=self.sql_conn_id,
                query=self.metrics_sql,
                parameters=self.metrics_sql_parameters,
                hook_params=self.metrics_sql_hook_params,
            )
        return self

    def read(self, context: Any) -> tuple[dict[str, Any], str]:
        """Read the metrics; return them and a description of the source."""
        if self.metrics is not None:
            where = "the metrics argument"
            return metrics_from_mapping(self.metrics, where, self.metrics_key), where
        if self.metrics_task_id is not None:
            where = f"XCom {self.metrics_xcom_key!r} of task {self.metrics_task_id!r}"
            pulled = context["ti"].xcom_pull(task_ids=self.metrics_task_id, key=self.metrics_xcom_key)
            if pulled is None:
                raise InputDataError(f"{where} holds no metrics (did the task run and push them?)")
            return metrics_from_mapping(pulled, where, self.metrics_key), where
        if self.metrics_file is not None:
            from airflow.sdk import ObjectStoragePath

            try:
                text = ObjectStoragePath(self.metrics_file).read_text()
            except FileNotFoundError:
                raise InputDataError(f"metrics file {self.metrics_file!r} does not exist") from None
            except IsADirectoryError:
                raise InputDataError(
                    f"metrics file {self.metrics_file!r} is a directory; give the JSON file inside it"
                ) from None
            except NotADirectoryError:
                raise InputDataError(
                    f"metrics file {self.metrics_file!r}: a parent of it is a file, not a directory"
                ) from None
            except PermissionError:
                raise InputDataError(
                    f"metrics file {self.metrics_file!r} cannot be read: permission denied"
                ) from None
            except UnicodeDecodeError as exc:
                raise InputDataError(
                    f"metrics file {self.metrics_file!r} is not UTF-8 text ({exc.reason} at byte {exc.start})"
                ) from None
            return metrics_from_json_text(
                text, self.metrics_file, self.metrics_key
            ), f"file {self.metrics_file}"
        if self.metrics_sql is not None:
            return self._read_sql()
        raise ConfigurationError("no metrics source given")

    def _read_sql(self) -> tuple[dict[str, Any], str]:
        if not self.sql_conn_id:
            raise ConfigurationError("metrics_sql needs sql_conn_id, the SQL connection to run it on")
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_source
        from airflow_provider_mlprod.sql.errors import database_errors
        from airflow_provider_mlprod.sql.session import read_only_snapshot

        source = build_sql_source(
            METRICS_SQL,
            conn_id=self.sql_conn_id,
            query=self.metrics_sql,
            parameters=self.metrics_sql_parameters or None,
            hook_params=self.metrics_sql_hook_params or None,
        )
        engine = engine_for_source(source)
        # A failure to connect or a lost connection is retryable; a failing query is final, naming it.
        with database_errors(self.sql_conn_id), read_only_snapshot(engine) as connection:
            result = source.run(connection, lambda: connection.execute(source.statement()))
            columns = list(result.keys())
            rows = [
                tuple(row) for row in source.run(connection, lambda: result.fetchmany(MAX_METRIC_ROWS + 1))
            ]
        return metrics_from_rows(
            columns, rows, f"connection {self.sql_conn_id}"
        ), f"SQL on {self.sql_conn_id}"

"""Where an operator reads a model's metrics from: XCom, a JSON file, the metrics store or SQL.

Exactly one source is given. The sources are declared on the operator and read in ``execute()``.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.metric_sources import (
    metrics_from_json_text,
    metrics_from_mapping,
    metrics_from_rows,
)

SOURCE_ARGUMENTS = ("metrics", "metrics_task_id", "metrics_file", "metrics_sql")


def check_one_source(task_id: str, *, allow_none: bool = False, **sources: Any) -> None:
    """Raise at DAG parse time unless exactly one metrics source (or, if allowed, none) is given."""
    given = [name for name, value in sources.items() if value is not None]
    if len(given) > 1 or (not given and not allow_none):
        raise ValueError(
            f"task {task_id!r}: give {'at most' if allow_none else 'exactly'} one metrics source out of "
            f"{', '.join(SOURCE_ARGUMENTS)}; got {given or 'none'}"
        )


def read_metrics(
    context: Any,
    *,
    metrics: Any = None,
    metrics_task_id: str | None = None,
    metrics_xcom_key: str = "return_value",
    metrics_file: str | None = None,
    metrics_sql: str | None = None,
    sql_conn_id: str | None = None,
    metrics_key: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Read the metrics from the one source given; return them and a description of the source."""
    if metrics is not None:
        return metrics_from_mapping(metrics, "the metrics argument", metrics_key), "the metrics argument"
    if metrics_task_id is not None:
        source = f"XCom {metrics_xcom_key!r} of task {metrics_task_id!r}"
        pulled = context["ti"].xcom_pull(task_ids=metrics_task_id, key=metrics_xcom_key)
        if pulled is None:
            raise InputDataError(f"{source} holds no metrics (did the task run and push them?)")
        return metrics_from_mapping(pulled, source, metrics_key), source
    if metrics_file is not None:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(metrics_file)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise InputDataError(f"metrics file {metrics_file!r} does not exist") from None
        return metrics_from_json_text(text, metrics_file, metrics_key), f"file {metrics_file}"
    if metrics_sql is not None:
        if not sql_conn_id:
            raise ConfigurationError("metrics_sql needs sql_conn_id, the SQL connection to run it on")
        from sqlalchemy import text

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection

        engine = engine_for_connection(sql_conn_id)
        try:
            with engine.connect() as connection:
                result = connection.execute(text(metrics_sql))
                columns, rows = list(result.keys()), [tuple(row) for row in result.fetchmany(10_001)]
        except Exception as exc:
            raise InputDataError(
                f"metrics query on connection {sql_conn_id!r} failed: {type(exc).__name__}: "
                f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}"
            ) from None
        finally:
            engine.dispose()
        return metrics_from_rows(columns, rows, f"connection {sql_conn_id}"), f"SQL on {sql_conn_id}"
    raise ConfigurationError("no metrics source given")

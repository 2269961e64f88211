"""The SQL source arguments of operators and sensors: checked when the DAG is parsed, built after rendering.

Every operator and sensor that reads a table or a user's query takes the same arguments: a connection
id, ``table`` (and ``schema``) or ``query`` with its bind ``parameters``, and ``hook_params`` for the
connection's hook; or one ready :class:`~airflow_provider_mlprod.sql.source.SqlSource`. This module is
the one place that checks them:

- :func:`check_sql_source_arguments` runs in the constructor: which arguments go together, and, when
  nothing is templated, every check ``SqlSource.from_arguments`` makes (names, one read-only SELECT,
  parameters matching the placeholders), so a bad source fails the DAG import, naming the task;
- :func:`build_sql_source` runs in ``execute()`` on the rendered values and returns the ``SqlSource``
  the engine code reads through (its errors are final ``ConfigurationError``\\ s).

Argument names in messages are the operator's own
(:class:`~airflow_provider_mlprod.sql.source.ArgumentNames`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import ConfigurationError

if TYPE_CHECKING:
    from airflow_provider_mlprod.sql.source import ArgumentNames, SqlSource

TEMPLATE_SUFFIXES = (".sql",)
"""A query ending with one of these is a template file, read when the task renders."""


def is_templated(value: object) -> bool:
    """Whether ``value`` (or a value inside a mapping) is still a Jinja template or a template file."""
    if isinstance(value, Mapping):
        return any(is_templated(key) or is_templated(item) for key, item in value.items())
    return isinstance(value, str) and (
        "{{" in value or "{%" in value or value.strip().endswith(TEMPLATE_SUFFIXES)
    )


def mapping_argument(value: Any) -> Any:
    """A ``parameters`` or ``hook_params`` argument as the operator stores it: a copy of a mapping, {} for
    None, anything else as given (a template text renders later; the checks name a wrong type)."""
    if value is None:
        return {}
    return dict(value) if isinstance(value, Mapping) else value


def check_sql_source_arguments(
    task_id: str,
    names: ArgumentNames,
    *,
    source: object = None,
    source_argument: str = "sql_source",
    conn_id: object = None,
    table: object = None,
    schema: object = None,
    query: object = None,
    parameters: object = None,
    hook_params: object = None,
    required: bool = True,
) -> bool:
    """Check a SQL source's arguments at parse time; return whether a SQL source is given.

    :param names: the operator's names of the arguments, for messages.
    :param source: a ready ``SqlSource`` given instead of the other arguments (under ``source_argument``).
    :param required: whether the operator needs a SQL source (else none given is fine).
    :raises ValueError: naming the task and the arguments.
    """
    from airflow_provider_mlprod.sql.source import SqlSource, check_argument_shape

    given = {
        name: value
        for name, value in (
            (names.conn_id, conn_id),
            (names.table, table),
            (names.schema, schema),
            (names.query, query),
            (names.parameters, parameters),
            (names.hook_params, hook_params),
        )
        if value is not None and value != {}
    }
    task = f"task {task_id!r}"
    if source is not None:
        if not isinstance(source, SqlSource):
            raise ValueError(
                f"{task}: {source_argument} must be a SqlSource (airflow_provider_mlprod.sql.source), "
                f"got {type(source).__name__}"
            )
        if given:
            raise ValueError(f"{task}: give {source_argument} or {', '.join(given)}, not both")
        if not source.conn_id:
            raise ValueError(f"{task}: {source_argument} names no connection; build it with conn_id")
        return True
    if not given:
        if required:
            query_or_table = f"{names.table} or {names.query}" if names.table else names.query
            raise ValueError(f"{task}: give {names.conn_id} with {query_or_table}")
        return False
    if not conn_id:
        raise ValueError(f"{task}: {', '.join(given)} need {names.conn_id}")
    arguments = {
        "table": table,
        "schema": schema,
        "query": query,
        "parameters": parameters,
        "hook_params": hook_params,
    }
    try:
        check_argument_shape(names, **arguments)
        if not any(is_templated(value) for value in arguments.values()):
            SqlSource.from_arguments(names=names, **arguments)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        raise ValueError(f"{task}: {exc}") from None
    return True


def build_sql_source(
    names: ArgumentNames,
    *,
    source: SqlSource | None = None,
    conn_id: Any = None,
    table: Any = None,
    schema: Any = None,
    query: Any = None,
    parameters: Any = None,
    hook_params: Any = None,
) -> SqlSource:
    """The ``SqlSource`` of the rendered arguments (or ``source`` itself), checked before any SQL runs.

    An empty rendered ``schema`` counts as none.

    :raises ConfigurationError: a rendered value is invalid (final: a retry renders the same).
    """
    from airflow_provider_mlprod.sql.source import SqlSource

    if source is not None:
        return source
    if not conn_id or not isinstance(conn_id, str):
        raise ConfigurationError(f"{names.conn_id} rendered to {conn_id!r}; give an Airflow connection id")
    return SqlSource.from_arguments(
        conn_id=conn_id,
        table=table,
        schema=schema or None,
        query=query,
        parameters=parameters,
        hook_params=hook_params,
        names=names,
    )

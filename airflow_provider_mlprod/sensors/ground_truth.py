"""GroundTruthSensor: wait until enough of a window's predictions have their ground-truth label.

The probe lives in :mod:`airflow_provider_mlprod.monitoring.labels` (no Airflow there); poke and
deferrable modes are those of :class:`~airflow_provider_mlprod.sensors.freshness.ProbeSensor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.operators.outcome import final_errors_fail_the_task
from airflow_provider_mlprod.operators.sql_arguments import check_sql_source_arguments, mapping_argument
from airflow_provider_mlprod.sensors.freshness import (
    ProbeSensor,
    check_at_parse_time,
    is_templated,
    timestamp_text,
)
from airflow_provider_mlprod.sql.source import ArgumentNames

if TYPE_CHECKING:
    import datetime as dt

    from airflow_provider_mlprod.sql.source import SqlSource
    from airflow_provider_mlprod.triggers.freshness import ProbePollingTrigger

PREDICTIONS_SQL = ArgumentNames(
    table="predictions_table", query="predictions_query", parameters="predictions_parameters"
)
"""The ground-truth sensor's names of its predictions' SQL arguments."""


class GroundTruthSensor(ProbeSensor):
    """Wait until the share of a window's predictions that have a label reaches ``min_label_share``.

    Labels lag predictions, so a performance check for a window waits for them. The probe counts, in
    the database, the predictions whose ``timestamp_column`` lies in ``[window_start, window_end)`` and
    those with a matching row in ``labels_table`` (``EXISTS`` on the key; with ``label_column`` the
    label must be non-null). A window without predictions never satisfies the sensor. The XCom value is
    the last observation: counts, share, window and a one-line message.

    Example::

        GroundTruthSensor(
            task_id="wait_for_labels",
            sql_conn_id="warehouse",
            predictions_table="ml.churn_predictions",
            labels_table="ml.churn_labels",
            key_column="prediction_id",
            timestamp_column="scored_at",
            window_start="{{ data_interval_start }}",
            window_end="{{ data_interval_end }}",
            min_label_share=0.9,
            poke_interval=3600,
            timeout=7 * 24 * 3600,
            deferrable=True,
        )

    :param sql_conn_id: an Airflow SQL connection holding both tables (templated).
    :param predictions_table: the predictions, optionally ``schema.table`` (templated).
    :param predictions_query: or a read-only SELECT returning the predictions (templated, or a ``.sql``
        file); it must return ``key_column`` and ``timestamp_column``.
    :param predictions_parameters: its bind parameters, written ``:name`` in the SQL (templated: never
        put values into the SQL with Jinja).
    :param predictions_source: or the predictions as a ready ``SqlSource`` (a table or a query, with its
        connection and ``hook_params``), instead of ``sql_conn_id``, ``predictions_table`` or
        ``predictions_query``, ``predictions_parameters`` and ``hook_params``.
    :param labels_table: the labels, optionally ``schema.table`` (templated).
    :param key_column: the key joining a prediction to its label (templated).
    :param timestamp_column: the predictions' timestamp column (templated).
    :param window_start: start of the window, inclusive, ISO 8601 or datetime (templated).
    :param window_end: end of the window, exclusive (templated).
    :param min_label_share: the share of labelled predictions to reach, in (0, 1].
    :param schema: schema of tables given without one (templated).
    :param labels_key_column: the key's name in the labels table (default ``key_column``; templated).
    :param label_column: when given, a label counts only if this column is not null (templated).
    :param hook_params: arguments for the SQL connection's Airflow hook when the engine is built.
    :param deferrable: free the worker slot while waiting (default ``[operators] default_deferrable``).

    .. seealso:: README section "Freshness and ground-truth sensors".
    """

    template_fields: Sequence[str] = (
        "sql_conn_id",
        "predictions_table",
        "predictions_query",
        "predictions_parameters",
        "labels_table",
        "key_column",
        "timestamp_column",
        "window_start",
        "window_end",
        "schema",
        "labels_key_column",
        "label_column",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"predictions_query": "sql", "predictions_parameters": "json"}
    ui_color = "#d9f2e0"

    def __init__(
        self,
        *,
        labels_table: str,
        key_column: str,
        timestamp_column: str,
        window_start: str | dt.datetime,
        window_end: str | dt.datetime,
        min_label_share: float,
        schema: str | None = None,
        labels_key_column: str | None = None,
        label_column: str | None = None,
        hook_params: dict[str, Any] | None = None,
        sql_conn_id: str | None = None,
        predictions_table: str | None = None,
        predictions_query: str | None = None,
        predictions_parameters: dict[str, Any] | None = None,
        predictions_source: SqlSource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql_conn_id = sql_conn_id
        self.predictions_table = predictions_table
        self.predictions_query = predictions_query
        self.predictions_parameters = mapping_argument(predictions_parameters)
        self.predictions_source = predictions_source
        self.labels_table = labels_table
        self.key_column = key_column
        self.timestamp_column = timestamp_column
        self.window_start = window_start
        self.window_end = window_end
        self.min_label_share = min_label_share
        self.schema = schema
        self.labels_key_column = labels_key_column
        self.label_column = label_column
        self.hook_params = mapping_argument(hook_params)
        self._check_arguments()

    def _check_arguments(self) -> None:
        """Check now what is not templated; templated arguments are checked after rendering."""
        from airflow_provider_mlprod.monitoring.labels import LabelCoverageProbe

        check_sql_source_arguments(
            self.task_id,
            PREDICTIONS_SQL,
            source=self.predictions_source,
            source_argument="predictions_source",
            conn_id=self.sql_conn_id,
            table=self.predictions_table,
            schema=self.schema if self.predictions_table is not None else None,
            query=self.predictions_query,
            parameters=self.predictions_parameters,
            hook_params=self.hook_params,
        )
        placeholders = {
            "predictions_table": "templated_predictions",
            "labels_table": "templated_labels",
            "key_column": "templated_key",
            "timestamp_column": "templated_timestamp",
            "window_start": "2000-01-01",
            "window_end": "2000-01-02",
            "schema": None,
            "labels_key_column": "templated_key",
            "label_column": "templated_label",
        }
        arguments = {
            name: placeholders[name] if is_templated(value) else value
            for name, value in self._probe_arguments().items()
        }
        if is_templated(self.window_start) != is_templated(self.window_end):
            # Only one side is known: check it alone, against a far bound on the other side.
            known = "window_end" if is_templated(self.window_start) else "window_start"
            arguments["window_start" if known == "window_end" else "window_end"] = (
                "0001-01-01" if known == "window_end" else "9999-12-31"
            )
        if self.predictions_table is None:  # a query or a source, checked above
            arguments["predictions_table"] = "query_predictions"
        check_at_parse_time(self.task_id, lambda: LabelCoverageProbe(**arguments))

    def _probe_arguments(self) -> dict[str, Any]:
        return {
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
        }

    def build_trigger(self, deadline: str | None) -> ProbePollingTrigger:
        """The label-coverage trigger for the rendered arguments."""
        from airflow_provider_mlprod.triggers.freshness import LabelCoverageTrigger

        with final_errors_fail_the_task():
            window_start = timestamp_text(self.window_start, "window_start")
            window_end = timestamp_text(self.window_end, "window_end")
        source = self.predictions_source
        if source is None:
            conn_id, hook_params = self.sql_conn_id, self.hook_params
            table, query, parameters = (
                self.predictions_table,
                self.predictions_query,
                self.predictions_parameters,
            )
        else:
            conn_id, hook_params = source.conn_id, dict(source.hook_params)
            table = source.qualified_table if source.table is not None else None
            query, parameters = source.query, dict(source.parameters)
        return LabelCoverageTrigger(
            conn_id=conn_id,  # type: ignore[arg-type]
            predictions_table=table,
            predictions_query=query,
            predictions_parameters=parameters or None,
            labels_table=self.labels_table,
            key_column=self.key_column,
            timestamp_column=self.timestamp_column,
            window_start=window_start,  # type: ignore[arg-type]
            window_end=window_end,  # type: ignore[arg-type]
            min_label_share=self.min_label_share,
            schema=self.schema or None,
            labels_key_column=self.labels_key_column or None,
            label_column=self.label_column or None,
            hook_params=hook_params or None,
            poll_interval=self.poke_interval,
            deadline=deadline,
        )

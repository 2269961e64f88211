"""Warehouse data quality: a table is validated inside the database, behind a freshness sensor.

For the window ``[data_interval_start, data_interval_end)``. A manual run (from the UI, the REST API or
``airflow dags trigger``, with or without a logical date) takes the last whole UTC day before it was
triggered. Runs share the table ``orders``, so only one runs at a time (``max_active_runs=1``).

Scenarios (Param ``scenario``):

- ``clean``: the load passes the suite; the Asset ``mlprod://datasets/orders/validated`` is emitted.
- ``corrupt``: a fifth of the orders have negative amounts, unknown statuses or no customer: blocked,
  quarantined, alerted.
- ``stale``: the upstream job did not run: ``wait_for_orders`` times out after
  ``freshness_timeout_seconds`` and alerts.

Steps:

1. ``land_orders`` stands in for the upstream job that refreshes the warehouse table ``orders``: it
   replaces the table's rows with the window's load (and creates the table on first use).
2. ``wait_for_orders`` (``DataFreshnessSensor``, deferrable) waits until ``orders`` holds at least 50
   rows updated at or after the window's start (``newer_than``; no upper bound is set, so rows of later
   windows count too: pass ``older_than`` to wait for the window alone): ``max()`` and ``count()`` run
   in the database.
3. ``validate_orders`` (``DataValidationOperator`` on ``sql_conn_id`` + ``table``) runs the suite
   ``expectations/warehouse_orders.json`` as SQL inside the database; the keys of rows failing a
   critical row-level expectation go to the table ``orders_quarantine`` with the expectation they
   failed, written in the database too. A failing table stops the run and alerts; a passing one emits
   the Asset ``mlprod://datasets/orders/validated`` for downstream DAGs.
4. ``report`` sends a summary to the alert channels whatever happened.

Scenario Param ``scenario``: ``clean``; ``corrupt`` (a fifth of the orders with negative amounts,
unknown statuses or no customer: blocked, quarantined, alerted); ``stale`` (the upstream job did not
run: the table still holds the previous day's load, and ``wait_for_orders`` times out after
``freshness_timeout_seconds`` and alerts).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_mlprod.examples.sensor_params import ParamsFreshnessSensor
from airflow_provider_mlprod.examples.windows import run_window
from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier
from airflow_provider_mlprod.operators.alerts import SendAlertOperator
from airflow_provider_mlprod.operators.validation import DataValidationOperator

ORDERS_TABLE = "orders"
QUARANTINE_TABLE = "orders_quarantine"
STATUSES = ["placed", "paid", "shipped", "delivered", "returned"]
# The window (see airflow_provider_mlprod.examples.windows): the data interval of a scheduled run, the
# last whole UTC day of a manual one (which may have no logical date).
WINDOW_START = "{{ mlprod_window(dag_run).start_iso }}"

guardrail_alert = MlprodNotifier(
    title="Guardrail fired: {{ ti.task_id }} in {{ dag.dag_id }}",
    severity="critical",
)


def make_orders(rows: int, seed: int, start, end):
    """Deterministic orders updated between ``start`` and ``end`` (naive UTC datetimes)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, (end - start).total_seconds() - 1, rows)).round()
    return pd.DataFrame(
        {
            "order_id": [f"{start:%Y%m%d%H%M}-{i:06d}" for i in range(rows)],
            "customer_id": pd.array(rng.integers(1, 5000, rows), dtype="Int64"),
            "amount": rng.gamma(2.0, 40, rows).round(2),
            "quantity": rng.integers(1, 10, rows),
            "status": rng.choice(STATUSES, rows, p=[0.1, 0.2, 0.3, 0.35, 0.05]),
            "currency": rng.choice(["EUR", "USD", "GBP"], rows, p=[0.6, 0.3, 0.1]),
            "updated_at": start + pd.to_timedelta(offsets, unit="s"),
        }
    )


@dag(
    dag_id="mlprod_warehouse_quality",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs share the table orders
    doc_md=__doc__,
    tags=["mlprod", "example"],
    user_defined_macros={"mlprod_window": run_window},
    params={
        "scenario": Param(
            "clean",
            enum=["clean", "corrupt", "stale"],
            description="What to simulate: a clean load, a corrupt one, or an upstream job that did not run.",
        ),
        "warehouse_conn_id": Param(
            "mlprod_warehouse",
            type="string",
            description="Connection id of the warehouse holding the table orders (any SQL connection).",
        ),
        "orders_per_load": Param(
            500, type="integer", minimum=50, description="Orders the simulated load writes."
        ),
        "load_seed": Param(5, type="integer", description="Seed of the simulated load."),
        "sensor_poke_seconds": Param(
            10,
            type="number",
            exclusiveMinimum=0,
            description="Seconds between two checks of wait_for_orders.",
        ),
        "freshness_timeout_seconds": Param(
            60,
            type="number",
            exclusiveMinimum=0,
            description="How long wait_for_orders waits for fresh rows, in seconds.",
        ),
    },
    default_args={"retries": 0},
)
def mlprod_warehouse_quality():
    @task
    def land_orders(params=None, dag_run=None) -> dict:
        """Replace the rows of ``orders`` with the window's load, as the upstream job would."""
        import datetime as dt

        import numpy as np
        import sqlalchemy as sa

        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection

        scenario, rows = params["scenario"], params["orders_per_load"]
        start, end = run_window(dag_run).naive_utc()
        if scenario == "stale":  # the upstream job did not run: yesterday's load is still there
            start, end = start - dt.timedelta(days=1), start
        orders = make_orders(rows, params["load_seed"], start, end)
        orders.loc[:2, "currency"] = "JPY"  # a warning-level finding, reported, not blocking
        if scenario == "corrupt":
            broken = np.random.default_rng(params["load_seed"]).permutation(rows)[: rows // 5]
            orders.loc[broken[0::3], "amount"] = -orders.loc[broken[0::3], "amount"]
            orders.loc[broken[1::3], "status"] = "lost_in_transit"
            orders.loc[broken[2::3], "customer_id"] = None
        engine = engine_for_connection(params["warehouse_conn_id"])
        try:
            with engine.begin() as connection:
                if sa.inspect(connection).has_table(ORDERS_TABLE):
                    connection.execute(sa.text(f"DELETE FROM {ORDERS_TABLE}"))
                orders.to_sql(ORDERS_TABLE, connection, index=False, if_exists="append")
        finally:
            engine.dispose()
        return {"rows": rows, "updated_from": start.isoformat(), "updated_to": end.isoformat()}

    wait_for_orders = ParamsFreshnessSensor(
        task_id="wait_for_orders",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        table=ORDERS_TABLE,
        timestamp_column="updated_at",
        newer_than=WINDOW_START,
        min_new_rows=50,
        deferrable=True,
        on_failure_callback=guardrail_alert,
    )
    validate_orders = DataValidationOperator(
        task_id="validate_orders",
        suite="expectations/warehouse_orders.json",
        sql_conn_id="{{ params.warehouse_conn_id }}",
        table=ORDERS_TABLE,
        quarantine_table=QUARANTINE_TABLE,
        quarantine_key_columns=["order_id"],
        dataset_name=ORDERS_TABLE,
        emit_asset=True,
        on_failure="fail",
        on_failure_callback=guardrail_alert,
    )
    validation = "{% set result = ti.xcom_pull(task_ids='validate_orders') or {} %}"
    report = SendAlertOperator(
        task_id="report",
        title=validation
        + "{{ dag.dag_id }} {{ mlprod_window(dag_run).label }} ({{ params.scenario }}): "
        + ORDERS_TABLE
        + " "
        "{{ 'passed' if result.get('success') else 'blocked' if result else 'not validated' }}",
        severity=validation
        + "{{ 'info' if result.get('success') else 'critical' if result else 'warning' }}",
        facts={
            "scenario": "{{ params.scenario }}",
            "load": "{{ ti.xcom_pull(task_ids='land_orders') }}",
            "freshness": "{{ (ti.xcom_pull(task_ids='wait_for_orders') or {}).get('message') }}",
            "counts": validation + "{{ result.get('counts') }}",
            "quarantined": validation + "{{ (result.get('quarantine') or {}).get('records') }}",
        },
    )

    landed = land_orders()
    landed >> wait_for_orders >> validate_orders
    [landed, wait_for_orders, validate_orders] >> report.as_teardown()


mlprod_warehouse_quality()

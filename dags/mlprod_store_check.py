"""Check that the mlprod metrics store is reachable and say where it is.

With no connection configured this is the embedded SQLite file under ``$AIRFLOW_HOME/mlprod/``; set
``[mlprod] store_conn_id`` (or create the connection ``mlprod_store_default``) to use PostgreSQL or
any SQLAlchemy database.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException


@dag(
    dag_id="mlprod_store_check",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["mlprod", "example"],
)
def mlprod_store_check():
    @task
    def check_store() -> dict[str, str]:
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        hook = MetricsStoreHook()
        ok, message = hook.test_connection()
        print(message)
        if not ok:
            raise AirflowFailException(message)
        return {"metrics_store": hook.location}

    check_store()


mlprod_store_check()

"""Deadline alert: tell the team when a run is still not done some time after it was queued.

The DAG carries an Airflow ``DeadlineAlert``: 30 seconds after a run is queued, if the run has not
finished, Airflow's triggerer runs ``MlprodNotifier`` (an ``AsyncCallback``) and the alert goes to the
mlprod alert channels (``[mlprod] alert_conn_ids``; the task log of the triggerer when none is set),
titled "DAG mlprod_deadline_alert: run <run id> missed its deadline", with the run id, the deadline
time and a link to the run. Runs that finish in time send nothing.

The callback's keyword arguments are stored with the serialised DAG, so they are plain values
(connection ids, text, seconds); the notifier needs no metrics store there (it runs without dedup
when none is reachable from the triggerer).

Try it: trigger with ``work_seconds`` = 45 and watch the triggerer's log (or your channel) after 30 s.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, Param, dag, task

from airflow_provider_mlprod.notifications.mlprod import MlprodNotifier

DEADLINE = timedelta(seconds=30)


@dag(
    dag_id="mlprod_deadline_alert",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["mlprod", "example"],
    params={
        "work_seconds": Param(
            1,
            type="integer",
            minimum=0,
            maximum=600,
            description="How long the load task works, in seconds; above 30 the run misses its deadline "
            "and the deadline alert is sent while it still runs",
        )
    },
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=DEADLINE,
        callback=AsyncCallback(
            MlprodNotifier,
            kwargs={
                "severity": "warning",
                "text": "The nightly load is late; downstream dashboards show yesterday's data.",
                "dedup_window": 3600,
            },
        ),
    ),
)
def mlprod_deadline_alert():
    @task
    def load(params=None) -> int:
        import time

        time.sleep(int(params["work_seconds"]))
        return int(params["work_seconds"])

    load()


mlprod_deadline_alert()

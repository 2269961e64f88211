"""The example DAGs run end to end with dag.test() on the session's temporary AIRFLOW_HOME."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_mlprod.hooks.store import MetricsStoreHook


@pytest.fixture
def example_dags(airflow_db):
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(airflow_db / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def test_store_check_reports_the_embedded_store(example_dags, airflow_db):
    dag_run = example_dags["mlprod_store_check"].test()
    assert dag_run.state == "success"
    assert (airflow_db / "mlprod" / "metrics.db").exists()


def test_train_and_promote_good_then_worse(example_dags, airflow_db):
    dag = example_dags["mlprod_train_and_promote"]
    registry = MetricsStoreHook().registry()
    name = "churn_classifier"

    good = dag.test(run_conf={"model_quality": "good"})
    assert good.state == "success"
    champion = registry.champion(name)
    assert champion is not None
    assert champion.metrics["roc_auc"] > 0.8
    serving = airflow_db / "mlprod" / "serving" / f"{name}.pkl"
    assert pickle.loads(serving.read_bytes()).predict_proba  # a real fitted model was deployed

    worse = dag.test(run_conf={"model_quality": "worse"})
    assert worse.state == "failed"
    states = {ti.task_id: ti.state for ti in worse.get_task_instances()}
    assert (states["gate"], states["promote"]) == ("failed", "upstream_failed")
    assert registry.champion(name).version == champion.version

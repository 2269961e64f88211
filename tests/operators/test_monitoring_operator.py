"""ModelPerformanceMonitorOperator: execute() with a small context, one degradation run with dag.test()."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_mlprod.assets import model_degraded_alias, model_degraded_asset
from airflow_provider_mlprod.monitoring.performance import roc_auc
from airflow_provider_mlprod.operators.monitoring import ModelPerformanceMonitorOperator
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.registry import ModelRegistry

DAY_ONE = datetime(2026, 3, 1, tzinfo=timezone.utc)
GOOD_WINDOW = (DAY_ONE.isoformat(), (DAY_ONE + timedelta(days=1)).isoformat())
BAD_WINDOW = ((DAY_ONE + timedelta(days=1)).isoformat(), (DAY_ONE + timedelta(days=2)).isoformat())
CHAMPION_METRICS = {"roc_auc": 0.85, "accuracy": 0.8, "f1": 0.8}
TOLERANCES = {"roc_auc": {"min_absolute_change": -0.1}, "accuracy": {"min": 0.6}}


def write_warehouse(path) -> list[dict]:
    """Day one: the model ranks well; day two: its scores are reversed. One in five labels is missing."""
    rows = []
    for i in range(80):
        label = i % 2
        good_day = i < 40
        score = (0.75 if label else 0.25) if good_day else (0.35 if label else 0.65)
        score += (i % 7) * 0.01
        rows.append(
            {
                "id": i,
                "scored_at": (DAY_ONE + timedelta(minutes=36 * i)).isoformat(sep=" "),
                "score": score,
                "predicted": int(score >= 0.5),
                "label": label if i % 5 != 4 else None,
            }
        )
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE predictions (id INTEGER, scored_at TEXT, score REAL, predicted INTEGER)")
        )
        connection.execute(sa.text("CREATE TABLE labels (id INTEGER, label INTEGER)"))
        connection.execute(
            sa.text("INSERT INTO predictions VALUES (:id, :scored_at, :score, :predicted)"),
            [{k: r[k] for k in ("id", "scored_at", "score", "predicted")} for r in rows],
        )
        connection.execute(
            sa.text("INSERT INTO labels VALUES (:id, :label)"),
            [{"id": r["id"], "label": r["label"]} for r in rows if r["label"] is not None],
        )
    engine.dispose()
    return rows


@pytest.fixture
def warehouse(monkeypatch, tmp_path):
    path = tmp_path / "warehouse.db"
    rows = write_warehouse(path)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return {"rows": rows, "engine": sa.create_engine(f"sqlite:///{path}")}


@pytest.fixture
def store(monkeypatch, db_url):
    """The metrics store on SQLite and PostgreSQL, behind the connection ``test_store``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEST_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": db_url}}),
    )
    return create_store_engine(db_url)


def register_champion(engine, version="1", metrics=None):
    registry = ModelRegistry(engine)
    identity = RunIdentity("train", f"run_{version}", "register")
    registry.register(
        identity,
        name="churn",
        version=version,
        artifact_uri=f"file:///m/{version}",
        metrics=metrics or CHAMPION_METRICS,
    )
    registry.record_blessing(
        identity, name="churn", version=version, passed=True, baseline_version=None, summary={}
    )
    registry.promote(identity, name="churn", version=version)
    return registry


def monitor(window=GOOD_WINDOW, **overrides) -> ModelPerformanceMonitorOperator:
    arguments = {
        "task_id": "monitor",
        "sql_conn_id": "warehouse",
        "model_name": "churn",
        "model_type": "classification",
        "predictions_table": "predictions",
        "labels_table": "labels",
        "key_column": "id",
        "timestamp_column": "scored_at",
        "prediction_column": "predicted",
        "score_column": "score",
        "window_start": window[0],
        "window_end": window[1],
        "tolerances": TOLERANCES,
        "if_no_baseline": "fail",
        "store_conn_id": "test_store",
    }
    return ModelPerformanceMonitorOperator(**{**arguments, **overrides})


def context_for(task_context, run_id="run_1"):
    context = task_context(dag_id="monitoring", run_id=run_id, task_id="monitor")
    context["outlet_events"] = OutletEventAccessors()
    return context


def degraded_events(context):
    return context["outlet_events"][model_degraded_alias("churn")].asset_alias_events


def test_a_healthy_window_passes_and_is_recorded_once_per_task_run(warehouse, store, task_context):
    register_champion(store)
    context = context_for(task_context)
    summary = monitor().execute(context)

    labelled = [r for r in warehouse["rows"][:40] if r["label"] is not None]
    assert summary["counts"] == {"predictions": 40, "labelled": 32, "label_coverage": 0.8}
    assert summary["values"]["roc_auc"] == pytest.approx(
        roc_auc([r["score"] for r in labelled], [r["label"] == 1 for r in labelled])
    )
    assert summary["passed"] is True
    assert summary["degraded"] is False
    assert summary["model_version"] == summary["baseline_version"] == "1"
    assert [v["metric"] for v in summary["metrics"]] == ["roc_auc", "accuracy"]
    assert summary["degraded_asset"] is None
    assert degraded_events(context) == []
    json.dumps(summary)

    monitor().execute(context)  # a retry of the same task run replaces its own point
    history = MetricsStore(store).metric_history("roc_auc", model_name="churn")
    assert len(history) == 1
    assert history[0].model_version == "1"
    assert history[0].dataset == "2026-03-01T00:00:00+00:00/2026-03-02T00:00:00+00:00"
    assert history[0].value == pytest.approx(summary["values"]["roc_auc"])
    labelled_points = MetricsStore(store).metric_history("labelled_rows", model_name="churn")
    assert [point.value for point in labelled_points] == [32.0]


def test_a_degraded_window_fails_the_task_after_recording_it(warehouse, store, task_context):
    register_champion(store)
    context = context_for(task_context)
    with pytest.raises(
        AirflowFailException, match=r"model 'churn' version '1' degraded.*roc_auc=.* vs baseline 0.85"
    ):
        monitor(window=BAD_WINDOW).execute(context)
    pushed = context["ti"].pushed["return_value"]
    assert pushed["degraded"] is True
    assert [v["verdict"] for v in pushed["metrics"]] == ["fail", "fail"]
    assert MetricsStore(store).metric_history("roc_auc", model_name="churn")[0].value < 0.5


def test_degradation_can_skip(warehouse, store, task_context):
    register_champion(store)
    with pytest.raises(AirflowSkipException, match="degraded"):
        monitor(window=BAD_WINDOW, on_degradation="skip").execute(context_for(task_context))


def test_degradation_under_continue_adds_the_degraded_asset_event(warehouse, store, task_context, capfd):
    register_champion(store)
    context = context_for(task_context)
    summary = monitor(window=BAD_WINDOW, on_degradation="continue").execute(context)
    assert "continuing (on_degradation='continue')" in "".join(capfd.readouterr())
    assert summary["degraded"] is True
    assert summary["degraded_asset"] == "mlprod://models/churn/degraded"
    [event] = degraded_events(context)
    assert event.dest_asset_key.uri == "mlprod://models/churn/degraded"
    assert event.extra["model_version"] == "1"
    assert event.extra["window"] == {"start": BAD_WINDOW[0], "end": BAD_WINDOW[1]}
    assert [failed["metric"] for failed in event.extra["failed"]] == ["roc_auc", "accuracy"]
    assert event.extra["failed"][0]["baseline"] == 0.85
    json.dumps(event.extra)


def test_without_a_champion_if_no_baseline_decides(warehouse, store, task_context):
    summary = monitor(if_no_baseline="pass").execute(context_for(task_context))
    assert summary["passed"] is True
    assert summary["model_version"] is None
    assert summary["baseline_version"] is None
    with pytest.raises(AirflowFailException, match="no baseline to compare with"):
        monitor(if_no_baseline="fail").execute(context_for(task_context, run_id="run_2"))


def test_an_explicit_version_is_its_own_baseline(warehouse, store, task_context):
    registry = register_champion(store)
    registry.register(
        RunIdentity("train", "run_2", "register"),
        name="churn",
        version="2",
        artifact_uri="file:///m/2",
        metrics={"roc_auc": 1.2},  # unreachable offline figure: the live AUC is more than 0.1 below
    )
    summary = monitor(model_version="2", on_degradation="continue").execute(context_for(task_context))
    assert summary["model_version"] == summary["baseline_version"] == "2"
    assert summary["champion_version"] == "1"
    assert summary["degraded"] is True
    with pytest.raises(AirflowFailException, match="model 'churn' version '9' is not registered"):
        monitor(model_version="9").execute(context_for(task_context, run_id="run_2"))


def test_a_gated_metric_that_is_undefined_fails_closed(warehouse, store, task_context):
    register_champion(store, metrics={**CHAMPION_METRICS, "precision": 0.8})
    with warehouse["engine"].begin() as connection:
        connection.execute(sa.text("UPDATE predictions SET predicted = 0"))
    summary = monitor(
        score_column=None, tolerances={"precision": {"min_absolute_change": -0.1}}, on_degradation="continue"
    ).execute(context_for(task_context))
    assert summary["values"]["precision"] is None
    assert "no positive predictions" in summary["undefined"]["precision"]
    assert summary["degraded"] is True
    assert "not a number (None)" in summary["metrics"][0]["reason"]


def test_without_tolerances_the_metrics_are_only_recorded(warehouse, store, task_context):
    summary = monitor(window=BAD_WINDOW, tolerances=None, if_no_baseline=None).execute(
        context_for(task_context)
    )
    assert summary["passed"] is True
    assert summary["metrics"] == []
    assert len(MetricsStore(store).metric_history("accuracy", model_name="churn")) == 1


def test_an_empty_window_fails_without_retry(warehouse, store, task_context):
    window = ("2026-04-01T00:00:00+00:00", "2026-04-02T00:00:00+00:00")
    with pytest.raises(
        AirflowFailException, match=r"window 2026-04-01T00:00:00\+00:00/.* no labelled predictions"
    ):
        monitor(window=window).execute(context_for(task_context))
    with pytest.raises(
        AirflowFailException, match="window_start rendered to 'None': this run has no data interval"
    ):
        monitor(window=("None", GOOD_WINDOW[1])).execute(context_for(task_context))
    with pytest.raises(AirflowFailException, match="table 'orders; --' is not a plain SQL identifier"):
        monitor(predictions_table="orders; --").execute(context_for(task_context))


def test_the_window_defaults_to_the_data_interval_and_the_alias_is_an_outlet():
    user_outlet = Asset("mlprod://datasets/scores/validated")
    operator = ModelPerformanceMonitorOperator(
        task_id="m",
        sql_conn_id="warehouse",
        model_name="churn",
        model_type="regression",
        predictions_table="p",
        labels_table="l",
        key_column="id",
        timestamp_column="ts",
        prediction_column="yhat",
        outlets=[user_outlet],
    )
    assert operator.window_start == "{{ data_interval_start }}"
    assert operator.window_end == "{{ data_interval_end }}"
    assert {
        "window_start",
        "window_end",
        "predictions_query",
        "predictions_parameters",
        "model_version",
    } <= set(operator.template_fields)
    assert operator.template_fields_renderers["predictions_parameters"] == "json"
    assert operator.outlets == [user_outlet, model_degraded_alias("churn")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model_type": "ranking"}, "model_type must be one of"),
        ({"predictions_query": "SELECT * FROM predictions"}, "exactly one of predictions_table"),
        ({"key_column": "id; drop"}, "key column 'id; drop' is not a plain SQL identifier"),
        ({"on_degradation": "ignore"}, "on_degradation must be one of fail, skip, continue"),
        ({"if_no_baseline": None}, "set if_no_baseline to 'pass' or 'fail'"),
        ({"tolerances": {"roc_auc": {"minimum": 0.7}}}, "unknown rule(s) ['minimum']"),
        ({"model_name": "churn/v2"}, "model name 'churn/v2' cannot name an Asset"),
        ({"predictions_parameters": {"day": "x"}}, "predictions_parameters are bound into predictions_query"),
    ],
)
def test_arguments_are_checked_when_the_dag_is_parsed(overrides, message):
    with pytest.raises(ValueError, match=_escaped(message)):
        monitor(**overrides)


def _escaped(text: str) -> str:
    return re.escape(text)


# -- a real DAG run ------------------------------------------------------------------------------

DAG_SOURCE = """
import pendulum
from airflow.sdk import dag
from airflow_provider_mlprod.operators.monitoring import ModelPerformanceMonitorOperator

COMMON = dict(
    sql_conn_id="warehouse",
    model_name="churn",
    model_type="classification",
    predictions_table="predictions",
    labels_table="labels",
    key_column="id",
    timestamp_column="scored_at",
    prediction_column="predicted",
    score_column="score",
    window_start="{{ params.start }}",
    window_end="{{ params.end }}",
    tolerances={"roc_auc": {"min_absolute_change": -0.1}},
    if_no_baseline="fail",
    store_conn_id="test_store",
)

@dag(dag_id="churn_monitoring", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def churn_monitoring():
    ModelPerformanceMonitorOperator(task_id="guard", on_degradation="fail", **COMMON)
    ModelPerformanceMonitorOperator(task_id="signal", on_degradation="continue", **COMMON)

churn_monitoring()
"""


def test_degradation_end_to_end_fails_the_guard_and_emits_the_degraded_asset(
    dag_file, warehouse, monkeypatch, tmp_path
):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEST_STORE",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": store_url}}),
    )
    register_champion(create_store_engine(store_url))
    dag = dag_file("churn_monitoring", DAG_SOURCE)

    healthy = dag.test(run_conf={"start": GOOD_WINDOW[0], "end": GOOD_WINDOW[1]})
    assert healthy.state == "success", states(healthy)
    assert degraded_asset_events() == []

    degraded = dag.test(run_conf={"start": BAD_WINDOW[0], "end": BAD_WINDOW[1]})
    assert states(degraded) == {"guard": "failed", "signal": "success"}
    assert degraded.state == "failed"

    [event] = degraded_asset_events()
    assert event["run_id"] == degraded.run_id
    assert event["task_id"] == "signal"
    assert event["extra"]["window"] == {"start": BAD_WINDOW[0], "end": BAD_WINDOW[1]}
    assert event["extra"]["failed"][0]["metric"] == "roc_auc"
    assert event["extra"]["failed"][0]["value"] < 0.5

    history = MetricsStore(create_store_engine(store_url)).metric_history("roc_auc", model_name="churn")
    by_run = {(point.run.run_id, point.run.task_id): point.value for point in history}
    assert set(by_run) == {(run.run_id, task) for run in (healthy, degraded) for task in ("guard", "signal")}
    assert all(by_run[healthy.run_id, task] > 0.75 for task in ("guard", "signal"))
    assert all(by_run[degraded.run_id, task] < 0.5 for task in ("guard", "signal"))


def states(dag_run):
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def degraded_asset_events() -> list[dict]:
    """The recorded events of the degraded Asset, oldest first."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    uri = model_degraded_asset("churn").uri
    with create_session() as session:
        events = session.scalars(sa.select(AssetEvent).order_by(AssetEvent.id)).all()
        return [
            {"run_id": e.source_run_id, "task_id": e.source_task_id, "extra": e.extra}
            for e in events
            if e.asset.uri == uri
        ]


def test_asset_uris_and_names_are_stable_and_checked():
    from airflow_provider_mlprod import assets
    from airflow_provider_mlprod.exceptions import ConfigurationError

    assert assets.dataset_validated_uri("orders") == "mlprod://datasets/orders/validated"
    assert assets.dataset_drift_uri("orders") == "mlprod://datasets/orders/drift"
    assert assets.model_degraded_uri("churn-v2") == "mlprod://models/churn-v2/degraded"
    assert assets.dataset_drift_asset("orders") == Asset(
        uri="mlprod://datasets/orders/drift", name="mlprod-drift-orders"
    )
    assert assets.dataset_validated_asset("orders").name == "mlprod-validated-orders"
    assert model_degraded_asset("churn").name == "mlprod-degraded-churn"
    for bad in ("", "a/b", "a b", "../x", None):
        with pytest.raises(ConfigurationError, match="cannot name an Asset"):
            assets.model_degraded_uri(bad)

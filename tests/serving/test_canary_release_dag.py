"""The canary-release example DAGs, run with dag.test(): each scenario makes its guardrail fire."""

from __future__ import annotations

import json
import os

import pytest

from airflow_provider_mlprod.hooks.store import MetricsStoreHook

pytestmark = pytest.mark.dagrun
MODEL = "customer_churn"


@pytest.fixture
def dags(airflow_db, monkeypatch):
    from airflow.models import DagBag

    warehouse = airflow_db / "mlprod" / "serving-warehouse.db"
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLPROD_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    )
    bag = DagBag(dag_folder=str(airflow_db / "dags" / "mlprod_canary_release.py"))
    assert bag.import_errors == {}
    return bag.dags


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_canary_release_promotes_a_healthy_candidate_and_stops_a_broken_one(dags):
    registry = MetricsStoreHook().registry()
    canary = dags["mlprod_canary_release"]
    healthy = canary.test(run_conf={"scenario": "healthy"})
    assert states(healthy)["promote"] == "success", states(healthy)
    first = registry.alias_version(MODEL, "champion")
    assert registry.latest_blessing(MODEL, first).kind == "serving"

    broken = canary.test(run_conf={"scenario": "errors"})
    run_states = states(broken)
    assert (run_states["load_test"], run_states["promote"]) == ("failed", "upstream_failed")
    assert run_states["stop_servers"] == "success"  # the teardown ran
    pids = broken.get_task_instance("start_servers").xcom_pull(task_ids="start_servers")["pids"]
    for pid in pids:  # and the servers are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert registry.alias_version(MODEL, "champion") == first


def test_slo_breach_then_rollback(dags):
    registry = MetricsStoreHook().registry()
    for _ in range(2):  # two promoted versions, so there is one to roll back to
        assert (
            states(dags["mlprod_canary_release"].test(run_conf={"scenario": "healthy"}))["promote"]
            == "success"
        )
    events = [e for e in registry.events(MODEL) if e["event"] == "promoted"]
    current, previous = events[-1]["version"], events[-1]["previous_version"]
    assert registry.alias_version(MODEL, "champion") == current

    quiet = dags["mlprod_serving_slo_watch"].test(run_conf={"traffic": "healthy"})
    assert states(quiet)["slo_watch"] == "success"
    summary = quiet.get_task_instance("slo_watch").xcom_pull(task_ids="slo_watch")
    assert summary["breached"] is False
    degraded = dags["mlprod_serving_slo_watch"].test(run_conf={"traffic": "degraded"})
    summary = degraded.get_task_instance("slo_watch").xcom_pull(task_ids="slo_watch")
    assert summary["breached"] is True
    assert summary["slo_breach_asset"] == f"mlprod://models/{MODEL}/slo_breach"

    rollback = dags["mlprod_slo_rollback"].test()
    assert rollback.state == "success", states(rollback)
    assert registry.alias_version(MODEL, "champion") == previous


def canary_settings():
    """The canary DAG's own constants (server options, checks, thresholds), read from its file."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "dags" / "mlprod_canary_release.py"
    spec = importlib.util.spec_from_file_location("canary_release_dag", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("scenario", "fires"),
    [
        ("healthy", set()),
        ("slow", {"p95_latency_ms", "p95_latency_ms_ratio"}),
        ("errors", {"error_rate", "output_check_pass_rate"}),
        ("gibberish", {"output_check_pass_rate"}),
        ("overload", {"p95_latency_ms", "p95_latency_ms_ratio"}),
    ],
)
def test_each_scenario_fires_its_guardrail(scenario, fires, scorer_file, customers):
    """The DAG's load-test settings against a candidate server in each scenario mode."""
    from airflow_provider_mlprod.examples.model_server import ModelServerProcess
    from airflow_provider_mlprod.serving.evaluation import evaluate_serving
    from airflow_provider_mlprod.serving.loadgen import Endpoint, LoadPlan, run_load_test
    from airflow_provider_mlprod.serving.response_checks import ResponseChecks

    dag = canary_settings()
    options = dag.SCENARIO_OPTIONS[scenario]
    with (
        ModelServerProcess(mode=scenario, scorer=scorer_file, **options) as candidate,
        ModelServerProcess(mode="healthy", scorer=scorer_file) as champion,
    ):
        result = run_load_test(
            [
                Endpoint("candidate", candidate.url + "/predict"),
                Endpoint("champion", champion.url + "/predict"),
            ],
            customers,
            LoadPlan(mode="open", rate=300, requests=300, warmup_requests=20, timeout_s=5.0),
            ResponseChecks.from_spec(dag.OUTPUT_CHECKS),
        )
    gate = evaluate_serving(result, dag.SERVING_THRESHOLDS)
    assert {v.metric for v in gate.failures} == fires


def test_approval_is_off_by_default_and_the_promotion_requires_the_serving_verdict(dags):
    canary = dags["mlprod_canary_release"]
    approve, promote = canary.get_task("approve"), canary.get_task("promote")
    assert canary.params["require_approval"] is False
    assert promote.require == ["metrics", "serving"]
    assert approve.upstream_task_ids == {"load_test"}
    assert promote.upstream_task_ids == {"approve"}


def test_approval_through_the_hitl_rest_api_records_the_approver(dags):
    """A run with require_approval waits in AWAITING_INPUT until the HITL REST API answers it.

    The REST call goes to Airflow's own core API app (in-process, on the same metadata database) with
    a JWT of a user ``release-manager``; the promotion then names that user.
    """
    import threading
    import time

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from fastapi.testclient import TestClient

    canary = dags["mlprod_canary_release"]
    client = TestClient(create_app("core"))  # initialises the auth manager that signs the token
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="release-manager", role="admin"))
    headers = {"Authorization": f"Bearer {token}"}
    answered: dict = {}

    def approver() -> None:
        """Waits for the approve task to ask, then answers through the REST API (dag.test needs the
        main thread, so the human is this thread)."""
        try:
            deadline = time.monotonic() + 240
            run_id = None
            while run_id is None and time.monotonic() < deadline:
                time.sleep(1)
                with create_session() as session:
                    waiting = (
                        session.query(TaskInstance)
                        .filter_by(dag_id="mlprod_canary_release", task_id="approve")
                        .filter(TaskInstance.state == TaskInstanceState.AWAITING_INPUT)
                        .first()
                    )
                    run_id = waiting.run_id if waiting is not None else None
            path = f"/api/v2/dags/mlprod_canary_release/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
            answered["detail"] = client.get(path, headers=headers)
            answered["answer"] = client.patch(path, json={"chosen_options": ["Approve"]}, headers=headers)
        except BaseException as exc:  # surfaced in the test thread
            answered["error"] = exc

    human = threading.Thread(target=approver, daemon=True)
    human.start()
    dag_run = canary.test(run_conf={"scenario": "healthy", "require_approval": True})
    human.join(timeout=10)
    assert "error" not in answered, answered.get("error")
    detail, answer = answered["detail"], answered["answer"]
    assert detail.status_code == 200, detail.text
    assert "p95_latency_ms" in detail.json()["body"]  # the serving verdict is the Markdown body
    assert answer.status_code == 200, answer.text
    assert states(dag_run)["promote"] == "success", states(dag_run)
    promoted = dag_run.get_task_instance("promote").xcom_pull(task_ids="promote")
    assert promoted["approved_by"] == "release-manager"
    registry = MetricsStoreHook().registry()
    assert registry.alias_version(MODEL, "champion") == promoted["version"]

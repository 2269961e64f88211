"""Shared pieces of operator tests: a minimal task instance context, an isolated store/report folder and
a registered model."""

from __future__ import annotations

import pytest


class FakeTaskInstance:
    """Just enough of a task instance for ``execute()``: identity and XCom."""

    def __init__(self, dag_id="dag", run_id="run_1", task_id="task", map_index=-1, xcoms=None):
        self.dag_id, self.run_id, self.task_id, self.map_index = dag_id, run_id, task_id, map_index
        self.pushed: dict[str, object] = {}
        self.xcoms = dict(xcoms or {})

    def xcom_push(self, key, value):
        self.pushed[key] = value

    def xcom_pull(self, task_ids=None, key="return_value"):
        return self.xcoms.get((task_ids, key))


@pytest.fixture
def task_context():
    """Build a context for ``execute()``: ``ctx = task_context(task_id="validate")``."""

    def build(**identity):
        return {"ti": FakeTaskInstance(**identity)}

    return build


@pytest.fixture
def isolated_store(monkeypatch, tmp_path):
    """This test's own embedded metrics store and report folder; returns (store path, report folder)."""
    store, reports = tmp_path / "store" / "metrics.db", tmp_path / "reports"
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE_PATH", str(store))
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", str(reports))
    return store, reports


@pytest.fixture
def registered(isolated_store):
    """Model ``churn`` version ``v2`` registered in this test's store; returns the registry."""
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.store.identity import RunIdentity

    registry = MetricsStoreHook().registry()
    registry.register(
        RunIdentity("train", "r1", "register", -1), name="churn", version="v2", artifact_uri="file:///m.pkl"
    )
    return registry

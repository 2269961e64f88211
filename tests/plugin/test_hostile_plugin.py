"""The plugin's FastAPI app attacked as a hostile user would, through FastAPI's TestClient.

Real components: the app built by ``create_app()`` with Airflow's own security dependencies, the test
auth manager of tests/plugin/restricted_auth_manager.py (SimpleAuthManager that denies chosen users
chosen DAGs), a migrated Airflow metadata database, a real SQLite metrics store and a real report folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from airflow_provider_mlprod.plugin.app import SECURITY_HEADERS
from airflow_provider_mlprod.plugin.health_data import HealthReader
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
from airflow_provider_mlprod.store.registry import ModelRegistry

DENIED = "secret_dag"
HOSTILE = '</script><script>alert("x")</script>\u202eevil'


def _validation(store: MetricsStore, dag_id: str, run_id: str, dataset: str, folder: Path) -> None:
    store.record_validation(
        RunIdentity(dag_id, run_id, "validate"),
        {
            "success": True,
            "counts": {"evaluated": 1, "passed": 1, "failed_critical": 0, "failed_warning": 0},
            "report_location": f"file://{folder}/validation/{dag_id}/{run_id}/validate.html",
        },
        suite=f"suite_of_{dag_id}",
        dataset=dataset,
    )


@pytest.fixture
def store(tmp_path):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    folder = tmp_path / "reports"
    registry, store = ModelRegistry(engine), MetricsStore(engine)
    for dag_id, model in (("release", "churn"), (DENIED, "fraud"), ("release", HOSTILE)):
        registry.register(
            RunIdentity(dag_id, "run_1", "register"),
            name=model,
            version="v1",
            artifact_uri="file:///m/v1",
            metrics={"auc": 0.8},
        )
        registry.record_blessing(
            RunIdentity(dag_id, "run_1", "gate"),
            name=model,
            version="v1",
            passed=True,
            baseline_version=None,
            summary={"passed": True, "metrics": [{"metric": "auc", "verdict": "pass", "reason": "ok"}]},
        )
        registry.promote(RunIdentity(dag_id, "run_1", "promote"), name=model, version="v1")
    store.record_metrics(
        RunIdentity("monitor", "run_1", "monitor"), {"roc_auc": 0.81}, model_name="churn", model_version="v1"
    )
    store.record_metrics(
        RunIdentity(DENIED, "run_1", "monitor"),
        {"secret_metric": 0.5},
        model_name="churn",
        model_version="v1",
    )
    _validation(store, "etl", "run_1", "orders", folder)
    _validation(store, DENIED, "run_2", "orders", folder)
    _validation(store, DENIED, "run_3", "payroll", folder)
    _validation(store, "etl", "run_4", "s3://lake/orders", folder)
    for dag_id in ("etl", DENIED):
        store.record_alert_delivery(
            dedup_key=f"{dag_id}/drift",
            channel="ops",
            delivered=True,
            attempts=1,
            identity=RunIdentity(dag_id, "run_1", "alert"),
        )
    for dag_id in ("etl", DENIED):
        report = folder / "validation" / dag_id / "run_1" / "validate.html"
        report.parent.mkdir(parents=True)
        report.write_text(f"<html>report of {dag_id}</html>")
    (tmp_path / "outside.html").write_text("OUTSIDE THE FOLDER")
    (folder / "root.html").write_text("ROOT OF THE FOLDER")
    try:
        yield engine, folder
    finally:
        engine.dispose()


@pytest.fixture
def client(store, airflow_db, monkeypatch):
    from airflow.api_fastapi.app import _AuthManagerState
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient
    from restricted_auth_manager import DENIED_DAGS_VARIABLE, RestrictedDagAuthManager

    from airflow_provider_mlprod.plugin import app as app_module

    engine, folder = store
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", str(folder))
    monkeypatch.setenv(DENIED_DAGS_VARIABLE, json.dumps({"bob": [DENIED]}))
    monkeypatch.setattr(app_module, "health_reader", lambda: HealthReader(engine))
    previous = _AuthManagerState.instance
    _AuthManagerState.instance = RestrictedDagAuthManager()
    app = app_module.create_app()
    app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="bob", role="viewer")
    try:
        yield TestClient(app)
    finally:
        _AuthManagerState.instance = previous


def _assert_secure(response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, response.request.url, name)


def test_a_denied_dag_leaves_no_trace_in_the_health_pages(client):
    """Failed before the fix: the pages listed every model, dataset, run and alert of every DAG."""
    index = client.get("/health/")
    assert index.status_code == 200
    assert "churn" in index.text
    assert "orders" in index.text
    assert "fraud" not in index.text
    assert "payroll" not in index.text
    assert client.get("/health/models/fraud").status_code == 404
    assert client.get("/health/models/fraud?dag_id=release").status_code == 404
    churn = client.get("/health/models/churn")
    assert churn.status_code == 200
    assert "roc_auc" in churn.text
    assert "secret_metric" not in churn.text
    assert DENIED not in churn.text
    orders = client.get("/health/datasets/orders")
    assert "suite_of_etl" in orders.text
    assert "/reports/validation/etl/run_1/validate.html" in orders.text
    assert DENIED not in orders.text
    assert DENIED not in client.get("/health/datasets/payroll").text
    alerts = client.get("/health/alerts")
    assert "etl/drift" in alerts.text
    assert DENIED not in alerts.text


@pytest.mark.parametrize(
    "route",
    [
        f"/health/dags/{DENIED}",
        f"/health/dags/{DENIED}?task_id=validate",
        f"/health/dags/{DENIED}?dag_id=etl",
        f"/reports/validation/{DENIED}/run_1/validate.html",
        f"/reports/validation/{DENIED}/run_1/validate.html?dag_id=etl",
    ],
)
def test_a_denied_dag_is_refused_by_every_route(client, route):
    response = client.get(route)
    assert response.status_code == 403
    assert "report of" not in response.text
    _assert_secure(response)


def test_a_readable_report_is_served(client):
    response = client.get("/reports/validation/etl/run_1/validate.html")
    assert response.status_code == 200
    assert response.text == "<html>report of etl</html>"
    _assert_secure(response)


@pytest.mark.parametrize(
    "path",
    [
        "/reports/validation/etl/run_1/..%2f..%2f..%2foutside.html",
        "/reports/validation/etl/run_1/%2e%2e%2f%2e%2e%2froot.html",
        "/reports/validation/etl/run_1/%252e%252e%252froot.html",
        "/reports/validation/etl/..%5c..%5croot.html/validate.html",
        "/reports/validation/etl/run_1/..%5c..%5c..%5croot.html",
        "/reports/validation/etl/run_1/%E2%80%A5%2Froot.html",  # two-dot leader
        "/reports/validation/etl/run_1/%EF%BC%8E%EF%BC%8E%2Froot.html",  # fullwidth full stops
        "/reports/validation/etl/run_1/validate.html%00.html",
        "/reports/validation/etl/run_1/" + "a" * 5000 + ".html",
        "/reports/validation/etl/%2e%2e/validate.html",
        "/reports/..%2fvalidation/etl/run_1/validate.html",
        "/reports/validation/etl/run_1/%2fetc%2fpasswd.html",
        "/reports/validation/etl/run_1/.html",
        "/reports/secrets/etl/run_1/validate.html",
        "/reports/validation/etl/run_1/<script>alert(1)</script>.html",
        "/reports/validation/~/run_1/validate.html",  # "~" means "any DAG" to Airflow's access check
        "/reports/validation/%7E/run_1/validate.html",
    ],
)
def test_traversal_variants_are_refused_with_secure_headers(client, path):
    response = client.get(path)
    assert response.status_code in (400, 404), response.status_code
    assert "OUTSIDE" not in response.text
    assert "ROOT OF" not in response.text
    assert "<script>" not in response.text
    _assert_secure(response)


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/reports/validation/etl/run_1/validate.html"),
        ("PUT", "/health/"),
        ("DELETE", "/health/models/churn"),
        ("OPTIONS", "/health/"),
        ("HEAD", "/reports/validation/etl/run_1/validate.html"),
        ("GET", "/no/such/route"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    ],
)
def test_other_methods_and_routes_get_errors_with_secure_headers(client, method, route):
    """Failed before the fix: FastAPI's own 404/405 answers carried no CSP and no no-store."""
    response = client.request(method, route)
    assert response.status_code in (404, 405)
    _assert_secure(response)


def test_names_with_slashes_have_pages(client):
    """Failed before the fix: a model or dataset name with ``/`` (a URI, ``</script>``) gave a 404."""
    index = client.get("/health/")
    assert 'href="/mlprod/health/datasets/s3%3A%2F%2Flake%2Forders"' in index.text
    page = client.get("/health/datasets/s3%3A%2F%2Flake%2Forders")
    assert page.status_code == 200
    assert "suite_of_etl" in page.text
    assert "Dataset s3://lake/orders" in page.text


def test_hostile_model_names_are_escaped(client):
    index = client.get("/health/")
    assert "<script>" not in index.text
    assert "</script>" not in index.text
    assert "%3C%2Fscript%3E" in index.text  # the link to its page, percent-encoded
    from urllib.parse import quote

    page = client.get("/health/models/" + quote(HOSTILE, safe=""))
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;/script&gt;&lt;script&gt;" in page.text
    missing = client.get("/health/models/" + quote('<img src=x onerror="alert(1)">', safe=""))
    assert missing.status_code == 404
    assert "<img" not in missing.text
    _assert_secure(missing)


def test_anonymous_requests_get_401_with_secure_headers(store, airflow_db, monkeypatch):
    from airflow.api_fastapi.app import _AuthManagerState
    from fastapi.testclient import TestClient
    from restricted_auth_manager import RestrictedDagAuthManager

    from airflow_provider_mlprod.plugin import app as app_module

    engine, folder = store
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", str(folder))
    monkeypatch.setattr(app_module, "health_reader", lambda: HealthReader(engine))
    previous = _AuthManagerState.instance
    _AuthManagerState.instance = RestrictedDagAuthManager()
    try:
        client = TestClient(app_module.create_app())
        for route in (
            "/health/",
            "/health/models/churn",
            "/reports/validation/etl/run_1/validate.html",
            "/reports/validation/etl/run_1/validate.html?token=abc",
        ):
            response = client.get(route)
            assert response.status_code in (401, 403), route
            assert "report of" not in response.text
            assert "churn" not in response.text
            _assert_secure(response)
        forged = client.get("/health/", headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code in (401, 403)
        _assert_secure(forged)
    finally:
        _AuthManagerState.instance = previous


@pytest.mark.parametrize(
    ("dag_id", "served"),
    [
        ("etl", "etl"),
        ("_private_", "_private_"),  # was stored as "private": another DAG's address and authorisation
        ("café", None),  # was stored as "caf", shared with every DAG whose id differs only there
        ("a..b", None),
        (".hidden", None),
    ],
)
def test_a_report_address_names_exactly_its_dag(tmp_path, dag_id, served):
    """Failed before the fix for ``_private_`` and ``café``: the report folder of a DAG was a mangled
    id, so the plugin authorised the report against a different DAG (or none)."""
    from airflow_provider_mlprod.operators.reports import report_link_url, report_path, report_relative_parts

    path = report_path(
        "validation", RunIdentity(dag_id, "manual__2026-01-01T00:00:00+00:00", "v"), str(tmp_path)
    )
    parts = report_relative_parts(f"file://{path}", str(tmp_path))
    if served is None:
        assert parts is None
        assert report_link_url(f"file://{path}", folder=str(tmp_path), base_url="") == ""
    else:
        assert parts is not None
        assert parts[1] == served


@pytest.mark.parametrize("kind", ["outputs", "serving"])
def test_every_kind_of_report_an_operator_writes_gets_a_link(tmp_path, kind):
    """Failed before the fix: output-check and serving reports were written but never linked nor served."""
    from airflow_provider_mlprod.operators.reports import report_link_url, report_path
    from airflow_provider_mlprod.plugin.reports import read_report

    path = report_path(kind, RunIdentity("etl", "run_1", "check"), str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text("<html>ok</html>")
    url = report_link_url(f"file://{path}", folder=str(tmp_path), base_url="")
    assert url == f"/mlprod/reports/{kind}/etl/run_1/check.html"
    assert read_report(kind, "etl", "run_1", "check.html", folder=str(tmp_path)) == b"<html>ok</html>"


def test_reports_on_object_storage_are_served_and_traversal_refused():
    """A report folder on object storage (fsspec's in-memory filesystem, through ObjectStoragePath)."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_mlprod.exceptions import ConfigurationError
    from airflow_provider_mlprod.plugin.reports import UnknownReport, read_report

    folder = "memory://mlprod-hostile/reports"
    report = ObjectStoragePath(folder) / "drift" / "etl" / "run_1" / "check.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("<html>drift</html>")
    (ObjectStoragePath("memory://mlprod-hostile") / "secret.html").write_text("secret")
    assert read_report("drift", "etl", "run_1", "check.html", folder=folder) == b"<html>drift</html>"
    with pytest.raises(UnknownReport):
        read_report("drift", "etl", "run_2", "check.html", folder=folder)
    with pytest.raises(ConfigurationError):
        read_report("drift", "..", "..", "secret.html", folder=folder)


def test_with_multi_team_each_dag_is_decided_with_its_team(airflow_db, monkeypatch):
    """Failed before the fix: the model-health view asked the auth manager without the DAG's team, so a
    team-scoped auth manager decided a team's DAG as if it had none."""
    from airflow.api_fastapi.app import _AuthManagerState
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.team import Team, dag_bundle_team_association_table
    from airflow.utils.session import create_session
    from restricted_auth_manager import RestrictedDagAuthManager

    from airflow_provider_mlprod.plugin.auth import readable_dag_ids

    class TeamAuthManager(RestrictedDagAuthManager):
        """Lets a user read only the DAGs of the team named like them (and DAGs of no team)."""

        def filter_authorized_dag_ids(self, *, dag_ids, user, method="GET", team_name=None, **kwargs):
            return set(dag_ids) if team_name in (None, user.get_name()) else set()

    monkeypatch.setenv("AIRFLOW__CORE__MULTI_TEAM", "True")
    bundle, team, dag_id = "hostile_bundle_ops", "hostile_ops", "hostile_team_dag"
    with create_session() as session:
        session.merge(DagBundleModel(name=bundle))
        session.merge(Team(name=team))
        session.flush()
        session.execute(dag_bundle_team_association_table.delete())
        session.execute(
            dag_bundle_team_association_table.insert().values(dag_bundle_name=bundle, team_name=team)
        )
        session.merge(DagModel(dag_id=dag_id, bundle_name=bundle, fileloc="/dev/null"))
    previous = _AuthManagerState.instance
    _AuthManagerState.instance = TeamAuthManager()
    try:
        dags = {dag_id, "unteamed_dag"}
        ops = SimpleAuthManagerUser(username=team, role="viewer")
        other = SimpleAuthManagerUser(username="hostile_other", role="viewer")
        assert readable_dag_ids(ops, dags) == dags
        assert readable_dag_ids(other, dags) == {"unteamed_dag"}
    finally:
        _AuthManagerState.instance = previous
        with create_session() as session:
            session.execute(dag_bundle_team_association_table.delete())


class _SummaryTaskInstance:
    """A task instance whose XCom is a validation summary with a report under the report folder."""

    dag_id, run_id, task_id, map_index = "etl", "run_1", "alert", -1

    def __init__(self, folder: Path) -> None:
        self.summary = {
            "success": False,
            "suite_name": "orders_suite",
            "dataset": "orders",
            "counts": {"evaluated": 2, "passed": 1, "failed_critical": 1, "failed_warning": 0},
            "failures": [{"expectation_type": "expect_column_values_to_not_be_null", "column": "id"}],
            "report_location": f"file://{folder}/validation/etl/run_1/validate.html",
        }

    def xcom_pull(self, task_ids: str, key: str) -> dict:
        return self.summary


def test_a_summary_alert_links_to_its_report_and_the_link_opens_it(client, store, httpserver, monkeypatch):
    """The alert's report link is the plugin's address under ``[api] base_url``; the channel receives
    exactly that URL, and the route it names serves the report (to a user allowed to read the DAG)."""
    from airflow_provider_mlprod.alerts.channels import JsonWebhookTarget
    from airflow_provider_mlprod.alerts.delivery import RetryPolicy
    from airflow_provider_mlprod.alerts.routing import Channel, send_alert
    from airflow_provider_mlprod.notifications.mlprod import summary_alert

    _, folder = store
    base = "http://airflow.example:8080/sub"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", base)
    httpserver.expect_request("/hook").respond_with_data("ok")

    alert = summary_alert(_SummaryTaskInstance(folder), "validate")
    report = send_alert(
        alert, [Channel("hook", JsonWebhookTarget(httpserver.url_for("/hook")), RetryPolicy())]
    )

    assert report.delivered_channels == ["hook"]
    [(request, _)] = httpserver.log
    links = {link["label"]: link["url"] for link in json.loads(request.get_data())["links"]}
    assert links == {
        "Report": f"{base}/mlprod/reports/validation/etl/run_1/validate.html",
        "Run": f"{base}/dags/etl/runs/run_1",
    }
    served = client.get(links["Report"].removeprefix(f"{base}/mlprod"))
    assert served.status_code == 200
    assert served.text == "<html>report of etl</html>"

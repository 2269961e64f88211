"""ServingLoadTestOperator against real model-server processes on loopback."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_mlprod.examples.model_server import ModelServerProcess
from airflow_provider_mlprod.hooks.store import MetricsStoreHook
from airflow_provider_mlprod.operators.serving import SERVING_GATE_KIND, ServingLoadTestOperator
from airflow_provider_mlprod.serving.loadgen import EndpointUnreachable

CHECKS = [
    {"check": "status"},
    {"check": "json"},
    {"check": "range", "field": "churn_probability", "min": 0, "max": 1},
    {"check": "labels", "field": "label", "allowed": ["churn", "stay"]},
]
THRESHOLDS = {
    "p95_latency_ms": {"max": 2000},
    "error_rate": {"max": 0.01},
    "timeout_rate": {"max": 0.0},
    "output_check_pass_rate": {"min": 0.99},
}
SECRET_PASSWORD = "pw-3f9c1d-never-shown"
SECRET_KEY = "key-77ab20-never-shown"


@pytest.fixture(scope="module")
def scorer_file(tmp_path_factory):
    """The example model's scorer, exported once (training it takes a second or two)."""
    from airflow_provider_mlprod.examples.model_server import main

    path = tmp_path_factory.mktemp("scorer") / "scorer.json"
    main(["--export-scorer", str(path)])
    return str(path)


@pytest.fixture
def requests_file(tmp_path):
    path = tmp_path / "requests.jsonl"
    rows = [
        {"tenure_months": i % 70, "monthly_charges": 40.0 + i % 50, "support_calls": i % 5, "usage_gb": 12.5}
        | {"plan": ["basic", "premium", "business"][i % 3]}
        for i in range(30)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def http_connection(monkeypatch, conn_id: str, url: str, *, password: str | None = None, extra=None) -> str:
    host, port = url.removeprefix("http://").split(":")
    conn = {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
    if password:
        conn |= {"login": "loader", "password": password}
    if extra:
        conn["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def gate(requests_file, **overrides) -> ServingLoadTestOperator:
    arguments = {
        "task_id": "load_test",
        "model_name": "churn",
        "model_version": "v2",
        "http_conn_id": "candidate",
        "requests_path": str(requests_file),
        "requests": 60,
        "concurrency": 4,
        "warmup_requests": 5,
        "timeout_s": 2.0,
        "output_checks": CHECKS,
        "thresholds": THRESHOLDS,
    } | overrides
    return ServingLoadTestOperator(**arguments)


def test_healthy_candidate_beside_champion_passes_and_is_blessed(
    monkeypatch, registered, requests_file, scorer_file, task_context
):
    with (
        ModelServerProcess(mode="healthy", scorer=scorer_file) as candidate,
        ModelServerProcess(mode="healthy", scorer=scorer_file) as champion,
    ):
        http_connection(monkeypatch, "candidate", candidate.url)
        http_connection(monkeypatch, "champion", champion.url)
        operator = gate(
            requests_file,
            champion_http_conn_id="champion",
            thresholds=THRESHOLDS | {"error_rate_diff": {"max": 0.01}},
        )
        summary = operator.execute(task_context())
    assert summary["passed"] is True
    endpoints = {e["name"]: e for e in summary["load_test"]["endpoints"]}
    assert endpoints["candidate"]["requests"] == endpoints["champion"]["requests"] == 60
    assert endpoints["candidate"]["warmup_requests"] == 5
    assert endpoints["candidate"]["outcomes"] == {"2xx": 60}
    blessing = registered.latest_blessing("churn", "v2")
    assert blessing.passed is True
    assert blessing.kind == SERVING_GATE_KIND
    history = MetricsStoreHook().metrics_store().metric_history("p95_latency_ms", model_name="churn")
    assert [point.model_version for point in history] == ["v2"]
    page = Path(summary["report_location"].removeprefix("file://")).read_text(encoding="utf-8")
    assert page.count("<svg") == 2
    assert "champion" in page


def test_unreachable_endpoint_fails_closed_without_a_blessing(
    monkeypatch, registered, requests_file, task_context, closed_port
):
    http_connection(monkeypatch, "candidate", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(EndpointUnreachable, match="answered none"):
        gate(requests_file).execute(task_context())
    assert registered.latest_blessing("churn", "v2") is None


def test_all_requests_failing_rejects_the_version(
    monkeypatch, registered, requests_file, scorer_file, task_context
):
    with ModelServerProcess(mode="errors", error_share=1.0, scorer=scorer_file) as server:
        http_connection(monkeypatch, "candidate", server.url)
        context = task_context()
        with pytest.raises(AirflowFailException, match=r"error_rate=1 is above the maximum 0\.01"):
            gate(requests_file).execute(context)
    summary = context["ti"].pushed["return_value"]
    assert summary["load_test"]["endpoints"][0]["outcomes"] == {"5xx": 60}
    assert registered.latest_blessing("churn", "v2").passed is False


def test_non_json_responses_fail_the_output_checks(
    monkeypatch, registered, requests_file, scorer_file, task_context
):
    with ModelServerProcess(mode="gibberish", gibberish_share=1.0, scorer=scorer_file) as server:
        http_connection(monkeypatch, "candidate", server.url)
        context = task_context()
        with pytest.raises(AirflowFailException, match="output_check_pass_rate=0 is below the minimum"):
            gate(requests_file).execute(context)
    endpoint = context["ti"].pushed["return_value"]["load_test"]["endpoints"][0]
    assert endpoint["error_rate"] == 0.0  # every reply was a 200: only the checks catch it
    assert endpoint["check_failures"]["json"] > 0
    assert registered.latest_blessing("churn", "v2").passed is False


def test_hanging_endpoint_is_bounded_by_the_timeout(
    monkeypatch, registered, requests_file, scorer_file, task_context
):
    with ModelServerProcess(mode="hang", scorer=scorer_file) as server:
        http_connection(monkeypatch, "candidate", server.url)
        context = task_context()
        operator = gate(requests_file, requests=4, warmup_requests=0, timeout_s=0.3)
        with pytest.raises(AirflowFailException, match="timeout_rate=1 is above the maximum 0"):
            operator.execute(context)
    endpoint = context["ti"].pushed["return_value"]["load_test"]["endpoints"][0]
    assert endpoint["outcomes"] == {"timeout": 4}
    assert endpoint["latency_ms"]["p50_ms"] >= 300  # each timeout counts as the time it waited
    verdicts = {m["metric"]: m for m in context["ti"].pushed["return_value"]["metrics"]}
    assert verdicts["p95_latency_ms"]["value"] >= 300


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no requests"),
        ('{"plan": "basic"}\n{"plan": "basic"}\n{"plan": oops}\n', "line 3 is not valid JSON"),
        ('{"plan": "basic"}\n[1, 2]\n', "line 2 is a JSON list"),
    ],
)
def test_bad_request_sets_name_the_problem(
    monkeypatch, registered, tmp_path, scorer_file, task_context, content, message
):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with ModelServerProcess(mode="healthy", scorer=scorer_file) as server:
        http_connection(monkeypatch, "candidate", server.url)
        with pytest.raises(AirflowFailException, match=message):
            gate(path).execute(task_context())
    assert registered.latest_blessing("churn", "v2") is None


def test_auth_reaches_the_server_and_secrets_stay_out_of_logs_xcom_and_store(
    monkeypatch, registered, requests_file, task_context, httpserver, caplog, capfd
):
    httpserver.expect_request("/predict", method="POST").respond_with_json(
        {"churn_probability": 0.3, "label": "stay"}
    )
    http_connection(
        monkeypatch,
        "candidate",
        httpserver.url_for("/").rstrip("/"),
        password=SECRET_PASSWORD,
        extra={"X-Api-Key": SECRET_KEY},
    )
    context = task_context()
    with caplog.at_level(logging.DEBUG):
        summary = gate(requests_file, requests=10, warmup_requests=0).execute(context)
    request, _ = httpserver.log[0]
    assert request.headers["X-Api-Key"] == SECRET_KEY
    assert request.authorization.password == SECRET_PASSWORD
    blessing = registered.latest_blessing("churn", "v2")
    page = Path(summary["report_location"].removeprefix("file://")).read_text(encoding="utf-8")
    task_log = "".join(capfd.readouterr())  # the operator's log lines (outside a task runner: stdout)
    assert "Loading candidate at http://127.0.0.1:" in task_log  # the log that is searched below
    for text in (
        json.dumps(summary),
        json.dumps(context["ti"].pushed),
        caplog.text,
        task_log,
        json.dumps(blessing.summary),
        page,
    ):
        assert SECRET_PASSWORD not in text
        assert SECRET_KEY not in text


def test_parse_time_errors_name_the_argument(requests_file):
    with pytest.raises(ValueError, match="open loop needs a positive target rate"):
        gate(requests_file, mode="open")
    with pytest.raises(ValueError, match="if_no_baseline must be 'pass' or 'fail'"):
        gate(
            requests_file,
            thresholds={"p95_latency_ms": {"greater_is_better": False, "min_absolute_change": -5}},
        )
    with pytest.raises(ValueError, match="exactly one request set"):
        gate(requests_file, requests_sql="SELECT 1", sql_conn_id="w")
    with pytest.raises(ValueError, match="unknown check"):
        gate(requests_file, output_checks=[{"check": "vibes"}])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"requests_sql": "SELECT 1"}, "requests_sql need sql_conn_id"),
        (
            {"requests_sql": "SELECT body FROM r) AS t; DROP TABLE r; --", "sql_conn_id": "w"},
            "requests_sql holds 2 statements",
        ),
        (
            {"requests_sql": "SELECT body FROM r WHERE b = :batch", "sql_conn_id": "w"},
            r"requests_sql uses :batch but requests_sql_parameters give no value",
        ),
        (
            {"requests_sql": "SELECT body FROM r", "sql_conn_id": "w", "requests_sql_parameters": {"b": 1}},
            r"requests_sql_parameters \['b'\] are not used by requests_sql",
        ),
        (
            {"requests_sql": "SELECT body FROM r", "sql_conn_id": "w", "hook_params": ["x"]},
            "hook_params must be a mapping",
        ),
    ],
)
def test_request_sql_arguments_are_checked_at_parse_time(arguments, message):
    with pytest.raises(ValueError, match=f"task 'load_test': {message}"):
        gate(None, requests_path=None, **arguments)


def test_request_sql_parameters_are_templated_and_checked_after_rendering():
    operator = gate(
        None,
        requests_path=None,
        requests_sql="SELECT body FROM r WHERE b = :batch",
        requests_sql_parameters={"batch": "{{ run_id }}"},
        sql_conn_id="{{ params.warehouse }}",
    )
    assert {"requests_sql", "requests_sql_parameters", "sql_conn_id"} <= set(operator.template_fields)
    assert operator.template_fields_renderers["requests_sql_parameters"] == "json"


def test_requests_read_from_sql_with_bound_parameters(
    monkeypatch, registered, scorer_file, task_context, db_url, airflow_sql_connection
):
    """Only the rows of the bound batch are sent: the other batch's bodies would fail the gate."""
    import sqlalchemy as sa

    schema = airflow_sql_connection(db_url, "warehouse")
    table = f"{schema}.load_requests" if schema else "load_requests"
    good = {
        "tenure_months": 7,
        "monthly_charges": 55.0,
        "support_calls": 1,
        "usage_gb": 12.5,
        "plan": "basic",
    }
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE load_requests (batch VARCHAR(40), body TEXT)"))
        connection.execute(
            sa.text("INSERT INTO load_requests VALUES (:batch, :body)"),
            [{"batch": "b' OR '1'='1", "body": json.dumps(good)}] * 5
            + [{"batch": "other", "body": json.dumps({"unexpected": "shape"})}] * 5,
        )
    engine.dispose()
    with ModelServerProcess(mode="healthy", scorer=scorer_file) as candidate:
        http_connection(monkeypatch, "candidate", candidate.url)
        operator = gate(
            None,
            requests_path=None,
            requests_sql=f"SELECT body FROM {table} WHERE batch = :batch",
            requests_sql_parameters={"batch": "b' OR '1'='1"},
            sql_conn_id="warehouse",
            requests=20,
        )
        summary = operator.execute(task_context())
    assert summary["passed"] is True
    (endpoint,) = summary["load_test"]["endpoints"]
    assert endpoint["requests"] == 20
    assert (endpoint["outcomes"], endpoint["output_check_pass_rate"]) == ({"2xx": 20}, 1.0)


class OutletEvents(dict):
    """Records what a task adds to its outlet aliases."""

    class Alias(list):
        def add(self, asset, extra=None):
            self.append((asset.uri, extra))

    def __missing__(self, key):
        self[key] = self.Alias()
        return self[key]


@pytest.fixture
def request_log_conn(db_url, airflow_sql_connection):
    """A request log of version v2: 120 requests in [12:00, 12:02), every 10th a 503."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    metadata = sa.MetaData()
    table = sa.Table(
        "request_log",
        metadata,
        sa.Column("ts", sa.DateTime),
        sa.Column("latency_ms", sa.Float),
        sa.Column("status", sa.Integer),
        sa.Column("model_version", sa.String(20)),
    )
    metadata.create_all(engine)
    start = datetime(2026, 3, 1, 12, 0)
    rows = [
        {"ts": start + timedelta(seconds=i), "latency_ms": 5.0 + i, "status": 503 if i % 10 == 0 else 200}
        | {"model_version": "v2"}
        for i in range(120)
    ]
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    return "warehouse", airflow_sql_connection(db_url, "warehouse")


def slo_monitor(connection, **overrides):
    from airflow_provider_mlprod.operators.serving import ServingSloMonitorOperator

    arguments = {
        "task_id": "slo",
        "sql_conn_id": connection[0],
        "model_name": "churn",
        "request_log_table": "request_log",
        "request_log_schema": connection[1],
        "model_version": "v2",
        "window_start": "2026-03-01T12:00:00+00:00",
        "window_end": "2026-03-01T12:02:00+00:00",
        "slos": {"p95_latency_ms": {"max": 500}, "error_rate": {"max": 0.05}},
    } | overrides
    return ServingSloMonitorOperator(**arguments)


def test_slo_breach_emits_the_asset_and_records_the_series(isolated_store, request_log_conn, task_context):
    context = task_context() | {"outlet_events": OutletEvents()}
    summary = slo_monitor(request_log_conn).execute(context)
    assert summary["breached"] is True
    assert summary["values"]["error_rate"] == pytest.approx(0.1)
    [(_alias, events)] = context["outlet_events"].items()
    assert events == [("mlprod://models/churn/slo_breach", events[0][1])]
    assert "error_rate=0.1 is above the maximum 0.05" in events[0][1]["breaches"][0]
    points = MetricsStoreHook().metrics_store().metric_history("error_rate", model_name="churn")
    assert [(p.model_version, p.dataset, p.value) for p in points] == [("v2", "serving_slo", 0.1)]


def test_slo_within_bounds_emits_nothing(isolated_store, request_log_conn, task_context):
    context = task_context() | {"outlet_events": OutletEvents()}
    summary = slo_monitor(request_log_conn, slos={"error_rate": {"max": 0.2}}).execute(context)
    assert summary["breached"] is False
    assert not any(context["outlet_events"].values())


def test_slo_breach_with_on_breach_fail_fails_the_task(isolated_store, request_log_conn, task_context):
    context = task_context() | {"outlet_events": OutletEvents()}
    with pytest.raises(AirflowFailException, match="breached its SLOs"):
        slo_monitor(request_log_conn, on_breach="fail").execute(context)


def test_on_breach_is_named_in_its_log_line_and_its_error(
    isolated_store, request_log_conn, task_context, capfd
):
    context = task_context() | {"outlet_events": OutletEvents()}
    assert slo_monitor(request_log_conn, on_breach="continue").execute(context)["breached"] is True
    logged = "".join(capfd.readouterr())
    assert "continuing (on_breach='continue')" in logged
    assert "on_failure" not in logged
    with pytest.raises(
        ValueError, match="task 'slo': on_breach must be one of fail, skip, continue, got 'warn'"
    ):
        slo_monitor(request_log_conn, on_breach="warn")


def test_a_plain_url_endpoint_and_credentials_in_it_refused(
    registered, requests_file, scorer_file, task_context
):
    with ModelServerProcess(mode="healthy", scorer=scorer_file) as server:
        operator = gate(requests_file, http_conn_id=None, endpoint_url=server.url + "/predict", requests=10)
        assert operator.execute(task_context())["passed"] is True
    leaky = gate(requests_file, http_conn_id=None, endpoint_url="http://u:pw@127.0.0.1:1/predict")
    with pytest.raises(AirflowFailException, match="must not carry credentials") as failure:
        leaky.execute(task_context())
    assert "pw" not in str(failure.value)


def test_slo_monitor_checks_identifiers_at_parse_time_unless_templated():
    with pytest.raises(ValueError, match=r"request log column 'latency_ms' .* not a plain SQL identifier"):
        slo_monitor(("warehouse", None), columns={"latency_ms": "latency; drop table x"})
    with pytest.raises(ValueError, match="request log table"):
        slo_monitor(("warehouse", None), request_log_table="log--")
    assert slo_monitor(("warehouse", None), request_log_table="{{ params.table }}").request_log_table


def test_slo_monitor_names_the_connection_of_a_missing_table(isolated_store, request_log_conn, task_context):
    context = task_context() | {"outlet_events": OutletEvents()}
    with pytest.raises(AirflowFailException, match="request log 'no_such_log' on connection 'warehouse'"):
        slo_monitor(request_log_conn, request_log_table="no_such_log").execute(context)

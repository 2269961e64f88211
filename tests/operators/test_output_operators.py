"""Output operators: sources, outcome policy, report, store, quarantine, golden-set gate and blessing."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_mlprod.hooks.store import MetricsStoreHook
from airflow_provider_mlprod.operators.outputs import PredictionOutputCheckOperator
from airflow_provider_mlprod.operators.reports import ReportLink
from airflow_provider_mlprod.validation.output_folder import read_output_manifest

CHECKS = [
    {"check": "valid_json", "column": "payload"},
    {"check": "non_letter_share", "column": "answer", "min_pass_rate": 0.9},
    {"check": "refusal", "column": "answer", "severity": "warning", "min_pass_rate": 1.0},
]


def outputs(gibberish: int = 0, refusals: int = 0, broken_json: int = 0) -> pd.DataFrame:
    rows = [
        {"id": i, "answer": f"The customer {i} will likely stay.", "payload": json.dumps({"p": i / 20})}
        for i in range(20)
    ]
    for i in range(gibberish):
        rows[i]["answer"] = "<script>alert(1)</script>#$%&*@!?" * 2
    for i in range(refusals):
        rows[-1 - i]["answer"] = "As an AI language model I cannot answer."
    for i in range(broken_json):
        rows[5 + i]["payload"] = '{"p": 0.'
    return pd.DataFrame(rows)


def operator(**kwargs) -> PredictionOutputCheckOperator:
    kwargs.setdefault("checks", CHECKS)
    return PredictionOutputCheckOperator(task_id="check_outputs", **kwargs)


def test_clean_outputs_pass_with_report_store_and_link(task_context, isolated_store):
    _, reports = isolated_store
    context = task_context(task_id="check_outputs")
    result = operator(dataframe_callable=outputs, dataset_name="answers").execute(context)
    assert result["success"] is True
    assert result["counts"] == {"evaluated": 3, "passed": 3, "failed_critical": 0, "failed_warning": 0}
    assert json.loads(json.dumps(result)) == result
    report = reports / "outputs" / "dag" / "run_1" / "check_outputs.html"
    assert context["ti"].pushed[ReportLink().xcom_key] == f"file://{report}"
    store = MetricsStoreHook().metrics_store()
    (row,) = store.validation_history(suite="output_checks")
    assert (row["dataset"], row["success"], row["rows_checked"]) == ("answers", True, 20)
    (point,) = store.metric_history("output_pass_rate.valid_json(payload)", dataset="answers")
    assert point.value == 1.0


def test_gibberish_fails_with_escaped_examples_in_the_report(task_context, isolated_store):
    _, reports = isolated_store
    context = task_context(task_id="check_outputs")
    with pytest.raises(AirflowFailException, match=r"non_letter_share\(answer\)"):
        operator(dataframe_callable=outputs, dataframe_kwargs={"gibberish": 3}).execute(context)
    summary = context["ti"].pushed["return_value"]
    (failed,) = [c for c in summary["checks"] if not c["success"]]
    assert (failed["failed_rows"], failed["ran_in"]) == (3, "python")
    page = (reports / "outputs" / "dag" / "run_1" / "check_outputs.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_warning_check_reports_and_skip_policy(task_context, isolated_store):
    result = operator(dataframe_callable=outputs, dataframe_kwargs={"refusals": 2}).execute(task_context())
    assert result["success"] is True
    assert result["counts"]["failed_warning"] == 1
    with pytest.raises(AirflowSkipException):
        operator(dataframe_callable=outputs, dataframe_kwargs={"broken_json": 1}, on_failure="skip").execute(
            task_context()
        )
    result = operator(
        dataframe_callable=outputs, dataframe_kwargs={"broken_json": 1}, on_failure="continue"
    ).execute(task_context())
    assert result["success"] is False


def test_quarantine_splits_rows_with_the_checks_they_failed(task_context, isolated_store, tmp_path):
    folder = tmp_path / "quarantine"
    source = tmp_path / "outputs.csv"
    outputs(gibberish=2, broken_json=1, refusals=1).to_csv(source, index=False)
    result = operator(file_path=str(source), quarantine_folder=str(folder), on_failure="continue").execute(
        task_context()
    )
    assert result["quarantine"]["failing_rows"] == 3  # the refusal is a warning: not quarantined
    published = read_output_manifest(folder)["locations"]  # each try's files, published by a manifest
    assert published["failing"] == result["quarantine"]["failing_location"]
    failing = pd.read_csv(published["failing"])
    assert sorted(failing["failed_checks"]) == ["non_letter_share(answer)"] * 2 + ["valid_json(payload)"]
    assert len(pd.read_csv(published["passing"])) == 17
    # the quarantine may not be, or hold, the file it checks
    with pytest.raises(AirflowFailException, match=r"quarantine_folder .* is or contains the input"):
        operator(file_path=str(source), quarantine_folder=str(tmp_path), on_failure="continue").execute(
            task_context()
        )


def string_view_outputs(**kwargs) -> pd.DataFrame:
    """``outputs`` with its text held by pyarrow as string_view (as pandas reads such a Parquet file)."""
    import pyarrow as pa

    frame = outputs(**kwargs)
    for name in ("answer", "payload"):
        frame[name] = pd.Series(
            pa.array(frame[name].tolist(), pa.string_view()), dtype=pd.ArrowDtype(pa.string_view())
        )
    return frame


def test_string_view_outputs_are_checked_and_quarantined_like_plain_text(
    task_context, isolated_store, tmp_path
):
    """The checks and the quarantine crashed on pyarrow string_view text (pandas cannot filter it)."""
    planted = {"gibberish": 2, "broken_json": 1, "refusals": 1}
    results = {}
    for name, frames in (("plain", outputs), ("views", string_view_outputs)):
        result = operator(
            dataframe_callable=frames,
            dataframe_kwargs=planted,
            quarantine_folder=str(tmp_path / name),
            on_failure="continue",
        ).execute(task_context())
        failing = pd.read_parquet(result.pop("quarantine")["failing_location"])
        results[name] = (result["checks"], result["counts"], failing.astype(str).to_dict("records"))
    assert str(string_view_outputs()["answer"].dtype) == "string_view[pyarrow]"
    assert results["views"] == results["plain"]
    assert len(results["views"][2]) == 3


def test_sql_table_checks_run_in_the_database(db_url, airflow_sql_connection, task_context, isolated_store):
    schema = airflow_sql_connection(db_url)
    engine = sa.create_engine(db_url)
    outputs(gibberish=4).to_sql("predictions", engine, index=False)
    engine.dispose()
    table = f"{schema}.predictions" if schema else "predictions"
    context = task_context()
    with pytest.raises(AirflowFailException):
        operator(sql_conn_id="warehouse", table=table).execute(context)
    summary = context["ti"].pushed["return_value"]
    ran = {c["check"]: c["ran_in"] for c in summary["checks"]}
    assert ran["refusal"] == "sql"
    assert ran["non_letter_share"] == ("sql" if schema else "python")
    assert {c["check"]: c["failed_rows"] for c in summary["checks"]}["non_letter_share"] == 4


def test_bad_input_fails_before_reading(task_context, isolated_store, db_url, airflow_sql_connection):
    schema = airflow_sql_connection(db_url)
    with pytest.raises(AirflowFailException, match=r"column.*not found.*'answr'"):
        operator(checks=[{"check": "not_empty", "column": "answr"}], dataframe_callable=outputs).execute(
            task_context()
        )
    with pytest.raises(AirflowFailException, match="invalid regex"):
        operator(
            checks=[{"check": "regex", "column": "answer", "pattern": "["}], dataframe_callable=outputs
        ).execute(task_context())
    table = f"{schema}.missing" if schema else "missing"
    with pytest.raises(AirflowFailException, match="does not exist"):
        operator(sql_conn_id="warehouse", table=table).execute(task_context())


def test_constructor_rejects_two_sources():
    with pytest.raises(ValueError, match="exactly one source"):
        operator(dataframe_callable=outputs, file_path="x.csv")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sql_conn_id": "w", "table": "p", "parameters": {"a": 1}}, "parameters \\['a'\\] apply to a query"),
        (
            {"sql_conn_id": "w", "query": "SELECT * FROM p WHERE id = :id"},
            "query uses :id but parameters give no value",
        ),
        ({"sql_conn_id": "w", "query": "SELECT 1; DELETE FROM p"}, "query holds 2 statements"),
        ({"sql_conn_id": "w", "query": "SELECT * FROM p", "schema": "s"}, "schema applies to a table"),
        ({"file_path": "x.csv", "query": "SELECT 1"}, "query need sql_conn_id"),
    ],
)
def test_constructor_checks_the_sql_source(arguments, message):
    with pytest.raises(ValueError, match=f"task 'check_outputs': {message}"):
        operator(**arguments)


def test_sql_query_with_bound_parameters_in_one_read_only_snapshot(
    db_url, airflow_sql_connection, task_context, isolated_store, tmp_path
):
    """The value is bound, never SQL; a '%' in the query means modulo on every driver."""
    schema = airflow_sql_connection(db_url)
    engine = sa.create_engine(db_url)
    frame = outputs(gibberish=2, broken_json=3)
    frame.assign(batch=["b' OR '1'='1" if i < 10 else "other" for i in range(len(frame))]).to_sql(
        "predictions", engine, index=False
    )
    engine.dispose()
    table = f"{schema}.predictions" if schema else "predictions"
    task = operator(
        sql_conn_id="warehouse",
        query=f"SELECT * FROM {table} WHERE batch = :batch AND id % 2 = 1",
        parameters={"batch": "b' OR '1'='1"},
        on_failure="continue",
        quarantine_folder=str(tmp_path / "q"),
        quarantine_key_columns=["id"],
        quarantine_format="csv",
    )
    assert task.template_fields_renderers["parameters"] == "json"
    assert "parameters" in task.template_fields
    result = task.execute(task_context())
    assert result["rows_checked"] == 5  # ids 1, 3, 5, 7, 9
    failing = pd.read_csv(read_output_manifest(tmp_path / "q")["locations"]["failing"]).sort_values("id")
    assert failing["id"].tolist() == [1, 5, 7]  # gibberish 0-1 and broken JSON 5-7, odd ids of the batch
    missing = operator(sql_conn_id="warehouse", query="SELECT * FROM no_such_predictions")
    with pytest.raises(AirflowFailException, match="on connection 'warehouse' fails"):
        missing.execute(task_context())


# --- golden-set gate --------------------------------------------------------------------------------

GOLDEN = [
    {"id": "q1", "input": "2+2", "expected": 4, "match": "numeric"},
    {"id": "q2", "input": "capital of France", "expected": "paris", "match": "normalized"},
    {"id": "q3", "input": "classify", "expected": "churn", "match": "json_field", "field": "label"},
    {"id": "q4", "input": "greet", "expected": "hello", "match": "contains"},
]
GOOD = {"2+2": "4", "capital of France": "Paris.", "classify": '{"label": "churn"}', "greet": "hello there"}


def serve_model(httpserver, answers: dict[str, str], path: str = "/predict") -> None:
    from werkzeug import Response

    def handler(request):
        return Response(
            json.dumps({"answer": answers[request.get_json()["input"]]}), mimetype="application/json"
        )

    httpserver.expect_request(path, method="POST").respond_with_handler(handler)


def http_connection(monkeypatch, httpserver, conn_id: str) -> None:
    fields = {"conn_type": "http", "host": httpserver.host, "port": httpserver.port, "schema": "http"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def register(versions, task_context):
    from airflow_provider_mlprod.operators.run_context import run_identity

    registry = MetricsStoreHook().registry()
    identity = run_identity(task_context(task_id="register"))
    for version in versions:
        registry.register(identity, name="qa", version=version, artifact_uri=f"file:///models/{version}")
    return registry


def gate(**kwargs):
    from airflow_provider_mlprod.operators.outputs import GoldenSetGateOperator

    kwargs.setdefault("golden_set", GOLDEN)
    kwargs.setdefault("if_no_champion", "pass")
    return GoldenSetGateOperator(task_id="golden_gate", model_name="qa", **kwargs)


def test_golden_gate_calls_the_endpoint_and_records_a_blessing(
    task_context, isolated_store, httpserver, monkeypatch
):
    registry = register(["v1"], task_context)
    serve_model(httpserver, GOOD)
    http_connection(monkeypatch, httpserver, "candidate_model")
    result = gate(
        candidate_version="v1", candidate_http_conn_id="candidate_model", endpoint="/predict",
        response_field="answer",
    ).execute(task_context())  # fmt: skip
    assert result["passed"] is True
    assert result["candidate"]["pass_rate"] == 1.0
    assert len(httpserver.log) == 4
    blessing = registry.latest_blessing("qa", "v1")
    assert blessing.passed is True
    assert blessing.kind == "outputs"


def test_golden_gate_fails_below_the_champion_on_the_same_set(
    task_context, isolated_store, httpserver, monkeypatch
):
    from airflow_provider_mlprod.operators.run_context import run_identity

    registry = register(["v1", "v2"], task_context)
    rows = [{**item, "answer": GOOD[item["input"]]} for item in GOLDEN]
    gate(candidate_version="v1", answers_column="answer", golden_set=rows).execute(task_context(run_id="r1"))
    registry.promote(
        run_identity(task_context(task_id="promote")), name="qa", version="v1", require=["outputs"]
    )
    worse = [{**row, "answer": "no idea"} if row["id"] == "q2" else row for row in rows]
    context = task_context(run_id="r2")
    with pytest.raises(AirflowFailException, match=r"below the champion's 1\.0000"):
        gate(candidate_version="v2", answers_column="answer", golden_set=worse, min_pass_rate=0.5).execute(
            context
        )
    assert context["ti"].pushed["return_value"]["champion_version"] == "v1"
    assert registry.latest_blessing("qa", "v2").passed is False


def test_golden_gate_without_champion_fails_when_asked_to(task_context, isolated_store, tmp_path):
    register(["v1"], task_context)
    path = tmp_path / "golden.jsonl"
    path.write_text("\n".join(json.dumps({**item, "answer": GOOD[item["input"]]}) for item in GOLDEN))
    with pytest.raises(AirflowFailException, match="no champion pass rate"):
        gate(
            candidate_version="v1", answers_column="answer", golden_set=str(path), if_no_champion="fail"
        ).execute(task_context())


def test_golden_gate_bad_golden_set_fails_before_any_call(
    task_context, isolated_store, httpserver, monkeypatch
):
    http_connection(monkeypatch, httpserver, "candidate_model")
    bad = [{"id": "q1", "input": "2+2", "expected": "four", "match": "numeric"}]
    with pytest.raises(AirflowFailException, match="item 'q1': match 'numeric' needs a finite number"):
        gate(candidate_version="v1", candidate_http_conn_id="candidate_model", golden_set=bad).execute(
            task_context()
        )
    with pytest.raises(AirflowFailException, match="golden set is empty"):
        gate(candidate_version="v1", candidate_http_conn_id="candidate_model", golden_set=[]).execute(
            task_context()
        )
    assert httpserver.log == []


def test_golden_set_from_a_sql_query(task_context, isolated_store, db_url, airflow_sql_connection):
    schema = airflow_sql_connection(db_url)
    register(["v1"], task_context)
    engine = sa.create_engine(db_url)
    rows = [
        {"id": item["id"], "input": item["input"], "expected_json": json.dumps(item["expected"]),
         "match": item["match"], "answer": GOOD[item["input"]]}
        for item in GOLDEN
        if item["match"] != "json_field"
    ]  # fmt: skip
    pd.DataFrame(rows).to_sql("golden", engine, index=False)
    engine.dispose()
    table = f"{schema}.golden" if schema else "golden"
    result = gate(
        golden_set=None, golden_sql_conn_id="warehouse", golden_query=f"SELECT * FROM {table}",
        candidate_version="v1", answers_column="answer",
    ).execute(task_context())  # fmt: skip
    assert (result["candidate"]["items"], result["candidate"]["passed"]) == (3, 3)
    task = gate(
        golden_set=None, golden_sql_conn_id="warehouse", golden_query=f"SELECT * FROM {table} WHERE id = :id",
        golden_parameters={"id": rows[0]["id"]}, candidate_version="v1", answers_column="answer",
    )  # fmt: skip
    assert task.template_fields_renderers["golden_parameters"] == "json"
    result = task.execute(task_context())
    assert (result["candidate"]["items"], result["candidate"]["passed"]) == (1, 1)
    hostile = gate(
        golden_set=None, golden_sql_conn_id="warehouse", golden_query=f"SELECT * FROM {table} WHERE id = :id",
        golden_parameters={"id": "x' OR '1'='1"}, candidate_version="v1", answers_column="answer",
    )  # fmt: skip
    # a value, never SQL: no row matches (SQLite), or PostgreSQL refuses the text as an integer
    with pytest.raises(
        AirflowFailException, match=r"golden set is empty|invalid input syntax for type integer"
    ):
        hostile.execute(task_context())


def test_golden_query_arguments_are_checked_at_parse_time():
    base = {"golden_set": None, "golden_sql_conn_id": "warehouse", "candidate_version": "v1",
            "answers_column": "answer"}  # fmt: skip
    with pytest.raises(ValueError, match="golden_query uses :id but golden_parameters give no value"):
        gate(**base, golden_query="SELECT * FROM golden WHERE id = :id")
    with pytest.raises(ValueError, match="golden_query holds 2 statements"):
        gate(**base, golden_query="SELECT 1; DROP TABLE golden")
    with pytest.raises(ValueError, match="golden_query, golden_parameters need golden_sql_conn_id"):
        gate(**{**base, "golden_sql_conn_id": None}, golden_query="SELECT :a", golden_parameters={"a": 1})


def test_sql_quarantine_writes_failing_keys_without_writing_to_the_database(
    db_url, airflow_sql_connection, task_context, isolated_store, tmp_path
):
    schema = airflow_sql_connection(db_url)
    engine = sa.create_engine(db_url)
    outputs(gibberish=2, broken_json=3, refusals=1).to_sql("predictions", engine, index=False)
    tables_before = set(sa.inspect(engine).get_table_names())
    table = f"{schema}.predictions" if schema else "predictions"
    result = operator(
        sql_conn_id="warehouse", table=table, on_failure="continue",
        quarantine_folder=str(tmp_path / "q"), quarantine_key_columns=["id"], quarantine_format="csv",
    ).execute(task_context())  # fmt: skip
    assert result["quarantine"]["failing_rows"] == 5
    failing = pd.read_csv(read_output_manifest(tmp_path / "q")["locations"]["failing"]).sort_values("id")
    assert failing["id"].tolist() == [0, 1, 5, 6, 7]
    assert failing["failed_checks"].tolist() == ["non_letter_share(answer)"] * 2 + ["valid_json(payload)"] * 3
    assert set(sa.inspect(engine).get_table_names()) == tables_before
    engine.dispose()


class _OutletEvents(dict):
    """``context["outlet_events"]``: alias -> recorded (asset uri, extra) pairs."""

    def __missing__(self, alias):
        events = self[alias] = _Recorder()
        return events


class _Recorder(list):
    def add(self, asset, extra=None):
        self.append((asset.uri, extra))


def test_emit_asset_emits_outputs_checked_only_on_success(task_context, isolated_store):
    from airflow_provider_mlprod.assets import outputs_checked_alias

    checker = operator(dataframe_callable=outputs, dataset_name="answers", emit_asset=True)
    assert outputs_checked_alias("answers") in checker.outlets
    context = task_context(task_id="check_outputs") | {"outlet_events": _OutletEvents()}
    checker.execute(context)
    [(uri, extra)] = context["outlet_events"][outputs_checked_alias("answers")]
    assert uri == "mlprod://datasets/answers/outputs_checked"
    assert extra["rows_checked"] == 20
    failing = operator(
        dataframe_callable=lambda: outputs(broken_json=3), dataset_name="answers", emit_asset=True
    )
    context = task_context(task_id="check_outputs") | {"outlet_events": _OutletEvents()}
    with pytest.raises(AirflowFailException):
        failing.execute(context)
    assert not any(context["outlet_events"].values())


def test_duckdb_table_and_query_are_checked_in_duckdb(monkeypatch, task_context, isolated_store, tmp_path):
    import duckdb

    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.register("frame", outputs(gibberish=2, broken_json=3, refusals=1))
        connection.execute("CREATE TABLE predictions AS SELECT * FROM frame")
    monkeypatch.setenv("AIRFLOW_CONN_DUCK", json.dumps({"conn_type": "mlprodduckdb", "host": str(database)}))
    result = operator(
        sql_conn_id="duck", table="predictions", on_failure="continue",
        quarantine_folder=str(tmp_path / "q"), quarantine_key_columns=["id"], quarantine_format="csv",
    ).execute(task_context())  # fmt: skip
    checks = {c["check"]: c for c in result["checks"]}
    assert {name: c["ran_in"] for name, c in checks.items()} == {
        "valid_json": "python",  # DuckDB's json_valid is lenient
        "non_letter_share": "sql",
        "refusal": "sql",
    }
    assert {name: c["failed_rows"] for name, c in checks.items()} == {
        "valid_json": 3,
        "non_letter_share": 2,
        "refusal": 1,
    }
    failing = pd.read_csv(read_output_manifest(tmp_path / "q")["locations"]["failing"]).sort_values("id")
    assert failing["id"].tolist() == [0, 1, 5, 6, 7]
    query = operator(
        sql_conn_id="duck", query="SELECT * FROM predictions WHERE id >= 10", on_failure="continue"
    ).execute(task_context())
    assert query["rows_checked"] == 10
    bound = operator(
        sql_conn_id="duck",
        query="SELECT * FROM predictions WHERE id >= :first AND id % 2 = 0",
        parameters={"first": 10},
        on_failure="continue",
    ).execute(task_context())
    assert bound["rows_checked"] == 5
    with pytest.raises(AirflowFailException, match=r"connection 'duck': .*missing"):
        operator(sql_conn_id="duck", table="missing").execute(task_context())
    with pytest.raises(ValueError, match="2 statements; give exactly one SELECT"):
        operator(sql_conn_id="duck", query="SELECT * FROM predictions; DROP TABLE predictions")


def _dripping_server(body_bytes: int, pause: float):
    """A loopback HTTP server that answers every POST with ``body_bytes`` bytes, one every ``pause`` s."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with client:
                client.recv(65536)
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
                client.sendall(f"Content-Length: {body_bytes}\r\n\r\n".encode())
                try:
                    for _ in range(body_bytes):
                        if stop.wait(pause):
                            return
                        client.sendall(b"x")
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        listener.close()

    return listener.getsockname()[1], close


def test_golden_gate_cuts_off_an_endpoint_that_drips_its_answer(task_context, isolated_store, monkeypatch):
    import time

    from airflow.sdk.exceptions import AirflowException

    register(["v1"], task_context)
    port, close = _dripping_server(body_bytes=1000, pause=0.2)
    fields = {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    monkeypatch.setenv("AIRFLOW_CONN_DRIPPING_MODEL", json.dumps(fields))
    try:
        started = time.monotonic()
        task = gate(candidate_version="v1", candidate_http_conn_id="dripping_model", request_timeout=1)
        with pytest.raises(AirflowException, match="took longer than 1 s to answer golden item") as caught:
            task.execute(task_context())
        assert not isinstance(caught.value, AirflowFailException)  # retryable: the server may recover
        assert time.monotonic() - started < 10  # every byte arrives within the read timeout: no stall
    finally:
        close()


def test_golden_gate_refuses_an_oversized_answer(task_context, isolated_store, httpserver, monkeypatch):
    from airflow_provider_mlprod.operators.outputs import MAX_ANSWER_BYTES

    register(["v1"], task_context)
    httpserver.expect_request("/predict", method="POST").respond_with_data("x" * (MAX_ANSWER_BYTES + 1))
    http_connection(monkeypatch, httpserver, "candidate_model")
    task = gate(candidate_version="v1", candidate_http_conn_id="candidate_model", endpoint="/predict")
    with pytest.raises(AirflowFailException, match="with more than 10,485,760 bytes"):
        task.execute(task_context())

"""The example model server's scenario modes, as a real process on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from airflow_provider_mlprod.examples.model_server import ModelServerProcess
from airflow_provider_mlprod.serving.loadgen import Endpoint, LoadPlan, run_load_test
from airflow_provider_mlprod.serving.response_checks import ResponseChecks

from .conftest import customer

CHECKS = [
    {"check": "status"},
    {"check": "json"},
    {"check": "range", "field": "churn_probability", "min": 0, "max": 1},
    {"check": "labels", "field": "label", "allowed": ["churn", "stay"]},
]


def post(url: str, document) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url + "/predict", data=json.dumps(document).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_healthy_predicts_like_the_model(scorer_file):
    with ModelServerProcess(mode="healthy", scorer=scorer_file, model_version="v7") as server:
        status, body = post(server.url, customer(3))
        bad_status, bad_body = post(server.url, {"plan": "basic", "tenure_months": "long"})
        health = json.loads(urllib.request.urlopen(server.url + "/health", timeout=5).read())
    reply = json.loads(body)
    assert status == 200
    assert 0 <= reply["churn_probability"] <= 1
    assert reply["label"] == ("churn" if reply["churn_probability"] >= 0.5 else "stay")
    assert reply["model_version"] == "v7"
    assert bad_status == 400
    assert b"tenure_months" in bad_body
    assert health == {"status": "ok", "mode": "healthy", "model_version": "v7"}


def test_a_pickled_pipeline_is_served_with_its_own_predictions(tmp_path):
    import pickle

    from airflow_provider_mlprod.examples.churn import FEATURES, fit_churn_model, make_customers

    model, _ = fit_churn_model(make_customers(500, seed=5))
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    record = customer(8)
    import pandas as pd

    expected = float(model.predict_proba(pd.DataFrame([record])[FEATURES])[0, 1])
    with ModelServerProcess(mode="healthy", model=f"file://{path}") as server:
        _, body = post(server.url, record)
    assert json.loads(body)["churn_probability"] == pytest.approx(expected, abs=1e-6)


def test_errors_and_gibberish_modes(scorer_file, customers):
    with (
        ModelServerProcess(mode="errors", error_share=0.5, scorer=scorer_file) as errors,
        ModelServerProcess(mode="gibberish", gibberish_share=0.5, scorer=scorer_file) as gibberish,
    ):
        result = run_load_test(
            [
                Endpoint("candidate", errors.url + "/predict"),
                Endpoint("champion", gibberish.url + "/predict"),
            ],
            customers,
            LoadPlan(requests=200, concurrency=4),
            ResponseChecks.from_spec(CHECKS),
        )
    erroring, babbling = result.endpoints
    assert 0.3 < erroring.error_rate < 0.7
    assert babbling.error_rate == 0.0
    assert 0.3 < 1 - babbling.output_check_pass_rate < 0.7  # every kind of gibberish fails a check
    assert set(babbling.check_failures) == {"json", "range:churn_probability", "labels:label"}


def test_overload_latency_climbs_with_load(scorer_file, customers):
    """A concurrency limit of 1 at 10 ms per request: 8 clients queue behind each other."""
    with ModelServerProcess(
        mode="overload", concurrency_limit=1, service_ms=10, scorer=scorer_file
    ) as server:
        target = [Endpoint("candidate", server.url + "/predict")]
        alone = run_load_test(target, customers, LoadPlan(requests=20, concurrency=1))
        crowded = run_load_test(target, customers, LoadPlan(requests=80, concurrency=8))
    assert crowded.endpoints[0].latency.p50_ms > 4 * alone.endpoints[0].latency.p50_ms

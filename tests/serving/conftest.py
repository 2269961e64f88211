"""Shared pieces of the serving tests: the example model's scorer and a JSON-lines request set."""

from __future__ import annotations

import io
import json

import pytest

from airflow_provider_mlprod.serving.request_sets import json_lines_request_set


@pytest.fixture(scope="session")
def scorer_file(tmp_path_factory):
    """The example churn model's scorer, exported once (training it takes a second or two)."""
    from airflow_provider_mlprod.examples.model_server import main

    path = tmp_path_factory.mktemp("scorer") / "scorer.json"
    main(["--export-scorer", str(path)])
    return str(path)


def customer(i: int) -> dict:
    return {
        "tenure_months": i % 70,
        "monthly_charges": 40.0 + i % 50,
        "support_calls": i % 5,
        "usage_gb": 12.5,
        "plan": ["basic", "premium", "business"][i % 3],
    }


@pytest.fixture
def customers():
    """A 25-request set held in memory (read again for every pass)."""
    text = "\n".join(json.dumps(customer(i)) for i in range(25))
    return json_lines_request_set("customers", lambda: io.StringIO(text))

"""Output checks on one response body."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.serving.response_checks import ResponseChecks

CHECKS = ResponseChecks.from_spec(
    [
        {"check": "status", "allowed": [200]},
        {"check": "json"},
        {
            "check": "json_schema",
            "schema": {"type": "object", "required": ["label"], "properties": {"label": {"type": "string"}}},
        },
        {"check": "range", "field": "score.p", "min": 0, "max": 1},
        {"check": "labels", "field": "label", "allowed": ["churn", "stay"]},
    ]
)


def body(document) -> bytes:
    return json.dumps(document).encode()


def test_a_good_response_passes_every_check():
    assert CHECKS.failures(200, body({"label": "stay", "score": {"p": 0.2}})) == ()


@pytest.mark.parametrize(
    ("status", "payload", "failed"),
    [
        (201, body({"label": "stay", "score": {"p": 0.2}}), ("status",)),
        (200, b"<html>", ("json", "json_schema", "range:score.p", "labels:label")),
        (200, body({"label": 3, "score": {"p": 0.2}}), ("json_schema", "labels:label")),
        (200, body({"label": "stay", "score": {"p": 1.5}}), ("range:score.p",)),
        (200, body({"label": "stay", "score": {"p": "0.5"}}), ("range:score.p",)),
        (200, body({"label": "stay", "score": {"p": float("nan")}}), ("range:score.p",)),
        (200, body({"label": "purple", "score": {}}), ("range:score.p", "labels:label")),
        (200, body([1, 2]), ("json_schema", "range:score.p", "labels:label")),
    ],
)
def test_each_failure_is_named(status, payload, failed):
    assert CHECKS.failures(status, payload) == failed


def test_default_checks_are_status_2xx_and_json():
    checks = ResponseChecks.from_spec(None)
    assert checks.names == ["status", "json"]
    assert checks.failures(204, b"{}") == ()
    assert checks.failures(503, b"oops") == ("status", "json")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([{"check": "vibes"}], "unknown check"),
        ([{"check": "json_schema", "schema": {"type": "no-such-type"}}], "invalid JSON schema"),
        ([{"check": "range", "field": "p"}], "give 'min', 'max' or both"),
        ([{"check": "range", "field": "a..b", "min": 0}], "dotted path"),
        ([{"check": "labels", "field": "label", "allowed": []}], "non-empty list"),
        ("status", "must be a list"),
    ],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(SpecError, match=message):
        ResponseChecks.from_spec(spec)

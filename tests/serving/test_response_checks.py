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
        # NaN is not JSON (RFC 8259): the registry's valid_json refuses it, and the body has no field
        (
            200,
            body({"label": "stay", "score": {"p": float("nan")}}),
            ("json", "json_schema", "range:score.p", "labels:label"),
        ),
        (200, body({"label": True, "score": {"p": True}}), ("json_schema", "range:score.p", "labels:label")),
        (200, b"\xff\xfe", ("json", "json_schema", "range:score.p", "labels:label")),
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
        ([{"check": "json_schema", "schema": {"type": "no-such-type"}}], "malformed JSON schema"),
        ([{"check": "range", "field": "p", "min": 2, "max": 1}], r"'min' 2 is above 'max' 1"),
        (
            [{"check": "range", "field": "p", "min": 0, "low": 1}],
            r"unknown parameter\(s\) low; it takes 'min', 'max'",
        ),
        ([{"check": "range", "min": 0}], "'field' must be a dotted path"),
        (
            [{"check": "labels", "field": "label", "allowed": ["a", 1]}],
            "'allowed' must be all strings or all numbers",
        ),
        ([{"check": "regex", "field": "answer", "pattern": "("}], "invalid regex"),
        ([{"check": "json", "min_pass_rate": 0.9}], "output_check_pass_rate"),
        ([{"check": "status", "allowed": "200"}], "list of HTTP status codes"),
        ([{"check": "range", "field": "p"}], "give 'min', 'max' or both"),
        ([{"check": "range", "field": "a..b", "min": 0}], "dotted path"),
        ([{"check": "labels", "field": "label", "allowed": []}], "non-empty list"),
        ("status", "must be a list"),
    ],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(SpecError, match=message):
        ResponseChecks.from_spec(spec)


def test_messages_for_bad_specs_are_the_registry_ones():
    """A bad parameter gets the message the prediction-table check gives, in the spec's own words."""
    from airflow_provider_mlprod.outputs.checks import build_checks

    bad = {"type": "no-such-type"}
    with pytest.raises(SpecError) as table_error:
        build_checks([{"check": "json_schema", "column": "body", "schema": bad}])
    with pytest.raises(SpecError) as response_error:
        ResponseChecks.from_spec([{"check": "json_schema", "schema": bad}])
    assert (
        str(response_error.value)
        == "output check #1 (json_schema): " + str(table_error.value).split(": ", 1)[1]
    )


def test_any_registry_check_applies_to_a_field_or_the_body():
    checks = ResponseChecks.from_spec(
        [
            {"check": "refusal", "field": "answer"},
            {"check": "non_letter_share", "field": "answer", "max_share": 0.3},
            {"check": "word_count", "field": "answer", "min_words": 2},
            {"check": "json_schema", "field": "meta", "schema": {"type": "object", "required": ["id"]}},
            {"check": "max_length", "max_chars": 200},
        ]
    )
    assert checks.names == [
        "refusal:answer",
        "non_letter_share:answer",
        "word_count:answer",
        "json_schema:meta",
        "max_length",
    ]
    good = body({"answer": "Your plan renews in May.", "meta": {"id": 1}})
    refusal = body({"answer": "As an AI language model, I cannot", "meta": {"id": 1}})
    noise = body({"answer": "#$%^ &*()!! @@", "meta": {}})
    assert checks.evaluate([(200, good), (200, refusal), (200, noise), (200, b"x" * 300)]) == [
        (),
        ("refusal:answer",),
        ("non_letter_share:answer", "json_schema:meta"),
        ("refusal:answer", "non_letter_share:answer", "word_count:answer", "json_schema:meta", "max_length"),
    ]


def test_batch_and_single_evaluation_agree():
    replies = [
        (200, body({"label": "stay", "score": {"p": 0.2}})),
        (500, b"oops"),
        (200, body({"label": "purple", "score": {"p": 2}})),
    ]
    assert CHECKS.evaluate(replies) == [CHECKS.failures(status, payload) for status, payload in replies]
    assert CHECKS.evaluate([]) == []

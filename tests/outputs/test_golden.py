"""Golden-set scoring: match kinds, bad golden sets named before scoring, the gate against the champion."""

from __future__ import annotations

import pytest

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.outputs.golden import golden_gate, load_golden_set, matches, score_answers

GOLDEN = [
    {"id": "capital", "input": "Capital of France?", "expected": "Paris", "match": "exact"},
    {"id": "greeting", "input": "Say hi", "expected": "Hello, world", "match": "normalized"},
    {"id": "date", "input": "A date", "expected": r"\d{4}-\d{2}-\d{2}", "match": "regex"},
    {"id": "why", "input": "Why?", "expected": "because", "match": "contains"},
    {"id": "pi", "input": "Pi?", "expected": 3.1416, "match": "numeric", "abs_tol": 0.001},
    {"id": "json", "input": "Classify", "expected": "churn", "match": "json_field", "field": "result.label"},
]


@pytest.mark.parametrize(
    ("item_id", "good", "bad"),
    [
        ("capital", "Paris", "paris"),
        ("greeting", "  hello,   WORLD! ", "Hello world, friend"),
        ("date", "on 2026-12-05.", "on 5 Dec"),
        ("why", "it is because of X", "Because of X"),
        ("pi", "3.1419", "3.15"),
        ("json", '{"result": {"label": "churn"}}', '{"result": {"label": "stay"}}'),
    ],
)
def test_each_match_kind_passes_and_fails(item_id, good, bad):
    item = next(i for i in load_golden_set(GOLDEN) if i.id == item_id)
    assert matches(item, good) is True
    assert matches(item, bad) is False
    assert matches(item, None) is False


def test_json_field_does_not_take_true_for_one():
    (item,) = load_golden_set([{"id": 1, "expected": 1, "match": "json_field", "field": "a.0"}])
    assert matches(item, '{"a": [1]}') is True
    assert matches(item, '{"a": [true]}') is False
    assert matches(item, "{broken") is False


def test_expected_json_gives_typed_answers():
    (item,) = load_golden_set([{"id": "n", "expected_json": "4.0", "match": "numeric", "abs_tol": 0.1}])
    assert item.expected == 4.0
    assert matches(item, "4.05") is True


def test_score_counts_missing_answers_as_failures():
    items = load_golden_set(GOLDEN)
    score = score_answers(items, {"capital": "Paris", "pi": 3.1416})
    assert (score.items, score.passed) == (6, 2)
    assert {f["id"] for f in score.failures} == {"greeting", "date", "why", "json"}


@pytest.mark.parametrize(
    ("golden", "message"),
    [
        ([], "golden set is empty"),
        ([{"id": "a", "expected": 3, "match": "exact"}], "item 'a': match 'exact' needs a string"),
        (
            [{"id": "a", "expected": "3", "match": "numeric"}],
            "item 'a': match 'numeric' needs a finite number",
        ),
        ([{"id": "a", "expected": "(", "match": "regex"}], "item 'a': invalid regex"),
        ([{"id": "a", "expected": "x", "match": "fuzzy"}], "unknown match 'fuzzy'"),
        ([{"id": "a", "input": "x"}], "item 'a': give exactly one of expected or expected_json"),
        ([{"id": "a", "expected_json": "{"}], "item 'a': expected_json is not valid JSON"),
        ([{"id": "a", "expected": "x"}, {"id": "a", "expected": "y"}], "duplicate item id"),
        ([{"id": "a", "expected": "x", "match": "json_field"}], "needs 'field'"),
    ],
)
def test_bad_golden_sets_fail_naming_the_item(golden, message):
    with pytest.raises(SpecError, match=message):
        load_golden_set(golden)


def test_gate_against_thresholds_and_the_champion():
    items = load_golden_set(GOLDEN)
    score = score_answers(items, {"capital": "Paris", "pi": 3.1416, "why": "because", "date": "2026-01-01"})
    assert golden_gate(score, min_pass_rate=0.5, champion_pass_rate=None).passed is True
    below = golden_gate(score, min_pass_rate=0.8, champion_pass_rate=None)
    assert below.passed is False
    assert "below min_pass_rate" in below.reasons[0]
    worse = golden_gate(score, min_pass_rate=0.5, champion_pass_rate=5 / 6, max_drop=0.1)
    assert worse.passed is False
    assert "champion" in worse.reasons[0]
    assert golden_gate(score, min_pass_rate=0.5, champion_pass_rate=5 / 6, max_drop=0.2).passed is True
    with pytest.raises(SpecError, match="max_drop"):
        golden_gate(score, min_pass_rate=0.5, champion_pass_rate=None, max_drop=2)

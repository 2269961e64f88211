"""Loading and checking suites: sources, severities, unknown types, empty and malformed suites."""

from __future__ import annotations

import json
import re

import pytest

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.validation.suite import load_suite

NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}
MEAN = {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 0}}


def test_loads_a_gx_suite_file(tmp_path):
    path = tmp_path / "orders.json"
    path.write_text(json.dumps({"name": "orders_suite", "expectations": [NOT_NULL, MEAN]}))
    suite = load_suite(path)
    assert suite.name == "orders_suite"
    assert len(suite) == 2
    assert [spec.expectation_type for spec in suite.expectations] == [NOT_NULL["type"], MEAN["type"]]
    assert len(suite.to_gx_suite().expectations) == 2


def test_file_without_name_is_named_after_the_file(tmp_path):
    path = tmp_path / "payments.json"
    path.write_text(json.dumps([NOT_NULL]))
    assert load_suite(str(path)).name == "payments"


def test_loads_a_dict_and_a_list():
    assert load_suite({"name": "s", "expectations": [NOT_NULL]}).name == "s"
    suite = load_suite([NOT_NULL, MEAN], name="inline")
    assert (suite.name, len(suite)) == ("inline", 2)


def test_accepts_the_legacy_expectation_type_key():
    suite = load_suite([{"expectation_type": "expect_column_to_exist", "kwargs": {"column": "id"}}])
    assert suite.expectations[0].expectation_type == "expect_column_to_exist"


def test_severity_from_key_meta_and_default():
    suite = load_suite(
        [
            {**NOT_NULL, "severity": "warning"},
            {**MEAN, "meta": {"severity": "WARNING"}},
            {**NOT_NULL, "kwargs": {**NOT_NULL["kwargs"], "mostly": 0.5}},
        ],
        default_severity="critical",
    )
    assert [spec.severity for spec in suite.expectations] == ["warning", "warning", "critical"]
    assert load_suite([NOT_NULL], default_severity="warning").expectations[0].severity == "warning"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**NOT_NULL, "severity": "fatal"}, "'fatal'"),
        ({**NOT_NULL, "severity": "warning", "meta": {"severity": "critical"}}, "set one"),
    ],
)
def test_bad_severity_is_rejected(config, message):
    with pytest.raises(SpecError, match=message):
        load_suite([config])


def test_bad_default_severity_is_rejected():
    with pytest.raises(SpecError, match="default_severity"):
        load_suite([NOT_NULL], default_severity="info")


def test_unknown_types_are_all_named():
    configs = [
        NOT_NULL,
        {"type": "expect_column_to_be_nice", "kwargs": {}},
        {"type": "expect_magic", "kwargs": {}},
    ]
    with pytest.raises(SpecError, match=r"unknown expectation type.*expect_column_to_be_nice, expect_magic"):
        load_suite(configs)


def test_empty_suites_are_rejected(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"name": "empty", "expectations": []}))
    for source in ([], {"name": "empty", "expectations": []}, path):
        with pytest.raises(SpecError, match="no expectations"):
            load_suite(source)


def test_malformed_json_names_the_file_and_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "broken", "expectations": [\n  {"type": }\n]}')
    with pytest.raises(SpecError, match=r"broken\.json.*not valid JSON.*line 2"):
        load_suite(path)


def test_missing_suite_file_is_named(tmp_path):
    with pytest.raises(SpecError, match=r"nowhere\.json.*does not exist"):
        load_suite(tmp_path / "nowhere.json")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"name": "no_list"}, "needs an 'expectations' list"),
        ({"expectations": "expect_column_to_exist"}, "must be a list"),
        (["expect_column_to_exist"], "#0 must be a dict"),
        ([{"kwargs": {"column": "id"}}], "#0 has no 'type'"),
        ([{"type": "expect_column_to_exist", "kwargs": ["id"]}], "'kwargs' must be a dict"),
        (
            [{"type": "expect_column_to_exist", "kwargs": {"column": ""}}],
            "argument 'column' is '' \\(str\\): ensure this value has at least 1",
        ),
    ],
)
def test_malformed_configs_are_rejected(source, message):
    with pytest.raises(SpecError, match=message):
        load_suite(source)


def test_config_gx_rejects_is_named_when_loading():
    with pytest.raises(SpecError, match="#1 expect_column_values_to_be_between: missing argument 'column'"):
        load_suite([NOT_NULL, {"type": "expect_column_values_to_be_between", "kwargs": {"min_value": 1}}])


BETWEEN = "expect_column_values_to_be_between"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"colum": "amount", "min_value": 0},
            "expectation #0 expect_column_values_to_be_between: unknown argument 'colum' "
            "(did you mean 'column'?)",
        ),
        (
            {"column": "amount", "min_valu": 0, "max_value": 9},
            "unknown argument 'min_valu' (did you mean 'min_value'?)",
        ),
        (
            {"column": "amount", "min_value": 0, "zzz": 1},
            "unknown argument 'zzz' (its arguments are: .*column",
        ),
        ({"column": 5, "min_value": 0}, "argument 'column' is 5 (int): str type expected"),
        (
            {"column": "amount", "min_value": "abc"},
            "argument 'min_value' is 'abc' (str): value is not a valid float (nor any other accepted type)",
        ),
        (
            {"column": "amount", "min_value": 0, "mostly": 2},
            "argument 'mostly' is 2 (int): ensure this value is less",
        ),
        ({"column": "amount"}, "min_value and max_value cannot both be None"),
        ({"column": "amount", "min_value": 10, "max_value": 1}, "min_value 10 is greater than max_value 1"),
    ],
)
def test_argument_errors_name_the_expectation_the_argument_and_the_fix(kwargs, message):
    with pytest.raises(SpecError, match=re.escape(message).replace(r"\.\*", ".*")) as raised:
        load_suite([{"type": BETWEEN, "kwargs": kwargs}])
    assert "validation error" not in str(raised.value)  # pydantic's summary line is not the message


def test_a_misspelled_type_suggests_the_known_one():
    with pytest.raises(SpecError, match="did you mean 'expect_column_values_to_be_between'"):
        load_suite([{"type": "expect_column_values_to_be_betwen", "kwargs": {"column": "a"}}])


def test_row_level_and_required_columns():
    suite = load_suite(
        [
            NOT_NULL,
            MEAN,
            {"type": "expect_column_to_exist", "kwargs": {"column": "maybe"}},
            {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "day"]}},
        ]
    )
    assert [spec.is_row_level for spec in suite.expectations] == [True, False, False, True]
    assert suite.required_columns == ("id", "amount", "day")
    assert suite.expectations[3].name == "expect_compound_columns_to_be_unique(id, day)"


def test_a_duplicate_expectation_is_rejected_naming_both_positions():
    amount = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}
    status = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "status"}}
    same_with_other_severity = {**amount, "severity": "warning"}
    with pytest.raises(
        SpecError, match=r"expectation #2 expect_column_values_to_not_be_null repeats expectation #0"
    ):
        load_suite([amount, status, same_with_other_severity], name="orders")
    assert len(load_suite([amount, status], name="orders")) == 2

"""Every documented expectation family passes and fails as GX decides, on pandas and in the database."""

from __future__ import annotations

import pytest

from airflow_provider_mlprod.validation.runner import (
    PANDAS,
    SQL,
    TESTED_EXPECTATION_FAMILIES,
    validate_dataframe,
    validate_sql,
)

from .conftest import make_orders, write_table

ALL_COLUMNS = ["id", "amount", "status", "code", "note", "start_day", "end_day"]

# family -> (kwargs the orders batch meets, kwargs it does not meet)
FAMILY_CASES = {
    "expect_table_row_count_to_be_between": ({"min_value": 10, "max_value": 10}, {"min_value": 11}),
    "expect_table_columns_to_match_set": (
        {"column_set": ALL_COLUMNS, "exact_match": True},
        {"column_set": ["id", "amount"], "exact_match": True},
    ),
    "expect_column_to_exist": ({"column": "id"}, {"column": "discount"}),
    "expect_column_values_to_not_be_null": ({"column": "amount"}, {"column": "note"}),
    "expect_column_values_to_be_null": ({"column": "note"}, {"column": "amount"}),
    "expect_column_values_to_be_in_set": (
        {"column": "status", "value_set": ["new", "paid", "shipped"]},
        {"column": "status", "value_set": ["new", "paid"]},
    ),
    "expect_column_values_to_not_be_in_set": (
        {"column": "status", "value_set": ["lost"]},
        {"column": "status", "value_set": ["new"]},
    ),
    "expect_column_values_to_be_between": (
        {"column": "amount", "min_value": 1, "max_value": 10},
        {"column": "amount", "min_value": 2, "max_value": 9},
    ),
    "expect_column_values_to_be_unique": ({"column": "id"}, {"column": "status"}),
    "expect_column_value_lengths_to_be_between": (
        {"column": "code", "min_value": 3, "max_value": 3},
        {"column": "status", "min_value": 4, "max_value": 4},
    ),
    "expect_column_values_to_match_regex": (
        {"column": "code", "regex": "^[A-Z]{3}$"},
        {"column": "status", "regex": "^n"},
    ),
    "expect_compound_columns_to_be_unique": (
        {"column_list": ["id", "status"]},
        {"column_list": ["status", "code"]},
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": (
        {"column_A": "end_day", "column_B": "start_day"},
        {"column_A": "start_day", "column_B": "end_day"},
    ),
    "expect_column_distinct_values_to_be_in_set": (
        {"column": "status", "value_set": ["new", "paid", "shipped"]},
        {"column": "status", "value_set": ["new"]},
    ),
    "expect_column_min_to_be_between": (
        {"column": "amount", "min_value": 1, "max_value": 1},
        {"column": "amount", "min_value": 2},
    ),
    "expect_column_max_to_be_between": (
        {"column": "amount", "min_value": 10, "max_value": 10},
        {"column": "amount", "max_value": 9},
    ),
    "expect_column_mean_to_be_between": (
        {"column": "amount", "min_value": 5, "max_value": 6},
        {"column": "amount", "min_value": 6, "max_value": 7},
    ),
    "expect_column_median_to_be_between": (
        {"column": "amount", "min_value": 5, "max_value": 6},
        {"column": "amount", "min_value": 6.5, "max_value": 7},
    ),
    "expect_column_stdev_to_be_between": (
        {"column": "amount", "min_value": 3, "max_value": 3.1},
        {"column": "amount", "min_value": 0, "max_value": 1},
    ),
    "expect_column_quantile_values_to_be_between": (
        {
            "column": "amount",
            "quantile_ranges": {"quantiles": [0.1, 0.5, 0.9], "value_ranges": [[1, 2], [5, 6], [9, 10]]},
        },
        {"column": "amount", "quantile_ranges": {"quantiles": [0.5], "value_ranges": [[7, 8]]}},
    ),
    "expect_column_kl_divergence_to_be_less_than": (
        {
            "column": "amount",
            "partition_object": {"bins": [0, 5.5, 11], "weights": [0.5, 0.5]},
            "threshold": 0.1,
        },
        {
            "column": "amount",
            "partition_object": {"bins": [0, 5.5, 11], "weights": [0.95, 0.05]},
            "threshold": 0.1,
        },
    ),
    "expect_column_proportion_of_unique_values_to_be_between": (
        {"column": "id", "min_value": 1, "max_value": 1},
        {"column": "status", "min_value": 0.9},
    ),
}


def _suite(families: list[str], case: int) -> list[dict]:
    return [{"type": family, "kwargs": FAMILY_CASES[family][case]} for family in families]


def _mismatches(summary, families: list[str], expected: bool) -> list[str]:
    by_type = {outcome.expectation_type: outcome for outcome in summary.outcomes}
    return [
        f"{family}: success={by_type[family].success}, observed={by_type[family].observed_value}"
        for family in families
        if by_type[family].success is not expected
    ]


def test_every_documented_family_has_cases():
    assert set(TESTED_EXPECTATION_FAMILIES) == set(FAMILY_CASES)


@pytest.mark.parametrize(("case", "expected"), [(0, True), (1, False)], ids=["met", "not-met"])
def test_families_on_pandas(case, expected):
    families = [name for name, backends in TESTED_EXPECTATION_FAMILIES.items() if PANDAS in backends]
    summary = validate_dataframe(make_orders(), _suite(families, case))
    assert summary.evaluated == len(families)
    assert _mismatches(summary, families, expected) == []


def test_families_in_sql(db_url):
    write_table(db_url, "orders", make_orders())
    families = [name for name, backends in TESTED_EXPECTATION_FAMILIES.items() if SQL in backends]
    for case, expected in [(0, True), (1, False)]:
        summary = validate_sql(db_url, _suite(families, case), table="orders")
        assert summary.evaluated == len(families)
        assert _mismatches(summary, families, expected) == []

"""The one timestamp parser, as freshness and performance monitoring both use it."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.monitoring import freshness, performance
from airflow_provider_mlprod.timestamps import parse_timestamp

UTC = dt.timezone.utc
NOON = dt.datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00z", "2024-05-01 14:00+02:00", "2024-05-01T12:00", NOON],
)
def test_every_spelling_of_one_moment(value):
    assert parse_timestamp(value, "bound") == NOON


def test_both_monitors_read_a_trailing_z_the_same_way():
    assert freshness.parse_timestamp("2024-05-01T12:00:00Z", "newer_than") == NOON
    assert performance.parse_timestamp("2024-05-01T12:00:00Z", "window start") == NOON


def test_naive_values_can_be_kept_naive_for_naive_columns():
    assert parse_timestamp("2024-05-01T12:00:00", "bound", naive="keep") == dt.datetime(2024, 5, 1, 12)
    assert performance.parse_timestamp("2024-05-01T12:00:00", "window start").tzinfo is None


def test_a_date_is_midnight_utc():
    assert parse_timestamp(dt.date(2024, 5, 1), "day") == dt.datetime(2024, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("value", ["", "  ", "yesterday", "2024-13-01", None, 17])
def test_anything_else_names_the_role_and_value(value):
    with pytest.raises(ConfigurationError, match=r"window start .* not"):
        parse_timestamp(value, "window start")

"""The HTML report: self-contained, escaped, and showing every expectation's result."""

from __future__ import annotations

import re

from airflow_provider_mlprod.validation.report import render_html_report, write_html_report
from airflow_provider_mlprod.validation.summary import ExpectationOutcome, ValidationSummary


def _summary(**changes) -> ValidationSummary:
    outcomes = (
        ExpectationOutcome(
            0,
            "expect_column_values_to_be_in_set",
            "status",
            "critical",
            False,
            3,
            30.0,
            ["<script>alert(1)</script>", "a&b"],
        ),
        ExpectationOutcome(
            1,
            "expect_column_mean_to_be_between",
            "amount",
            "warning",
            True,
            observed_value=5.5,
            parameters={"min_value": 0, "max_value": 7.5, "mostly": 0.95},
        ),
    )
    fields = {
        "suite_name": "orders <suite>",
        "dataset": "file 'x\"y'",
        "rows_checked": 10,
        "outcomes": outcomes,
    }
    return ValidationSummary(**{**fields, **changes})


def test_report_escapes_everything_from_data_and_suite():
    page = render_html_report(_summary())
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&amp;b" in page
    assert "orders &lt;suite&gt;" in page


def test_report_is_self_contained():
    page = render_html_report(_summary(quarantine={"failing_location": "s3://bucket/rejected.csv"}))
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"\b(src|href)=", page)
    assert "@import" not in page
    assert "url(" not in page


def test_report_shows_verdict_counts_and_each_expectation():
    page = render_html_report(_summary(quarantine={"failing_location": "s3://bucket/rejected.csv"}))
    assert "FAILED" in page
    assert "<th>Failed (critical)</th><td>1</td>" in page
    assert "<th>Rows checked</th><td>10</td>" in page
    assert page.count("<tr><td>") == 2
    assert "expect_column_mean_to_be_between" in page
    assert "5.5" in page
    assert "s3://bucket/rejected.csv" in page


def test_report_shows_each_expectations_parameters():
    page = render_html_report(_summary())
    assert "max_value = <code>7.5</code><br>min_value = <code>0</code><br>mostly = <code>0.95</code>" in page
    assert "<th>Parameters</th>" in page


def test_report_verdict_with_only_warnings():
    outcome = ExpectationOutcome(0, "expect_column_to_exist", "x", "warning", False)
    assert "PASSED WITH WARNINGS" in render_html_report(_summary(outcomes=(outcome,)))


class OpenableLocation:
    def __init__(self, path):
        self.path = path

    def open(self, mode):
        return self.path.open(mode)

    def __str__(self):
        return "memory://reports/orders.html"


def test_write_to_a_path_or_an_openable(tmp_path):
    path = tmp_path / "reports" / "orders.html"
    assert write_html_report(_summary(), path) == str(path)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    other = tmp_path / "other.html"
    assert write_html_report(_summary(), OpenableLocation(other)) == "memory://reports/orders.html"
    assert other.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")

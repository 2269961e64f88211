"""Report addresses: what the extra link points at, and what the plugin agrees to read."""

from __future__ import annotations

import pytest

from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.operators.reports import report_link_url, report_relative_parts
from airflow_provider_mlprod.plugin.reports import UnknownReport, read_report

FOLDER = "/srv/mlprod/reports"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("", "/mlprod/reports/validation/etl/manual__2026-01-01T00_00_00_00_00/check.html"),
        ("http://airflow.example:8080", "http://airflow.example:8080/mlprod/reports/validation/etl/"),
        ("https://example.org/airflow/", "https://example.org/airflow/mlprod/reports/validation/etl/"),
    ],
)
def test_link_is_the_plugin_address_under_the_base_url(base_url, expected):
    location = f"file://{FOLDER}/validation/etl/manual__2026-01-01T00_00_00_00_00/check.html"
    url = report_link_url(location, folder=FOLDER, base_url=base_url)
    assert url.startswith(expected)
    assert url.endswith("/manual__2026-01-01T00_00_00_00_00/check.html")


def test_object_storage_reports_map_to_the_plugin_too():
    url = report_link_url(
        "s3://bucket/reports/drift/etl/run_1/check.0.html", folder="s3://bucket/reports", base_url=""
    )
    assert url == "/mlprod/reports/drift/etl/run_1/check.0.html"


@pytest.mark.parametrize(
    "location",
    [
        "file:///elsewhere/validation/etl/run/check.html",  # outside the report folder
        f"{FOLDER}/secrets/etl/run/check.html",  # unknown kind
        f"{FOLDER}/validation/etl/../run/check.html",  # traversal
        f"{FOLDER}/validation/etl/run/.check.html",  # hidden file
        f"{FOLDER}/validation/etl/run/check.txt",  # not a report
        f"{FOLDER}/validation/etl/run/deeper/check.html",  # another layout
    ],
)
def test_locations_the_plugin_cannot_serve_give_no_link(location):
    assert report_relative_parts(location, FOLDER) is None
    assert report_link_url(location, folder=FOLDER, base_url="") == ""


def test_http_locations_are_kept():
    assert report_link_url("https://reports.example/r/1", folder=FOLDER) == "https://reports.example/r/1"


def test_read_report_reads_from_the_folder_and_refuses_unsafe_parts(tmp_path):
    report = tmp_path / "validation" / "etl" / "run_1" / "check.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>ok</html>")
    (tmp_path / "secret.html").write_text("secret")
    assert read_report("validation", "etl", "run_1", "check.html", folder=str(tmp_path)) == b"<html>ok</html>"
    with pytest.raises(UnknownReport, match=r"no validation report etl/run_1/other\.html"):
        read_report("validation", "etl", "run_1", "other.html", folder=str(tmp_path))
    with pytest.raises(ConfigurationError, match="unknown report kind 'secrets'"):
        read_report("secrets", "etl", "run_1", "check.html", folder=str(tmp_path))
    for dag_id, run_id, file_name in (
        ("..", "run_1", "check.html"),
        ("etl", "..", "secret.html"),
        ("etl", "run_1", "../secret.html"),
        ("etl", "run_1", ".hidden.html"),
        ("etl", "run_1", "check.py"),
    ):
        with pytest.raises(ConfigurationError, match="plain name"):
            read_report("validation", dag_id, run_id, file_name, folder=str(tmp_path))

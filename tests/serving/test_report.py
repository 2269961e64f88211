"""The HTML load-test report: self-contained, both endpoints drawn, user text escaped."""

from __future__ import annotations

from airflow_provider_mlprod.examples.model_server import ModelServerProcess
from airflow_provider_mlprod.serving.loadgen import Endpoint, LoadPlan, run_load_test
from airflow_provider_mlprod.serving.report import render_serving_report


def test_report_draws_both_endpoints_and_escapes_user_text(customers, scorer_file):
    with (
        ModelServerProcess(mode="healthy", scorer=scorer_file) as a,
        ModelServerProcess(mode="slow", slow_median_ms=5, scorer=scorer_file) as b,
    ):
        result = run_load_test(
            [Endpoint("candidate", a.url + "/predict"), Endpoint("champion", b.url + "/predict")],
            customers,
            LoadPlan(requests=30, concurrency=2),
        )
    summary = {
        "model_name": "<script>alert(1)</script>",
        "model_version": "v1&2",
        "passed": False,
        "champion_version": "v0",
        "metrics": [{"metric": "p95<x>", "verdict": "fail", "reason": "a <b>bold</b> reason"}],
    }
    page = render_serving_report(summary, result.to_dict(with_distribution=True))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &lt;b&gt;bold&lt;/b&gt; reason" in page
    assert page.count("<svg") == 2
    assert page.count("<polyline") == 2  # one CDF line per endpoint
    assert 'fill="#ee7733"' in page  # both endpoints' bars in the histogram
    assert 'fill="#4477aa"' in page
    assert "http://" not in page.replace(a.url, "").replace(b.url, "").replace("http://www.w3.org", "")

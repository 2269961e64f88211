"""A self-contained HTML report of a validation summary: inline CSS, no script, no network access.

Every value from the data or the suite is HTML-escaped. The report shows the verdict, the counts,
the rows checked, the quarantine outputs, and one table row per expectation with its parameters
(bounds, value sets, ``mostly``), severity, result, unexpected count and percent, distinct sample failing
values and observed value.

Public API: :func:`render_html_report`, :func:`write_html_report`.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from airflow_provider_mlprod.validation.sources import describe_location, open_for_writing
from airflow_provider_mlprod.validation.summary import ValidationSummary

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } .verdict { padding: .3rem .6rem; border-radius: 4px; color: #fff; }
.passed { background: #2e7d32; } .failed { background: #c62828; } .warned { background: #ef6c00; }
table { border-collapse: collapse; margin: 1rem 0; } th, td { border: 1px solid #ccc; padding: .3rem .6rem;
text-align: left; vertical-align: top; } th { background: #f4f4f4; } code { white-space: pre-wrap; }
"""


def render_html_report(summary: ValidationSummary) -> str:
    """Render ``summary`` as one self-contained HTML page."""
    verdict = "PASSED" if summary.success else "FAILED"
    verdict_class = "passed" if summary.success else "failed"
    if summary.success and summary.failed_warning:
        verdict, verdict_class = "PASSED WITH WARNINGS", "warned"
    counts = [
        ("Rows checked", summary.rows_checked),
        ("Expectations evaluated", summary.evaluated),
        ("Passed", summary.passed),
        ("Failed (critical)", summary.failed_critical),
        ("Failed (warning)", summary.failed_warning),
    ]
    count_rows = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in counts)
    quarantine_rows = ""
    if summary.quarantine:
        quarantine_rows = "".join(
            f"<tr><th>Quarantine {escape(str(key))}</th><td>{_value(value)}</td></tr>"
            for key, value in summary.quarantine.items()
        )
    outcome_rows = "".join(_outcome_row(outcome) for outcome in summary.outcomes)
    title = f"Validation of {summary.dataset} with suite {summary.suite_name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)} <span class="verdict {verdict_class}">{verdict}</span></h1>'
        f"<table>{count_rows}{quarantine_rows}</table>"
        "<table><thead><tr><th>#</th><th>Expectation</th><th>Column</th><th>Parameters</th><th>Severity</th>"
        "<th>Result</th>"
        "<th>Unexpected</th><th>Unexpected %</th><th>Sample values</th><th>Observed</th></tr></thead>"
        f"<tbody>{outcome_rows}</tbody></table></body></html>\n"
    )


def write_html_report(summary: ValidationSummary, location: Any) -> str:
    """Write the report to a local path (folders created) or an object with ``open(mode)``; return where."""
    page = render_html_report(summary).encode("utf-8")
    with open_for_writing(location) as handle:
        handle.write(page)
    return describe_location(location)


def _outcome_row(outcome: Any) -> str:
    result = "passed" if outcome.success else "failed"
    css = "passed" if outcome.success else ("failed" if outcome.severity == "critical" else "warned")
    percent = "" if outcome.unexpected_percent is None else f"{outcome.unexpected_percent:.4g}"
    count = "" if outcome.unexpected_count is None else str(outcome.unexpected_count)
    return (
        f"<tr><td>{outcome.position}</td><td>{escape(outcome.expectation_type)}</td>"
        f"<td>{escape(outcome.column or '')}</td><td>{_parameters(outcome.parameters)}</td>"
        f"<td>{escape(outcome.severity)}</td>"
        f'<td><span class="verdict {css}">{result}</span></td><td>{count}</td><td>{percent}</td>'
        f"<td>{_value(outcome.sample_values) if outcome.sample_values else ''}</td>"
        f"<td>{'' if outcome.observed_value is None else _value(outcome.observed_value)}</td></tr>"
    )


def _parameters(parameters: Any) -> str:
    """Each argument on its own line, e.g. ``min_value = 0``; empty for none."""
    return "<br>".join(
        f"{escape(str(key))} = {_value(value)}" for key, value in sorted((parameters or {}).items())
    )


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return f"<code>{escape(text)}</code>"

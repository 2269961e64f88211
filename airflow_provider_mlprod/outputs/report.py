"""A self-contained HTML report of output checks: verdict, counts, one row per check, failing examples.

Every value that comes from the data (failing outputs, names, columns) is HTML-escaped: model outputs
are untrusted text. The page uses the validation report's style, has no script and loads nothing.

Public API: :func:`render_output_report`, :func:`write_output_report`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from airflow_provider_mlprod.outputs.runner import OutputCheckResult, OutputCheckSummary
from airflow_provider_mlprod.validation.report import STYLE
from airflow_provider_mlprod.validation.sources import describe_location, open_for_writing


def render_output_report(summary: OutputCheckSummary) -> str:
    """Render ``summary`` as one HTML page."""
    verdict, css = ("PASSED", "passed") if summary.success else ("FAILED", "failed")
    if summary.success and summary.failed_warning:
        verdict, css = "PASSED WITH WARNINGS", "warned"
    facts = [("Rows checked", summary.rows), ("Checks", len(summary.results))]
    facts += [(f"Quarantine {key}", value) for key, value in (summary.quarantine or {}).items()]
    fact_rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
    title = f"Output checks of {summary.dataset}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)} <span class="verdict {css}">{verdict}</span></h1>'
        f"<table>{fact_rows}</table>"
        "<table><thead><tr><th>Check</th><th>Column</th><th>Severity</th><th>Result</th><th>Pass rate</th>"
        "<th>Min pass rate</th><th>Failed rows</th><th>Ran in</th><th>Failing outputs (examples)</th>"
        f"</tr></thead><tbody>{''.join(_row(r) for r in summary.results)}</tbody></table></body></html>\n"
    )


def write_output_report(summary: OutputCheckSummary, location: Any) -> str:
    """Write the report to a local path or an object with ``open(mode)``; return where."""
    with open_for_writing(location) as handle:
        handle.write(render_output_report(summary).encode("utf-8"))
    return describe_location(location)


def _row(result: OutputCheckResult) -> str:
    css = "passed" if result.success else ("failed" if result.severity == "critical" else "warned")
    rate = "" if result.pass_rate is None else f"{result.pass_rate:.4f}"
    examples = "".join(f"<li><code>{escape(example)}</code></li>" for example in result.failing_examples)
    return (
        f"<tr><td>{escape(result.name)}</td><td>{escape(result.column)}</td><td>{escape(result.severity)}</td>"
        f'<td><span class="verdict {css}">{"passed" if result.success else "failed"}</span></td>'
        f"<td>{rate}</td><td>{result.min_pass_rate:.4f}</td><td>{result.failed_rows}</td>"
        f"<td>{escape(result.ran_in)}</td><td><ul>{examples}</ul></td></tr>"
    )

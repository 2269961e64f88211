"""Alerts built from typed validation, drift and gate summaries (:mod:`airflow_provider_mlprod.summaries`).

A failure triggers, a pass resolves, under one dedup key per kind, DAG, task and subject (hashed when
over 255 characters), so a later pass closes what a failure opened. Facts are readable text, never row
values; links go to the report (``report_url``, else an http(s) ``report_location``), run and task log.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mlprod.alerts.message import SEVERITIES, Alert, AlertLink, FactValue, sha256
from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.summaries import (
    ColumnVerdict,
    DriftResultSummary,
    GateResultSummary,
    TypedSummary,
    ValidationResultSummary,
)

#: Failed expectations / drifted columns / failed metrics listed in the summary text and facts.
MAX_LISTED_ITEMS = 10


def _alert(
    typed: TypedSummary, subject: str, outcome: tuple[str, str, str], text: str, facts: dict, ids: dict
) -> Alert:
    if unknown := set(ids) - {"dag_id", "run_id", "task_id", "report_url", "run_url", "log_url"}:
        raise TypeError(f"alert from a {typed.kind} summary: unexpected argument(s) {sorted(unknown)}")
    location = typed.report_location or ""
    report_url = ids.get("report_url") or (location if location.startswith(("http://", "https://")) else None)
    labelled = (("Report", report_url), ("Run", ids.get("run_url")), ("Task log", ids.get("log_url")))
    key = f"mlprod:{typed.kind}:{ids.get('dag_id') or '-'}:{ids.get('task_id') or '-'}:{subject}"
    severity, action, title = outcome
    links = [AlertLink(label, url) for label, url in labelled if url]
    key = key if len(key) <= 255 else f"mlprod:{typed.kind}:" + sha256(key)
    shown = {name: value for name, value in facts.items() if value is not None}
    run_ids = {name: ids.get(name) for name in ("dag_id", "run_id", "task_id")}
    return Alert(title, severity, text, shown, links, dedup_key=key, action=action, **run_ids)


def _listed(lines: list[str], total: int) -> list[str]:
    shown = lines[:MAX_LISTED_ITEMS]
    return shown + ([f"… and {total - len(shown)} more"] if total > len(shown) else [])


def _number(value: float | None, infinite: bool = False) -> str:
    return ("inf" if infinite else "n/a") if value is None else f"{value:.4g}"


def _check_severity(severity: str, parameter: str) -> None:
    if severity not in SEVERITIES:
        raise SpecError(f"{parameter} {severity!r} is not one of {SEVERITIES}")


def alert_from_validation(summary: ValidationResultSummary, **ids: Any) -> Alert:
    """Critical when a critical expectation failed, warning for warnings only, else a resolve."""
    s, failed = summary, summary.failed_critical + summary.failed_warning
    counted = f"{failed} of {s.evaluated} expectations"
    if failed == 0:
        outcome = ("info", "resolve", f"Validation passed: {s.dataset} ({s.evaluated} expectations)")
    elif s.success:
        outcome = ("warning", "trigger", f"Validation passed with warnings: {s.dataset} ({counted} failed)")
    else:
        outcome = ("critical", "trigger", f"Validation failed: {s.dataset} ({counted})")
    head = f"Suite '{s.suite_name}' on {s.dataset}: {s.passed} passed, {failed} failed of {s.evaluated}."
    head += f" {s.failed_critical} critical, {s.failed_warning} warning." if s.failed_warning else ""
    lines = []
    for failure in s.failures:
        count, percent = failure.unexpected_count, failure.unexpected_percent
        amount = f"{count} unexpected" if count is not None else ""
        if percent is not None:
            amount = f"{amount} ({percent:.2f}%)" if amount else f"{percent:.2f}% unexpected"
        on = f" on column '{failure.column}'" if failure.column else ""
        tag = " (warning)" if failure.severity == "warning" else ""
        lines.append(f"• {failure.expectation_type}{on}{': ' + amount if amount else ''}{tag}")
    facts: dict[str, FactValue] = {
        "Suite": s.suite_name,
        "Dataset": s.dataset,
        "Rows checked": s.rows_checked,
        "Evaluated": s.evaluated,
        "Passed": s.passed,
        "Failed": failed,
        "Failed (critical)": s.failed_critical,
        "Failed (warning)": s.failed_warning,
        "Success rate": f"{100.0 * s.passed / s.evaluated:.1f}%",
        "Quarantined rows": s.quarantined_rows,
    }
    return _alert(s, s.suite_name, outcome, "\n".join([head, *_listed(lines, failed)]), facts, ids)


def _drift_line(column: ColumnVerdict) -> str:
    shown, test, limit = _number(column.statistic, column.distribution_drifted), column.test, column.threshold
    distribution = {
        "p_value_below": f"{test} p-value {_number(column.p_value)} < {limit:.4g} (statistic {shown})",
        "statistic_above": f"{test} = {shown} > {limit:.4g}",
    }.get(column.drift_when, f"{test} = {shown} (threshold {limit:.4g})")
    reasons = [distribution] if column.distribution_drifted else []
    if column.missing_rate_drifted:
        change = column.missing_rate_change
        reasons.append("missing-value rate changed" + (f" by {change:.1%}" if change is not None else ""))
    if column.unseen_drifted:
        share = column.unseen_share
        reasons.append("new categories" + (f" ({share:.1%} of current values)" if share is not None else ""))
    return f"• {column.column}: " + "; ".join(reasons)


def alert_from_drift(summary: DriftResultSummary, *, severity_on_drift: str = "warning", **ids: Any) -> Alert:
    """``severity_on_drift`` on dataset drift, info for column drift below the threshold, else a resolve."""
    _check_severity(severity_on_drift, "severity_on_drift")
    s, total = summary, len(summary.columns)
    lines = [_drift_line(column) for column in s.columns if column.drifted]
    count = len(lines)
    share = s.share_drifted if s.share_drifted is not None else count / total
    counted = f"{count} of {total} columns"
    if s.dataset_drift:
        outcome = (severity_on_drift, "trigger", f"Data drift: {s.dataset} ({counted} drifted)")
    elif count:
        outcome = ("info", "trigger", f"Column drift below the dataset threshold: {s.dataset} ({counted})")
    else:
        outcome = ("info", "resolve", f"No drift: {s.dataset} ({total} columns compared)")
    threshold = s.drift_share_threshold
    head = f"{count} of {total} columns drifted (share {share:.1%})"
    head += f", dataset threshold {threshold:.1%}." if threshold is not None else "."
    protected = ", ".join(s.must_not_drift_drifted)
    head += f" Columns that must not drift drifted: {protected}." if protected else ""
    rows = (s.reference_rows, s.current_rows)
    facts: dict[str, FactValue] = {
        "Dataset": s.dataset,
        "Dataset drift": s.dataset_drift,
        "Drifted columns": f"{count} of {total}",
        "Drift share": f"{share:.1%}",
        "Share threshold": f"{threshold:.1%}" if threshold is not None else None,
        "Must-not-drift columns drifted": protected or None,
        "Rows (reference / current)": "{} / {}".format(*rows) if None not in rows else None,
    }
    return _alert(s, s.dataset, outcome, "\n".join([head, *_listed(lines, count)]), facts, ids)


def alert_from_gate(summary: GateResultSummary, *, severity_on_failure: str = "warning", **ids: Any) -> Alert:
    """``severity_on_failure`` when the gate rejected the model, else a resolve."""
    _check_severity(severity_on_failure, "severity_on_failure")
    s = summary
    champion = s.champion_version if s.champion_version != s.baseline_version else ""
    shown = {"Model": s.model_name, "Version": s.model_version, "Baseline version": s.baseline_version}
    shown.update({"Champion version": champion, "Metrics source": s.metrics_source})
    facts: dict[str, FactValue] = {key: value for key, value in shown.items() if value}
    failed = []
    for index, metric in enumerate(s.metrics):
        versus = f" vs baseline {metric.baseline:.4g}" if metric.baseline is not None else ""
        if index < MAX_LISTED_ITEMS:
            facts[metric.metric] = f"{_number(metric.value)}{versus} ({metric.verdict})"
        if not metric.passed:  # the gate's reason names the metric, its value and the rule it broke
            failed.append(f"• {metric.reason or f'{metric.metric} = {_number(metric.value)}{versus}'}")
    subject, total = f"{s.model_name} {s.model_version}".strip(), len(s.metrics)
    title = f"Model gate rejected: {subject} ({len(failed)} of {total} metrics failed)"
    passed = ("info", "resolve", f"Model gate passed: {subject}")
    outcome = passed if s.passed else (severity_on_failure, "trigger", title)
    text = "\n".join([f"{total - len(failed)} of {total} metrics passed.", *_listed(failed, len(failed))])
    return _alert(s, s.model_name, outcome, text, facts, ids)


BUILDERS = {"validation": alert_from_validation, "drift": alert_from_drift, "gate": alert_from_gate}


def alert_from_summary(summary: TypedSummary, **ids: Any) -> Alert:
    return BUILDERS[summary.kind](summary, **ids)

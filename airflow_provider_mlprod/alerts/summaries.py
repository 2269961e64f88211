"""Alerts built from the summaries of validation, drift and gate results.

Each builder takes a plain dict (the ``to_dict()`` of a result, or XCom) and returns an
:class:`~airflow_provider_mlprod.alerts.message.Alert` with what failed, the key numbers, the
report and log links and the run ids. Missing or malformed keys raise :class:`InputDataError`
naming the key: an alert is never built from a summary that cannot be read.

Validation summary keys::

    success              bool, required: whether the suite passed under the severity policy
    evaluated            int, required, > 0: expectations evaluated
    failed               int, required: expectations that failed
    passed               int, optional: defaults to evaluated - failed; must add up
    suite_name           str, optional: the expectation suite
    data_asset           str, optional: what was validated (table, file)
    failed_expectations  list, optional: {"type": str, "column": str | None,
                         "unexpected_percent": float | None, "severity": "critical" | "warning"}

    severity: failed with any critical (or unmarked) failure -> critical; failures that are all
    ``warning`` -> warning; success without failures -> info and action ``resolve``.

Drift summary keys::

    dataset_drift        bool, required: the dataset-level verdict
    columns              list, required, non-empty: {"column": str, "test": str,
                         "statistic": float, "threshold": float, "drifted": bool}
    drift_share          float, optional: share of drifted columns (computed when absent)
    share_threshold      float, optional: share above which the dataset counts as drifted
    dataset              str, optional: name of the compared dataset

    severity: dataset drift -> ``severity_on_drift`` (warning by default); drifted columns without
    dataset drift -> info; nothing drifted -> info and action ``resolve``.

Gate summary keys::

    passed               bool, required: whether the candidate passed the gate
    metrics              list, required, non-empty: {"metric": str, "value": float,
                         "baseline": float | None, "verdict": "pass" | "fail", "reason": str}
    model_name           str, optional
    candidate_version    str, optional
    baseline_version     str, optional

    severity: rejected -> ``severity_on_failure`` (warning by default); passed -> info, ``resolve``.

Dedup keys are ``mlprod:<kind>:<dag_id>:<task_id>:<subject>`` (hashed when longer than 255
characters): stable across runs, so repeated failures within the dedup window are sent once and a
later ``resolve`` closes the PagerDuty incident the failure opened.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mlprod.alerts.message import SEVERITIES, Alert, AlertLink, FactValue
from airflow_provider_mlprod.exceptions import InputDataError, SpecError

#: Failed expectations / drifted columns / failed metrics listed in the summary text and facts.
MAX_LISTED_ITEMS = 10


def _require(summary: Mapping[str, Any], key: str, kind: str) -> Any:
    if not isinstance(summary, Mapping):
        raise InputDataError(f"{kind} summary: expected a dict, got {type(summary).__name__}")
    if key not in summary:
        raise InputDataError(f"{kind} summary: key {key!r} is missing")
    return summary[key]


def _bool(summary: Mapping[str, Any], key: str, kind: str) -> bool:
    value = _require(summary, key, kind)
    if not isinstance(value, bool):
        raise InputDataError(f"{kind} summary: {key!r} must be true or false, got {value!r}")
    return value


def _count(value: Any, key: str, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputDataError(f"{kind} summary: {key!r} must be a non-negative integer, got {value!r}")
    return value


def _number(value: Any, key: str, kind: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputDataError(f"{kind} summary: {key} must be a finite number, got {value!r}")
    return float(value)


def _items(summary: Mapping[str, Any], key: str, kind: str, *, required: bool) -> list[Mapping[str, Any]]:
    value = _require(summary, key, kind) if required else summary.get(key, [])
    if value is None and not required:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InputDataError(f"{kind} summary: {key!r} must be a list, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InputDataError(f"{kind} summary: {key}[{index}] must be a dict, got {type(item).__name__}")
    if required and not value:
        raise InputDataError(f"{kind} summary: {key!r} is empty; nothing to report on")
    return list(value)


def _text(value: Any, key: str, kind: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputDataError(f"{kind} summary: {key} must be a string, got {value!r}")
    return value


def _links(report_url: str | None, log_url: str | None) -> list[AlertLink]:
    links = []
    if report_url:
        links.append(AlertLink("Report", report_url))
    if log_url:
        links.append(AlertLink("Task log", log_url))
    return links


def _dedup_key(kind: str, dag_id: str | None, task_id: str | None, subject: str) -> str:
    key = f"mlprod:{kind}:{dag_id or '-'}:{task_id or '-'}:{subject}"
    if len(key) <= 255:
        return key
    return f"mlprod:{kind}:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_severity(severity: str, parameter: str) -> None:
    if severity not in SEVERITIES:
        raise SpecError(f"{parameter} {severity!r} is not one of {SEVERITIES}")


def _more_line(total: int) -> list[str]:
    return [f"… and {total - MAX_LISTED_ITEMS} more"] if total > MAX_LISTED_ITEMS else []


def alert_from_validation(
    summary: Mapping[str, Any],
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    report_url: str | None = None,
    log_url: str | None = None,
) -> Alert:
    """Build the alert for a validation summary (keys in the module docstring)."""
    kind = "validation"
    success = _bool(summary, "success", kind)
    evaluated = _count(_require(summary, "evaluated", kind), "evaluated", kind)
    failed = _count(_require(summary, "failed", kind), "failed", kind)
    if evaluated == 0:
        raise InputDataError("validation summary: 'evaluated' is 0; nothing was validated")
    if failed > evaluated:
        raise InputDataError(f"validation summary: failed ({failed}) exceeds evaluated ({evaluated})")
    passed = _count(summary.get("passed", evaluated - failed), "passed", kind)
    if passed + failed != evaluated:
        raise InputDataError(
            f"validation summary: passed ({passed}) + failed ({failed}) != evaluated ({evaluated})"
        )
    suite = _text(summary.get("suite_name"), "suite_name", kind, "expectation suite")
    asset = _text(summary.get("data_asset"), "data_asset", kind, suite)
    failures = _items(summary, "failed_expectations", kind, required=False)

    lines = []
    failure_severities = []
    for index, failure in enumerate(failures):
        expectation_type = _text(failure.get("type"), f"failed_expectations[{index}].type", kind, "")
        if not expectation_type:
            raise InputDataError(f"validation summary: failed_expectations[{index}] has no 'type'")
        column = _text(failure.get("column"), f"failed_expectations[{index}].column", kind, "")
        percent = _number(
            failure.get("unexpected_percent"),
            f"failed_expectations[{index}].unexpected_percent",
            kind,
            optional=True,
        )
        failure_severity = _text(
            failure.get("severity"), f"failed_expectations[{index}].severity", kind, "critical"
        )
        if failure_severity not in ("critical", "warning"):
            raise InputDataError(
                f"validation summary: failed_expectations[{index}].severity {failure_severity!r} "
                "is not 'critical' or 'warning'"
            )
        failure_severities.append(failure_severity)
        where = f" on column '{column}'" if column else ""
        amount = f": {percent:.2f}% unexpected" if percent is not None else ""
        tag = " (warning)" if failure_severity == "warning" else ""
        lines.append(f"• {expectation_type}{where}{amount}{tag}")

    if failed == 0 and success:
        severity, action = "info", "resolve"
        title = f"Validation passed: {asset} ({evaluated} expectations)"
    elif success:
        severity, action = "warning", "trigger"
        title = f"Validation passed with warnings: {asset} ({failed} of {evaluated} expectations failed)"
    else:
        all_warnings = bool(failure_severities) and all(level == "warning" for level in failure_severities)
        severity, action = ("warning" if all_warnings else "critical"), "trigger"
        title = f"Validation failed: {asset} ({failed} of {evaluated} expectations)"

    head = f"Suite '{suite}' on {asset}: {passed} passed, {failed} failed of {evaluated}."
    text = "\n".join([head, *lines[:MAX_LISTED_ITEMS], *_more_line(len(lines))])
    facts: dict[str, FactValue] = {
        "Suite": suite,
        "Data asset": asset,
        "Evaluated": evaluated,
        "Passed": passed,
        "Failed": failed,
        "Success rate": f"{100.0 * passed / evaluated:.1f}%",
    }
    return Alert(
        title=title,
        severity=severity,
        action=action,
        summary=text,
        facts=facts,
        links=_links(report_url, log_url),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        dedup_key=_dedup_key(kind, dag_id, task_id, suite),
    )


def alert_from_drift(
    summary: Mapping[str, Any],
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    report_url: str | None = None,
    log_url: str | None = None,
    severity_on_drift: str = "warning",
) -> Alert:
    """Build the alert for a drift summary (keys in the module docstring)."""
    kind = "drift"
    _check_severity(severity_on_drift, "severity_on_drift")
    dataset_drift = _bool(summary, "dataset_drift", kind)
    columns = _items(summary, "columns", kind, required=True)
    dataset = _text(summary.get("dataset"), "dataset", kind, "dataset")

    drifted_lines = []
    for index, entry in enumerate(columns):
        where = f"columns[{index}]"
        column = _text(entry.get("column"), f"{where}.column", kind, "")
        if not column:
            raise InputDataError(f"drift summary: {where} has no 'column'")
        test = _text(entry.get("test"), f"{where}.test", kind, "")
        if not test:
            raise InputDataError(f"drift summary: column '{column}' has no 'test'")
        statistic = _number(entry.get("statistic"), f"column '{column}' statistic", kind)
        threshold = _number(entry.get("threshold"), f"column '{column}' threshold", kind)
        drifted = entry.get("drifted")
        if not isinstance(drifted, bool):
            raise InputDataError(
                f"drift summary: column '{column}' 'drifted' must be true or false, got {drifted!r}"
            )
        if drifted:
            drifted_lines.append(f"• {column}: {test} = {statistic:.4g} (threshold {threshold:.4g})")

    drift_share = summary.get("drift_share")
    if drift_share is None:
        drift_share = len(drifted_lines) / len(columns)
    drift_share = _number(drift_share, "drift_share", kind)
    if not 0.0 <= drift_share <= 1.0:
        raise InputDataError(f"drift summary: drift_share must be within [0, 1], got {drift_share}")
    share_threshold = _number(summary.get("share_threshold"), "share_threshold", kind, optional=True)

    count = len(drifted_lines)
    if dataset_drift:
        severity, action = severity_on_drift, "trigger"
        title = f"Data drift: {dataset} ({count} of {len(columns)} columns drifted)"
    elif count:
        severity, action = "info", "trigger"
        title = f"Column drift below the dataset threshold: {dataset} ({count} of {len(columns)} columns)"
    else:
        severity, action = "info", "resolve"
        title = f"No drift: {dataset} ({len(columns)} columns compared)"
    head = f"{count} of {len(columns)} columns drifted (share {drift_share:.1%})"
    head += f", dataset threshold {share_threshold:.1%}." if share_threshold is not None else "."
    text = "\n".join([head, *drifted_lines[:MAX_LISTED_ITEMS], *_more_line(count)])
    facts: dict[str, FactValue] = {
        "Dataset": dataset,
        "Dataset drift": dataset_drift,
        "Drifted columns": f"{count} of {len(columns)}",
        "Drift share": f"{drift_share:.1%}",
    }
    if share_threshold is not None:
        facts["Share threshold"] = f"{share_threshold:.1%}"
    return Alert(
        title=title,
        severity=severity,
        action=action,
        summary=text,
        facts=facts,
        links=_links(report_url, log_url),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        dedup_key=_dedup_key(kind, dag_id, task_id, dataset),
    )


def alert_from_gate(
    summary: Mapping[str, Any],
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    report_url: str | None = None,
    log_url: str | None = None,
    severity_on_failure: str = "warning",
) -> Alert:
    """Build the alert for a model gate summary (keys in the module docstring)."""
    kind = "gate"
    _check_severity(severity_on_failure, "severity_on_failure")
    passed = _bool(summary, "passed", kind)
    metrics = _items(summary, "metrics", kind, required=True)
    model = _text(summary.get("model_name"), "model_name", kind, "model")
    candidate = _text(summary.get("candidate_version"), "candidate_version", kind, "")
    baseline_version = _text(summary.get("baseline_version"), "baseline_version", kind, "")

    failed_lines = []
    facts: dict[str, FactValue] = {"Model": model}
    if candidate:
        facts["Candidate version"] = candidate
    if baseline_version:
        facts["Baseline version"] = baseline_version
    for index, entry in enumerate(metrics):
        name = _text(entry.get("metric"), f"metrics[{index}].metric", kind, "")
        if not name:
            raise InputDataError(f"gate summary: metrics[{index}] has no 'metric'")
        value = _number(entry.get("value"), f"metric '{name}' value", kind)
        baseline = _number(entry.get("baseline"), f"metric '{name}' baseline", kind, optional=True)
        verdict = entry.get("verdict")
        if verdict not in ("pass", "fail"):
            raise InputDataError(
                f"gate summary: metric '{name}' verdict must be 'pass' or 'fail', got {verdict!r}"
            )
        reason = _text(entry.get("reason"), f"metric '{name}' reason", kind, "")
        versus = f" vs baseline {baseline:.4g}" if baseline is not None else ""
        if len(facts) < 3 + MAX_LISTED_ITEMS:
            facts[name] = f"{value:.4g}{versus} ({verdict})"
        if verdict == "fail":
            failed_lines.append(f"• {name} = {value:.4g}{versus}" + (f": {reason}" if reason else ""))

    subject = f"{model} {candidate}".strip()
    if passed:
        severity, action = "info", "resolve"
        title = f"Model gate passed: {subject}"
    else:
        severity, action = severity_on_failure, "trigger"
        title = f"Model gate rejected: {subject} ({len(failed_lines)} of {len(metrics)} metrics failed)"
    head = f"{len(metrics) - len(failed_lines)} of {len(metrics)} metrics passed."
    text = "\n".join([head, *failed_lines[:MAX_LISTED_ITEMS], *_more_line(len(failed_lines))])
    return Alert(
        title=title,
        severity=severity,
        action=action,
        summary=text,
        facts=facts,
        links=_links(report_url, log_url),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        dedup_key=_dedup_key(kind, dag_id, task_id, model),
    )

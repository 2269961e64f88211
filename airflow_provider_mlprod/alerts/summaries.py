"""Alerts built from the summaries that validation, drift and gate tasks produce.

Each builder takes the plain dict a producer returns (its ``to_dict()`` or XCom) and returns an
:class:`~airflow_provider_mlprod.alerts.message.Alert` with what failed, the key numbers, the report
and log links and the run ids. Missing or malformed keys raise :class:`InputDataError` naming the key:
an alert is never built from a summary that cannot be read. :func:`summary_kind_of` tells the kind of
a summary from its keys and :func:`alert_from_summary` builds the alert of any kind.

A ``report_location`` that is an ``http(s)`` address becomes the "Report" link unless ``report_url``
is given (a ``file://`` location is not a link readers can open and is left out).

Validation: :meth:`airflow_provider_mlprod.validation.summary.ValidationSummary.to_dict`::

    success              bool, required: no critical expectation failed
    counts               dict, required: evaluated (> 0), passed, failed_critical, failed_warning,
                         non-negative integers with passed + failed_critical + failed_warning == evaluated
    suite_name           str, optional: the expectation suite
    dataset              str, optional: what was validated (file, table, query or frame label)
    rows_checked         int, optional: rows in the batch
    failures             list, optional: {"expectation_type": str, "column": str | None,
                         "severity": "critical" | "warning", "unexpected_count": int | None,
                         "unexpected_percent": float | None, ...}; sample values are not put in alerts
    report_location      str | None, optional
    quarantine           dict | None, optional: ``failing_rows`` (files) or ``records`` (tables) counted

    ``success`` must agree with ``counts.failed_critical`` (true exactly when it is 0).
    severity: a critical failure -> critical; only warning failures -> warning; nothing failed ->
    info and action ``resolve``.

Drift: :meth:`airflow_provider_mlprod.drift.results.DriftResult.to_dict`, or the drift operator's
XCom summary (the same verdicts with ``share_drifted``, ``dataset``, ``report_location`` and flat
``missing_rate_drifted`` / ``unseen_drifted`` per column)::

    dataset_drift        bool, required: the dataset-level verdict
    columns              list, required, non-empty: {"column": str, "test": str, "drifted": bool,
                         "threshold": float, "statistic": float | None, "p_value": float | None,
                         "drift_when": "p_value_below" | "statistic_above", "distribution_drifted": bool,
                         "missing": {"statistic": float | None, "drifted": bool},
                         "unseen_share": float | None, "unseen": {"drifted": bool} | None}
    drifted_share        float, optional: share of drifted columns (computed from columns when absent)
    drift_share_threshold float, optional: share from which the dataset counts as drifted
    must_not_drift_drifted list, optional: columns that may not drift and did
    reference_rows, current_rows  int, optional
    dataset              str, optional: name of the compared dataset

    A ``statistic`` of ``None`` is an infinite statistic when the distribution drifted (e.g.
    chi-square with a category new in the current data) and shows as ``inf``; otherwise the test did
    not apply (e.g. a column all null on one side) and it shows as ``n/a``.
    severity: dataset drift -> ``severity_on_drift`` (warning by default); drifted columns without
    dataset drift -> info; nothing drifted -> info and action ``resolve``.

Gate: the summary of :class:`~airflow_provider_mlprod.operators.gate.ModelMetricsGateOperator`
(:meth:`airflow_provider_mlprod.gates.GateResult.to_dict` plus the model keys)::

    passed               bool, required: every metric passed
    metrics              list, required, non-empty: {"metric": str, "value": float | None,
                         "baseline": float | None, "min": float | None, "max": float | None,
                         "verdict": "pass" | "fail", "reason": str}
    model_name           str, optional
    model_version        str, optional: the candidate version
    baseline_version     str | None, optional: the version compared against
    champion_version     str | None, optional: the champion when the gate ran
    metrics_source       str, optional: where the candidate's metrics came from

    ``value`` is ``None`` when the metric is missing or not a finite number (the metric then fails
    and shows as ``n/a``). ``passed`` must agree with the verdicts.
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

#: Summary kinds :func:`alert_from_summary` understands.
SUMMARY_KINDS: tuple[str, ...] = ("validation", "drift", "gate")

#: Drift decision rules of a column's test (see ``airflow_provider_mlprod.drift.stattests``).
P_VALUE_BELOW = "p_value_below"
STATISTIC_ABOVE = "statistic_above"


def summary_kind_of(summary: object) -> str | None:
    """Tell the kind of a summary from its keys: ``validation``, ``drift``, ``gate`` or ``None``."""
    if not isinstance(summary, Mapping):
        return None
    if "dataset_drift" in summary and "columns" in summary:
        return "drift"
    if "passed" in summary and "metrics" in summary:
        return "gate"
    if "success" in summary and "counts" in summary:
        return "validation"
    return None


def alert_from_summary(
    summary: Mapping[str, Any],
    kind: str | None = None,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    report_url: str | None = None,
    log_url: str | None = None,
) -> Alert:
    """Build the alert of a validation, drift or gate summary with the builder of its kind.

    :param summary: the summary dict.
    :param kind: ``validation``, ``drift`` or ``gate``; ``None`` tells it from the keys.
    :raises InputDataError: for an unknown kind, or a summary that cannot be read (names the key).
    """
    if kind is None:
        kind = summary_kind_of(summary)
        if kind is None:
            raise InputDataError("summary: not a validation, drift or gate summary (keys not recognised)")
    if kind not in SUMMARY_KINDS:
        raise InputDataError(f"summary kind {kind!r} is not one of {SUMMARY_KINDS}")
    builder = {"validation": alert_from_validation, "drift": alert_from_drift, "gate": alert_from_gate}[kind]
    return builder(
        summary, dag_id=dag_id, run_id=run_id, task_id=task_id, report_url=report_url, log_url=log_url
    )


# -- reading -------------------------------------------------------------------------------------


def _require(summary: Mapping[str, Any], key: str, kind: str) -> Any:
    if not isinstance(summary, Mapping):
        raise InputDataError(f"{kind} summary: expected a dict, got {type(summary).__name__}")
    if key not in summary:
        raise InputDataError(f"{kind} summary: key {key!r} is missing")
    return summary[key]


def _bool(value: Any, what: str, kind: str) -> bool:
    if not isinstance(value, bool):
        raise InputDataError(f"{kind} summary: {what} must be true or false, got {value!r}")
    return value


def _count(value: Any, what: str, kind: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputDataError(f"{kind} summary: {what} must be a non-negative integer, got {value!r}")
    return value


def _number(value: Any, key: str, kind: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputDataError(f"{kind} summary: {key} must be a finite number, got {value!r}")
    return float(value)


def _share(value: Any, key: str, kind: str, *, optional: bool = False) -> float | None:
    share = _number(value, key, kind, optional=optional)
    if share is not None and not 0.0 <= share <= 1.0:
        raise InputDataError(f"{kind} summary: {key} must be within [0, 1], got {share}")
    return share


def _items(summary: Mapping[str, Any], key: str, kind: str, *, required: bool) -> list[Mapping[str, Any]]:
    value = _require(summary, key, kind) if required else summary.get(key)
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


def _name(entry: Mapping[str, Any], key: str, where: str, kind: str) -> str:
    name = _text(entry.get(key), f"{where}.{key}", kind, "")
    if not name:
        raise InputDataError(f"{kind} summary: {where} has no {key!r}")
    return name


def _links(
    summary: Mapping[str, Any], kind: str, report_url: str | None, log_url: str | None
) -> list[AlertLink]:
    if report_url is None:
        location = _text(summary.get("report_location"), "report_location", kind, "")
        if location.startswith(("http://", "https://")):
            report_url = location
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


def _more_line(listed: int, total: int) -> list[str]:
    """The "… and N more" line when fewer than ``total`` items are listed."""
    shown = min(listed, MAX_LISTED_ITEMS)
    return [f"… and {total - shown} more"] if total > shown else []


def _format_number(value: float | None, *, infinite: bool = False) -> str:
    if value is None:
        return "inf" if infinite else "n/a"
    return f"{value:.4g}"


# -- validation ----------------------------------------------------------------------------------


def alert_from_validation(
    summary: Mapping[str, Any],
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    report_url: str | None = None,
    log_url: str | None = None,
) -> Alert:
    """Build the alert for a ``ValidationSummary.to_dict()`` (keys in the module docstring)."""
    kind = "validation"
    success = _bool(_require(summary, "success", kind), "'success'", kind)
    counts = _require(summary, "counts", kind)
    if not isinstance(counts, Mapping):
        raise InputDataError(f"validation summary: 'counts' must be a dict, got {type(counts).__name__}")
    numbers = []
    for key in ("evaluated", "passed", "failed_critical", "failed_warning"):
        if key not in counts:
            raise InputDataError(f"validation summary: key 'counts.{key}' is missing")
        numbers.append(_count(counts[key], f"'counts.{key}'", kind))
    evaluated, passed, failed_critical, failed_warning = numbers
    failed = failed_critical + failed_warning
    if evaluated == 0:
        raise InputDataError("validation summary: 'counts.evaluated' is 0; nothing was validated")
    if passed + failed != evaluated:
        raise InputDataError(
            f"validation summary: counts passed ({passed}) + failed_critical ({failed_critical}) "
            f"+ failed_warning ({failed_warning}) != evaluated ({evaluated})"
        )
    if success != (failed_critical == 0):
        raise InputDataError(
            f"validation summary: 'success' is {success} but counts.failed_critical is {failed_critical}"
        )
    suite = _text(summary.get("suite_name"), "suite_name", kind, "expectation suite")
    dataset = _text(summary.get("dataset"), "dataset", kind, suite)
    rows_checked = _count(summary.get("rows_checked"), "'rows_checked'", kind, optional=True)
    failures = _items(summary, "failures", kind, required=False)
    if len(failures) > failed:
        raise InputDataError(
            f"validation summary: {len(failures)} failures listed but counts say {failed} failed"
        )
    lines = [_failure_line(failure, index) for index, failure in enumerate(failures)]

    if failed == 0:
        severity, action = "info", "resolve"
        title = f"Validation passed: {dataset} ({evaluated} expectations)"
    elif success:
        severity, action = "warning", "trigger"
        title = f"Validation passed with warnings: {dataset} ({failed} of {evaluated} expectations failed)"
    else:
        severity, action = "critical", "trigger"
        title = f"Validation failed: {dataset} ({failed} of {evaluated} expectations)"

    head = f"Suite '{suite}' on {dataset}: {passed} passed, {failed} failed of {evaluated}."
    if failed_warning:
        head += f" {failed_critical} critical, {failed_warning} warning."
    text = "\n".join([head, *lines[:MAX_LISTED_ITEMS], *_more_line(len(lines), failed)])
    facts: dict[str, FactValue] = {"Suite": suite, "Dataset": dataset}
    if rows_checked is not None:
        facts["Rows checked"] = rows_checked
    facts.update(
        {
            "Evaluated": evaluated,
            "Passed": passed,
            "Failed": failed,
            "Failed (critical)": failed_critical,
            "Failed (warning)": failed_warning,
            "Success rate": f"{100.0 * passed / evaluated:.1f}%",
        }
    )
    quarantined = _quarantined_rows(summary.get("quarantine"))
    if quarantined is not None:
        facts["Quarantined rows"] = quarantined
    return Alert(
        title=title,
        severity=severity,
        action=action,
        summary=text,
        facts=facts,
        links=_links(summary, kind, report_url, log_url),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        dedup_key=_dedup_key(kind, dag_id, task_id, suite),
    )


def _failure_line(failure: Mapping[str, Any], index: int) -> str:
    kind, where = "validation", f"failures[{index}]"
    expectation_type = _name(failure, "expectation_type", where, kind)
    column = _text(failure.get("column"), f"{where}.column", kind, "")
    severity = _text(failure.get("severity"), f"{where}.severity", kind, "critical")
    if severity not in ("critical", "warning"):
        raise InputDataError(
            f"validation summary: {where}.severity {severity!r} is not 'critical' or 'warning'"
        )
    count = _count(failure.get("unexpected_count"), f"{where}.unexpected_count", kind, optional=True)
    percent = _number(failure.get("unexpected_percent"), f"{where}.unexpected_percent", kind, optional=True)
    on = f" on column '{column}'" if column else ""
    if count is not None and percent is not None:
        amount = f": {count} unexpected ({percent:.2f}%)"
    elif percent is not None:
        amount = f": {percent:.2f}% unexpected"
    elif count is not None:
        amount = f": {count} unexpected"
    else:
        amount = ""
    tag = " (warning)" if severity == "warning" else ""
    return f"• {expectation_type}{on}{amount}{tag}"


def _quarantined_rows(quarantine: Any) -> int | None:
    """Rows set aside by quarantine: ``failing_rows`` (files) or ``records`` (tables), if counted."""
    if quarantine is None:
        return None
    if not isinstance(quarantine, Mapping):
        raise InputDataError(
            f"validation summary: 'quarantine' must be a dict, got {type(quarantine).__name__}"
        )
    for key in ("failing_rows", "records"):
        if key in quarantine:
            return _count(quarantine[key], f"'quarantine.{key}'", "validation")
    return None


# -- drift ---------------------------------------------------------------------------------------


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
    """Build the alert for a ``DriftResult.to_dict()`` or drift operator summary (module docstring)."""
    kind = "drift"
    _check_severity(severity_on_drift, "severity_on_drift")
    dataset_drift = _bool(_require(summary, "dataset_drift", kind), "'dataset_drift'", kind)
    columns = _items(summary, "columns", kind, required=True)
    dataset = _text(summary.get("dataset"), "dataset", kind, "dataset")

    drifted_lines = [
        line
        for index, entry in enumerate(columns)
        if (line := _drifted_column_line(entry, index)) is not None
    ]
    count = len(drifted_lines)
    share_key = "drifted_share" if "drifted_share" in summary else "share_drifted"
    drift_share = _share(summary.get(share_key), share_key, kind, optional=True)
    if drift_share is None:
        drift_share = count / len(columns)
    share_threshold = _share(
        summary.get("drift_share_threshold"), "drift_share_threshold", kind, optional=True
    )
    protected = [
        _text(name, "must_not_drift_drifted[]", kind, "")
        for name in _names_list(summary.get("must_not_drift_drifted"), "must_not_drift_drifted")
    ]
    reference_rows = _count(summary.get("reference_rows"), "'reference_rows'", kind, optional=True)
    current_rows = _count(summary.get("current_rows"), "'current_rows'", kind, optional=True)

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
    if protected:
        head += f" Columns that must not drift drifted: {', '.join(protected)}."
    text = "\n".join([head, *drifted_lines[:MAX_LISTED_ITEMS], *_more_line(count, count)])
    facts: dict[str, FactValue] = {
        "Dataset": dataset,
        "Dataset drift": dataset_drift,
        "Drifted columns": f"{count} of {len(columns)}",
        "Drift share": f"{drift_share:.1%}",
    }
    if share_threshold is not None:
        facts["Share threshold"] = f"{share_threshold:.1%}"
    if protected:
        facts["Must-not-drift columns drifted"] = ", ".join(protected)
    if reference_rows is not None and current_rows is not None:
        facts["Rows (reference / current)"] = f"{reference_rows} / {current_rows}"
    return Alert(
        title=title,
        severity=severity,
        action=action,
        summary=text,
        facts=facts,
        links=_links(summary, kind, report_url, log_url),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        dedup_key=_dedup_key(kind, dag_id, task_id, dataset),
    )


def _names_list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InputDataError(f"drift summary: {key!r} must be a list, got {type(value).__name__}")
    return list(value)


def _signal_drifted(entry: Mapping[str, Any], nested: str, flat: str, column: str) -> bool:
    """Whether a side signal drifted: ``entry[nested]["drifted"]`` (result) or ``entry[flat]`` (XCom)."""
    kind = "drift"
    if flat in entry:
        return _bool(entry[flat], f"column '{column}' {flat}", kind)
    signal = entry.get(nested)
    if signal is None:
        return False
    if not isinstance(signal, Mapping):
        raise InputDataError(f"drift summary: column '{column}' {nested!r} must be a dict, got {signal!r}")
    return _bool(signal.get("drifted"), f"column '{column}' {nested}.drifted", kind)


def _drifted_column_line(entry: Mapping[str, Any], index: int) -> str | None:
    """Read one column entry; return its line when it drifted, ``None`` when it did not."""
    kind = "drift"
    column = _name(entry, "column", f"columns[{index}]", kind)
    test = _text(entry.get("test"), f"column '{column}' test", kind, "")
    if not test:
        raise InputDataError(f"drift summary: column '{column}' has no 'test'")
    drifted = _bool(entry.get("drifted"), f"column '{column}' 'drifted'", kind)
    threshold = _number(entry.get("threshold"), f"column '{column}' threshold", kind)
    statistic = _number(entry.get("statistic"), f"column '{column}' statistic", kind, optional=True)
    p_value = _number(entry.get("p_value"), f"column '{column}' p_value", kind, optional=True)
    drift_when = _text(entry.get("drift_when"), f"column '{column}' drift_when", kind, "")
    if drift_when not in ("", P_VALUE_BELOW, STATISTIC_ABOVE):
        raise InputDataError(
            f"drift summary: column '{column}' drift_when {drift_when!r} is not "
            f"{P_VALUE_BELOW!r} or {STATISTIC_ABOVE!r}"
        )
    missing_drifted = _signal_drifted(entry, "missing", "missing_rate_drifted", column)
    unseen_drifted = _signal_drifted(entry, "unseen", "unseen_drifted", column)
    if "distribution_drifted" in entry:
        distribution_drifted = _bool(
            entry["distribution_drifted"], f"column '{column}' distribution_drifted", kind
        )
    else:
        distribution_drifted = drifted and not (missing_drifted or unseen_drifted)
    if not drifted:
        return None

    shown = _format_number(statistic, infinite=distribution_drifted)
    reasons = []
    if distribution_drifted:
        if drift_when == P_VALUE_BELOW:
            reasons.append(f"{test} p-value {_format_number(p_value)} < {threshold:.4g} (statistic {shown})")
        elif drift_when == STATISTIC_ABOVE:
            reasons.append(f"{test} = {shown} > {threshold:.4g}")
        else:
            reasons.append(f"{test} = {shown} (threshold {threshold:.4g})")
    if missing_drifted:
        change = entry.get("missing_rate_change")
        if change is None and isinstance(entry.get("missing"), Mapping):
            change = entry["missing"].get("statistic")
        change = _number(change, f"column '{column}' missing-rate change", kind, optional=True)
        reasons.append("missing-value rate changed" + (f" by {change:.1%}" if change is not None else ""))
    if unseen_drifted:
        share = _share(entry.get("unseen_share"), f"column '{column}' unseen_share", kind, optional=True)
        reasons.append("new categories" + (f" ({share:.1%} of current values)" if share is not None else ""))
    if not reasons:
        raise InputDataError(f"drift summary: column '{column}' drifted but no test or signal says why")
    return f"• {column}: " + "; ".join(reasons)


# -- gate ----------------------------------------------------------------------------------------


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
    """Build the alert for a model gate operator summary (keys in the module docstring)."""
    kind = "gate"
    _check_severity(severity_on_failure, "severity_on_failure")
    passed = _bool(_require(summary, "passed", kind), "'passed'", kind)
    metrics = _items(summary, "metrics", kind, required=True)
    model = _text(summary.get("model_name"), "model_name", kind, "model")
    version = _text(summary.get("model_version"), "model_version", kind, "")
    baseline_version = _text(summary.get("baseline_version"), "baseline_version", kind, "")
    champion_version = _text(summary.get("champion_version"), "champion_version", kind, "")
    source = _text(summary.get("metrics_source"), "metrics_source", kind, "")

    facts: dict[str, FactValue] = {"Model": model}
    if version:
        facts["Version"] = version
    if baseline_version:
        facts["Baseline version"] = baseline_version
    if champion_version and champion_version != baseline_version:
        facts["Champion version"] = champion_version
    if source:
        facts["Metrics source"] = source
    listed_facts = len(facts) + MAX_LISTED_ITEMS
    failed_lines = []
    for index, entry in enumerate(metrics):
        name = _name(entry, "metric", f"metrics[{index}]", kind)
        value = _number(entry.get("value"), f"metric '{name}' value", kind, optional=True)
        baseline = _number(entry.get("baseline"), f"metric '{name}' baseline", kind, optional=True)
        verdict = entry.get("verdict")
        if verdict not in ("pass", "fail"):
            raise InputDataError(
                f"gate summary: metric '{name}' verdict must be 'pass' or 'fail', got {verdict!r}"
            )
        if verdict == "pass" and value is None:
            raise InputDataError(f"gate summary: metric '{name}' passed without a value")
        reason = _text(entry.get("reason"), f"metric '{name}' reason", kind, "")
        versus = f" vs baseline {baseline:.4g}" if baseline is not None else ""
        if len(facts) < listed_facts:
            facts[name] = f"{_format_number(value)}{versus} ({verdict})"
        if verdict == "fail":
            # The gate's reasons name the metric, its value and the rule it broke.
            failed_lines.append(f"• {reason}" if reason else f"• {name} = {_format_number(value)}{versus}")
    if passed == bool(failed_lines):
        raise InputDataError(
            f"gate summary: 'passed' is {passed} but {len(failed_lines)} of {len(metrics)} metrics failed"
        )

    subject = f"{model} {version}".strip()
    if passed:
        severity, action = "info", "resolve"
        title = f"Model gate passed: {subject}"
    else:
        severity, action = severity_on_failure, "trigger"
        title = f"Model gate rejected: {subject} ({len(failed_lines)} of {len(metrics)} metrics failed)"
    head = f"{len(metrics) - len(failed_lines)} of {len(metrics)} metrics passed."
    text = "\n".join(
        [head, *failed_lines[:MAX_LISTED_ITEMS], *_more_line(len(failed_lines), len(failed_lines))]
    )
    return Alert(
        title=title,
        severity=severity,
        action=action,
        summary=text,
        facts=facts,
        links=_links(summary, kind, report_url, log_url),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        dedup_key=_dedup_key(kind, dag_id, task_id, model),
    )

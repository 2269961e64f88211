"""Typed summaries of validation, drift and gate results, as their tasks push them to XCom.

Each is a small frozen dataclass: ``from_dict`` reads the JSON a task pushed (keys it does not hold
are ignored) and refuses what cannot be read with :class:`InputDataError` naming the key; ``to_dict``
gives the fields back as JSON. Alerts are built from these objects, so a summary is checked once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from airflow_provider_mlprod.exceptions import InputDataError

SUMMARY_KINDS: tuple[str, ...] = ("validation", "drift", "gate")


class _Reader:
    """Reads the values of one summary dict; every error names the summary kind and the key."""

    def __init__(self, data: Any, kind: str) -> None:
        if not isinstance(data, Mapping):
            raise InputDataError(f"{kind} summary: expected a dict, got {type(data).__name__}")
        self.data, self.kind = data, kind

    def get(self, read: Callable[..., Any], key: str, *args: Any, **kwargs: Any) -> Any:
        """``read`` (one of the checks below) applied to the summary's ``key``, named by the key."""
        return read(self.data.get(key), key, *args, **kwargs)

    def fail(self, problem: str) -> InputDataError:
        return InputDataError(f"{self.kind} summary: {problem}")

    def required(self, key: str, data: Mapping[str, Any] | None = None, name: str = "") -> Any:
        data = self.data if data is None else data
        if key not in data:
            raise self.fail(f"key {name or key!r} is missing")
        return data[key]

    def flag(self, value: Any, what: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{what} must be true or false, got {value!r}")
        return value

    def count(self, value: Any, what: str, optional: bool = True) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{what} must be a non-negative integer, got {value!r}")
        return value

    def number(self, value: Any, what: str, optional: bool = True, share: bool = False) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(f"{what} must be a finite number, got {value!r}")
        if share and not 0.0 <= value <= 1.0:
            raise self.fail(f"{what} must be within [0, 1], got {value}")
        return float(value)

    def text(self, value: Any, what: str, default: str = "") -> str:
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(f"{what} must be a string, got {value!r}")
        return value

    def strings(self, value: Any, what: str) -> tuple[str, ...]:
        return tuple(self.text(item, f"{what}[]") for item in self.values(value, what))

    def values(self, value: Any, what: str) -> tuple[Any, ...]:
        if value is not None and (isinstance(value, str | bytes) or not isinstance(value, Sequence)):
            raise self.fail(f"{what} must be a list, got {type(value).__name__}")
        return tuple(value or ())

    def mapping(self, value: Any, what: str, optional: bool = True) -> Mapping[str, Any] | None:
        if value is None and optional:
            return None
        if not isinstance(value, Mapping):
            raise self.fail(f"{what} must be a dict, got {type(value).__name__}")
        return value

    def name(self, entry: Mapping[str, Any], key: str, where: str) -> str:
        if not (name := self.text(entry.get(key), f"{where}.{key}")):
            raise self.fail(f"{where} has no {key!r}")
        return name

    def items(self, key: str, required: bool) -> list[Mapping[str, Any]]:
        value = self.required(key) if required else self.data.get(key)
        if value is None and not required:
            return []
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise self.fail(f"{key!r} must be a list, got {type(value).__name__}")
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail(f"{key}[{index}] must be a dict, got {type(item).__name__}")
        if required and not value:
            raise self.fail(f"{key!r} is empty; nothing to report on")
        return list(value)


def _json(value: Any) -> Any:
    """Dataclasses as dicts, tuples as lists."""
    if isinstance(value, Mapping):
        return {key: _json(item) for key, item in value.items()}
    return [_json(item) for item in value] if isinstance(value, list | tuple) else value


class _Summary:
    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The summary as the JSON ``from_dict`` reads."""
        return _json(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class FailedExpectation:
    expectation_type: str
    column: str | None = None
    severity: str = "critical"
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    position: int | None = None
    success: bool = False
    sample_values: tuple[Any, ...] = ()
    observed_value: Any = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationResultSummary(_Summary):
    """What a validation found (``ValidationSummary.to_dict()``, the validation operator's XCom):
    counts, failures, report, quarantine (where the failing rows went and how many)."""

    kind: ClassVar[str] = "validation"
    success: bool
    evaluated: int
    passed: int
    failed_critical: int
    failed_warning: int
    suite_name: str
    dataset: str
    rows_checked: int | None = None
    failures: tuple[FailedExpectation, ...] = ()
    report_location: str | None = None
    quarantine: Mapping[str, Any] | None = None

    @property
    def quarantined_rows(self) -> int | None:
        """Rows quarantined: files count failing rows, tables records."""
        counts = [
            self.quarantine[key] for key in ("failing_rows", "records") if key in (self.quarantine or {})
        ]
        return counts[0] if counts else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationResultSummary:
        r = _Reader(data, cls.kind)
        success = r.flag(r.required("success"), "'success'")
        counts = r.required("counts")
        if not isinstance(counts, Mapping):
            raise r.fail(f"'counts' must be a dict, got {type(counts).__name__}")
        keys = ("evaluated", "passed", "failed_critical", "failed_warning")
        evaluated, passed, critical, warning = (
            r.count(r.required(key, counts, f"counts.{key}"), f"'counts.{key}'", optional=False)
            for key in keys
        )
        if evaluated == 0:
            raise r.fail("'counts.evaluated' is 0; nothing was validated")
        if passed + critical + warning != evaluated:
            raise r.fail(
                f"counts passed ({passed}) + failed_critical ({critical}) + failed_warning ({warning}) "
                f"!= evaluated ({evaluated})"
            )
        if success != (critical == 0):
            raise r.fail(f"'success' is {success} but counts.failed_critical is {critical}")
        failures = []
        for index, entry in enumerate(r.items("failures", required=False)):
            where = f"failures[{index}]"
            severity = r.text(entry.get("severity"), f"{where}.severity", "critical")
            if severity not in ("critical", "warning"):
                raise r.fail(f"{where}.severity {severity!r} is not 'critical' or 'warning'")
            if r.flag(entry.get("success", False), f"{where}.success"):
                raise r.fail(f"{where} is listed as a failure but its success is true")
            failures.append(
                FailedExpectation(
                    r.name(entry, "expectation_type", where),
                    r.text(entry.get("column"), f"{where}.column") or None,
                    severity,
                    r.count(entry.get("unexpected_count"), f"{where}.unexpected_count"),
                    r.number(entry.get("unexpected_percent"), f"{where}.unexpected_percent"),
                    r.count(entry.get("position"), f"{where}.position"),
                    sample_values=r.values(entry.get("sample_values"), f"{where}.sample_values"),
                    observed_value=entry.get("observed_value"),
                    parameters=r.mapping(entry.get("parameters"), f"{where}.parameters") or {},
                )
            )
        if len(failures) > critical + warning:
            raise r.fail(f"{len(failures)} failures listed but counts say {critical + warning} failed")
        quarantine = r.mapping(data.get("quarantine"), "'quarantine'")
        for key in ("failing_rows", "records"):
            if key in (quarantine or {}):
                r.count(quarantine[key], f"'quarantine.{key}'", optional=False)
        suite = r.get(r.text, "suite_name", "expectation suite")
        return cls(
            *(
                success,
                evaluated,
                passed,
                critical,
                warning,
                suite,
                r.get(r.text, "dataset", suite),
            ),
            r.get(r.count, "rows_checked"),
            tuple(failures),
            r.get(r.text, "report_location") or None,
            None if quarantine is None else dict(quarantine),
        )

    def to_dict(self) -> dict[str, Any]:
        data = _json(asdict(self))
        counts = {key: data.pop(key) for key in ("evaluated", "passed", "failed_critical", "failed_warning")}
        return {**data, "counts": counts}


@dataclass(frozen=True)
class ColumnVerdict:
    column: str
    test: str
    drifted: bool
    threshold: float
    statistic: float | None = None
    p_value: float | None = None
    drift_when: str = ""
    distribution_drifted: bool = False
    missing_rate_drifted: bool = False
    missing_rate_change: float | None = None
    unseen_drifted: bool = False
    unseen_share: float | None = None
    kind: str = ""
    units: str = ""
    method: str = ""
    error_bound: float | None = None
    within_binning_error: bool = False
    statistic_range: tuple[float | None, ...] | None = None
    null_rate_reference: float | None = None
    null_rate_current: float | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftResultSummary(_Summary):
    """What a drift comparison found: read from ``DriftResult.to_dict()`` (signals nested) or the drift
    operator's XCom (flat, what ``to_dict`` gives)."""

    kind: ClassVar[str] = "drift"
    dataset_drift: bool
    columns: tuple[ColumnVerdict, ...]
    dataset: str = "dataset"
    share_drifted: float | None = None
    drift_share_threshold: float | None = None
    drifted_columns: tuple[str, ...] = ()
    must_not_drift: tuple[str, ...] = ()
    must_not_drift_drifted: tuple[str, ...] = ()
    reference_rows: int | None = None
    current_rows: int | None = None
    columns_only_in_current: tuple[str, ...] = ()
    report_location: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftResultSummary:
        r = _Reader(data, cls.kind)
        dataset_drift = r.flag(r.required("dataset_drift"), "'dataset_drift'")
        columns = [
            cls._column(r, entry, index) for index, entry in enumerate(r.items("columns", required=True))
        ]
        share_key = "drifted_share" if "drifted_share" in data else "share_drifted"
        return cls(
            dataset_drift,
            tuple(columns),
            r.get(r.text, "dataset", "dataset"),
            r.get(r.number, share_key, share=True),
            r.get(r.number, "drift_share_threshold", share=True),
            *(
                r.get(r.strings, key)
                for key in ("drifted_columns", "must_not_drift", "must_not_drift_drifted")
            ),
            r.get(r.count, "reference_rows"),
            r.get(r.count, "current_rows"),
            r.get(r.strings, "columns_only_in_current"),
            r.get(r.text, "report_location") or None,
        )

    @staticmethod
    def _column(r: _Reader, entry: Mapping[str, Any], index: int) -> ColumnVerdict:
        column = r.name(entry, "column", f"columns[{index}]")
        at = f"column '{column}'"
        if not (test := r.text(entry.get("test"), f"{at} test")):
            raise r.fail(f"{at} has no 'test'")
        drift_when = r.text(entry.get("drift_when"), f"{at} drift_when")
        if drift_when not in ("", "p_value_below", "statistic_above"):
            raise r.fail(f"{at} drift_when {drift_when!r} is not 'p_value_below' or 'statistic_above'")
        signals = {}
        for nested, flat in (("missing", "missing_rate_drifted"), ("unseen", "unseen_drifted")):
            signal = entry.get(nested)  # DriftResult nests {"drifted": ...}; the operator's XCom is flat
            if flat in entry:
                signals[nested] = r.flag(entry[flat], f"{at} {flat}")
            elif signal is not None and not isinstance(signal, Mapping):
                raise r.fail(f"{at} {nested!r} must be a dict, got {signal!r}")
            else:
                signals[nested] = signal is not None and r.flag(
                    signal.get("drifted"), f"{at} {nested}.drifted"
                )
        drifted = r.flag(entry.get("drifted"), f"{at} 'drifted'")
        change = entry.get("missing_rate_change")
        if change is None and isinstance(entry.get("missing"), Mapping):
            change = entry["missing"].get("statistic")
        verdict = ColumnVerdict(
            column,
            test,
            drifted,
            r.number(entry.get("threshold"), f"{at} threshold", optional=False),
            r.number(entry.get("statistic"), f"{at} statistic"),
            r.number(entry.get("p_value"), f"{at} p_value"),
            drift_when,
            r.flag(entry["distribution_drifted"], f"{at} distribution_drifted")
            if "distribution_drifted" in entry
            else drifted and not (signals["missing"] or signals["unseen"]),
            signals["missing"],
            r.number(change, f"{at} missing-rate change"),
            signals["unseen"],
            r.number(entry.get("unseen_share"), f"{at} unseen_share", share=True),
            *(r.text(entry.get(key), f"{at} {key}") for key in ("kind", "units", "method")),
            r.number(entry.get("error_bound"), f"{at} error_bound"),
            r.flag(entry.get("within_binning_error", False), f"{at} within_binning_error"),
            None
            if (bounds := entry.get("statistic_range")) is None
            else tuple(
                r.number(bound, f"{at} statistic_range")
                for bound in r.values(bounds, f"{at} statistic_range")
            ),
            *(
                r.number(entry.get(key), f"{at} {key}", share=True)
                for key in ("null_rate_reference", "null_rate_current")
            ),
            r.strings(entry.get("notes"), f"{at} notes"),
        )
        if drifted and not (
            verdict.distribution_drifted or verdict.missing_rate_drifted or verdict.unseen_drifted
        ):
            raise r.fail(f"{at} drifted but no test or signal says why")
        return verdict


@dataclass(frozen=True)
class MetricResult:
    metric: str
    value: float | None
    baseline: float | None
    verdict: str
    reason: str = ""
    min: float | None = None
    max: float | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass(frozen=True)
class GateResultSummary(_Summary):
    """A model gate's verdict: ``GateResult.to_dict()`` plus what the gate operator adds (model, gate,
    store and blessing revision). ``gate_kind`` is the gate's own ``kind`` key (``metrics``)."""

    kind: ClassVar[str] = "gate"
    passed: bool
    metrics: tuple[MetricResult, ...]
    model_name: str = "model"
    model_version: str = ""
    baseline_version: str | None = None
    champion_version: str | None = None
    metrics_source: str = ""
    report_location: str | None = None
    alias: str | None = None
    gate_name: str | None = None
    gate_kind: str | None = None
    spec_hash: str | None = None
    artifact_digest: str | None = None
    store: str | None = None
    store_id: str | None = None
    revision: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResultSummary:
        r = _Reader(data, cls.kind)
        passed = r.flag(r.required("passed"), "'passed'")
        metrics = []
        for index, entry in enumerate(r.items("metrics", required=True)):
            name = r.name(entry, "metric", f"metrics[{index}]")
            value = r.number(entry.get("value"), f"metric '{name}' value")
            if (verdict := entry.get("verdict")) not in ("pass", "fail"):
                raise r.fail(f"metric '{name}' verdict must be 'pass' or 'fail', got {verdict!r}")
            if verdict == "pass" and value is None:
                raise r.fail(f"metric '{name}' passed without a value")
            baseline = r.number(entry.get("baseline"), f"metric '{name}' baseline")
            reason = r.text(entry.get("reason"), f"metric '{name}' reason")
            bounds = (r.number(entry.get(key), f"metric '{name}' {key}") for key in ("min", "max"))
            metrics.append(MetricResult(name, value, baseline, verdict, reason, *bounds))
        failed = sum(not metric.passed for metric in metrics)
        if passed == bool(failed):
            raise r.fail(f"'passed' is {passed} but {failed} of {len(metrics)} metrics failed")
        optional = ("alias", "gate_name", "kind", "spec_hash", "artifact_digest", "store", "store_id")
        return cls(
            passed,
            tuple(metrics),
            r.get(r.text, "model_name", "model"),
            r.get(r.text, "model_version"),
            *(r.get(r.text, key) or None for key in ("baseline_version", "champion_version")),
            r.get(r.text, "metrics_source"),
            r.get(r.text, "report_location") or None,
            *(r.get(r.text, key) or None for key in optional),
            r.get(r.count, "revision"),
        )

    def to_dict(self) -> dict[str, Any]:
        data = _json(asdict(self))
        data["kind"] = data.pop("gate_kind")
        return data


TypedSummary = ValidationResultSummary | DriftResultSummary | GateResultSummary
SUMMARY_TYPES: dict[str, type[TypedSummary]] = {
    "validation": ValidationResultSummary,
    "drift": DriftResultSummary,
    "gate": GateResultSummary,
}


def summary_kind_of(data: object) -> str | None:
    """The kind of a summary dict, told from its keys: ``validation``, ``drift``, ``gate`` or ``None``."""
    if not isinstance(data, Mapping):
        return None
    shapes = {
        "drift": ("dataset_drift", "columns"),
        "gate": ("passed", "metrics"),
        "validation": ("success", "counts"),
    }
    return next((kind for kind, keys in shapes.items() if all(key in data for key in keys)), None)


def summary_from_dict(data: Any, kind: str | None = None) -> TypedSummary:
    """The typed summary of ``data``; ``kind`` ``None`` tells it from the keys."""
    kind = kind or summary_kind_of(data)
    if kind is None:
        raise InputDataError("summary: not a validation, drift or gate summary (keys not recognised)")
    if kind not in SUMMARY_TYPES:
        raise InputDataError(f"summary kind {kind!r} is not one of {SUMMARY_KINDS}")
    return SUMMARY_TYPES[kind].from_dict(data)

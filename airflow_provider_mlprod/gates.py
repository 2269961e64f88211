"""Model gates: check a candidate's metrics against fixed bounds and against a baseline (the champion).

A threshold spec maps each metric to its rules::

    {
        "roc_auc": {"min": 0.75, "min_absolute_change": 0.0},   # at least 0.75 and no worse than champion
        "log_loss": {"max": 0.6, "greater_is_better": False, "min_relative_change": 0.02},
    }

Rules per metric:

- ``min`` / ``max``: absolute bounds on the candidate's value (inclusive).
- ``greater_is_better`` (default True): the direction of improvement.
- ``min_absolute_change``: the candidate must improve on the baseline by at least this much, in the
  metric's own units. A negative value is a tolerance: ``-0.01`` allows a regression of up to 0.01.
- ``min_relative_change``: the candidate must improve by at least this fraction of ``|baseline|``
  (``0.02`` = 2 %); it must be >= 0. With a zero baseline the relative change is defined as ``+inf``
  for any improvement, ``0`` for none and ``-inf`` for any regression.

When change rules exist but there is no baseline (no champion yet), ``if_no_baseline`` decides:
``"pass"`` or ``"fail"``. It has no default: the choice must be explicit.

Change rules compare with a relative tolerance of ``1e-9`` so that floating-point rounding
(``0.82 - 0.80 == 0.0199999...``) does not decide a gate.

The gate fails closed: a metric that is missing, non-numeric, NaN or infinite fails its check with a
reason that names it, and so does a baseline that lacks a metric a change rule needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_mlprod.exceptions import SpecError

NoBaselinePolicy = Literal["pass", "fail"]
ROUNDING_TOLERANCE = 1e-9
_RULE_KEYS = ("min", "max", "greater_is_better", "min_absolute_change", "min_relative_change")


@dataclass(frozen=True)
class MetricThreshold:
    """The rules for one metric (see the module docstring)."""

    metric: str
    min: float | None = None
    max: float | None = None
    greater_is_better: bool = True
    min_absolute_change: float | None = None
    min_relative_change: float | None = None

    @property
    def compares_to_baseline(self) -> bool:
        """Whether this rule needs a baseline value."""
        return self.min_absolute_change is not None or self.min_relative_change is not None


@dataclass(frozen=True)
class MetricVerdict:
    """The outcome of one metric's rules."""

    metric: str
    value: float | None
    baseline: float | None
    min: float | None
    max: float | None
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "metric": self.metric,
            "value": self.value,
            "baseline": self.baseline,
            "min": self.min,
            "max": self.max,
            "verdict": "pass" if self.passed else "fail",
            "reason": self.reason,
        }


@dataclass(frozen=True)
class GateResult:
    """The outcome of a gate: passed only if every metric passed."""

    passed: bool
    verdicts: list[MetricVerdict] = field(default_factory=list)
    baseline_version: str | None = None

    @property
    def failures(self) -> list[MetricVerdict]:
        """The metrics that failed."""
        return [verdict for verdict in self.verdicts if not verdict.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "passed": self.passed,
            "baseline_version": self.baseline_version,
            "metrics": [verdict.to_dict() for verdict in self.verdicts],
        }


def parse_thresholds(spec: Mapping[str, Any]) -> list[MetricThreshold]:
    """Validate a threshold spec and return its rules; SpecError names the metric and the problem."""
    if not isinstance(spec, Mapping) or not spec:
        raise SpecError("threshold spec must be a non-empty mapping of metric name to rules")
    thresholds = []
    for metric, rules in spec.items():
        if not isinstance(metric, str) or not metric:
            raise SpecError(f"threshold spec: metric names must be non-empty strings, got {metric!r}")
        if not isinstance(rules, Mapping) or not rules:
            raise SpecError(f"threshold spec for {metric!r}: rules must be a non-empty mapping")
        unknown = sorted(set(rules) - set(_RULE_KEYS))
        if unknown:
            raise SpecError(
                f"threshold spec for {metric!r}: unknown rule(s) {unknown}; known rules: {list(_RULE_KEYS)}"
            )
        greater_is_better = rules.get("greater_is_better", True)
        if not isinstance(greater_is_better, bool):
            raise SpecError(f"threshold spec for {metric!r}: greater_is_better must be true or false")
        numbers = {
            key: _spec_number(metric, key, rules.get(key)) for key in _RULE_KEYS if key != "greater_is_better"
        }
        if numbers["min"] is not None and numbers["max"] is not None and numbers["min"] > numbers["max"]:
            raise SpecError(
                f"threshold spec for {metric!r}: min {numbers['min']} is greater than max {numbers['max']}"
            )
        if numbers["min_relative_change"] is not None and numbers["min_relative_change"] < 0:
            raise SpecError(
                f"threshold spec for {metric!r}: min_relative_change must be >= 0 "
                f"(a fraction of the baseline), got {numbers['min_relative_change']}"
            )
        if not any(value is not None for value in numbers.values()):
            raise SpecError(f"threshold spec for {metric!r}: no bound or change rule given")
        thresholds.append(MetricThreshold(metric=metric, greater_is_better=greater_is_better, **numbers))
    return thresholds


def evaluate_gate(
    metrics: Mapping[str, Any],
    thresholds: list[MetricThreshold] | Mapping[str, Any],
    *,
    baseline: Mapping[str, Any] | None = None,
    baseline_version: str | None = None,
    if_no_baseline: NoBaselinePolicy | None = None,
) -> GateResult:
    """Check ``metrics`` against ``thresholds`` (rules or a raw spec) and an optional baseline.

    :param metrics: the candidate's metrics, name -> value.
    :param baseline: the baseline's metrics (usually the champion's); ``None`` when there is none.
    :param baseline_version: the baseline's version, carried into the result for the record.
    :param if_no_baseline: ``"pass"`` or ``"fail"``: what change rules do without a baseline.
        Required when any rule compares to a baseline.
    """
    rules = parse_thresholds(thresholds) if isinstance(thresholds, Mapping) else list(thresholds)
    if not rules:
        raise SpecError("a gate needs at least one metric rule; with none it could not fail")
    if not isinstance(metrics, Mapping):
        raise SpecError(f"candidate metrics must be a mapping of name to value, got {type(metrics).__name__}")
    needs_baseline = any(rule.compares_to_baseline for rule in rules)
    if needs_baseline and if_no_baseline not in ("pass", "fail"):
        raise SpecError(
            "if_no_baseline must be 'pass' or 'fail' when a rule compares against a baseline "
            f"(what should happen when there is no champion yet?), got {if_no_baseline!r}"
        )
    if baseline is not None and not isinstance(baseline, Mapping):
        raise SpecError(f"baseline metrics must be a mapping of name to value, got {type(baseline).__name__}")
    verdicts = [_check_metric(rule, metrics, baseline, if_no_baseline) for rule in rules]
    return GateResult(
        passed=all(verdict.passed for verdict in verdicts),
        verdicts=verdicts,
        baseline_version=baseline_version if baseline is not None else None,
    )


def relative_change(value: float, baseline: float, greater_is_better: bool = True) -> float:
    """Improvement of ``value`` over ``baseline`` as a fraction of ``|baseline|`` (see module docs)."""
    improvement = (value - baseline) if greater_is_better else (baseline - value)
    if baseline == 0:
        return math.inf if improvement > 0 else (-math.inf if improvement < 0 else 0.0)
    return improvement / abs(baseline)


def _check_metric(
    rule: MetricThreshold,
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    if_no_baseline: NoBaselinePolicy | None,
) -> MetricVerdict:
    name = rule.metric

    def verdict(passed: bool, reason: str, value=None, base=None) -> MetricVerdict:
        return MetricVerdict(name, value, base, rule.min, rule.max, passed, reason)

    if name not in metrics:
        available = ", ".join(sorted(map(str, metrics))) or "none"
        return verdict(False, f"metric {name!r} is missing from the candidate's metrics (has: {available})")
    value, problem = _as_finite(metrics[name])
    if problem:
        return verdict(False, f"metric {name!r} {problem}")
    if rule.min is not None and value < rule.min:
        return verdict(False, f"{name}={value:g} is below the minimum {rule.min:g}", value)
    if rule.max is not None and value > rule.max:
        return verdict(False, f"{name}={value:g} is above the maximum {rule.max:g}", value)
    if not rule.compares_to_baseline:
        return verdict(True, f"{name}={value:g} is within bounds", value)
    if baseline is None:
        passed = if_no_baseline == "pass"
        return verdict(
            passed, f"{name}={value:g}: no baseline to compare with; if_no_baseline={if_no_baseline!r}", value
        )
    if name not in baseline:
        return verdict(False, f"baseline lacks metric {name!r}, so the change cannot be checked", value)
    base, problem = _as_finite(baseline[name])
    if problem:
        return verdict(False, f"baseline metric {name!r} {problem}", value)
    improvement = (value - base) if rule.greater_is_better else (base - value)
    direction = "higher" if rule.greater_is_better else "lower"
    if rule.min_absolute_change is not None and not _at_least(improvement, rule.min_absolute_change):
        return verdict(
            False,
            f"{name}={value:g} vs baseline {base:g}: improvement {improvement:+g} ({direction} is better) "
            f"is less than min_absolute_change {rule.min_absolute_change:g}",
            value,
            base,
        )
    if rule.min_relative_change is not None:
        change = relative_change(value, base, rule.greater_is_better)
        if not _at_least(change, rule.min_relative_change):
            return verdict(
                False,
                f"{name}={value:g} vs baseline {base:g}: relative improvement {change:+.4g} "
                f"({direction} is better) is less than min_relative_change {rule.min_relative_change:g}",
                value,
                base,
            )
    return verdict(True, f"{name}={value:g} vs baseline {base:g}: improvement {improvement:+g}", value, base)


def _at_least(value: float, bound: float) -> bool:
    """``value >= bound``, forgiving floating-point rounding (0.82 - 0.80 is 0.0199999...)."""
    if math.isinf(value):
        return value > 0
    return value >= bound - ROUNDING_TOLERANCE * max(1.0, abs(bound), abs(value))


def _as_finite(raw: Any) -> tuple[float | None, str | None]:
    if isinstance(raw, bool) or raw is None:
        return None, f"is not a number ({raw!r})"
    try:
        number = float(raw)
    except OverflowError:
        return None, "is too large for a float"
    except (TypeError, ValueError):
        return None, f"is not a number ({raw!r})"
    if math.isnan(number):
        return None, "is NaN"
    if math.isinf(number):
        return None, f"is infinite ({number})"
    return number, None


def _spec_number(metric: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"threshold spec for {metric!r}: {key} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise SpecError(f"threshold spec for {metric!r}: {key} is too large for a float") from None
    if not math.isfinite(number):
        raise SpecError(f"threshold spec for {metric!r}: {key} must be finite, got {value!r}")
    return number

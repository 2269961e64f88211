"""The result of one validation: a small, JSON-safe summary that never carries the data itself.

``ValidationSummary.to_dict()`` is what an operator pushes to XCom, records and renders: success (no
critical failure), counts (evaluated, passed, failed by severity), rows checked, and per failed
expectation its type, column, severity, unexpected count and percent, and a few sample values.

Public API: :class:`ValidationSummary`, :class:`ExpectationOutcome`, :func:`to_json_safe`.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mlprod.validation.sources import TableRead

RAGGED_ROWS_CHECK = "file_rows_match_header"
"""The check that a file's rows of the wrong width fail, when counted as failures (``ragged_rows="fail"``)."""

MAX_TEXT_LENGTH = 200
"""Longer strings in samples and observed values are cut to this many characters."""

MAX_ITEMS = 50
"""Longer lists and dicts in observed values are cut to this many items."""


def to_json_safe(value: Any, *, depth: int = 0) -> Any:
    """Convert ``value`` to plain JSON types: numpy and pandas scalars, NaN, dates, bytes, nested containers.

    NaN, None and NaT become None; infinities become ``"inf"``/``"-inf"``; dates become ISO strings;
    long strings, lists and dicts are cut; anything else becomes its ``str``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_LENGTH else value[:MAX_TEXT_LENGTH] + "…"
    if isinstance(value, decimal.Decimal):
        return to_json_safe(float(value))
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return None if value != value else value.isoformat()  # pandas NaT is a datetime unequal to itself
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)[:MAX_TEXT_LENGTH]).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if depth > 5:
        return to_json_safe(str(value))
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_ITEMS]
        return {str(key): to_json_safe(item, depth=depth + 1) for key, item in items}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_safe(item, depth=depth + 1) for item in list(value)[:MAX_ITEMS]]
    return _numpy_or_pandas_to_json_safe(value, depth)


def _numpy_or_pandas_to_json_safe(value: Any, depth: int) -> Any:
    module = type(value).__module__
    if module.startswith("numpy"):
        if hasattr(value, "tolist"):
            return to_json_safe(value.tolist(), depth=depth + 1)
        return to_json_safe(value.item(), depth=depth + 1)
    if module.startswith("pandas"):
        import pandas as pd

        if pd.isna(value) is True:
            return None
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "total_seconds"):
            return value.total_seconds()
    return to_json_safe(str(value))


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation, JSON-safe.

    :param position: the expectation's index in the suite.
    :param expectation_type: the GX type, e.g. ``expect_column_mean_to_be_between``.
    :param column: the column(s) it reads (``"a, b"`` for several), or None for table checks.
    :param severity: ``critical`` or ``warning``.
    :param success: whether GX found the expectation met.
    :param unexpected_count: failing rows (row-level expectations), else None.
    :param unexpected_percent: failing rows in percent of the non-null rows, else None.
    :param sample_values: up to N distinct failing values, JSON-safe, in the order first seen.
    :param observed_value: the measured value (aggregate expectations), JSON-safe, else None.
    :param parameters: the expectation's arguments other than its column(s) (bounds, value sets,
        ``mostly``), JSON-safe.
    """

    position: int
    expectation_type: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample_values: list[Any] = field(default_factory=list)
    observed_value: Any = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A readable name: the type with its column(s)."""
        return f"{self.expectation_type}({self.column})" if self.column else self.expectation_type

    def to_dict(self) -> dict[str, Any]:
        """This outcome as plain JSON types."""
        return {
            "position": self.position,
            "expectation_type": self.expectation_type,
            "column": self.column,
            "severity": self.severity,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "sample_values": list(self.sample_values),
            "observed_value": self.observed_value,
            "parameters": {key: _abbreviated(value) for key, value in self.parameters.items()},
        }


PARAMETER_ITEMS_SHOWN = 20
"""Items of a list parameter (a value set) kept in the JSON summary; the HTML report shows them all."""


def _abbreviated(value: Any) -> Any:
    """``value`` with a long list cut to its first items plus a note of how many were left out."""
    if isinstance(value, list) and len(value) > PARAMETER_ITEMS_SHOWN:
        return [*value[:PARAMETER_ITEMS_SHOWN], f"... {len(value) - PARAMETER_ITEMS_SHOWN} more"]
    return value


@dataclass(frozen=True)
class ValidationSummary:
    """The outcome of validating one batch against one suite.

    :param suite_name: the suite's name.
    :param dataset: what was validated (file, table, query or frame label); never a secret.
    :param rows_checked: rows in the batch.
    :param outcomes: one outcome per expectation, in suite order.
    :param report_location: where the HTML report was written, if it was.
    :param quarantine: where quarantined rows went and how many (keys depend on the source), if any.
    """

    suite_name: str
    dataset: str
    rows_checked: int
    outcomes: tuple[ExpectationOutcome, ...]
    report_location: str | None = None
    quarantine: Mapping[str, Any] | None = None

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        """Failed expectations of any severity, in suite order."""
        return tuple(outcome for outcome in self.outcomes if not outcome.success)

    @property
    def evaluated(self) -> int:
        """Expectations evaluated."""
        return len(self.outcomes)

    @property
    def passed(self) -> int:
        """Expectations met."""
        return self.evaluated - len(self.failures)

    @property
    def failed_critical(self) -> int:
        """Critical expectations not met."""
        return sum(1 for outcome in self.failures if outcome.severity == "critical")

    @property
    def failed_warning(self) -> int:
        """Warning expectations not met."""
        return sum(1 for outcome in self.failures if outcome.severity == "warning")

    @property
    def success(self) -> bool:
        """True when no critical expectation failed (warnings are reported, not failed on)."""
        return self.failed_critical == 0

    def with_report(self, location: str) -> ValidationSummary:
        """A copy with the report location set."""
        return replace(self, report_location=location)

    def with_quarantine(self, quarantine: Mapping[str, Any]) -> ValidationSummary:
        """A copy with the quarantine locations and counts set."""
        return replace(self, quarantine=dict(quarantine))

    def with_ragged_rows(self, read: TableRead, sample_size: int) -> ValidationSummary:
        """A copy that counts the rows left out of a file for their width as one failed critical check.

        The check comes after the suite's expectations; its samples name the lines, and the rows count
        in ``rows_checked``.
        """
        rows = self.rows_checked + read.ragged_count
        outcome = ExpectationOutcome(
            position=len(self.outcomes),
            expectation_type=RAGGED_ROWS_CHECK,
            column=None,
            severity="critical",
            success=False,
            unexpected_count=read.ragged_count,
            unexpected_percent=100.0 * read.ragged_count / rows,
            sample_values=[f"line {row.line}: {row.fields} fields" for row in read.ragged_rows][:sample_size],
            observed_value={"expected_fields": read.expected_fields, "ragged_rows": read.ragged_count},
        )
        return replace(self, rows_checked=rows, outcomes=(*self.outcomes, outcome))

    def to_dict(self, *, include_passed: bool = False) -> dict[str, Any]:
        """This summary as plain JSON types: failures only, or every outcome with ``include_passed``."""
        result: dict[str, Any] = {
            "success": self.success,
            "suite_name": self.suite_name,
            "dataset": self.dataset,
            "rows_checked": self.rows_checked,
            "counts": {
                "evaluated": self.evaluated,
                "passed": self.passed,
                "failed_critical": self.failed_critical,
                "failed_warning": self.failed_warning,
            },
            "failures": [outcome.to_dict() for outcome in self.failures],
            "report_location": self.report_location,
            "quarantine": to_json_safe(self.quarantine) if self.quarantine is not None else None,
        }
        if include_passed:
            result["outcomes"] = [outcome.to_dict() for outcome in self.outcomes]
        return result

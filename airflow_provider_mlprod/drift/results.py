"""The result of a drift comparison: ``DriftResult`` with one ``ColumnDrift`` per compared column.

``to_dict()`` is JSON-safe: plain Python numbers, and ``None`` where a value is NaN or infinite (an
infinite statistic, e.g. chi-square with a new category, shows as ``None`` with ``drifted`` true and
a note). The per-column distributions used by the HTML report are left out unless asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python ones and NaN/inf floats into ``None``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class SignalResult:
    """A side signal of a column (missing-value rate change, unseen-category share) and its verdict."""

    test: str
    statistic: float | None
    threshold: float
    drifted: bool
    units: str

    def to_dict(self) -> dict[str, Any]:
        """The signal as a JSON-safe dict."""
        return json_safe(self.__dict__)


@dataclass
class ColumnDistribution:
    """What the report draws: bins (numeric) or categories (categorical) with counts on both sides.

    Numeric: ``labels`` is empty, ``edges`` are the profile's edges, counts include the underflow and
    overflow bins, and ``low``/``high`` are the smallest/largest finite value on either side.
    Categorical: ``labels`` are the categories (the most frequent ones, the rest folded in
    ``"(other)"``) and ``edges`` is empty.
    """

    kind: str
    labels: list[str]
    edges: list[float]
    reference_counts: list[int]
    current_counts: list[int]
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The distribution as a JSON-safe dict."""
        return json_safe(self.__dict__)


@dataclass
class ColumnDrift:
    """The verdict for one column.

    ``drifted`` is true when any of the distribution test, the missing-value signal or (categorical)
    the unseen-category signal drifted; each keeps its own statistic and verdict. ``statistic`` is
    the test's statistic (KS D, chi-square, a distance); for p-value tests the decision uses
    ``p_value``. ``method`` is ``"exact"`` (raw data on both sides) or ``"binned"`` (a profile on one
    side), with ``error_bound`` bounding the binning error when the test defines one;
    ``statistic_range`` is the interval that holds the exact value for any data with the same bin
    counts (the p-value's interval for p-value tests), and ``within_binning_error`` is true when the
    verdict could differ inside it (the threshold lies within the range).
    Rates: ``null_rate_*`` is the share of null/NaN rows, ``infinite_rate_*`` of +-inf rows.
    """

    column: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    units: str
    drift_when: str
    method: str
    error_bound: float | None
    within_binning_error: bool
    statistic_range: list[float] | None
    distribution_drifted: bool
    drifted: bool
    reference_rows: int
    current_rows: int
    null_rate_reference: float
    null_rate_current: float
    infinite_rate_reference: float
    infinite_rate_current: float
    missing: SignalResult
    unseen_share: float | None
    unseen: SignalResult | None
    notes: list[str] = field(default_factory=list)
    distribution: ColumnDistribution | None = None

    def to_dict(self, include_distribution: bool = False) -> dict[str, Any]:
        """The column result as a JSON-safe dict."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("missing", "unseen", "distribution")}
        data["missing"] = self.missing.to_dict()
        data["unseen"] = None if self.unseen is None else self.unseen.to_dict()
        if include_distribution and self.distribution is not None:
            data["distribution"] = self.distribution.to_dict()
        return json_safe(data)


@dataclass
class DriftResult:
    """The verdict for a dataset: dataset drift, the drifted share and one ``ColumnDrift`` per column."""

    dataset_drift: bool
    drifted_share: float
    drift_share_threshold: float
    drifted_columns: list[str]
    must_not_drift: list[str]
    must_not_drift_drifted: list[str]
    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    columns_only_in_current: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnDrift:
        """The result of column ``name``; ``KeyError`` when it was not compared."""
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(name)

    def to_dict(self, include_distributions: bool = False) -> dict[str, Any]:
        """The result as a JSON-safe dict (no numpy types, no NaN or inf)."""
        data = {k: v for k, v in self.__dict__.items() if k != "columns"}
        data["columns"] = [column.to_dict(include_distributions) for column in self.columns]
        return json_safe(data)

"""``DriftSettings``: which columns to compare, per-column test and threshold overrides, dataset rules.

Defaults (see ``stattests`` for each test's units):

- test per column: ``homogeneity`` for categorical columns and numeric columns with at most 5
  distinct reference values; other numeric columns ``ks`` when the reference has at most
  ``small_reference_rows`` (1,000) rows, else ``wasserstein`` (see ``stattests``, "Sample size");
- threshold per column: the test's default from the registry;
- missing-value signal: drift when the missing share (null, NaN, +-inf) changes by more than
  ``missing_rate_threshold`` (0.05, absolute share of rows);
- unseen-category signal: drift when more than ``unseen_share_threshold`` (0.05) of the current
  non-null values are in categories the reference does not have;
- dataset drift: when the share of drifted columns is at least ``drift_share_threshold`` (0.5), or when
  any ``must_not_drift`` column drifts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from airflow_provider_mlprod.drift.profile import COLUMN_KINDS, DEFAULT_BINS, DEFAULT_TOP_K
from airflow_provider_mlprod.drift.stattests import SMALL_REFERENCE_ROWS, get_stat_test
from airflow_provider_mlprod.exceptions import SpecError


@dataclass(frozen=True)
class DriftSettings:
    """How to compare a current batch with a reference.

    :param columns: columns to compare (default: every column of the reference).
    :param column_kinds: ``{"column": "numeric" | "categorical"}`` overriding kinds detected from dtypes.
    :param column_tests: ``{"column": test name}`` overriding the default test.
    :param column_thresholds: ``{"column": threshold}`` overriding the test's default threshold.
    :param drift_share_threshold: share of drifted columns from which the dataset drifts (0, 1].
    :param must_not_drift: columns whose drift alone makes the dataset drift.
    :param missing_rate_threshold: largest allowed absolute change of the missing share.
    :param unseen_share_threshold: largest allowed share of current values in unseen categories.
    :param n_bins: quantile bins of numeric columns profiled from raw reference data.
    :param top_k: categories kept per column in stored profiles (raw comparisons keep all).
    :param small_reference_rows: up to this many reference rows the defaults are KS / chi-square.
    :param max_workers: threads comparing columns in parallel (default: up to 8, one per CPU).
    :param min_current_rows: fewest current rows drift is decided on (default 30); fewer raise.
    """

    columns: tuple[str, ...] | None = None
    column_kinds: Mapping[str, str] = field(default_factory=dict)
    column_tests: Mapping[str, str] = field(default_factory=dict)
    column_thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_share_threshold: float = 0.5
    must_not_drift: tuple[str, ...] = ()
    missing_rate_threshold: float = 0.05
    unseen_share_threshold: float = 0.05
    n_bins: int = DEFAULT_BINS
    top_k: int = DEFAULT_TOP_K
    small_reference_rows: int = SMALL_REFERENCE_ROWS
    max_workers: int | None = None
    min_current_rows: int = 30

    def __post_init__(self) -> None:
        if self.columns is not None:
            if isinstance(self.columns, str) or not all(isinstance(c, str) for c in self.columns):
                raise SpecError(f"drift settings: columns must be a list of names, got {self.columns!r}")
            object.__setattr__(self, "columns", tuple(self.columns))
        if isinstance(self.must_not_drift, str):
            raise SpecError(
                f"drift settings: must_not_drift must be a list of names, got {self.must_not_drift!r}"
            )
        object.__setattr__(self, "must_not_drift", tuple(self.must_not_drift))
        for column, kind in self.column_kinds.items():
            if kind not in COLUMN_KINDS:
                raise SpecError(f"column {column!r}: kind {kind!r} is not one of {COLUMN_KINDS}")
        for column, name in self.column_tests.items():
            get_stat_test(name, self.column_kinds.get(column), column)
        for column, threshold in self.column_thresholds.items():
            test_name = self.column_tests.get(column)
            if test_name is not None:
                get_stat_test(test_name, column=column).check_threshold(threshold, column)
            elif (
                isinstance(threshold, bool)
                or not isinstance(threshold, (int, float))
                or not (math.isfinite(threshold) and threshold >= 0)
            ):
                raise SpecError(f"column {column!r}: threshold {threshold!r} must be a finite number >= 0")
        _check_share("drift_share_threshold", self.drift_share_threshold, allow_zero=False)
        _check_share("missing_rate_threshold", self.missing_rate_threshold, allow_zero=True)
        _check_share("unseen_share_threshold", self.unseen_share_threshold, allow_zero=True)
        for name in ("n_bins", "top_k", "small_reference_rows", "min_current_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"drift settings: {name} must be a positive integer, got {value!r}")
        if self.max_workers is not None and (not isinstance(self.max_workers, int) or self.max_workers < 1):
            raise SpecError(
                f"drift settings: max_workers must be a positive integer, got {self.max_workers!r}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftSettings:
        """Settings from a dict (e.g. a YAML/JSON drift config); unknown keys raise ``SpecError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"drift settings: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-safe dict."""
        data = asdict(self)
        for name in ("column_kinds", "column_tests", "column_thresholds"):
            data[name] = dict(data[name])
        data["columns"] = None if self.columns is None else list(self.columns)
        data["must_not_drift"] = list(self.must_not_drift)
        return data


def _check_share(name: str, value: Any, allow_zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"drift settings: {name} must be a number in [0, 1], got {value!r}")
    if value > 1 or value < 0 or (value == 0 and not allow_zero):
        bounds = "[0, 1]" if allow_zero else "(0, 1]"
        raise SpecError(f"drift settings: {name} must be in {bounds}, got {value!r}")

"""The registry of drift tests: one ``StatTest`` row per test, and the default test for a column.

Each row holds the name, the function, the column kinds it applies to, the default threshold, the units
of its statistic and its decision rule: ``"p_value_below"`` (drift when the p-value is below the
threshold) or ``"statistic_above"`` (drift when the statistic is above the threshold). Adding a test is
adding a row to ``STAT_TESTS``.

=================  ===========  =========  ===================================================
name               kinds        threshold  statistic and units
=================  ===========  =========  ===================================================
``ks``             numeric      0.05       two-sample Kolmogorov-Smirnov D; drift when p < 0.05
``chisquare``      categorical  0.05       chi-square goodness of fit of current counts against
                                           reference shares; drift when p < 0.05
``jensenshannon``  both         0.1        Jensen-Shannon DISTANCE (square root of the
                                           divergence) with log base 2, in [0, 1]
``psi``            both         0.1        population stability index, natural log; shares of
                                           0 are replaced by 1e-4
``wasserstein``    numeric      0.1        Wasserstein-1 distance divided by the reference
                                           population standard deviation (units of ref. std)
``linf``           categorical  0.1        L-infinity distance: largest absolute difference of
                                           category shares, in [0, 1]
``missing_rate``   both         0.05       absolute change of the share of missing rows (null,
                                           NaN, +-inf), in [0, 1]
``unseen_share``   categorical  0.05       share of current non-null values whose category is
                                           absent from the reference, in [0, 1]
=================  ===========  =========  ===================================================

Exact and binned statistics. Numeric distribution tests see the finite values only (missing values
are the ``missing_rate`` signal). When both sides are raw data, KS and Wasserstein are exact and equal
``scipy.stats.ks_2samp`` / ``scipy.stats.wasserstein_distance``. When a side is a profile, they are
computed from the shared bins, with a bound on the error reported as ``error_bound``:

- KS: the binned D evaluates both ECDFs at the bin edges only, so
  ``0 <= D_exact - D_binned <= max over bins of max(reference share, current share)``.
  The p-value is then the asymptotic one of ``ks_2samp`` for the binned D.
- Wasserstein: CDFs are interpolated linearly inside each bin (outer bins end at the observed
  min/max), so ``|W_exact - W_binned| <= sum over bins of width * (reference share + current
  share)``, divided by the reference std like the statistic.

Jensen-Shannon and PSI on numeric columns are defined on the reference profile's bins. Category
tests compare counts per category: the reference categories, then categories seen only in the
current data (each its own cell when the reference vocabulary is complete, else all of them with the
reference's "other" count in one cell). Cells empty on both sides are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_mlprod.drift.profile import (
    CATEGORICAL,
    NUMERIC,
    CategoricalColumnProfile,
    ColumnProfile,
    NumericColumnProfile,
)
from airflow_provider_mlprod.exceptions import SpecError

if TYPE_CHECKING:
    import numpy as np

P_VALUE_BELOW = "p_value_below"
STATISTIC_ABOVE = "statistic_above"
PSI_SHARE_FLOOR = 1e-4
SMALL_REFERENCE_ROWS = 1000
OTHER_LABEL = "(other)"


@dataclass(frozen=True)
class ColumnSample:
    """One side of a column comparison: its profile and, for raw numeric data, the sorted finite values."""

    profile: ColumnProfile
    sorted_values: np.ndarray | None = None


@dataclass(frozen=True)
class TestOutcome:
    """What a test computed: statistic, p-value (p-value tests), method and binning error bound."""

    statistic: float | None
    p_value: float | None = None
    method: str = "exact"
    error_bound: float | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatTest:
    """One row of the registry."""

    name: str
    function: Callable[[ColumnSample, ColumnSample], TestOutcome]
    kinds: frozenset[str]
    default_threshold: float
    units: str
    drift_when: str
    description: str

    def is_drift(self, outcome: TestOutcome, threshold: float) -> bool:
        """Apply the decision rule; a test without a statistic (not applicable) votes no drift."""
        if outcome.statistic is None:
            return False
        if self.drift_when == P_VALUE_BELOW:
            return outcome.p_value is not None and outcome.p_value < threshold
        return outcome.statistic > threshold

    def check_threshold(self, threshold: float, column: str) -> float:
        """Return ``threshold`` as float after checking it fits this test; ``SpecError`` otherwise."""
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise SpecError(f"column {column!r}: threshold of test {self.name!r} must be a number")
        value = float(threshold)
        if not math.isfinite(value) or value < 0:
            raise SpecError(f"column {column!r}: threshold {threshold!r} of test {self.name!r} is invalid")
        if self.drift_when == P_VALUE_BELOW and not 0 < value < 1:
            raise SpecError(f"column {column!r}: p-value threshold {threshold!r} must be in (0, 1)")
        return value


# --- shared pieces --------------------------------------------------------------------------------


def _numeric_profiles(
    reference: ColumnSample, current: ColumnSample
) -> tuple[NumericColumnProfile, NumericColumnProfile]:
    ref, cur = reference.profile, current.profile
    if not isinstance(ref, NumericColumnProfile) or not isinstance(cur, NumericColumnProfile):
        raise SpecError("a numeric test needs numeric profiles on both sides")
    if ref.edges != cur.edges:
        raise SpecError("reference and current numeric profiles have different bin edges")
    return ref, cur


def _bin_shares(reference: ColumnSample, current: ColumnSample) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    ref, cur = _numeric_profiles(reference, current)
    return np.asarray(ref.counts, float) / ref.count, np.asarray(cur.counts, float) / cur.count


def aligned_category_counts(
    reference: CategoricalColumnProfile, current: CategoricalColumnProfile
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels and counts per cell for both sides (see the module docstring); empty cells dropped."""
    import numpy as np

    if current.other_count and not set(reference.counts) <= set(current.counts):
        raise SpecError(
            "the current category profile keeps an 'other' count but was not built on the reference "
            "categories; profile it with reference_profile.spec()"
        )
    labels = list(reference.counts)
    ref_counts = list(reference.counts.values())
    cur_counts = [current.counts.get(label, 0) for label in labels]
    outside = [(label, count) for label, count in current.counts.items() if label not in reference.counts]
    if reference.other_count == 0:
        for label, count in outside:
            labels.append(label)
            ref_counts.append(0)
            cur_counts.append(count)
        if current.other_count:
            labels.append(OTHER_LABEL)
            ref_counts.append(0)
            cur_counts.append(current.other_count)
    else:
        labels.append(OTHER_LABEL)
        ref_counts.append(reference.other_count)
        cur_counts.append(current.other_count + sum(count for _, count in outside))
    ref_array, cur_array = np.asarray(ref_counts, float), np.asarray(cur_counts, float)
    keep = (ref_array > 0) | (cur_array > 0)
    return [label for label, kept in zip(labels, keep, strict=True) if kept], ref_array[keep], cur_array[keep]


def _shares(reference: ColumnSample, current: ColumnSample) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current shares per bin (numeric) or per category cell (categorical)."""
    if isinstance(reference.profile, NumericColumnProfile):
        return _bin_shares(reference, current)
    _, ref_counts, cur_counts = aligned_category_counts(reference.profile, current.profile)
    return ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()


# --- the tests ------------------------------------------------------------------------------------


def ks_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Two-sample Kolmogorov-Smirnov: exact via ``scipy.stats.ks_2samp``, else binned (see module)."""
    import numpy as np
    from scipy import stats

    if reference.sorted_values is not None and current.sorted_values is not None:
        result = stats.ks_2samp(reference.sorted_values, current.sorted_values)
        return TestOutcome(float(result.statistic), float(result.pvalue))
    ref, cur = _numeric_profiles(reference, current)
    ref_shares, cur_shares = _bin_shares(reference, current)
    statistic = float(np.max(np.abs(np.cumsum(ref_shares) - np.cumsum(cur_shares))))
    effective_n = round(ref.count * cur.count / (ref.count + cur.count))
    p_value = float(stats.kstwo.sf(statistic, max(effective_n, 1)))
    bound = float(np.max(np.maximum(ref_shares, cur_shares)))
    return TestOutcome(statistic, p_value, method="binned", error_bound=bound)


def chisquare_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Chi-square goodness of fit of current counts against reference shares (``scipy.stats.chisquare``).

    A category absent from the reference but present now has expected count 0: the statistic is
    infinite and the p-value 0. A single cell on both sides gives statistic 0, p-value 1.
    """
    import numpy as np
    from scipy import special

    _, ref_counts, cur_counts = aligned_category_counts(reference.profile, current.profile)
    expected = ref_counts / ref_counts.sum() * cur_counts.sum()
    if np.any((expected == 0) & (cur_counts > 0)):
        return TestOutcome(
            math.inf, 0.0, notes=("categories absent from the reference make chi-square infinite",)
        )
    degrees = ref_counts.size - 1
    if degrees == 0:
        return TestOutcome(0.0, 1.0)
    statistic = float(np.sum((cur_counts - expected) ** 2 / expected))
    return TestOutcome(statistic, float(special.chdtrc(degrees, statistic)))


def jensenshannon_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Jensen-Shannon distance, base 2 (``scipy.spatial.distance.jensenshannon(p, q, base=2)``)."""
    import numpy as np
    from scipy import special

    ref_shares, cur_shares = _shares(reference, current)
    middle = (ref_shares + cur_shares) / 2
    divergence = (
        np.sum(special.rel_entr(ref_shares, middle)) + np.sum(special.rel_entr(cur_shares, middle))
    ) / 2
    method = "binned" if isinstance(reference.profile, NumericColumnProfile) else "exact"
    return TestOutcome(float(np.sqrt(max(divergence / np.log(2), 0.0))), method=method)


def psi_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Population stability index, natural log: sum of (cur - ref) * ln(cur / ref) over bins/categories."""
    import numpy as np

    ref_shares, cur_shares = _shares(reference, current)
    ref_shares = np.where(ref_shares == 0, PSI_SHARE_FLOOR, ref_shares)
    cur_shares = np.where(cur_shares == 0, PSI_SHARE_FLOOR, cur_shares)
    method = "binned" if isinstance(reference.profile, NumericColumnProfile) else "exact"
    return TestOutcome(
        float(np.sum((cur_shares - ref_shares) * np.log(cur_shares / ref_shares))), method=method
    )


def wasserstein_sorted(u_sorted: np.ndarray, v_sorted: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two sorted samples (equals scipy's ``wasserstein_distance``).

    Equal sizes: the mean absolute difference of order statistics. Otherwise a stable merge of the
    sorted samples gives, at each value, how many of each sample lie at or below it; between equal
    values the width is 0, so ties need no special care.
    """
    import numpy as np

    n, m = u_sorted.size, v_sorted.size
    if n == m:  # equal sizes: the quantile functions step together, W1 = mean |u_(i) - v_(i)|
        return float(np.mean(np.abs(u_sorted - v_sorted)))
    merged = np.concatenate([u_sorted, v_sorted])
    order = np.argsort(merged, kind="stable")
    widths = np.diff(merged[order])
    del merged
    from_u = order[:-1] < n
    del order
    # cdf_u - cdf_v at the k-th merged value = below_u / n - (k - below_u) / m, computed in place.
    cdf_gap = np.cumsum(from_u, dtype=np.float64)
    cdf_gap *= 1.0 / n + 1.0 / m
    cdf_gap -= np.arange(1, n + m, dtype=np.float64) / m
    np.abs(cdf_gap, out=cdf_gap)
    return float(np.dot(cdf_gap, widths))


def binned_wasserstein(ref: NumericColumnProfile, cur: NumericColumnProfile) -> tuple[float, float]:
    """Wasserstein-1 from shared bins with linear CDFs inside bins, and its error bound (module doc)."""
    import numpy as np

    low, high = min(ref.min, cur.min), max(ref.max, cur.max)
    if ref.edges:
        points = np.asarray([min(low, ref.edges[0]), *ref.edges, max(high, ref.edges[-1])])
    else:
        points = np.asarray([low, high])
    ref_shares = np.asarray(ref.counts, float) / ref.count
    cur_shares = np.asarray(cur.counts, float) / cur.count
    difference = np.concatenate([[0.0], np.cumsum(ref_shares) - np.cumsum(cur_shares)])
    widths = np.diff(points)
    start, end = difference[:-1], difference[1:]
    same_sign = start * end >= 0
    magnitude = np.abs(start) + np.abs(end)
    crossing = np.divide(start**2 + end**2, 2 * magnitude, out=np.zeros_like(magnitude), where=magnitude > 0)
    areas = np.where(same_sign, magnitude / 2, crossing) * widths
    return float(np.sum(areas)), float(np.sum(widths * (ref_shares + cur_shares)))


def wasserstein_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Wasserstein-1 distance divided by the reference population std (``np.std``, ddof=0).

    With a constant reference (std 0) the statistic is 0 when the current data equal it and infinite
    otherwise, since any change from a constant is drift.
    """
    ref, cur = _numeric_profiles(reference, current)
    if reference.sorted_values is not None and current.sorted_values is not None:
        distance, bound, method = (
            wasserstein_sorted(reference.sorted_values, current.sorted_values),
            None,
            "exact",
        )
    else:
        distance, bound = binned_wasserstein(ref, cur)
        method = "binned"
    if ref.std == 0:
        note = "reference standard deviation is 0: statistic is 0 if unchanged, infinite otherwise"
        return TestOutcome(0.0 if distance == 0 else math.inf, method=method, notes=(note,))
    return TestOutcome(
        distance / ref.std, method=method, error_bound=None if bound is None else bound / ref.std
    )


def linf_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """L-infinity distance: the largest absolute difference between category shares."""
    import numpy as np

    ref_shares, cur_shares = _shares(reference, current)
    return TestOutcome(float(np.max(np.abs(ref_shares - cur_shares))))


def missing_share(profile: ColumnProfile) -> float:
    """Share of rows that are null, NaN or (numeric) +-inf; 0 for a profile of no rows."""
    missing = profile.null_count + getattr(profile, "infinite_count", 0)
    return missing / profile.total if profile.total else 0.0


def missing_rate_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Absolute change of the missing share (null, NaN, +-inf) between reference and current."""
    return TestOutcome(abs(missing_share(current.profile) - missing_share(reference.profile)))


def unseen_share(reference: CategoricalColumnProfile, current: CategoricalColumnProfile) -> float | None:
    """Share of current non-null values in categories absent from the reference.

    ``None`` when the reference profile folded categories into "other" (top-K), since a category in
    there cannot be told apart from an unseen one; 0 when the current batch has no non-null value.
    """
    if reference.other_count:
        return None
    if current.non_null == 0:
        return 0.0
    outside = sum(count for label, count in current.counts.items() if label not in reference.counts)
    return (outside + current.other_count) / current.non_null


def unseen_share_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Share of current non-null values whose category the reference never had (see ``unseen_share``)."""
    share = unseen_share(reference.profile, current.profile)
    if share is None:
        return TestOutcome(None, notes=("unseen share unknown: the reference profile keeps only its top-K",))
    return TestOutcome(share)


STAT_TESTS: dict[str, StatTest] = {
    test.name: test
    for test in (
        StatTest("ks", ks_test, frozenset({NUMERIC}), 0.05, "p-value", P_VALUE_BELOW,
                 "two-sample Kolmogorov-Smirnov"),
        StatTest("chisquare", chisquare_test, frozenset({CATEGORICAL}), 0.05, "p-value", P_VALUE_BELOW,
                 "chi-square goodness of fit against reference shares"),
        StatTest("jensenshannon", jensenshannon_test, frozenset({NUMERIC, CATEGORICAL}), 0.1,
                 "Jensen-Shannon distance, log base 2, in [0, 1]", STATISTIC_ABOVE,
                 "Jensen-Shannon distance (square root of the base-2 divergence)"),
        StatTest("psi", psi_test, frozenset({NUMERIC, CATEGORICAL}), 0.1, "PSI, natural log",
                 STATISTIC_ABOVE, "population stability index"),
        StatTest("wasserstein", wasserstein_test, frozenset({NUMERIC}), 0.1,
                 "reference standard deviations", STATISTIC_ABOVE,
                 "Wasserstein-1 distance normalised by the reference standard deviation"),
        StatTest("linf", linf_test, frozenset({CATEGORICAL}), 0.1, "share, in [0, 1]", STATISTIC_ABOVE,
                 "largest absolute difference of category shares"),
        StatTest("missing_rate", missing_rate_test, frozenset({NUMERIC, CATEGORICAL}), 0.05,
                 "absolute change of missing share, in [0, 1]", STATISTIC_ABOVE,
                 "change of the share of null, NaN and +-inf values"),
        StatTest("unseen_share", unseen_share_test, frozenset({CATEGORICAL}), 0.05,
                 "share of current non-null values, in [0, 1]", STATISTIC_ABOVE,
                 "share of current values in categories absent from the reference"),
    )
}  # fmt: skip


def get_stat_test(name: str, kind: str | None = None, column: str = "?") -> StatTest:
    """The registry row ``name``; ``SpecError`` when unknown or not applicable to ``kind``."""
    test = STAT_TESTS.get(name)
    if test is None:
        raise SpecError(f"column {column!r}: unknown drift test {name!r}; known tests: {sorted(STAT_TESTS)}")
    if kind is not None and kind not in test.kinds:
        raise SpecError(f"column {column!r}: test {name!r} does not apply to {kind} columns")
    return test


def default_test_name(
    kind: str, reference_rows: int, small_reference_rows: int = SMALL_REFERENCE_ROWS
) -> str:
    """The default test: KS / chi-square up to ``small_reference_rows`` reference rows, else
    normalised Wasserstein (numeric) / Jensen-Shannon distance (categorical).

    At large sizes every p-value is close to 0 for immaterial differences, so distances are used.
    """
    small = reference_rows <= small_reference_rows
    if kind == NUMERIC:
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"

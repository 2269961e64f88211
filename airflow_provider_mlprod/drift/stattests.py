"""The registry of drift tests: one ``StatTest`` row per test, and the default test for a column.

Each row holds the name, the function, the column kinds it applies to, the default threshold, the units
of its statistic and its decision rule: ``"p_value_below"`` (drift when the p-value is below the
threshold) or ``"statistic_above"`` (drift when the statistic is above the threshold). Adding a test is
adding a row to ``STAT_TESTS``.

=================  ===========  =========  ===================================================
name               kinds        threshold  statistic and units
=================  ===========  =========  ===================================================
``ks``             numeric      0.01       two-sample Kolmogorov-Smirnov D; drift when p < 0.01
``chisquare``      categorical  0.05       chi-square goodness of fit of current counts against
                                           reference shares; drift when p < 0.05
``homogeneity``    both         0.05       total variation distance of category (or bin) shares,
                                           in [0, 1]; drift when above the threshold AND the
                                           chi-square test of homogeneity gives p < 0.01
``jensenshannon``  both         0.1        Jensen-Shannon DISTANCE (square root of the
                                           divergence) with log base 2, in [0, 1]
``psi``            both         0.1        population stability index, natural log; shares of
                                           0 are replaced by 1e-4
``wasserstein``    numeric      0.1        Wasserstein-1 distance divided by the reference
                                           population standard deviation (units of ref. std);
                                           drift when above the threshold AND the
                                           two-sample p-value (KS and bins) < 0.01
``wasserstein_     numeric      0.03       Wasserstein-1 distance on the reference's quantile
quantile``                                 scale (values mapped through the reference CDF), in
                                           [0, 0.5]; drift like ``wasserstein``
``linf``           categorical  0.1        L-infinity distance: largest absolute difference of
                                           category shares, in [0, 1]
``missing_rate``   both         0.05       absolute change of the share of missing rows (null,
                                           NaN, +-inf), in [0, 1]
``unseen_share``   categorical  0.05       share of current non-null values whose category is
                                           absent from the reference, beyond the share the
                                           reference's sample size explains, in [0, 1];
                                           drift when above AND significant (p < 0.01)
=================  ===========  =========  ===================================================

Sample size. A distance computed on a sample is never 0 on identical distributions: with 200
categories and 5,000 rows the Jensen-Shannon distance of two samples of one distribution is about
0.14. So the default tests pair a distance with a significance test whose null distribution is
known: ``homogeneity`` (the default for categorical columns, and for numeric columns with at most
``DISCRETE_AS_CATEGORIES`` (5) distinct values) drifts when the total variation distance is above its
threshold and the Pearson chi-square test of homogeneity of the two samples (both are samples, unlike
goodness of fit) gives p < ``SIGNIFICANCE`` (0.01); cells are merged, rarest first, until every
expected count is at least 5, so the chi-square approximation holds at any size. ``wasserstein`` and
``wasserstein_quantile`` likewise need the two-sample p-value below 0.01: KS and the chi-square
homogeneity test on the reference's bins, Bonferroni-combined (KS alone misses a change confined to
a small share of rows, such as the non-zero tail of a zero-inflated column). At small sizes the p-value keeps
false alarms under 1%; at large sizes the distance keeps immaterial differences quiet. The
``unseen_share`` signal subtracts the unseen share expected from sampling alone (from the pooled
count of each category: how likely all its values fell in the current batch) and needs that excess
to be significant too: a 100-row reference of 1,000 equally frequent categories misses most of
them, and a current sample of the same distribution is mostly "unseen".

Heavy tails. ``wasserstein`` is in units of the reference std, which a heavy tail inflates: every
value of a lognormal(0, 3) column doubled moves W/std by less than 0.01. ``wasserstein_quantile``
(and ``ks``) are invariant under monotone transforms such as log: the same doubling gives about 0.06
on the quantile scale. Use it for amounts, durations, counts spanning orders of magnitude.

Exact and binned statistics. Numeric distribution tests see the finite values only (missing values
are the ``missing_rate`` signal). When both sides are raw data, KS and Wasserstein are exact and equal
``scipy.stats.ks_2samp`` / ``scipy.stats.wasserstein_distance``. When a side is a profile, they are
computed from the shared bins, with a bound on the error reported as ``error_bound``:

- KS: the binned D evaluates both ECDFs at the bin edges only, so
  ``0 <= D_exact - D_binned <= max over bins of max(reference share, current share)``.
  The p-value is then the asymptotic one of ``ks_2samp`` for the binned D.
- Wasserstein: CDFs are interpolated linearly inside each bin (outer bins end at the observed
  min/max). Inside a bin each CDF only rises, by its share, so the CDF gap stays between
  ``gap at the left edge - current share`` and ``gap at the left edge + reference share``; summed
  over bins this gives the interval ``statistic_range`` that holds the exact distance for any data
  with these bin counts, and ``error_bound`` is the larger distance from the binned value to its
  ends. When the threshold lies inside that interval the verdict is within the binning error
  (``within_binning_error`` in the result): the bins cannot tell; compare raw data to decide.
- Exact profiles: when the reference profile holds a column's distinct values (one bin per value,
  see ``profile``) and the current values all lie on them, the binned statistics are the exact
  ones (``method`` ``"exact"``, no error bound); against a raw current batch the exact statistic is
  computed from the reference's value counts and the raw values (``homogeneity`` then counts each
  current value apart, a value off the reference's values its own cell, not its bin's). Against a
  current profile off those values, only bins are known: a note says a move within a bin cannot show.

Jensen-Shannon and PSI on numeric columns are defined on the reference profile's bins. Category
tests compare counts per category: the reference categories, then categories seen only in the
current data (each its own cell when the reference vocabulary is complete, else all of them with the
reference's "other" count in one cell). Cells empty on both sides are dropped. Against a top-K
reference, ``homogeneity`` also folds into "other" the kept categories whose pooled count does not
clear the top-K cut by far (``_fold_chance_kept``): the reference's sample chose them, so it
over-counted them, and identical data would otherwise drift.
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
from airflow_provider_mlprod.exceptions import InputDataError, SpecError

if TYPE_CHECKING:
    import numpy as np

P_VALUE_BELOW = "p_value_below"
STATISTIC_ABOVE = "statistic_above"
PSI_SHARE_FLOOR = 1e-4
SMALL_REFERENCE_ROWS = 1000
SIGNIFICANCE = 0.01
"""p-value below which a difference counts as real for the tests that pair a distance with a test."""
DISCRETE_AS_CATEGORIES = 5
"""Numeric columns with at most this many distinct reference values are compared like categories."""
MIN_EXPECTED_COUNT = 5.0
CHANCE_KEPT_Z = 4.0
"""Standard deviations by which a top-K category's pooled count must clear the cut to stay its own cell."""
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
    statistic_range: tuple[float, float] | None = None
    """Binned tests: the interval that holds the exact statistic for any data with these bin counts."""
    lazy_p_value: Callable[[], float] | None = None
    """Distance tests with a significance check: computes the p-value, called only when the distance
    (or its binned range) reaches the threshold; otherwise ``p_value`` stays ``None``."""


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
    significance: float | None = None
    """With ``statistic_above``: drift also needs the test's p-value below this (the distance is real)."""

    def is_drift(self, outcome: TestOutcome, threshold: float) -> bool:
        """Apply the decision rule; a test without a statistic (not applicable) votes no drift."""
        if outcome.statistic is None:
            return False
        return self.decides(outcome.statistic, outcome.p_value, threshold)

    def decides(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        """The decision rule on one statistic and p-value."""
        if self.drift_when == P_VALUE_BELOW:
            return p_value is not None and p_value < threshold
        if self.significance is not None and p_value is not None and not p_value < self.significance:
            return False
        return statistic > threshold

    def within_binning_error(self, outcome: TestOutcome, threshold: float) -> bool:
        """Whether the verdict could flip for data with the same bin counts (see the module docstring)."""
        if outcome.statistic is None or outcome.statistic_range is None:
            return False
        low, high = outcome.statistic_range
        if self.drift_when == P_VALUE_BELOW:
            return low < threshold <= high  # the range is then the p-value's
        significant = self.significance is None or outcome.p_value is None
        if not significant and not outcome.p_value < self.significance:
            return False
        return low <= threshold < high

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

    if current.other_count and not reference.other_count and not set(reference.counts) <= set(current.counts):
        # a complete reference meets a current profile kept to a category list (e.g. the reference's
        # top-K, counted in SQL): fold the reference's other categories into "other" as well
        kept = {label: reference.counts.get(label, 0) for label in current.counts}
        reference = CategoricalColumnProfile(
            kept, reference.non_null - sum(kept.values()), reference.null_count
        )
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
    if _exact_discrete(reference, current):
        _, ref_weights, cur_weights = _discrete_masses(reference, current)
        statistic = float(np.max(np.abs(np.cumsum(ref_weights) - np.cumsum(cur_weights))))
        return TestOutcome(statistic, _ks_p_value(statistic, ref.count, cur.count))
    ref_shares, cur_shares = _bin_shares(reference, current)
    statistic = float(np.max(np.abs(np.cumsum(ref_shares) - np.cumsum(cur_shares))))
    p_value = _ks_p_value(statistic, ref.count, cur.count)
    bound = float(np.max(np.maximum(ref_shares, cur_shares)))
    p_low = _ks_p_value(min(statistic + bound, 1.0), ref.count, cur.count)
    return TestOutcome(
        statistic, p_value, method="binned", error_bound=bound, statistic_range=(p_low, p_value)
    )


def _ks_p_value(statistic: float, n: int, m: int) -> float:
    """Two-sample KS p-value from the effective size ``n m / (n + m)``: the exact one-sample
    distribution up to 10,000, the Kolmogorov limit above (as fast at any size)."""
    from scipy import stats

    effective_n = n * m / (n + m) if n and m else 1.0
    if effective_n <= 10_000:
        return float(stats.kstwo.sf(statistic, max(round(effective_n), 1)))
    return float(stats.kstwobign.sf(statistic * math.sqrt(effective_n)))


def _exact_discrete(reference: ColumnSample, current: ColumnSample) -> bool:
    """Whether the reference profile is its exact distribution and the current side is too, or raw."""
    ref, cur = reference.profile, current.profile
    if not (isinstance(ref, NumericColumnProfile) and ref.is_exact):
        return False
    return current.sorted_values is not None or (
        isinstance(cur, NumericColumnProfile) and cur.is_exact and cur.values == ref.values
    )


def _discrete_masses(
    reference: ColumnSample, current: ColumnSample
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted support points and each side's probability mass on them (``_exact_discrete`` holds)."""
    points, ref_counts, cur_counts = _discrete_counts(reference, current)
    return points, ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1)


def _discrete_counts(
    reference: ColumnSample, current: ColumnSample
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted support points (the reference's values and any raw current value) and each side's
    count on them (``_exact_discrete`` holds)."""
    import numpy as np

    ref, cur = reference.profile, current.profile
    atoms = np.asarray(ref.values, float)
    ref_counts = np.asarray(ref.counts[1:-1], float)
    if current.sorted_values is None:
        return atoms, ref_counts, np.asarray(cur.counts[1:-1], float)
    values, counts = np.unique(current.sorted_values, return_counts=True)
    points = np.union1d(atoms, values)
    ref_on_points = np.zeros(points.size)
    ref_on_points[np.searchsorted(points, atoms)] = ref_counts
    cur_on_points = np.zeros(points.size)
    cur_on_points[np.searchsorted(points, values)] = counts
    return points, ref_on_points, cur_on_points


def _discrete_wasserstein(reference: ColumnSample, current: ColumnSample) -> float:
    import numpy as np

    points, ref_weights, cur_weights = _discrete_masses(reference, current)
    gaps = np.abs(np.cumsum(ref_weights) - np.cumsum(cur_weights))[:-1]
    return float(np.dot(gaps, np.diff(points)))


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


def _cell_counts(reference: ColumnSample, current: ColumnSample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts per category cell (categorical) or per bin (numeric), cells empty on both sides dropped,
    and each cell's rank by its label (category text, or bin position)."""
    import numpy as np

    if isinstance(reference.profile, NumericColumnProfile):
        ref, cur = _numeric_profiles(reference, current)
        if current.sorted_values is not None and _exact_discrete(reference, current):
            # a discrete reference and raw current values: one cell per value, new values their own
            _, ref_counts, cur_counts = _discrete_counts(reference, current)
            keep = (ref_counts > 0) | (cur_counts > 0)
            return ref_counts[keep], cur_counts[keep], np.arange(int(keep.sum()))
        ref_counts, cur_counts = np.asarray(ref.counts, float), np.asarray(cur.counts, float)
        keep = (ref_counts > 0) | (cur_counts > 0)
        return ref_counts[keep], cur_counts[keep], np.arange(int(keep.sum()))
    ref, cur = reference.profile, current.profile
    labels, ref_counts, cur_counts = aligned_category_counts(ref, cur)
    if ref.other_count or (cur.other_count and not set(ref.counts) <= set(cur.counts)):
        # a top-K reference (or one cut to the current's list): its "other" cell comes last
        labels, ref_counts, cur_counts = _fold_chance_kept(labels, ref_counts, cur_counts)
    return ref_counts, cur_counts, np.argsort(np.asarray(labels, dtype=object), kind="stable")


def _fold_chance_kept(
    labels: list[str], ref_counts: np.ndarray, cur_counts: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Fold into "other" the kept categories of a top-K reference that chance may have kept.

    A top-K reference keeps the categories its own sample counted most: near the cut, those the
    sample over-counted. Compared with another sample of the same distribution they look as if they
    had shrunk, and with a few hundred such categories the homogeneity test fires on identical data
    (1,500 equally frequent categories at 20,000 rows: 20 alarms out of 20). A kept category stays
    its own cell only when its pooled count alone puts it above the cut for nearly every split
    between the sides (``CHANCE_KEPT_Z`` standard deviations of the reference's binomial share); the
    choice then depends on pooled counts, as the test's own cell merging does, and stays valid.
    """
    import numpy as np

    other = len(labels) - 1
    kept = np.arange(len(labels)) != other
    if not ref_counts[other] or not kept.any():
        return labels, ref_counts, cur_counts  # the reference lost no category to "other"
    cut = float(ref_counts[kept].min())
    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    share = n_ref / (n_ref + n_cur)
    pooled = ref_counts + cur_counts
    lowest = pooled * share - CHANCE_KEPT_Z * np.sqrt(pooled * share * (1 - share))
    fold = kept & ~(lowest > cut)
    if not fold.any():
        return labels, ref_counts, cur_counts
    ref_counts, cur_counts = ref_counts.copy(), cur_counts.copy()
    ref_counts[other] += ref_counts[fold].sum()
    cur_counts[other] += cur_counts[fold].sum()
    stay = ~fold
    kept_labels = [label for label, keep in zip(labels, stay, strict=True) if keep]
    return kept_labels, ref_counts[stay], cur_counts[stay]


def homogeneity_p_value(
    ref_counts: np.ndarray, cur_counts: np.ndarray, label_order: np.ndarray | None = None
) -> float:
    """p-value of Pearson's chi-square test that both count vectors are samples of one distribution.

    Cells are merged, rarest (by pooled count) first, until every expected count is at least
    ``MIN_EXPECTED_COUNT``. The grouping depends on the pooled counts and the labels only (ties in
    pooled count are ordered by ``label_order``, a permutation sorting the cells by label), never on
    which side a count came from, so the test (conditional on the pooled counts) stays valid and the
    chi-square approximation holds however sparse the categories.
    """
    import numpy as np
    from scipy import special

    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    if n_ref == 0 or n_cur == 0:
        return 1.0
    total = n_ref + n_cur
    pooled = ref_counts + cur_counts
    needed = MIN_EXPECTED_COUNT * total / min(n_ref, n_cur)
    by_label = np.arange(pooled.size) if label_order is None else np.asarray(label_order)
    order = by_label[np.argsort(-pooled[by_label], kind="stable")]
    pooled, ref_sorted, cur_sorted = pooled[order], ref_counts[order], cur_counts[order]
    large = int(np.count_nonzero(pooled >= needed))
    groups = np.arange(pooled.size)
    if large < pooled.size:
        before = np.cumsum(pooled[large:]) - pooled[large:]
        small_groups = np.floor(before / needed).astype(np.int64)
        last = int(small_groups.max())
        if pooled[large:][small_groups == last].sum() < needed:  # a short last group joins its neighbour
            if last > 0:
                small_groups[small_groups == last] = last - 1
            elif large > 1:
                small_groups[:] = -1  # into the smallest large cell (two cells at least remain)
        groups[large:] = large + small_groups
    cells = int(groups.max()) + 1
    if cells < 2:
        return 1.0
    ref_cells = np.bincount(groups, ref_sorted, minlength=cells)
    cur_cells = np.bincount(groups, cur_sorted, minlength=cells)
    pooled_cells = ref_cells + cur_cells
    expected_ref = pooled_cells * n_ref / total
    expected_cur = pooled_cells * n_cur / total
    statistic = float(
        np.sum((ref_cells - expected_ref) ** 2 / expected_ref)
        + np.sum((cur_cells - expected_cur) ** 2 / expected_cur)
    )
    return float(special.chdtrc(cells - 1, statistic))


def homogeneity_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Total variation distance of the shares, with the chi-square homogeneity p-value (module doc)."""
    import numpy as np

    ref_counts, cur_counts, label_order = _cell_counts(reference, current)
    ref_shares = ref_counts / max(ref_counts.sum(), 1)
    cur_shares = cur_counts / max(cur_counts.sum(), 1)
    distance = float(np.abs(ref_shares - cur_shares).sum() / 2)
    method = "exact"
    if isinstance(reference.profile, NumericColumnProfile) and not _exact_discrete(reference, current):
        method = "binned"  # the bins' shares are compared: exact for the bins, not for the values
    return TestOutcome(distance, homogeneity_p_value(ref_counts, cur_counts, label_order), method=method)


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


def binned_wasserstein(
    ref: NumericColumnProfile, cur: NumericColumnProfile, quantile_scale: bool = False
) -> tuple[float, float, float]:
    """Wasserstein-1 from shared bins with linear CDFs inside bins, and the interval that holds the
    exact distance (module docstring). ``quantile_scale`` measures widths in reference shares."""
    import numpy as np

    ref_shares = np.asarray(ref.counts, float) / ref.count
    cur_shares = np.asarray(cur.counts, float) / cur.count
    if quantile_scale:
        points = np.concatenate([[0.0], np.cumsum(ref_shares)])
    else:
        low, high = min(ref.min, cur.min), max(ref.max, cur.max)
        if ref.edges:
            points = np.asarray([min(low, ref.edges[0]), *ref.edges, max(high, ref.edges[-1])])
        else:
            points = np.asarray([low, high])
    difference = np.concatenate([[0.0], np.cumsum(ref_shares) - np.cumsum(cur_shares)])
    widths = np.diff(points)
    start, end = difference[:-1], difference[1:]
    same_sign = start * end >= 0
    magnitude = np.abs(start) + np.abs(end)
    crossing = np.divide(start**2 + end**2, 2 * magnitude, out=np.zeros_like(magnitude), where=magnitude > 0)
    areas = np.where(same_sign, magnitude / 2, crossing) * widths
    # inside a bin the gap F_ref - F_cur stays within [start - current share, start + reference share]
    gap_low, gap_high = start - cur_shares, start + ref_shares
    upper = np.sum(widths * np.maximum(np.abs(gap_low), np.abs(gap_high)))
    lower = np.sum(widths * np.where(gap_low > 0, gap_low, np.where(gap_high < 0, -gap_high, 0.0)))
    return float(np.sum(areas)), float(lower), float(upper)


def wasserstein_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Wasserstein-1 distance divided by the reference population std (``np.std``, ddof=0).

    With a constant reference (std 0) the statistic is 0 when the current data equal it and infinite
    otherwise, since any change from a constant is drift.
    """
    ref, cur = _numeric_profiles(reference, current)
    span = None
    if reference.sorted_values is not None and current.sorted_values is not None:
        distance, method = wasserstein_sorted(reference.sorted_values, current.sorted_values), "exact"
    elif _exact_discrete(reference, current):
        distance, method = _discrete_wasserstein(reference, current), "exact"
    else:
        distance, low, high = binned_wasserstein(ref, cur)
        method, span = "binned", (low, high)
    if ref.std == 0 and ref.min < ref.max:
        raise InputDataError(
            f"the reference's standard deviation is 0 although its values range from {ref.min!r} to "
            f"{ref.max!r} (squares of values below ~1e-154 underflow): scale the column, or use a "
            "reference profiled from raw data"
        )
    if ref.std == 0:
        note = "reference standard deviation is 0: statistic is 0 if unchanged, infinite otherwise"
        if span is not None and span[1] > 0:
            distance = max(distance, span[0]) if span[0] > 0 else distance
        return TestOutcome(0.0 if distance == 0 else math.inf, method=method, notes=(note,))
    statistic = distance / ref.std
    return TestOutcome(
        statistic,
        lazy_p_value=lambda: _two_sample_p_value(reference, current),
        method=method,
        error_bound=None
        if span is None
        else max(statistic - span[0] / ref.std, span[1] / ref.std - statistic),
        statistic_range=None if span is None else (span[0] / ref.std, span[1] / ref.std),
    )


def ks_statistic_sorted(u_sorted: np.ndarray, v_sorted: np.ndarray) -> float:
    """The two-sample KS statistic of sorted samples (as ``ks_2samp``): the ECDF gap is largest at a
    sample point, so each sample is looked up in the other once (a quarter of ``ks_2samp``'s
    searches); a sample's own ECDF at its points is its rank (the last of equal values)."""
    import numpy as np

    n, m = u_sorted.size, v_sorted.size
    if n == 0 or m == 0:
        return 0.0
    gap = np.searchsorted(v_sorted, u_sorted, side="right") / m
    np.subtract(_upper_ranks(u_sorted) / n, gap, out=gap)
    largest = float(np.max(np.abs(gap)))
    gap = np.searchsorted(u_sorted, v_sorted, side="right") / n
    np.subtract(gap, _upper_ranks(v_sorted) / m, out=gap)
    return max(largest, float(np.max(np.abs(gap))))


def _upper_ranks(values: np.ndarray) -> np.ndarray:
    """For sorted values, how many are at or below each one (1, 2, ... without ties)."""
    import numpy as np

    ranks = np.arange(1, values.size + 1, dtype=np.float64)
    last_of_run = values[1:] != values[:-1]
    if last_of_run.all():
        return ranks
    ranks[:-1][~last_of_run] = np.inf  # within a run of equal values: the run's last rank, below
    return np.minimum.accumulate(ranks[::-1])[::-1]


def _two_sample_p_value(reference: ColumnSample, current: ColumnSample) -> float:
    """Whether the two sides differ at all: KS (exact on raw data, else from the bins, conservative)
    and the chi-square homogeneity test on the reference's bins, combined by Bonferroni
    (``min(1, 2 * min(p_ks, p_bins))``). KS misses changes confined to a small share of the rows (the
    non-zero tail of a zero-inflated column); the bins' test sees those."""
    if reference.sorted_values is not None and current.sorted_values is not None:
        n, m = reference.sorted_values.size, current.sorted_values.size
        ks_p = _ks_p_value_below_zero(reference, current)
        if ks_p is None:
            ks_p = _ks_p_value(ks_statistic_sorted(reference.sorted_values, current.sorted_values), n, m)
    else:
        ks_p = ks_test(reference, current).p_value
    ref_counts, cur_counts, order = _cell_counts(reference, current)
    return min(1.0, 2 * min(ks_p, homogeneity_p_value(ref_counts, cur_counts, order)))


def _ks_p_value_below_zero(reference: ColumnSample, current: ColumnSample) -> float | None:
    """``0.0`` when the exact KS p-value of the raw sides is certainly 0.0, else ``None``.

    The ECDF gap at the bin edges (from exact counts on the same edges) is a lower bound of the KS
    statistic, and the asymptotic p-value only falls as the statistic grows: when it is already 0.0
    (it underflows far below any threshold) at the bound, minus a margin for rounding, the exact
    statistic gives 0.0 too, without a search of each sample in the other.
    """
    import numpy as np

    ref, cur = reference.profile, current.profile
    n, m = ref.count, cur.count
    if not n or not m or n * m / (n + m) <= 10_000 or ref.edges != cur.edges:
        return None
    gaps = np.cumsum(np.asarray(ref.counts, float)) / n - np.cumsum(np.asarray(cur.counts, float)) / m
    bound = float(np.max(np.abs(gaps))) - 1e-9
    return 0.0 if bound > 0 and _ks_p_value(bound, n, m) == 0.0 else None


def wasserstein_quantile_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Wasserstein-1 distance after mapping both sides through the reference's CDF, in [0, 0.5].

    Raw data: the reference's sorted values map to their mid-ranks, current values to the mid-rank
    they would take in the reference (values beyond its range to 0 or 1). Profiles: reference bins are
    equal-mass, so the bins' reference shares are their widths on this scale.
    """
    import numpy as np

    ref, cur = _numeric_profiles(reference, current)
    if ref.count == 0 or cur.count == 0:
        return TestOutcome(None)
    if reference.sorted_values is not None and current.sorted_values is not None:
        ref_sorted, cur_sorted = reference.sorted_values, current.sorted_values
        n = ref_sorted.size
        ref_ranks = (
            np.searchsorted(ref_sorted, ref_sorted, "left") + np.searchsorted(ref_sorted, ref_sorted, "right")
        ) / (2 * n)
        cur_ranks = (
            np.searchsorted(ref_sorted, cur_sorted, "left") + np.searchsorted(ref_sorted, cur_sorted, "right")
        ) / (2 * n)
        distance = wasserstein_sorted(ref_ranks, cur_ranks)
        return TestOutcome(distance, lazy_p_value=lambda: _two_sample_p_value(reference, current))
    distance, low, high = binned_wasserstein(ref, cur, quantile_scale=True)
    return TestOutcome(
        distance,
        lazy_p_value=lambda: _two_sample_p_value(reference, current),
        method="binned",
        error_bound=max(distance - low, high - distance),
        statistic_range=(low, high),
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
    if current.other_count and not set(reference.counts) <= set(current.counts):
        return None  # the current "other" mixes reference categories beyond its list with new ones
    if current.non_null == 0:
        return 0.0
    outside = sum(count for label, count in current.counts.items() if label not in reference.counts)
    return (outside + current.other_count) / current.non_null


def expected_unseen(
    reference: CategoricalColumnProfile, current: CategoricalColumnProfile
) -> tuple[float, float]:
    """Mean and variance of the current values in categories the reference lacks, were both sides
    samples of one distribution: given each category's pooled count ``t`` of ``N`` values, all ``t``
    fall in the current ``m`` with probability ``C(m, t) / C(N, t)`` (categories taken as independent).
    """
    import numpy as np
    from scipy import special

    _, ref_counts, cur_counts = aligned_category_counts(reference, current)
    m, total = cur_counts.sum(), ref_counts.sum() + cur_counts.sum()
    pooled = ref_counts + cur_counts
    possible = pooled <= m
    t = pooled[possible]
    log_q = special.gammaln(m + 1) - special.gammaln(m - t + 1) - special.gammaln(total + 1)
    log_q += special.gammaln(total - t + 1)
    q = np.exp(log_q)
    return float(np.sum(t * q)), float(np.sum(t * t * q * (1 - q)))


def unseen_share_test(reference: ColumnSample, current: ColumnSample) -> TestOutcome:
    """Unseen share beyond what sampling explains, floored at 0, with its one-sided p-value.

    The expected unseen share is ``expected_unseen`` over the current non-null values: a 100-row
    reference of 1,000 equally frequent categories misses most of them, so most values of a current
    sample of the same distribution are "unseen". The p-value bounds the chance of so large an excess
    by Cantelli's inequality, ``variance / (variance + excess^2)``, which holds for any distribution.
    """
    share = unseen_share(reference.profile, current.profile)
    if share is None:
        return TestOutcome(None, notes=("unseen share unknown: the reference profile keeps only its top-K",))
    values = current.profile.non_null
    if values == 0:
        return TestOutcome(0.0, 1.0)
    mean, variance = expected_unseen(reference.profile, current.profile)
    excess = share * values - mean
    notes = ()
    if mean >= 0.005 * values:
        notes = (f"{mean / values:.1%} of values are expected in categories a reference this size misses",)
    # Cantelli's inequality: valid whatever the shape (one rare category can dominate the sum)
    p_value = 1.0 if excess <= 0 else variance / (variance + excess * excess)
    return TestOutcome(max(excess / values, 0.0), p_value, notes=notes)


STAT_TESTS: dict[str, StatTest] = {
    test.name: test
    for test in (
        StatTest("ks", ks_test, frozenset({NUMERIC}), SIGNIFICANCE, "p-value", P_VALUE_BELOW,
                 "two-sample Kolmogorov-Smirnov"),
        StatTest("chisquare", chisquare_test, frozenset({CATEGORICAL}), 0.05, "p-value", P_VALUE_BELOW,
                 "chi-square goodness of fit against reference shares"),
        StatTest("jensenshannon", jensenshannon_test, frozenset({NUMERIC, CATEGORICAL}), 0.1,
                 "Jensen-Shannon distance, log base 2, in [0, 1]", STATISTIC_ABOVE,
                 "Jensen-Shannon distance (square root of the base-2 divergence)"),
        StatTest("psi", psi_test, frozenset({NUMERIC, CATEGORICAL}), 0.1, "PSI, natural log",
                 STATISTIC_ABOVE, "population stability index"),
        StatTest("homogeneity", homogeneity_test, frozenset({NUMERIC, CATEGORICAL}), 0.05,
                 "total variation distance of shares, in [0, 1]", STATISTIC_ABOVE,
                 "total variation distance, when the chi-square homogeneity test finds it real (p < 0.01)",
                 SIGNIFICANCE),
        StatTest("wasserstein", wasserstein_test, frozenset({NUMERIC}), 0.1,
                 "reference standard deviations", STATISTIC_ABOVE,
                 "Wasserstein-1 distance normalised by the reference standard deviation, when the two "
                 "samples differ (KS and bins, p < 0.01)", SIGNIFICANCE),
        StatTest("wasserstein_quantile", wasserstein_quantile_test, frozenset({NUMERIC}), 0.03,
                 "reference quantile scale, in [0, 0.5]", STATISTIC_ABOVE,
                 "Wasserstein-1 distance after mapping values through the reference CDF, when the two "
                 "samples differ (KS and bins, p < 0.01)", SIGNIFICANCE),
        StatTest("linf", linf_test, frozenset({CATEGORICAL}), 0.1, "share, in [0, 1]", STATISTIC_ABOVE,
                 "largest absolute difference of category shares"),
        StatTest("missing_rate", missing_rate_test, frozenset({NUMERIC, CATEGORICAL}), 0.05,
                 "absolute change of missing share, in [0, 1]", STATISTIC_ABOVE,
                 "change of the share of null, NaN and +-inf values"),
        StatTest("unseen_share", unseen_share_test, frozenset({CATEGORICAL}), 0.05,
                 "share of current non-null values beyond the expected unseen share, in [0, 1]",
                 STATISTIC_ABOVE, "share of current values in categories absent from the reference",
                 SIGNIFICANCE),
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
    kind: str,
    reference_rows: int,
    small_reference_rows: int = SMALL_REFERENCE_ROWS,
    distinct_values: int | None = None,
) -> str:
    """The default test (see the module docstring, "Sample size").

    Categorical columns, and numeric columns with at most ``DISCRETE_AS_CATEGORIES`` distinct
    reference values: ``homogeneity``. Other numeric columns: KS up to ``small_reference_rows``
    reference rows, else normalised Wasserstein (with the KS p-value as its significance check).
    """
    if kind != NUMERIC or (distinct_values is not None and distinct_values <= DISCRETE_AS_CATEGORIES):
        return "homogeneity"
    return "ks" if reference_rows <= small_reference_rows else "wasserstein"

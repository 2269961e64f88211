"""The one-pass column scan bins exactly like a binary search on the edges and sums like numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airflow_provider_mlprod.drift import binning
from airflow_provider_mlprod.drift.binning import EdgeBinner, scan_numeric
from airflow_provider_mlprod.drift.profile import bin_counts, profile_numeric_array


def reference_counts(values: np.ndarray, edges: tuple[float, ...]) -> tuple[int, ...]:
    """The documented bins, by definition: < e0, [e_i, e_i+1), [e_L-1, e_L] closed, > e_L."""
    finite = values[np.isfinite(values)]
    if not edges:
        return (finite.size,)
    edge_array = np.asarray(edges)
    if edge_array[0] == edge_array[-1]:
        return (
            int(np.sum(finite < edge_array[0])),
            int(np.sum(finite == edge_array[0])),
            int(np.sum(finite > edge_array[0])),
        )
    interior = np.histogram(finite, bins=edge_array)[0]
    return (int(np.sum(finite < edge_array[0])), *map(int, interior), int(np.sum(finite > edge_array[-1])))


def values_on_and_next_to(edges: tuple[float, ...], rng) -> np.ndarray:
    """Values on every edge, one float either side of it, and far outside the range."""
    edge_array = np.asarray(edges)
    near = [edge_array, np.nextafter(edge_array, -np.inf), np.nextafter(edge_array, np.inf)]
    outside = [edge_array[0] - 1e6, edge_array[-1] + 1e6, -1e300, 1e300]
    return rng.permutation(np.concatenate([*near, outside]))


EDGE_CASES = {
    "quantiles_normal": lambda rng: tuple(np.quantile(rng.normal(size=10_000), np.linspace(0, 1, 101))),
    "quantiles_lognormal": lambda rng: tuple(
        np.unique(np.quantile(rng.lognormal(0, 2, 10_000), np.linspace(0, 1, 101)))
    ),
    "integers": lambda rng: tuple(float(v) for v in range(-3, 40)),
    "two_edges": lambda rng: (0.1, 0.3),
    "crowded": lambda rng: (0.0, 1e-12, 2e-12, 3e-12, 1.0, 1e9),
    "far_from_zero": lambda rng: tuple(1e15 + np.arange(0, 400, 4.0)),
    "tiny_range": lambda rng: (1.0, *map(float, np.nextafter([1.0, np.nextafter(1.0, 2.0)], 2.0))),
    "huge_range": lambda rng: (-1e308, 0.0, 1e308),
    "subnormal": lambda rng: (0.0, 5e-324, 1e-323),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_grid_binning_equals_the_definition(case, monkeypatch):
    monkeypatch.setattr(binning, "BLOCK", 1000)  # several chunks of several blocks, and a short last one
    monkeypatch.setattr(binning, "CHUNK", 3000)
    rng = np.random.default_rng(7)
    edges = EDGE_CASES[case](rng)
    span = edges[-1] - edges[0] if math.isfinite(edges[-1] - edges[0]) else 1e308
    inside = edges[0] + rng.uniform(-0.1, 1.1, 5000) * span
    special = np.array([np.nan, np.inf, -np.inf, np.nan])
    values = np.concatenate([inside, values_on_and_next_to(edges, rng), special, inside[:777]])
    values = values[rng.permutation(values.size)]
    expected = reference_counts(values, edges)
    assert bin_counts(values[np.isfinite(values)], edges) == expected
    scan = scan_numeric(values, edges)
    assert scan.counts == expected
    assert (scan.null_count, scan.infinite_count, scan.count) == (2, 2, int(np.isfinite(values).sum()))
    finite = values[np.isfinite(values)]
    assert scan.low == finite.min()
    assert scan.high == finite.max()


def test_edges_that_fit_no_grid_fall_back_to_the_search():
    binner = EdgeBinner((0.0, 5e-324, 1e-323))
    assert binner.scale == 0.0  # the grid's scale overflows
    values = np.array([0.0, 5e-324, 1e-323, -1.0, 1.0, 1e-323])
    assert tuple(np.bincount(binner.indices(values, np.empty(6)), minlength=4)) == (1, 1, 3, 1)


def test_constant_and_missing_edges():
    values = np.array([2.0, 2.0, 3.0, 1.0, np.nan, -np.inf])
    assert scan_numeric(values, (2.0, 2.0)).counts == (1, 2, 1)
    assert scan_numeric(values, ()).counts == (4,)
    on = scan_numeric(np.array([2.0, 2.0, np.nan]), (2.0, 2.0), atoms=(2.0,))
    assert on.on_atoms
    assert not scan_numeric(values, (2.0, 2.0), atoms=(2.0,)).on_atoms


def test_atoms_are_kept_only_when_every_value_lies_on_them(monkeypatch):
    monkeypatch.setattr(binning, "BLOCK", 100)
    monkeypatch.setattr(binning, "CHUNK", 300)
    rng = np.random.default_rng(3)
    atoms = (0.0, 1.0, 2.0, 5.0)
    edges = (0.0, 0.5, 1.5, 3.5, 5.0)
    values = rng.choice(atoms, 1000)
    assert scan_numeric(values, edges, atoms).on_atoms
    values[777] = 1.25  # inside the bin of 1.0, not on it
    assert not scan_numeric(values, edges, atoms).on_atoms
    profile, _ = profile_numeric_array(values, edges, atoms=atoms)
    assert profile.values is None


@pytest.mark.parametrize("offset", [0.0, 1e9])
def test_chunked_moments_equal_numpy(offset, monkeypatch):
    monkeypatch.setattr(binning, "BLOCK", 4096)
    monkeypatch.setattr(binning, "CHUNK", 4 * 4096)
    rng = np.random.default_rng(11)
    values = offset + rng.lognormal(0, 1.5, 100_003)
    values[::997] = np.nan
    finite = values[np.isfinite(values)]
    scan = scan_numeric(values, (offset, offset + 1.0, offset + 10.0))
    assert scan.mean == pytest.approx(float(np.mean(finite)), rel=1e-14)
    assert scan.std == pytest.approx(float(np.std(finite)), rel=1e-12)
    sorted_profile, _ = profile_numeric_array(values, None, keep_sorted=True)
    assert sorted_profile.mean == pytest.approx(scan.mean, rel=1e-14)
    assert sorted_profile.std == pytest.approx(scan.std, rel=1e-12)
    assert sorted_profile.null_count == scan.null_count == values.size - finite.size


def test_the_grid_spans_the_inner_edges_only_when_the_outer_bins_are_long_tails():
    rng = np.random.default_rng(5)
    normal = tuple(np.quantile(rng.normal(size=100_000), np.linspace(0, 1, 101)))
    assert EdgeBinner(normal).span == (normal[0], normal[-1])
    heavy = tuple(np.quantile(rng.lognormal(0, 3, 100_000), np.linspace(0, 1, 101)))
    assert EdgeBinner(heavy).span == (heavy[1], heavy[-2])
    for edges in (normal, heavy):  # either way the counts are those of the definition
        values = np.concatenate([rng.normal(size=50_000), rng.lognormal(0, 3, 50_000), np.asarray(edges)])
        assert scan_numeric(values, edges).counts == reference_counts(values, edges)


@pytest.mark.parametrize("with_missing", [False, True])
def test_figures_do_not_depend_on_how_many_blocks_a_chunk_holds(with_missing, monkeypatch):
    """Several blocks summed in one call give bit for bit the figures of one block at a time."""
    rng = np.random.default_rng(17)
    values = 1e6 + rng.lognormal(0, 2, 10 * 1000 + 123)
    if with_missing:
        values[rng.integers(0, values.size, 40)] = np.nan
        values[4321] = np.inf
    edges = tuple(np.quantile(values[np.isfinite(values)], np.linspace(0, 1, 21)))
    monkeypatch.setattr(binning, "BLOCK", 1000)
    scans = []
    for blocks_per_chunk in (1, 3, 4, 100):
        monkeypatch.setattr(binning, "CHUNK", 1000 * blocks_per_chunk)
        scans.append(scan_numeric(values, edges))
    assert all(scan == scans[0] for scan in scans[1:])
    assert scans[0].counts == reference_counts(values, edges)

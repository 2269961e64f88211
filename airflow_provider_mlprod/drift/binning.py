"""One pass over a numeric column: null/inf counts, moments, min/max and bin counts on fixed edges.

``scan_numeric`` reads the values in chunks of ``CHUNK`` (they stay in the CPU cache, and no
temporary is as large as the column) and never sorts. Binning follows ``profile``'s rules: for
``edges = [e0, ..., eL]`` the counts are values ``< e0``, ``[e0, e1)``, ..., ``[e(L-1), eL]`` (closed)
and ``> eL``. With ``upper = edges`` whose last edge is moved to the next float above ``eL``, the
count index of ``x`` is the number of ``upper`` edges ``<= x`` (``searchsorted(upper, x, "right")``).

Instead of a binary search per value, a uniform grid of up to ``MAX_CELLS`` cells over the inner
edges ``[e1, e(L-1)]`` maps each value to a cell: ``trunc(clip(x * scale + offset, 0, cells + 2))``.
That map only rises with ``x`` (each floating-point step is monotone), so an edge whose cell is below
a value's cell is below the value, and one above is above it: a cell without an edge decides the
count index of all its values from a lookup table; in a cell holding one edge a value is compared
with that edge, and only values in cells holding several edges are searched. The counts are
therefore exactly those of ``searchsorted`` (and of ``numpy.histogram``), with no tolerance. Edges
too close for such a grid fall back to the search.

Moments: the values are shifted by the mean of the first chunk (so that sums stay near the data's
spread, not its magnitude); per chunk the sum and the sum of squared deviations from the chunk's mean
are combined with Chan's parallel formula, as stable as the two-pass formula of ``numpy.std``.

numpy releases the GIL in every kernel used here, so columns scanned on two threads run in parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CHUNK = 32_768
MAX_CELLS = 16_384
CELLS_PER_BIN = 256


@dataclass(frozen=True)
class NumericScan:
    """What one pass over a column found: counts per bin and the finite values' sufficient statistics.

    ``on_atoms`` tells whether every finite value equals its bin's atom (only when atoms were given).
    Sums are of the deviations from ``shift``, the mean of the first finite values of the column.
    """

    counts: tuple[int, ...]
    null_count: int
    infinite_count: int
    count: int
    deviation_total: float
    squares: float
    low: float | None
    high: float | None
    on_atoms: bool

    shift: float = 0.0

    @property
    def mean(self) -> float | None:
        """Mean of the finite values (``None`` without any)."""
        return self.shift + self.deviation_total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        """Population standard deviation of the finite values (``None`` without any)."""
        return math.sqrt(max(self.squares, 0.0) / self.count) if self.count else None


class EdgeBinner:
    """Count indices of values on fixed ``edges`` through a grid lookup (see the module docstring)."""

    def __init__(self, edges: tuple[float, ...]) -> None:
        import numpy as np

        self.edges = np.asarray(edges, dtype=np.float64)
        self.n_counts = len(edges) + 1 if edges else 1
        self.constant = len(edges) == 2 and edges[0] == edges[1]
        self.scale = 0.0
        if not edges or self.constant:
            return
        upper = self.edges.copy()
        upper[-1] = np.nextafter(upper[-1], np.inf)
        self.upper = upper
        bins = len(edges) - 1
        cells = min(MAX_CELLS, max(1024, CELLS_PER_BIN * bins))
        # the grid spans the inner edges: the outer bins of quantile edges hold the long tails, whose
        # few values are searched, and the grid keeps its resolution where the values are dense
        inner = self.edges[1:-1] if bins >= 4 else self.edges
        low, high = float(inner[0]), float(inner[-1])
        with np.errstate(over="ignore", invalid="ignore"):
            scale = cells / (high - low)
            offset = 1.0 - low * scale
        if not (math.isfinite(scale) and math.isfinite(offset) and scale > 0):
            return  # edges too close (or too far apart) for a grid: binary search per value
        self.scale, self.offset, self.top = scale, offset, float(cells + 2)
        edge_cells = self._cells(upper, np.empty(upper.size))
        grid = np.arange(cells + 3)
        below = np.searchsorted(edge_cells, grid, side="left")  # edges in lower cells: below any value
        inside = np.searchsorted(edge_cells, grid, side="right") - below
        self.sentinel = len(edges) + 1  # one slot past the overflow count: "search this value"
        self.crowded = bool(np.any(inside > 1))
        # a cell holding one edge adds 1 for values at or above it; cells without one compare with inf
        self.lookup = np.where(inside > 1, self.sentinel, below).astype(np.intp)
        self.cell_edge = np.where(inside == 1, upper[np.minimum(below, upper.size - 1)], np.inf)

    def _cells(self, values: np.ndarray, work: np.ndarray) -> np.ndarray:
        """The grid cell of each value (monotone in the value); ``work`` is a float buffer."""
        import numpy as np

        with np.errstate(over="ignore"):  # far outside the edges: +-inf, clipped to the end cells
            np.multiply(values, self.scale, out=work)
            np.add(work, self.offset, out=work)
        np.clip(work, 0.0, self.top, out=work)
        return work.astype(np.intp)

    def indices(self, values: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Count index of each finite value (0 underflow, 1..L interior bins, L + 1 overflow)."""
        import numpy as np

        if self.scale == 0.0:
            return np.searchsorted(self.upper, values, side="right")
        cells = self._cells(values, work[: values.size])
        found = self.lookup.take(cells)
        np.add(found, np.greater_equal(values, self.cell_edge.take(cells)), out=found)
        if self.crowded:  # cells holding several edges: a binary search for their values
            unsure = np.flatnonzero(found >= self.sentinel)
            if unsure.size:
                found[unsure] = np.searchsorted(self.upper, values[unsure], side="right")
        return found

    def add_counts(self, values: np.ndarray, counts: np.ndarray, work: np.ndarray) -> np.ndarray | None:
        """Add the bin counts of finite ``values`` to ``counts``; return their count indices when
        the edges make a grid (``None`` for no edges or one constant edge)."""
        import numpy as np

        if self.n_counts == 1:
            counts[0] += values.size
            return None
        if self.constant:
            edge = self.edges[0]
            below = int(np.count_nonzero(values < edge))
            above = int(np.count_nonzero(values > edge))
            counts += (below, values.size - below - above, above)
            return None
        found = self.indices(values, work)
        counts += np.bincount(found, minlength=self.n_counts)[: self.n_counts]
        return found


def scan_numeric(
    values: np.ndarray,
    edges: tuple[float, ...],
    atoms: tuple[float, ...] | None = None,
    binner: EdgeBinner | None = None,
) -> NumericScan:
    """Scan float64 ``values`` (NaN = null) once: see the module docstring.

    :param values: the column (any float64 array; it is only read).
    :param edges: the bin edges (``()``: one bin holding every finite value).
    :param atoms: the reference's distinct values, one per interior bin: ``on_atoms`` tells whether
        every finite value lies on them.
    :param binner: a prepared ``EdgeBinner`` for ``edges`` (built when not given).
    """
    import numpy as np

    binner = binner or EdgeBinner(edges)
    counts = np.zeros(binner.n_counts, dtype=np.int64)
    atom_table = None
    if atoms is not None and binner.n_counts > 1:
        if binner.constant:
            atom_table = np.array([np.nan, atoms[0], np.nan])
        else:
            atom_table = np.concatenate([[np.nan], np.asarray(atoms, float), [np.nan, np.nan]])
    on_atoms = atoms is not None
    work = np.empty(min(CHUNK, values.size))
    shift = _first_mean(values[:CHUNK])
    nulls = infinite = count = 0
    total = squares = 0.0  # of the deviations from ``shift``
    low = high = None
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, values.size, CHUNK):
            chunk = values[start : start + CHUNK]
            deviations = np.subtract(chunk, shift, out=work[: chunk.size])
            chunk_sum = float(np.add.reduce(deviations))
            if not math.isfinite(chunk_sum):  # a null or an infinite value (or an overflowing sum)
                finite = np.isfinite(chunk)
                if not finite.all():
                    chunk_nulls = int(np.count_nonzero(np.isnan(chunk)))
                    nulls += chunk_nulls
                    infinite += chunk.size - int(np.count_nonzero(finite)) - chunk_nulls
                    chunk = chunk[finite]
                    if not chunk.size:
                        continue
                    deviations = np.subtract(chunk, shift, out=work[: chunk.size])
                    chunk_sum = float(np.add.reduce(deviations))
            chunk_mean = chunk_sum / chunk.size
            np.subtract(deviations, chunk_mean, out=deviations)
            # not np.dot/np.vdot: on a short vector BLAS wakes its threads and costs ten times more
            chunk_squares = float(np.add.reduce(np.multiply(deviations, deviations, out=deviations)))
            if count:
                delta = chunk_mean - total / count
                squares += chunk_squares + delta * delta * count * chunk.size / (count + chunk.size)
                low = min(low, float(np.minimum.reduce(chunk)))
                high = max(high, float(np.maximum.reduce(chunk)))
            else:
                squares = chunk_squares
                low, high = float(np.minimum.reduce(chunk)), float(np.maximum.reduce(chunk))
            total += chunk_sum
            count += chunk.size
            found = binner.add_counts(chunk, counts, work)
            if on_atoms and atom_table is not None:
                if found is None:  # a constant edge: on the atom unless below or above it
                    on_atoms = bool(np.all(chunk == atoms[0]))
                else:
                    on_atoms = bool(np.array_equal(atom_table.take(found), chunk))
    return NumericScan(
        counts=tuple(int(c) for c in counts),
        null_count=nulls,
        infinite_count=infinite,
        count=count,
        deviation_total=total,
        shift=shift,
        squares=squares,
        low=low,
        high=high,
        on_atoms=on_atoms and atom_table is not None,
    )


def _first_mean(head: np.ndarray) -> float:
    """Mean of the finite values of ``head`` (0 when none, or when it overflows)."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        finite = head[np.isfinite(head)]
        mean = float(np.add.reduce(finite)) / finite.size if finite.size else 0.0
    return mean if math.isfinite(mean) else 0.0

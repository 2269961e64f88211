"""One pass over a numeric column: null/inf counts, moments, min/max and bin counts on fixed edges.

``scan_numeric`` reads the values in chunks of ``CHUNK`` (a few numpy calls per chunk: long enough
that two threads scanning two columns rarely wait for each other's GIL, short enough to stay in the
CPU cache) and never sorts. Binning follows ``profile``'s rules: for ``edges = [e0, ..., eL]`` the
counts are values ``< e0``, ``[e0, e1)``, ..., ``[e(L-1), eL]`` (closed) and ``> eL``. With
``upper = edges`` whose last edge is moved to the next float above ``eL``, the count index of ``x``
is the number of ``upper`` edges ``<= x`` (``searchsorted(upper, x, "right")``).

Instead of a binary search per value, a uniform grid of up to ``MAX_CELLS`` cells maps each value to
a cell: ``trunc(clip(x * scale + offset, 0, cells + 2))``. The grid spans all edges, or only the
inner edges ``[e1, e(L-1)]`` when the outer bins are long tails (whichever leaves fewer values to
compare, see ``EdgeBinner._span``). That map only rises with ``x`` (each floating-point step is
monotone), so an edge whose cell is below a value's cell is below the value, and one above is above
it: a cell without an edge gives the count index of all its values from a lookup table; the few
values in a cell holding one edge are compared with that edge, and those in cells holding several
edges are searched. The counts are therefore exactly those of ``searchsorted`` (and of
``numpy.histogram``), with no tolerance. Edges too close for such a grid fall back to the search.

Moments: the values are shifted by the mean of the first block of ``BLOCK`` values (so that sums stay
near the data's spread, not its magnitude); per block the sum and the sum of squared deviations from
the block's mean are combined with Chan's parallel formula, as stable as the two-pass formula of
``numpy.std``. A chunk's blocks are summed in one call, which gives bit for bit the sums of one call
per block, so the figures do not depend on ``CHUNK``.

numpy releases the GIL in the kernels used here, so columns scanned on two threads run in parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CHUNK = 131_072
BLOCK = 32_768
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
        low, high = self.span = self._span(cells)
        with np.errstate(over="ignore", invalid="ignore"):
            scale = cells / (high - low)
            offset = 1.0 - low * scale
        if not (math.isfinite(scale) and math.isfinite(offset) and scale > 0):
            return  # edges too close (or too far apart) for a grid: binary search per value
        self.scale, self.offset, self.top = scale, offset, float(cells + 2)
        with np.errstate(over="ignore"):
            edge_cells = self._cells(upper, np.empty(upper.size))
        grid = np.arange(cells + 3)
        below = np.searchsorted(edge_cells, grid, side="left")  # edges in lower cells: below any value
        inside = np.searchsorted(edge_cells, grid, side="right") - below
        self.sentinel = len(edges) + 1  # one slot past the overflow count: "compare this value"
        # a cell without an edge gives the count index of all its values; a cell holding edges gives
        # the sentinel, and its (few) values are compared with its edge, or searched if it holds several
        self.lookup = np.where(inside > 0, self.sentinel, below).astype(np.intp)
        self.below = below.astype(np.intp)
        self.cell_edge = np.where(inside == 1, upper[np.minimum(below, upper.size - 1)], np.inf)
        self.crowded_cells = inside > 1
        self.crowded = bool(np.any(self.crowded_cells))

    def _span(self, cells: int) -> tuple[float, float]:
        """The range the grid spans: all edges, or the inner edges ``[e1, e(L-1)]`` when the outer
        bins are long tails that would leave the grid too coarse where the values are dense.

        Chosen to compare the fewest values with an edge, taking each bin to hold the same share of
        the values (quantile edges): all of a bin outside the grid, and about two cells' worth of a bin
        inside it (the cells holding its edges).
        """
        import numpy as np

        widths = np.diff(self.edges)

        def compared(low: float, high: float) -> float:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                in_grid = (self.edges[:-1] >= low) & (self.edges[1:] <= high)
                share = float(
                    np.where(in_grid, np.minimum(1.0, 2 * (high - low) / cells / widths), 1.0).sum()
                )
            return share if math.isfinite(share) else math.inf

        full = (float(self.edges[0]), float(self.edges[-1]))
        if widths.size < 4:
            return full
        inner = (float(self.edges[1]), float(self.edges[-2]))
        return inner if compared(*inner) < compared(*full) else full

    def _cells(self, values: np.ndarray, work: np.ndarray) -> np.ndarray:
        """The grid cell of each value (monotone in the value); ``work`` is a float buffer."""
        import numpy as np

        # far outside the edges the products overflow to +-inf, clipped to the end cells (callers
        # silence the overflow warning once, not per chunk)
        np.multiply(values, self.scale, out=work)
        np.add(work, self.offset, out=work)
        np.clip(work, 0.0, self.top, out=work)
        return work.astype(np.intp)

    def indices(self, values: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Count index of each finite value (0 underflow, 1..L interior bins, L + 1 overflow).

        Values far outside the edges overflow the grid's arithmetic: call it under
        ``numpy.errstate(over="ignore")``.
        """
        import numpy as np

        if self.scale == 0.0:
            return np.searchsorted(self.upper, values, side="right")
        cells = self._cells(values, work[: values.size])
        found = self.lookup.take(cells)
        unsure = np.flatnonzero(found == self.sentinel)
        if unsure.size:  # values in cells holding edges
            near, near_cells = values[unsure], cells[unsure]
            fixed = self.below.take(near_cells)
            fixed += np.greater_equal(near, self.cell_edge.take(near_cells))
            if self.crowded:  # cells holding several edges: a binary search for their values
                crowded = np.flatnonzero(self.crowded_cells.take(near_cells))
                if crowded.size:
                    fixed[crowded] = np.searchsorted(self.upper, near[crowded], side="right")
            found[unsure] = fixed
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
        np.add.at(counts, found, 1)  # faster than bincount, and it holds the GIL less
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
    chunk_size = max(CHUNK // BLOCK, 1) * BLOCK
    work = np.empty(min(chunk_size, values.size))
    moments = _Moments(_first_mean(values[:BLOCK]))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, values.size, chunk_size):
            chunk = moments.add(values[start : start + chunk_size], work)
            if not chunk.size:
                continue
            found = binner.add_counts(chunk, counts, work)
            if on_atoms and atom_table is not None:
                if found is None:  # a constant edge: on the atom unless below or above it
                    on_atoms = bool(np.all(chunk == atoms[0]))
                else:
                    on_atoms = bool(np.array_equal(atom_table.take(found), chunk))
    return NumericScan(
        counts=tuple(int(c) for c in counts),
        null_count=moments.nulls,
        infinite_count=moments.infinite,
        count=moments.count,
        deviation_total=moments.total,
        shift=moments.shift,
        squares=moments.squares,
        low=moments.low,
        high=moments.high,
        on_atoms=on_atoms and atom_table is not None,
    )


class _Moments:
    """Null/inf counts, sums of deviations from ``shift``, min and max, added block by block.

    Each block of ``BLOCK`` values gives a sum and a sum of squared deviations from its own mean,
    combined with Chan's formula; ``add`` takes several blocks at once (one numpy call for all their
    sums), so the figures do not depend on how many blocks a chunk holds.
    """

    def __init__(self, shift: float) -> None:
        self.shift = shift
        self.nulls = self.infinite = self.count = 0
        self.total = self.squares = 0.0
        self.low: float | None = None
        self.high: float | None = None

    def add(self, chunk: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Add the values of ``chunk`` (consecutive blocks, the last maybe short); return its finite
        values (``chunk`` itself when all are finite)."""
        import numpy as np

        full = chunk.size // BLOCK * BLOCK
        if full:
            rows = np.subtract(
                chunk[:full].reshape(-1, BLOCK), self.shift, out=work[:full].reshape(-1, BLOCK)
            )
            sums = np.add.reduce(rows, axis=1)
            if math.isfinite(float(np.add.reduce(sums))):
                means = sums / BLOCK
                np.subtract(rows, means[:, None], out=rows)
                squares = np.add.reduce(np.multiply(rows, rows, out=rows), axis=1)
                low, high = float(np.minimum.reduce(chunk[:full])), float(np.maximum.reduce(chunk[:full]))
                for block_sum, block_squares in zip(sums.tolist(), squares.tolist(), strict=True):
                    self._combine(block_sum, block_squares, BLOCK, low, high)
                if full == chunk.size:
                    return chunk
                tail = self._add_block(chunk[full:], work)
                return chunk if tail.size == chunk.size - full else np.concatenate([chunk[:full], tail])
        kept = [self._add_block(chunk[start : start + BLOCK], work) for start in range(0, chunk.size, BLOCK)]
        return kept[0] if len(kept) == 1 else np.concatenate(kept)

    def _add_block(self, block: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Add one block of at most ``BLOCK`` values; return its finite values."""
        import numpy as np

        deviations = np.subtract(block, self.shift, out=work[: block.size])
        block_sum = float(np.add.reduce(deviations))
        if not math.isfinite(block_sum):  # a null or an infinite value (or an overflowing sum)
            finite = np.isfinite(block)
            if not finite.all():
                block_nulls = int(np.count_nonzero(np.isnan(block)))
                self.nulls += block_nulls
                self.infinite += block.size - int(np.count_nonzero(finite)) - block_nulls
                block = block[finite]
                if not block.size:
                    return block
                deviations = np.subtract(block, self.shift, out=work[: block.size])
                block_sum = float(np.add.reduce(deviations))
        np.subtract(deviations, block_sum / block.size, out=deviations)
        # not np.dot/np.vdot: on a short vector BLAS wakes its threads and costs ten times more
        block_squares = float(np.add.reduce(np.multiply(deviations, deviations, out=deviations)))
        self._combine(
            block_sum,
            block_squares,
            block.size,
            float(np.minimum.reduce(block)),
            float(np.maximum.reduce(block)),
        )
        return block

    def _combine(self, block_sum: float, block_squares: float, size: int, low: float, high: float) -> None:
        """Chan's parallel formula: add a block's sum and squared deviations from its own mean."""
        if self.count:
            delta = block_sum / size - self.total / self.count
            self.squares += block_squares + delta * delta * self.count * size / (self.count + size)
            self.low, self.high = min(self.low, low), max(self.high, high)
        else:
            self.squares = block_squares
            self.low, self.high = low, high
        self.total += block_sum
        self.count += size


def _first_mean(head: np.ndarray) -> float:
    """Mean of the finite values of ``head`` (0 when none, or when it overflows)."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        finite = head[np.isfinite(head)]
        mean = float(np.add.reduce(finite)) / finite.size if finite.size else 0.0
    return mean if math.isfinite(mean) else 0.0

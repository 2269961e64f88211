"""Benchmark of the in-memory drift engine: 1,000,000 rows x 25 columns, reference vs current.

The data: 20 numeric columns (normal, log-normal, uniform, integer counts) and 5 categorical columns
with 6 categories each, in a reference and a current DataFrame of 1,000,000 rows each. Drift is
injected into 4 numeric columns (mean shift, scale change, a new mode, a shifted log-normal) and 1
categorical column (category shares moved). Both comparisons run with default settings:

- raw vs raw: exact statistics on both DataFrames (equal sizes, then a current batch 10% smaller,
  which takes the general merge path for the exact Wasserstein distance);
- profile vs raw: the reference as a stored profile (the production path), current data binned.

Printed: wall time of each step, peak RSS of the process (``resource.getrusage``, data included),
and the flagged columns, which must be exactly the 5 drifted ones. Run from the repository root
(with the package installed, or ``PYTHONPATH=.``): ``python bench/drift.py [rows]``.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import pandas as pd

from airflow_provider_mlprod.drift.compare import compare_datasets
from airflow_provider_mlprod.drift.profile import profile_dataframe

CATEGORIES = np.array(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"], dtype=object)
DRIFTED = ["num_00", "num_05", "num_10", "num_15", "cat_2"]


def make_frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """A frame of 20 numeric and 5 categorical columns; ``drifted`` moves the columns in DRIFTED."""
    rng = np.random.default_rng(seed)
    names = [f"num_{index:02d}" for index in range(20)]
    block = np.empty((20, rows))  # one row per column: the DataFrame wraps it without a copy
    for index, name in enumerate(names):
        values = block[index]
        family = index % 4
        if family == 0:
            values[:] = rng.normal(10.0 * index, 2.0 + index, rows)
        elif family == 1:
            values[:] = rng.lognormal(0.0, 0.75, rows)
        elif family == 2:
            values[:] = rng.uniform(-1.0, 1.0, rows)
        else:
            values[:] = rng.poisson(4.0, rows)
        if drifted and name == "num_00":
            values += 0.5 * 2.0
        elif drifted and name == "num_05":
            values *= 1.6
        elif drifted and name == "num_10":
            values[: rows // 4] = rng.uniform(1.0, 3.0, rows // 4)
        elif drifted and name == "num_15":
            values += 2.0
    frame = pd.DataFrame(block.T, columns=names, copy=False)
    uniform = np.full(6, 1 / 6)
    moved = np.array([0.40, 0.20, 0.10, 0.10, 0.10, 0.10])
    for index in range(5):
        name = f"cat_{index}"
        shares = moved if drifted and name == "cat_2" else uniform
        codes = np.searchsorted(np.cumsum(shares), rng.random(rows), side="right").clip(0, 5)
        frame[name] = pd.Series(CATEGORIES[codes], dtype="str")
    return frame


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    """Run both comparisons, print the figures, return 1 when the flagged columns are not DRIFTED."""
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    started = time.perf_counter()
    reference = make_frame(rows, seed=1, drifted=False)
    current = make_frame(rows, seed=2, drifted=True)
    print(
        f"data: 2 x {rows:,} rows x {reference.shape[1]} columns generated in "
        f"{time.perf_counter() - started:.2f} s; peak RSS {peak_rss_mb():.0f} MB"
    )

    ok = True
    started = time.perf_counter()
    exact = compare_datasets(reference, current)
    elapsed = time.perf_counter() - started
    ok &= sorted(exact.drifted_columns) == sorted(DRIFTED)
    print(
        f"raw vs raw (exact): {elapsed:.2f} s; peak RSS {peak_rss_mb():.0f} MB; "
        f"flagged {exact.drifted_columns}; dataset drift {exact.dataset_drift}"
    )

    started = time.perf_counter()
    unequal = compare_datasets(reference, current.iloc[: rows - rows // 10])
    elapsed = time.perf_counter() - started
    ok &= sorted(unequal.drifted_columns) == sorted(DRIFTED)
    print(
        f"raw vs raw (exact), current 10% smaller: {elapsed:.2f} s; peak RSS {peak_rss_mb():.0f} MB; "
        f"flagged {unequal.drifted_columns}"
    )

    started = time.perf_counter()
    reference_profile = profile_dataframe(reference)
    profiled = time.perf_counter() - started
    started = time.perf_counter()
    binned = compare_datasets(reference_profile, current)
    elapsed = time.perf_counter() - started
    ok &= sorted(binned.drifted_columns) == sorted(DRIFTED)
    print(
        f"reference profile built in {profiled:.2f} s; profile vs raw (binned): {elapsed:.2f} s; "
        f"peak RSS {peak_rss_mb():.0f} MB; flagged {binned.drifted_columns}"
    )

    worst = max(
        (c for c in exact.columns if c.column not in DRIFTED), key=lambda c: c.statistic / c.threshold
    )
    weakest = min((c for c in exact.columns if c.column in DRIFTED), key=lambda c: c.statistic / c.threshold)
    print(
        f"margins: largest undrifted statistic {worst.column} {worst.statistic:.4f} ({worst.test}), "
        f"smallest drifted {weakest.column} {weakest.statistic:.4f}, threshold {worst.threshold}"
    )
    print("flagged exactly the drifted columns:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

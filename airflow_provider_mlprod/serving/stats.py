"""Latency statistics: percentiles, a log-spaced histogram and the CDF of one endpoint's latencies."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles in milliseconds (linear interpolation between order statistics)."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


def summarize_latencies(latencies_s: Sequence[float]) -> LatencySummary | None:
    """The summary of latencies given in seconds; None when there are none."""
    import numpy as np

    if len(latencies_s) == 0:
        return None
    values = np.asarray(latencies_s, dtype=float) * 1000.0
    p50, p90, p95, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
    return LatencySummary(
        count=int(values.size),
        mean_ms=float(values.mean()),
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(values.max()),
    )


def latency_histogram(
    latencies_s: Sequence[float], *, bins: int = 40, low_ms: float | None = None, high_ms: float | None = None
) -> list[dict[str, float]]:
    """Counts in log-spaced bins (ms); give ``low_ms``/``high_ms`` to share the bins across endpoints."""
    import numpy as np

    if len(latencies_s) == 0:
        return []
    values = np.asarray(latencies_s, dtype=float) * 1000.0
    low = max(float(low_ms if low_ms is not None else values.min()), 0.01)
    high = max(float(high_ms if high_ms is not None else values.max()), low * 1.01)
    edges = np.geomspace(low, high, bins + 1)
    counts, _ = np.histogram(np.clip(values, low, high), bins=edges)
    return [
        {"low_ms": float(edges[i]), "high_ms": float(edges[i + 1]), "count": int(counts[i])}
        for i in range(bins)
    ]


def latency_cdf(latencies_s: Sequence[float], *, points: int = 200) -> list[dict[str, float]]:
    """At most ``points`` (latency_ms, share of requests at or below it) pairs, always including the max."""
    import numpy as np

    if len(latencies_s) == 0:
        return []
    values = np.sort(np.asarray(latencies_s, dtype=float) * 1000.0)
    n = values.size
    step = max(1, math.ceil(n / points))
    indexes = list(range(step - 1, n, step))
    if indexes[-1] != n - 1:
        indexes.append(n - 1)
    return [{"latency_ms": float(values[i]), "share": (i + 1) / n} for i in indexes]

"""Reference profiles: per-column histograms and category counts that stand in for raw data.

A ``DatasetProfile`` holds, for each column:

- numeric (``NumericColumnProfile``): bin ``edges`` and ``counts``, the number of nulls (None/NaN)
  and of +-inf values, and the sufficient statistics count/mean/std/min/max of the finite values;
- categorical (``CategoricalColumnProfile``): the counts of the top-K categories, the count of all
  other categories (``other_count``) and the number of nulls. Categories are compared by a text form
  that every engine gives alike (``category_text``): booleans are ``true``/``false``, integral floats
  print as integers (``1.0`` is ``"1"``), so ``1``, ``1.0`` and ``"1"`` are the same category, and a
  pandas ``True`` equals a PostgreSQL ``true``.

Binning: for ``edges = [e0, ..., eL]`` there are ``L + 2`` counts: values ``< e0`` (underflow),
``[e0, e1)``, ..., ``[e(L-1), eL]`` (the last interior bin is closed, as in ``numpy.histogram``) and
values ``> eL`` (overflow). Edges are strictly increasing, except ``[c, c]`` for a constant column,
whose one interior bin holds exactly ``c``. Without edges (no finite reference value) there is one
bin holding every finite value. Infinite values are never binned: they are counted in
``infinite_count`` and treated as missing values by the drift tests.

Edges of a reference profile built from raw data:

- a column with at most ``n_bins`` distinct finite values (ratings, counts, flags) gets one bin per
  distinct value: edges are the midpoints between consecutive values, bounded by the minimum and the
  maximum, and the profile keeps those ``values``. While every value of a batch lies on them, the
  profile is the exact distribution, so the numeric tests are exact on it (no binning error);
- otherwise values holding more than ``1 / n_bins`` of the rows (the zeros of a zero-inflated column)
  get a bin of their own, and the other values are cut at their quantiles into the remaining
  equal-mass bins, so resolution stays where the mass is not.

Datetime columns are profiled as numbers: seconds since 1970-01-01 UTC (timedeltas as seconds). Text
columns declared numeric (a CSV's numbers or ISO 8601 datetimes) are parsed as such.

Profiles add up: profiles of partitions built with the same spec (same edges, same category list)
merge into exactly the profile of the whole (``merge`` or ``+``); counts add exactly and
mean/std combine with Chan's parallel formula. Profiles are JSON-serialisable (``to_dict`` /
``from_dict``, ``save`` / ``load``) and carry ``format_version``; reading another version raises
``StoreError``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import InputDataError, SpecError, StoreError
from airflow_provider_mlprod.frames import plain_arrow_columns, plain_arrow_series

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PROFILE_FORMAT_VERSION = 1
NUMERIC = "numeric"
CATEGORICAL = "categorical"
COLUMN_KINDS = (NUMERIC, CATEGORICAL)
DEFAULT_BINS = 100
DEFAULT_TOP_K = 1000
MAX_PROFILE_BYTES = 256 * 2**20
"""Largest profile file read (about 10 million categories); larger files are refused, not parsed."""


@dataclass(frozen=True)
class ColumnSpec:
    """How to profile one column: its kind and, to match a reference, its fixed edges or categories.

    :param kind: ``"numeric"`` or ``"categorical"``.
    :param edges: numeric bin edges; ``None`` derives quantile edges from the data.
    :param categories: categorical vocabulary to count; ``None`` keeps the ``top_k`` most frequent.
    :param shift: a value near the data's mean, used by SQL profiles for a numerically stable variance.
    :param values: the reference's distinct values, one per interior bin (see the module docstring).
    """

    kind: str
    edges: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None
    shift: float | None = None
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in COLUMN_KINDS:
            raise SpecError(f"column kind {self.kind!r} is not one of {COLUMN_KINDS}")
        if self.edges is not None:
            object.__setattr__(self, "edges", check_edges(self.edges, "column spec"))
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(category_text(c) for c in self.categories))
        if self.values is not None:
            object.__setattr__(self, "values", check_values(self.values, self.edges, "column spec"))


def check_values(values: Iterable[float], edges: tuple[float, ...] | None, where: str) -> tuple[float, ...]:
    """Return the distinct ``values`` of a discrete profile after checking each has its own bin."""
    atoms = tuple(float(v) for v in values)
    if edges is None or not atoms or len(atoms) != max(len(edges) - 1, 1):
        raise SpecError(f"{where}: {len(atoms)} distinct values do not fit {len(edges or ())} bin edges")
    if len(atoms) == 1:
        if edges != (atoms[0], atoms[0]):
            raise SpecError(f"{where}: a single distinct value needs the edges [value, value]")
        return atoms
    if atoms[0] != edges[0] or atoms[-1] != edges[-1]:
        raise SpecError(f"{where}: distinct values must start at the first edge and end at the last")
    inside = all(low <= v < high for v, low, high in zip(atoms[:-1], edges[:-2], edges[1:-1], strict=True))
    if not inside:
        raise SpecError(f"{where}: each distinct value must lie in its own bin")
    return atoms


def check_edges(edges: Iterable[float], where: str) -> tuple[float, ...]:
    """Return ``edges`` as a tuple of floats after checking they are finite and increasing."""
    values = tuple(float(e) for e in edges)
    if len(values) == 1:
        raise SpecError(f"{where}: bin edges need 0 or at least 2 values, got 1")
    if not all(math.isfinite(e) for e in values):
        raise SpecError(f"{where}: bin edges must be finite, got {values[:5]}...")
    constant = len(values) == 2 and values[0] == values[1]
    if not constant and any(b <= a for a, b in itertools.pairwise(values)):
        raise SpecError(f"{where}: bin edges must be strictly increasing")
    return values


@dataclass(frozen=True)
class NumericColumnProfile:
    """Histogram and sufficient statistics of a numeric column (see the module docstring for bins)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    null_count: int
    infinite_count: int
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    values: tuple[float, ...] | None = None
    kind: str = field(default=NUMERIC, init=False)

    @property
    def total(self) -> int:
        """Number of rows: finite values, nulls and infinite values."""
        return self.count + self.null_count + self.infinite_count

    @property
    def is_exact(self) -> bool:
        """Whether every finite value lies on ``values``: the profile is then the exact distribution."""
        return self.values is not None and self.counts[0] == 0 and self.counts[-1] == 0

    def to_dict(self) -> dict[str, Any]:
        """The profile as a JSON-safe dict."""
        return {
            "kind": NUMERIC,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "null_count": self.null_count,
            "infinite_count": self.infinite_count,
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            **({} if self.values is None else {"values": list(self.values)}),
        }

    def merge(self, other: NumericColumnProfile, column: str = "?") -> NumericColumnProfile:
        """The profile of both partitions together; edges must be identical."""
        if self.edges != other.edges:
            raise SpecError(
                f"column {column!r}: cannot merge numeric profiles with different bin edges; "
                "profile the partitions with the same spec"
            )
        count = self.count + other.count
        if self.count == 0 or other.count == 0:
            source = self if other.count == 0 else other
            mean, std, low, high = source.mean, source.std, source.min, source.max
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / count
            m2 = self.std**2 * self.count + other.std**2 * other.count
            m2 += delta**2 * self.count * other.count / count
            std = math.sqrt(max(m2, 0.0) / count)
            low, high = min(self.min, other.min), max(self.max, other.max)
        return NumericColumnProfile(
            edges=self.edges,
            counts=tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            null_count=self.null_count + other.null_count,
            infinite_count=self.infinite_count + other.infinite_count,
            count=count,
            mean=mean,
            std=std,
            min=low,
            max=high,
            values=self.values if self.values == other.values else None,
        )


@dataclass(frozen=True)
class CategoricalColumnProfile:
    """Category counts of a column: the kept categories, everything else as ``other_count``, nulls."""

    counts: dict[str, int]
    other_count: int
    null_count: int
    kind: str = field(default=CATEGORICAL, init=False)

    @property
    def total(self) -> int:
        """Number of rows, nulls included."""
        return sum(self.counts.values()) + self.other_count + self.null_count

    @property
    def non_null(self) -> int:
        """Number of non-null values."""
        return sum(self.counts.values()) + self.other_count

    def to_dict(self) -> dict[str, Any]:
        """The profile as a JSON-safe dict."""
        return {
            "kind": CATEGORICAL,
            "counts": dict(self.counts),
            "other_count": self.other_count,
            "null_count": self.null_count,
        }

    def merge(self, other: CategoricalColumnProfile, column: str = "?") -> CategoricalColumnProfile:
        """The profile of both partitions together.

        Exact when both share the category list (profiled with the same spec) or when neither has an
        ``other_count``; otherwise a category counted in one side's "other" could not be told apart,
        so ``SpecError`` is raised.
        """
        same_vocabulary = set(self.counts) == set(other.counts)
        if not same_vocabulary and (self.other_count or other.other_count):
            raise SpecError(
                f"column {column!r}: cannot merge top-K category profiles with different categories "
                "and an 'other' count; profile the partitions with the same category list"
            )
        merged = dict(self.counts)
        for category, count in other.counts.items():
            merged[category] = merged.get(category, 0) + count
        if not same_vocabulary:
            merged = dict(sorted(merged.items(), key=lambda item: (-item[1], item[0])))
        return CategoricalColumnProfile(
            counts=merged,
            other_count=self.other_count + other.other_count,
            null_count=self.null_count + other.null_count,
        )


ColumnProfile = NumericColumnProfile | CategoricalColumnProfile


@dataclass(frozen=True)
class DatasetProfile:
    """The profile of a dataset: its row count and one profile per column."""

    row_count: int
    columns: dict[str, ColumnProfile]
    format_version: int = PROFILE_FORMAT_VERSION

    def __post_init__(self) -> None:
        for name, column in self.columns.items():
            if column.total != self.row_count:
                raise StoreError(
                    f"profile column {name!r} accounts for {column.total} rows but the profile has "
                    f"{self.row_count}"
                )

    def spec(self) -> dict[str, ColumnSpec]:
        """Column specs that profile another batch on this profile's edges and categories."""
        specs: dict[str, ColumnSpec] = {}
        for name, column in self.columns.items():
            if isinstance(column, NumericColumnProfile):
                specs[name] = ColumnSpec(NUMERIC, edges=column.edges, shift=column.mean, values=column.values)
            else:
                specs[name] = ColumnSpec(CATEGORICAL, categories=tuple(column.counts))
        return specs

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """The profile of both partitions together (same columns, same spec); see module docstring."""
        if list(self.columns) != list(other.columns):
            raise SpecError(
                "cannot merge profiles with different columns: "
                f"{list(self.columns)} and {list(other.columns)}"
            )
        merged: dict[str, ColumnProfile] = {}
        for name, column in self.columns.items():
            other_column = other.columns[name]
            if column.kind != other_column.kind:
                raise SpecError(
                    f"column {name!r} is {column.kind} in one profile, {other_column.kind} in the other"
                )
            merged[name] = column.merge(other_column, name)
        return DatasetProfile(row_count=self.row_count + other.row_count, columns=merged)

    __add__ = merge

    def to_dict(self) -> dict[str, Any]:
        """The profile as a JSON-safe dict, with its ``format_version``."""
        return {
            "format_version": self.format_version,
            "row_count": self.row_count,
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "profile") -> DatasetProfile:
        """Read a profile dict; ``StoreError`` names ``source`` when the version or shape is wrong."""
        if not isinstance(data, Mapping):
            raise StoreError(f"{source}: a profile must be a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if isinstance(version, bool) or version != PROFILE_FORMAT_VERSION:
            raise StoreError(
                f"{source}: profile format version {version!r} is not supported; this version reads "
                f"format {PROFILE_FORMAT_VERSION}. Rebuild the reference profile."
            )
        try:
            columns: dict[str, ColumnProfile] = {}
            for name, column in data["columns"].items():
                try:
                    columns[name] = _column_from_dict(column)
                except (KeyError, TypeError, ValueError, AttributeError, SpecError) as exc:
                    raise StoreError(
                        f"{source}: column {name!r}: malformed profile ({type(exc).__name__}: {exc})"
                    ) from None
            return cls(row_count=_count(data["row_count"], "row_count"), columns=columns)
        except (KeyError, TypeError, ValueError, AttributeError, SpecError) as exc:
            raise StoreError(f"{source}: malformed profile ({type(exc).__name__}: {exc})") from None

    def save(self, path: str | Path) -> None:
        """Write the profile to ``path`` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), allow_nan=False))

    @classmethod
    def load(cls, path: str | Path) -> DatasetProfile:
        """Read a profile written by ``save``; ``StoreError`` names the file when it cannot be used."""
        source = f"profile file {str(path)!r}"
        try:
            with Path(path).open("rb") as handle:
                return cls.from_json_bytes(handle.read(MAX_PROFILE_BYTES + 1), source)
        except OSError as exc:
            raise StoreError(f"{source} cannot be read: {type(exc).__name__}") from None

    @classmethod
    def from_json_bytes(cls, data: bytes, source: str = "profile") -> DatasetProfile:
        """Read a profile from JSON bytes; ``StoreError`` names ``source`` when they cannot be used:
        more than ``MAX_PROFILE_BYTES``, not UTF-8 JSON, nested too deep, or a malformed profile."""
        if len(data) > MAX_PROFILE_BYTES:
            raise StoreError(
                f"{source} is larger than {MAX_PROFILE_BYTES // 2**20} MB: not a profile this version "
                "reads (a profile holds bin and category counts, not data)"
            )
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
            raise StoreError(f"{source} cannot be read: {type(exc).__name__}") from None
        return cls.from_dict(parsed, source=source)


def _column_from_dict(data: Mapping[str, Any]) -> ColumnProfile:
    if data["kind"] == NUMERIC:
        edges = check_edges(data["edges"], "stored profile")
        counts = tuple(_count(c, "bin count") for c in data["counts"])
        if len(counts) != len(edges) + 1 and not (not edges and len(counts) == 1):
            raise ValueError(f"{len(counts)} counts do not fit {len(edges)} edges")
        if sum(counts) != _count(data["count"], "count"):
            raise ValueError(f"bin counts add up to {sum(counts)}, not to the count {data['count']}")
        values = data.get("values")
        count = _count(data["count"], "count")
        mean, std, low, high = (_moment(data[name], name, count) for name in ("mean", "std", "min", "max"))
        if count:
            _check_moments(mean, std, low, high)
        return NumericColumnProfile(
            edges=edges,
            counts=counts,
            null_count=_count(data["null_count"], "null_count"),
            infinite_count=_count(data["infinite_count"], "infinite_count"),
            count=count,
            mean=mean,
            std=std,
            min=low,
            max=high,
            values=None if values is None else check_values(values, edges, "stored profile"),
        )
    if data["kind"] == CATEGORICAL:
        return CategoricalColumnProfile(
            counts={str(k): _count(v, f"count of category {k!r}") for k, v in data["counts"].items()},
            other_count=_count(data["other_count"], "other_count"),
            null_count=_count(data["null_count"], "null_count"),
        )
    raise ValueError(f"unknown column kind {data['kind']!r}")


def _count(value: Any, what: str) -> int:
    """A stored count: a whole number >= 0 (a negative or fractional count is a corrupt profile)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a whole number >= 0")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
        raise ValueError(f"{what} {value!r} is not a whole number >= 0")
    return int(value)


def _moment(value: Any, what: str, count: int) -> float | None:
    """A stored mean/std/min/max: a finite number when the column has finite values, else null."""
    if not count:
        if value is not None:
            raise ValueError(f"{what} {value!r} is given for a column without finite values")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number")
    return float(value)


def _check_moments(mean: float, std: float, low: float, high: float) -> None:
    """Refuse moments no data can have: a negative std, min above max, the mean outside [min, max],
    or a std above half the range (the largest population std of values in [min, max])."""
    if std < 0:
        raise ValueError(f"std {std!r} is negative")
    if low > high:
        raise ValueError(f"min {low!r} is above max {high!r}")
    slack = 1e-9 * max(abs(low), abs(high))  # rounding of sums of many values
    if not low - slack <= mean <= high + slack:
        raise ValueError(f"mean {mean!r} is outside [min, max] = [{low!r}, {high!r}]")
    if std > (high - low) / 2 * (1 + 1e-9) + slack:
        raise ValueError(f"std {std!r} is larger than half the range [{low!r}, {high!r}]")


# --- building profiles from raw data -------------------------------------------------------------


def detect_kind(series: pd.Series, column: str) -> str:
    """``"numeric"`` for numeric, datetime and timedelta dtypes (bool excluded); else ``"categorical"``."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise InputDataError(f"column {column!r} has complex dtype {dtype}, which cannot be profiled")
        return NUMERIC
    if is_temporal(series):
        return NUMERIC
    return CATEGORICAL


def is_temporal(series: pd.Series) -> bool:
    """Whether ``series`` holds datetimes or timedeltas (profiled as seconds)."""
    import pandas as pd

    dtype = series.dtype
    return pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)


def numeric_values(series: pd.Series, column: str) -> np.ndarray:
    """The column as a float64 array with nulls as NaN; ``InputDataError`` when it is not numeric.

    Datetimes become seconds since 1970-01-01 UTC (naive datetimes are read as UTC), timedeltas seconds.
    Text declared numeric (a CSV's column) is read as numbers, else as ISO 8601 datetimes.
    """
    import numpy as np
    import pandas as pd

    if not is_temporal(series) and _is_text(series):
        try:
            series = pd.Series(series.to_numpy(dtype="float64", na_value=np.nan), index=series.index)
        except (TypeError, ValueError):
            try:
                series = pd.to_datetime(series, utc=True, format="ISO8601")
            except (TypeError, ValueError, OverflowError):
                raise InputDataError(
                    f"column {column!r} is declared numeric but its text values are neither numbers nor "
                    "ISO 8601 datetimes"
                ) from None
    if is_temporal(series):
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            if getattr(series.dtype, "tz", None) is not None:
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            ticks = series.to_numpy(dtype="datetime64[ns]")
            seconds = (ticks - np.datetime64(0, "ns")).astype("timedelta64[ns]")
        else:
            seconds = series.to_numpy(dtype="timedelta64[ns]")
        values = seconds.astype(np.int64).astype(np.float64) / 1e9
        values[np.isnat(seconds)] = np.nan
        return values
    if series.dtype == np.float64:  # NaN is already the null: a view of the column, not a copy
        return series.to_numpy()
    try:
        return series.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise InputDataError(
            f"column {column!r} is declared numeric but its values (dtype {series.dtype}) are not numbers"
        ) from None


def value_edges(distinct: Any) -> tuple[float, ...] | None:
    """Edges giving each of the sorted ``distinct`` values its own bin (midpoints between neighbours;
    one value: ``(v, v)``); ``None`` when neighbouring floats leave no midpoint between them."""
    import numpy as np

    if distinct.size == 1:
        return (float(distinct[0]), float(distinct[0]))
    middles = distinct[:-1] + (distinct[1:] - distinct[:-1]) / 2
    edges = np.unique(np.r_[distinct[0], middles, distinct[-1]])
    return tuple(float(e) for e in edges) if edges.size == distinct.size + 1 else None


def reference_edges(
    sorted_finite: np.ndarray, n_bins: int
) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """Bin edges of sorted finite reference values, and the distinct values when each has its own bin.

    At most ``n_bins`` distinct values: one bin per value (edges at the midpoints). Otherwise values
    holding more than ``1 / n_bins`` of the rows get a bin of their own (from the value to the next
    distinct value), and the rest is cut at its quantiles (see the module docstring).
    """
    import numpy as np

    if sorted_finite.size == 0:
        return (), None
    run = sorted_finite.size // n_bins
    if run >= 2 and not np.any(sorted_finite[run - 1 :] == sorted_finite[: sorted_finite.size - run + 1]):
        # no value fills ``run`` places, so none is heavy and there are more than n_bins distinct values:
        # the quantile edges below, without counting the distinct values of a continuous column
        return quantile_edges(sorted_finite, n_bins), None
    starts = np.flatnonzero(np.r_[True, sorted_finite[1:] != sorted_finite[:-1]])
    distinct = sorted_finite[starts]
    if distinct.size <= n_bins:
        if (edges := value_edges(distinct)) is not None:
            return edges, tuple(float(v) for v in distinct)
        return quantile_edges(sorted_finite, n_bins), None
    sizes = np.diff(np.r_[starts, sorted_finite.size])
    heavy = np.flatnonzero(sizes * n_bins > sorted_finite.size)
    if heavy.size == 0:
        return quantile_edges(sorted_finite, n_bins), None
    light = np.ones(sorted_finite.size, bool)
    for index in heavy:
        light[starts[index] : starts[index] + sizes[index]] = False
    rest = sorted_finite[light]
    cuts = [distinct[heavy], distinct[np.minimum(heavy + 1, distinct.size - 1)], [distinct[0], distinct[-1]]]
    if rest.size:
        cuts.append(quantile_edges(rest, max(n_bins - heavy.size, 1)))
    edges = np.unique(np.concatenate([np.asarray(c, float) for c in cuts]))
    return tuple(float(e) for e in edges), None


def quantile_edges(sorted_finite: np.ndarray, n_bins: int) -> tuple[float, ...]:
    """Equal-mass bin edges of sorted finite values (linear-interpolated quantiles, duplicates merged)."""
    import numpy as np

    if sorted_finite.size == 0:
        return ()
    positions = np.linspace(0.0, sorted_finite.size - 1, n_bins + 1)
    lower = np.floor(positions).astype(np.int64)
    upper = np.minimum(lower + 1, sorted_finite.size - 1)
    fraction = positions - lower
    edges = sorted_finite[lower] + (sorted_finite[upper] - sorted_finite[lower]) * fraction
    edges = np.unique(np.clip(edges, sorted_finite[0], sorted_finite[-1]))
    if edges.size == 1:
        return (float(edges[0]), float(edges[0]))
    return tuple(float(e) for e in edges)


def bin_counts(finite: np.ndarray, edges: tuple[float, ...], is_sorted: bool = False) -> tuple[int, ...]:
    """Counts of finite values in the underflow, interior and overflow bins of ``edges``."""
    import numpy as np

    from airflow_provider_mlprod.drift.binning import EdgeBinner

    if not edges:
        return (int(finite.size),)
    if is_sorted:
        edge_array = np.asarray(edges)
        cumulative = np.searchsorted(finite, edge_array, side="left")
        cumulative[-1] = np.searchsorted(finite, edge_array[-1], side="right")
        counts = np.diff(cumulative, prepend=0, append=finite.size)
        return tuple(int(c) for c in counts)
    binner = EdgeBinner(edges)
    counts = np.zeros(binner.n_counts, dtype=np.int64)
    work = np.empty(min(finite.size, 32_768))
    with np.errstate(over="ignore"):
        for start in range(0, finite.size, work.size or 1):
            binner.add_counts(finite[start : start + work.size], counts, work)
    return tuple(int(c) for c in counts)


def profile_numeric_array(
    values: np.ndarray,
    edges: tuple[float, ...] | None = None,
    n_bins: int = DEFAULT_BINS,
    keep_sorted: bool = False,
    column: str = "?",
    atoms: tuple[float, ...] | None = None,
) -> tuple[NumericColumnProfile, np.ndarray | None]:
    """Profile float64 values (NaN = null); also return the sorted finite values when it sorted them.

    Reference edges (``edges=None``) need the values sorted, and the exact tests reuse that sorted
    array, so it is returned rather than thrown away; ``keep_sorted`` sorts for fixed edges too.
    Otherwise nothing is sorted: one pass in chunks bins the values and sums them
    (``binning.scan_numeric``), and ``None`` is returned. With fixed ``edges`` and the reference's
    distinct values ``atoms``, the profile keeps ``atoms`` when every finite value lies on them.
    Values so large that their mean or standard deviation overflows raise ``InputDataError``; the
    std of values so small that their squares underflow is computed on the values scaled to 1.
    """
    import numpy as np

    from airflow_provider_mlprod.drift.binning import scan_numeric

    if edges is not None and not keep_sorted:
        scan = scan_numeric(values, edges, atoms)
        counts = scan.counts
        atoms = atoms if scan.on_atoms else None
        sorted_finite = None
    else:
        # one sort of the whole column puts -inf first, then the finite values, +inf, and NaN last:
        # the finite values are a slice of it, and the nulls and infinite values are counted by search
        ordered = np.sort(values)
        first_null = int(np.searchsorted(ordered, np.nan, side="left"))
        first_finite = int(np.searchsorted(ordered[:first_null], -np.inf, side="right"))
        end_finite = int(np.searchsorted(ordered[:first_null], np.inf, side="left"))
        sorted_finite = ordered[first_finite:end_finite]
        scan = scan_numeric(sorted_finite, ())
        scan = replace(
            scan, null_count=values.size - first_null, infinite_count=first_null - sorted_finite.size
        )
        if edges is None:
            with np.errstate(over="ignore", invalid="ignore"):
                edges, atoms = reference_edges(sorted_finite, n_bins)
        counts = bin_counts(sorted_finite, edges, is_sorted=True)
        if atoms is not None and not _sorted_on(sorted_finite, counts, atoms):
            atoms = None
    mean, std = scan.mean, scan.std
    if std == 0 and scan.low < scan.high:  # squares of values below ~1e-154 underflow to 0
        std = _scaled_std(values if sorted_finite is None else sorted_finite, max(-scan.low, scan.high))
    if scan.count and not (math.isfinite(mean) and math.isfinite(std)):
        raise InputDataError(f"column {column!r}: values too large to summarise (mean or std overflows)")
    profile = NumericColumnProfile(
        edges=tuple(edges),
        counts=counts,
        null_count=scan.null_count,
        infinite_count=scan.infinite_count,
        count=scan.count,
        mean=mean,
        std=std,
        min=scan.low,
        max=scan.high,
        values=atoms,
    )
    return profile, sorted_finite


def _scaled_std(values: np.ndarray, scale: float) -> float:
    """Population std of the finite ``values`` computed on ``values / scale`` (tiny magnitudes)."""
    import numpy as np

    finite = values[np.isfinite(values)]
    return float(np.std(finite / scale)) * scale


def _sorted_on(sorted_finite: np.ndarray, counts: tuple[int, ...], atoms: tuple[float, ...]) -> bool:
    """Whether every sorted value is one of ``atoms``, each bin holding only its own atom: no value
    outside the edges, and each interior bin's first and last value equal to its atom."""
    if counts[0] or counts[-1]:
        return False
    start = 0
    for atom, count in zip(atoms, counts[1:-1], strict=True):
        if count and not (sorted_finite[start] == atom == sorted_finite[start + count - 1]):
            return False
        start += count
    return True


def category_text(value: Any) -> str:
    """The text form of a category, the same from every engine.

    Booleans are ``"true"``/``"false"`` (also the text ``"True"``/``"False"`` a bool column becomes
    in a CSV or a pandas reference); integral floats and decimals print as integers (``1.0`` is
    ``"1"``), other floats in their shortest round-trip form (a float32 in its own: ``"0.1"``);
    everything else is ``str(value)``.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        if (
            getattr(value, "itemsize", 8) < 8
            and getattr(value, "dtype", None) is not None
            and value.dtype.kind == "f"
        ):
            # float32/16: their own shortest text ('0.1', as PostgreSQL and DuckDB print a REAL),
            # not the widened double's (0.10000000149011612)
            value = float(str(value))
        else:
            value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.lower() if value in ("True", "False", "TRUE", "FALSE") else value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    from decimal import Decimal

    if isinstance(value, Decimal) and not value.is_snan():  # infinities and NaN as floats print them
        if value.is_finite() and value == value.to_integral_value():
            return str(int(value))
        return category_text(float(value))
    return str(value)


def category_counts(series: pd.Series, expected: Sequence[str] | None = None) -> tuple[dict[str, int], int]:
    """Counts of each category by text form (non-zero only, most frequent first) and the null count.

    :param series: the column.
    :param expected: categories most values are expected to fall in (the reference's). A text column
        held by pyarrow is then looked up in them, a third faster than counting every distinct
        value; the values not among them are counted as usual. The counts are the same either way.
    """
    series = plain_arrow_series(series)  # pandas cannot count a pyarrow string_view column
    _refuse_nested(series)
    if expected:
        counted = _expected_text_counts(series, expected)
        if counted is not None:
            return counted
    null_count = int(series.isna().sum())
    found = series.value_counts(dropna=True, sort=False)
    counts: dict[str, int] = {}
    index = found.index
    # float32/16 values keep their numpy type (``tolist`` would widen them): see ``category_text``
    narrow = getattr(index.dtype, "kind", "") == "f" and index.dtype.itemsize < 8
    values = list(index.to_numpy()) if narrow else index.tolist()
    for value, count in zip(values, found.to_numpy().tolist(), strict=True):
        if count:
            key = category_text(value)
            counts[key] = counts.get(key, 0) + int(count)
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return ordered, null_count


def _refuse_nested(series: pd.Series) -> None:
    """``InputDataError`` naming a column held by pyarrow in a nested type (struct, list, map, union):
    pyarrow cannot count such values (and the error it raises would be retried)."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        if pa.types.is_nested(dtype.pyarrow_dtype):
            raise InputDataError(
                f"column {series.name!r} holds nested values ({dtype.pyarrow_dtype}): a profile counts "
                "numbers, text, booleans and datetimes; leave the column out or flatten it"
            )


EXPECTED_PROBE_ROWS = 4096
"""Rows looked up first: when more than 1/8 of them are not expected, every value is counted instead."""


def _expected_text_counts(series: pd.Series, expected: Sequence[str]) -> tuple[dict[str, int], int] | None:
    """``category_counts`` of a pyarrow text column through a lookup in ``expected`` (``None`` when the
    column is not pyarrow text, or when too many values are not expected for the lookup to pay)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = series.dtype
    held_by_pyarrow = isinstance(dtype, pd.ArrowDtype) or (
        isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    )
    if not held_by_pyarrow:
        return None
    data = series.array.__arrow_array__()  # the column's own arrow data, not a copy
    if isinstance(data, pa.Array):
        data = pa.chunked_array([data])
    if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        return None
    # only a value equal to a label has that label as its text form ("True" counts as "true" below)
    labels = [label for label in dict.fromkeys(expected) if category_text(label) == label]
    if not labels:
        return None
    value_set = pa.array(labels, type=data.type)
    head = data.slice(0, EXPECTED_PROBE_ROWS)
    head_misses = pc.index_in(head, value_set=value_set).null_count - head.null_count
    if head_misses * 8 > len(head):
        return None
    slots = pc.index_in(data, value_set=value_set)
    tally = np.zeros(len(labels) + 1, dtype=np.int64)
    for chunk in pc.fill_null(slots, len(labels)).chunks:
        np.add.at(tally, chunk.to_numpy().astype(np.intp), 1)  # faster than bincount on int32
    null_count = data.null_count
    counts = {label: int(count) for label, count in zip(labels, tally[:-1].tolist(), strict=True) if count}
    if int(tally[-1]) > null_count:  # values not among the labels: counted by text form
        missed = data.filter(pc.and_(pc.is_null(slots), pc.is_valid(data))).value_counts()
        for value, count in zip(missed.field(0).to_pylist(), missed.field(1).to_pylist(), strict=True):
            key = category_text(value)
            counts[key] = counts.get(key, 0) + int(count)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))), int(null_count)


def categorical_profile_from_counts(
    counts: Mapping[str, int],
    null_count: int,
    categories: tuple[str, ...] | None = None,
    top_k: int | None = DEFAULT_TOP_K,
) -> CategoricalColumnProfile:
    """Keep the given ``categories`` (or the ``top_k`` most frequent) and fold the rest into "other".

    Ties at the top-K cut are broken by category text, so every engine keeps the same categories.
    """
    non_null = sum(counts.values())
    if categories is not None:
        kept = {category: int(counts.get(category, 0)) for category in categories}
    elif top_k is None or len(counts) <= top_k:
        kept = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    else:
        top = heapq.nsmallest(top_k, counts.items(), key=lambda item: (-item[1], item[0]))
        kept = dict(top)
    return CategoricalColumnProfile(
        counts=kept, other_count=int(non_null - sum(kept.values())), null_count=int(null_count)
    )


def profile_dataframe(
    frame: pd.DataFrame,
    *,
    columns: Iterable[str] | None = None,
    column_kinds: Mapping[str, str] | None = None,
    specs: Mapping[str, ColumnSpec] | None = None,
    n_bins: int = DEFAULT_BINS,
    top_k: int | None = DEFAULT_TOP_K,
) -> DatasetProfile:
    """Profile a pandas DataFrame.

    :param frame: the raw data.
    :param columns: columns to profile (default: every column, or the columns of ``specs``).
    :param column_kinds: ``{"column": "numeric" | "categorical"}`` overriding kinds detected from dtypes.
    :param specs: fixed edges/categories per column, e.g. ``reference_profile.spec()`` to profile a
        current batch (or a partition) on the reference's bins; such profiles merge exactly.
    :param n_bins: number of quantile bins for numeric columns without fixed edges.
    :param top_k: categories kept per categorical column without a fixed list (``None``: all).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InputDataError(f"data to profile must be a pandas DataFrame, got {type(frame).__name__}")
    check_unique_columns(frame, "data to profile")
    specs = dict(specs or {})
    names = list(columns) if columns is not None else (list(specs) if specs else list(frame.columns))
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise InputDataError(f"columns {missing} are not in the data (it has {list(frame.columns)})")
    frame = plain_arrow_columns(frame, names)
    result: dict[str, ColumnProfile] = {}
    for name in names:
        spec = specs.get(name)
        kind = resolve_kind(frame[name], name, column_kinds, spec)
        if kind == NUMERIC:
            result[name], _ = profile_numeric_array(
                numeric_values(frame[name], name),
                spec.edges if spec else None,
                n_bins,
                column=name,
                atoms=spec.values if spec else None,
            )
        else:
            counts, null_count = category_counts(frame[name], spec.categories if spec else None)
            result[name] = categorical_profile_from_counts(
                counts, null_count, spec.categories if spec else None, top_k
            )
    return DatasetProfile(row_count=len(frame), columns=result)


def check_unique_columns(frame: pd.DataFrame, what: str) -> None:
    """``InputDataError`` naming the duplicated column names of ``frame`` (a column must be one series)."""
    check_unique_names(frame.columns, what)


ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_unique_names(names: Iterable[Any], what: str, *, case_blind: str | None = None) -> None:
    """``InputDataError`` naming the column names that ``what`` (a frame, a query) holds more than once.

    A profile reads a column by its name, so a repeated name would profile one of its columns (SQLite
    and DuckDB read the first one silently) or fail deep in a statement. ``case_blind``: the database
    (``"SQLite"``, ``"DuckDB"``) that compares identifiers ignoring ASCII case, where names that differ
    only in case are one name (``a`` and ``"A"`` read the same column there).
    """
    groups: dict[Any, list[str]] = {}
    for name in names:  # a frame's labels as they are: the number 1 and the text "1" are two columns
        groups.setdefault(str(name).translate(ASCII_FOLD) if case_blind else name, []).append(str(name))
    repeated = [group for group in groups.values() if len(group) > 1]
    if repeated:
        duplicated = sorted({name for group in repeated for name in group})
        spelled_apart = any(len(set(group)) > 1 for group in repeated)
        case = f" ({case_blind} compares column names ignoring case)" if spelled_apart else ""
        raise InputDataError(
            f"{what} has duplicate column names {duplicated}{case}; rename them so each name is one column"
        )


def resolve_kind(
    series: pd.Series, column: str, column_kinds: Mapping[str, str] | None, spec: ColumnSpec | None = None
) -> str:
    """The kind of a column: the spec's, else the override, else the one detected from its dtype."""
    import pandas as pd

    if spec is not None:
        kind = spec.kind
    elif column_kinds and column in column_kinds:
        kind = column_kinds[column]
    else:
        return detect_kind(series, column)
    if kind not in COLUMN_KINDS:
        raise SpecError(f"column {column!r}: kind {kind!r} is not one of {COLUMN_KINDS}")
    numeric = pd.api.types.is_numeric_dtype(series.dtype) or is_temporal(series) or _is_text(series)
    if kind == NUMERIC and not numeric:
        raise InputDataError(f"column {column!r} is declared numeric but has dtype {series.dtype}")
    return kind


def _is_text(series: pd.Series) -> bool:
    """Whether ``series`` holds text (or Python objects): numbers or datetimes read from a CSV."""
    import pandas as pd

    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)

"""pandas columns held by pyarrow in a view type, read as the plain type that holds the same values.

pandas holds pyarrow ``string_view`` and ``binary_view`` columns (``pd.ArrowDtype(pa.string_view())``;
``pd.read_parquet(path, dtype_backend="pyarrow")`` and ``Table.to_pandas(types_mapper=pd.ArrowDtype)``
give them for a Parquet file or a table written with that type), but pandas (3.1, pyarrow 26) cannot
work with them: ``pandas.api.types.is_numeric_dtype`` raises ``NotImplementedError``, and
``value_counts``, a boolean filter, ``take`` or ``astype`` fail inside pyarrow. The same values as
``large_string`` / ``large_binary`` behave as any text column, so the engines that read a DataFrame
(drift profiles and comparisons, output checks, text descriptors, the quarantine) read such columns
through :func:`plain_arrow_series` / :func:`plain_arrow_columns` and give the profile, verdict,
counts and rows of the same data as plain text. A dictionary column of ``string_view`` values already
works in pandas and is left as it is.

No pandas or pyarrow import at module level (DAG files import modules that import this one).

Public API: :func:`plain_arrow_series`, :func:`plain_arrow_columns`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def _plain_type(arrow_type: Any) -> Any:
    """The plain pyarrow type holding the values of a view type (``None`` for any other type)."""
    import pyarrow as pa

    # pyarrow before 16 has no view types (nor these predicates)
    if getattr(pa.types, "is_string_view", lambda _: False)(arrow_type):
        return pa.large_string()  # large: a chunk of more than 2 GiB of text still fits
    if getattr(pa.types, "is_binary_view", lambda _: False)(arrow_type):
        return pa.large_binary()
    return None


def _view_type(dtype: Any) -> bool:
    import pandas as pd

    return isinstance(dtype, pd.ArrowDtype) and _plain_type(dtype.pyarrow_dtype) is not None


def plain_arrow_series(series: pd.Series) -> pd.Series:
    """``series`` with a view type's values in the plain type (``string_view`` as ``large_string``);
    any other series is returned as it is."""
    if not _view_type(series.dtype):
        return series
    import pandas as pd

    data = series.array.__arrow_array__()  # the column's own arrow data
    plain = data.cast(_plain_type(data.type))
    return pd.Series(pd.arrays.ArrowExtensionArray(plain), index=series.index, name=series.name, copy=False)


def plain_arrow_columns(frame: pd.DataFrame, columns: Iterable[Any] | None = None) -> pd.DataFrame:
    """``frame`` with its view-type columns (of ``columns``, default all) in the plain type; the frame
    itself when it has none (no copy), else a shallow copy (the other columns are not copied)."""
    wanted = None if columns is None else set(columns)
    positions = [
        position
        for position, (name, dtype) in enumerate(zip(frame.columns, frame.dtypes, strict=True))
        if (wanted is None or name in wanted) and _view_type(dtype)
    ]
    if not positions:
        return frame
    frame = frame.copy(deep=False)
    for position in positions:
        frame.isetitem(position, plain_arrow_series(frame.iloc[:, position]))
    return frame

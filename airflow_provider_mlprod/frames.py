"""pandas columns held by pyarrow in a view type, read as the plain type that holds the same values.

pandas holds pyarrow ``string_view`` and ``binary_view`` columns (``pd.ArrowDtype(pa.string_view())``;
``pd.read_parquet(path, dtype_backend="pyarrow")`` and ``Table.to_pandas(types_mapper=pd.ArrowDtype)``
give them for a Parquet file or a table written with that type), but pandas (3.1, pyarrow 26) cannot
work with them: ``pandas.api.types.is_numeric_dtype`` raises ``NotImplementedError``, and
``value_counts``, a boolean filter, ``take`` or ``astype`` fail inside pyarrow. The same values as
``large_string`` / ``large_binary`` behave as any text column, so the engines that read a DataFrame
(drift profiles and comparisons, output checks, text descriptors, the quarantine) read such columns
through :func:`plain_arrow_series` / :func:`plain_arrow_columns` and give the profile, verdict,
counts and rows of the same data as plain text. A view type inside a struct, list or map column
(``struct<s: string_view>``, ``list<string_view>``) is read the same way: pyarrow cannot take the
rows of such a column either (the quarantine's split, GX's evaluation); so is an index of
``string_view`` text (GX raised on it). A dictionary column of ``string_view`` values already works
in pandas and is left as it is.

No pandas or pyarrow import at module level (DAG files import modules that import this one).

Public API: :func:`plain_arrow_series`, :func:`plain_arrow_columns`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def _plain_type(arrow_type: Any) -> Any:
    """The plain pyarrow type holding the values of a view type, also one nested in a struct, list or
    map (``struct<s: string_view>`` as ``struct<s: large_string>``); ``None`` for a type holding no
    view type."""
    import pyarrow as pa

    types = pa.types
    # pyarrow before 16 has no view types (nor these predicates)
    if getattr(types, "is_string_view", lambda _: False)(arrow_type):
        return pa.large_string()  # large: a chunk of more than 2 GiB of text still fits
    if getattr(types, "is_binary_view", lambda _: False)(arrow_type):
        return pa.large_binary()
    if types.is_struct(arrow_type):
        fields = [arrow_type.field(i) for i in range(arrow_type.num_fields)]
        plain = [_plain_type(f.type) for f in fields]
        if all(t is None for t in plain):
            return None
        return pa.struct([f if t is None else f.with_type(t) for f, t in zip(fields, plain, strict=True)])
    if types.is_map(arrow_type):
        key, item = _plain_type(arrow_type.key_type), _plain_type(arrow_type.item_type)
        if key is None and item is None:
            return None
        item_field = arrow_type.item_field
        if item is not None:
            item_field = item_field.with_type(item)
        return pa.map_(key or arrow_type.key_type, item_field, keys_sorted=arrow_type.keys_sorted)
    if types.is_list(arrow_type) or types.is_large_list(arrow_type) or types.is_fixed_size_list(arrow_type):
        value = _plain_type(arrow_type.value_type)
        if value is None:
            return None
        value_field = arrow_type.value_field.with_type(value)
        if types.is_fixed_size_list(arrow_type):
            return pa.list_(value_field, arrow_type.list_size)
        return pa.large_list(value_field) if types.is_large_list(arrow_type) else pa.list_(value_field)
    if getattr(types, "is_list_view", lambda _: False)(arrow_type) or getattr(
        types, "is_large_list_view", lambda _: False
    )(arrow_type):
        value = _plain_type(arrow_type.value_type)  # a list view as the plain list of the same values
        if value is None:
            return None
        value_field = arrow_type.value_field.with_type(value)
        return pa.large_list(value_field) if types.is_large_list_view(arrow_type) else pa.list_(value_field)
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
    """``frame`` with its view-type columns (of ``columns``, default all) and index in the plain type;
    the frame itself when it has none (no copy), else a shallow copy (the other columns are not
    copied)."""
    import pandas as pd

    wanted = None if columns is None else set(columns)
    positions = [
        position
        for position, (name, dtype) in enumerate(zip(frame.columns, frame.dtypes, strict=True))
        if (wanted is None or name in wanted) and _view_type(dtype)
    ]
    view_index = _view_type(frame.index.dtype)  # a MultiIndex cannot have string_view levels
    if not positions and not view_index:
        return frame
    frame = frame.copy(deep=False)
    for position in positions:
        frame.isetitem(position, plain_arrow_series(frame.iloc[:, position]))
    if view_index:  # GX reads the index too (pandas cannot tell a string_view index's kind)
        frame.index = pd.Index(plain_arrow_series(frame.index.to_series()), name=frame.index.name)
    return frame

"""Reference profiles: building, merging partitions, JSON round trips, versions, awkward columns."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_mlprod.drift import profile as profile_module
from airflow_provider_mlprod.drift.profile import (
    PROFILE_FORMAT_VERSION,
    CategoricalColumnProfile,
    ColumnSpec,
    DatasetProfile,
    NumericColumnProfile,
    bin_counts,
    profile_dataframe,
)
from airflow_provider_mlprod.exceptions import InputDataError, SpecError, StoreError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    amount = rng.normal(100, 15, 3000)
    amount[[5, 50, 500]] = [np.nan, np.inf, -np.inf]
    city = rng.choice(np.array(["paris", "oslo", "rome", "lima"], dtype=object), 3000)
    city[[7, 70]] = None
    return pd.DataFrame({"amount": amount, "city": city, "items": rng.integers(0, 9, 3000)})


def test_profile_counts_everything_once(frame):
    profile = profile_dataframe(frame, n_bins=10)
    amount = profile.columns["amount"]
    assert isinstance(amount, NumericColumnProfile)
    assert (amount.null_count, amount.infinite_count, amount.count) == (1, 2, 2997)
    assert sum(amount.counts) == amount.count
    assert len(amount.counts) == len(amount.edges) + 1
    finite = frame["amount"][np.isfinite(frame["amount"])]
    assert amount.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert amount.std == pytest.approx(finite.std(ddof=0), rel=1e-12)
    assert (amount.min, amount.max) == (finite.min(), finite.max())
    city = profile.columns["city"]
    assert isinstance(city, CategoricalColumnProfile)
    assert city.null_count == 2
    assert city.other_count == 0
    assert city.counts == frame["city"].value_counts().to_dict()
    assert profile.row_count == 3000


def test_quantile_edges_give_near_equal_bins(frame):
    amount = profile_dataframe(frame[["amount"]], n_bins=10).columns["amount"]
    interior = amount.counts[1:-1]
    assert amount.counts[0] == 0
    assert amount.counts[-1] == 0
    assert max(interior) - min(interior) <= 2


def test_sorted_and_unsorted_binning_agree_with_numpy():
    rng = np.random.default_rng(1)
    values = rng.normal(size=5000)
    edges = (-1.0, -0.2, 0.0, 0.5, 2.0)
    unsorted = bin_counts(values, edges)
    assert unsorted == bin_counts(np.sort(values), edges, is_sorted=True)
    interior = np.histogram(values, bins=edges)[0].tolist()
    assert list(unsorted[1:-1]) == interior
    assert unsorted[0] == np.sum(values < -1.0)
    assert unsorted[-1] == np.sum(values > 2.0)
    assert bin_counts(np.array([2.0, 2.0, 3.0, 1.0]), (2.0, 2.0)) == (1, 2, 1)


def test_partitions_add_up_to_the_whole(frame):
    whole = profile_dataframe(frame, n_bins=12)
    spec = whole.spec()
    parts = [
        profile_dataframe(part, specs=spec)
        for part in (frame.iloc[:700], frame.iloc[700:1900], frame.iloc[1900:])
    ]
    merged = parts[0] + parts[1] + parts[2]
    assert merged.row_count == whole.row_count
    for name, column in whole.columns.items():
        combined = merged.columns[name]
        if isinstance(column, NumericColumnProfile):
            assert (combined.edges, combined.counts) == (column.edges, column.counts)
            assert (combined.null_count, combined.infinite_count, combined.count) == (
                column.null_count, column.infinite_count, column.count,
            )  # fmt: skip
            assert combined.mean == pytest.approx(column.mean, rel=1e-12)
            assert combined.std == pytest.approx(column.std, rel=1e-12)
            assert (combined.min, combined.max) == (column.min, column.max)
        else:
            assert combined == column


def test_merge_with_an_empty_partition_keeps_statistics(frame):
    whole = profile_dataframe(frame, n_bins=5)
    empty = profile_dataframe(frame.iloc[:0], specs=whole.spec())
    assert (whole + empty).columns["amount"] == whole.columns["amount"]


def test_merge_refuses_different_edges_or_top_k_vocabularies(frame):
    first = profile_dataframe(frame.iloc[:1000], n_bins=5)
    second = profile_dataframe(frame.iloc[1000:], n_bins=5)
    with pytest.raises(SpecError, match=r"'amount'.*different bin edges"):
        first.merge(second)
    top_a = CategoricalColumnProfile({"a": 5}, other_count=3, null_count=0)
    top_b = CategoricalColumnProfile({"b": 5}, other_count=3, null_count=0)
    with pytest.raises(SpecError, match=r"'city'.*different categories"):
        top_a.merge(top_b, "city")
    complete = CategoricalColumnProfile({"a": 5}, 0, 1).merge(CategoricalColumnProfile({"b": 7}, 0, 0))
    assert complete.counts == {"b": 7, "a": 5}
    assert complete.null_count == 1


def test_json_round_trip_and_file(frame, tmp_path):
    profile = profile_dataframe(frame, n_bins=8)
    data = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
    assert data["format_version"] == PROFILE_FORMAT_VERSION
    assert DatasetProfile.from_dict(data) == profile
    path = tmp_path / "reference.json"
    profile.save(path)
    assert DatasetProfile.load(path) == profile


def test_incompatible_version_is_a_store_error(frame, tmp_path):
    data = profile_dataframe(frame, n_bins=4).to_dict()
    data["format_version"] = PROFILE_FORMAT_VERSION + 1
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=r"old\.json.*format version 2 is not supported"):
        DatasetProfile.load(path)
    del data["format_version"]
    with pytest.raises(StoreError, match="format version None"):
        DatasetProfile.from_dict(data)


def test_malformed_or_unreadable_profile_is_a_store_error(frame, tmp_path):
    data = profile_dataframe(frame, n_bins=4).to_dict()
    data["columns"]["amount"]["counts"] = [1, 2]
    with pytest.raises(StoreError, match="malformed profile"):
        DatasetProfile.from_dict(data)
    data = profile_dataframe(frame, n_bins=4).to_dict()
    data["columns"]["amount"]["counts"][0] += 1
    with pytest.raises(StoreError, match="bin counts add up to"):
        DatasetProfile.from_dict(data)
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(StoreError, match=r"broken\.json"):
        DatasetProfile.load(bad)
    with pytest.raises(StoreError, match="cannot be read"):
        DatasetProfile.load(tmp_path / "absent.json")


def test_constant_and_all_null_columns():
    frame = pd.DataFrame({"flat": [4.0] * 10, "empty": [np.nan] * 10})
    profile = profile_dataframe(frame)
    flat, empty = profile.columns["flat"], profile.columns["empty"]
    assert flat.edges == (4.0, 4.0)
    assert flat.counts == (0, 10, 0)
    assert flat.std == 0.0
    assert empty.edges == ()
    assert empty.counts == (0,)
    assert empty.null_count == 10
    assert empty.mean is None
    assert empty.std is None
    assert DatasetProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile


def test_overflowing_values_are_an_input_error():
    with pytest.raises(InputDataError, match="'huge': values too large"):
        profile_dataframe(pd.DataFrame({"huge": [1e308, -1e308, 1e308]}))


def test_high_cardinality_keeps_top_k_plus_other():
    values = pd.Series([f"id-{i}" for i in range(100_000)] + ["hot"] * 50)
    tracemalloc.start()
    profile = profile_dataframe(pd.DataFrame({"user": values}), top_k=100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    user = profile.columns["user"]
    assert len(user.counts) == 100
    assert next(iter(user.counts)) == "hot"
    assert user.other_count == 100_050 - sum(user.counts.values())
    assert peak < 100 * 1024 * 1024
    assert len(json.dumps(profile.to_dict())) < 10_000


def test_top_k_ties_are_broken_by_category_text():
    frame = pd.DataFrame({"c": ["b", "a", "c", "a", "b", "c"]})
    assert list(profile_dataframe(frame, top_k=2).columns["c"].counts) == ["a", "b"]


def test_kind_detection_and_overrides():
    frame = pd.DataFrame({"flag": [True, False], "code": [1, 2], "when": pd.to_datetime(["2024-01-01"] * 2)})
    profile = profile_dataframe(frame[["flag", "code"]], column_kinds={"code": "categorical"})
    assert profile.columns["flag"].kind == "categorical"
    assert profile.columns["code"].counts == {"1": 1, "2": 1}
    assert profile_dataframe(frame[["when"]]).columns["when"].kind == "numeric"  # epoch seconds
    with pytest.raises(InputDataError, match="'city' is declared numeric"):
        profile_dataframe(pd.DataFrame({"city": ["x"]}), column_kinds={"city": "numeric"})
    with pytest.raises(InputDataError, match=r"\['nope'\] are not in the data"):
        profile_dataframe(frame, columns=["nope"])


def test_column_spec_validation():
    with pytest.raises(SpecError, match="strictly increasing"):
        ColumnSpec("numeric", edges=(1.0, 1.0, 2.0))
    with pytest.raises(SpecError, match="finite"):
        ColumnSpec("numeric", edges=(0.0, float("inf")))
    with pytest.raises(SpecError, match="kind 'text'"):
        ColumnSpec("text")


TEXT_VALUES = ["paris", "oslo", "True", "TRUE", "true", "", "zürich", "new", "False", None]
TEXT_SHARES = [0.3, 0.25, 0.03, 0.01, 0.1, 0.05, 0.1, 0.04, 0.02, 0.1]


def text_column(dtype, rows: int = 20_000, seed: int = 3) -> pd.Series:
    """A text column of ``dtype`` in two arrow chunks, read from an offset, with nulls and unseen values."""
    rng = np.random.default_rng(seed)
    values = rng.choice(np.array(TEXT_VALUES, dtype=object), rows, p=TEXT_SHARES)
    half = rows // 2
    whole = pd.concat([pd.Series(values[:half], dtype=dtype), pd.Series(values[half:], dtype=dtype)])
    return whole.iloc[3:].reset_index(drop=True)


@pytest.mark.parametrize("dtype", ["str", pd.ArrowDtype(pa.string()), pd.ArrowDtype(pa.large_string())])
def test_text_looked_up_in_expected_categories_counts_like_counting_every_value(dtype):
    series = text_column(dtype)
    assert series.array.__arrow_array__().num_chunks == 2
    every_value = profile_module.category_counts(series)
    assert every_value[0]["true"] == int(series.isin(["True", "TRUE", "true"]).sum())
    assert every_value[1] == int(series.isna().sum()) > 0
    # labels as a reference gives them ("true", never "True"), one absent, one repeated; 10% unseen
    for expected in (
        ("paris", "oslo", "true", "", "absent", "paris", "false", "zürich"),
        ("zürich", "true", "", "oslo", "paris"),
    ):
        assert profile_module._expected_text_counts(series, expected) is not None  # the lookup is taken
        assert profile_module.category_counts(series, expected) == every_value
    # mostly unexpected values: every value is counted instead, with the same result
    assert profile_module._expected_text_counts(series, ("oslo",)) is None
    assert profile_module.category_counts(series, ("oslo",)) == every_value


def test_expected_categories_leave_other_columns_to_the_usual_count():
    objects = text_column(object)
    assert profile_module._expected_text_counts(objects, ("paris", "oslo")) is None
    assert profile_module.category_counts(objects, ("paris", "oslo")) == profile_module.category_counts(
        objects
    )
    numbers = pd.Series([1.0, 2.0, None, 2.0], dtype="float64")
    assert profile_module.category_counts(numbers, ("1", "2")) == ({"2": 2, "1": 1}, 1)


def test_a_profile_on_a_reference_spec_counts_text_like_one_without():
    frame = pd.DataFrame({"city": text_column("str")})
    kept = profile_dataframe(frame.iloc[:5000], top_k=4).columns["city"].counts
    on_spec = profile_dataframe(frame, specs={"city": ColumnSpec("categorical", categories=tuple(kept))})
    every = profile_dataframe(frame, top_k=None).columns["city"]
    assert on_spec.columns["city"].counts == {category: every.counts.get(category, 0) for category in kept}
    assert on_spec.columns["city"].other_count == sum(n for c, n in every.counts.items() if c not in kept)
    assert on_spec.columns["city"].null_count == every.null_count


def _text_frames(seed: int, shares: list[float]) -> pd.DataFrame:
    """Text columns as pandas' plain ``str``: a category column and numbers written as text."""
    rng = np.random.default_rng(seed)
    city = rng.choice(np.array(["paris", "oslo", "rome", "True", "1.0"], dtype=object), 2000, p=shares)
    city[::37] = None
    amount = rng.normal(100, 15, 2000).round(2).astype(str).astype(object)
    amount[::53] = None
    return pd.DataFrame({"city": pd.Series(city, dtype="str"), "amount": pd.Series(amount, dtype="str")})


def _as_arrow(frame: pd.DataFrame, arrow_type: str) -> pd.DataFrame:
    """``frame``'s text columns held by pyarrow as ``arrow_type`` (string_view, ...), in two chunks (a
    dictionary column is categorical, as a pandas Categorical: only 'city' is one)."""
    kind = pa.large_string() if arrow_type == "large_string" else pa.string_view()
    columns = {}
    for name in frame.columns:
        values = frame[name].astype(object).where(frame[name].notna(), None).tolist()
        half = len(values) // 2
        chunks = [pa.array(values[:half], type=kind), pa.array(values[half:], type=kind)]
        if arrow_type == "dictionary_of_string_view" and name == "city":
            chunks = [chunk.dictionary_encode() for chunk in chunks]
        columns[name] = pd.arrays.ArrowExtensionArray(pa.chunked_array(chunks))
    return pd.DataFrame(columns)


@pytest.mark.parametrize("arrow_type", ["string_view", "large_string", "dictionary_of_string_view"])
def test_pyarrow_text_columns_profile_and_compare_like_plain_text(arrow_type):
    """pandas could not tell a pyarrow string_view column's kind (NotImplementedError) nor count it
    (no pyarrow 'array_filter' kernel for string_view): the same data now gives the same profiles and
    the same verdicts as plain text, as a reference, as a current batch, and on a reference's spec."""
    from airflow_provider_mlprod.drift.compare import compare_datasets
    from airflow_provider_mlprod.drift.settings import DriftSettings

    kinds = {"amount": "numeric"}  # numbers written as text, parsed
    settings = DriftSettings(column_kinds=kinds)
    reference = _text_frames(1, [0.3, 0.3, 0.2, 0.1, 0.1])
    stable = _text_frames(2, [0.3, 0.3, 0.2, 0.1, 0.1])
    moved = _text_frames(3, [0.6, 0.1, 0.1, 0.1, 0.1])
    arrow_reference = _as_arrow(reference, arrow_type)
    assert arrow_type.startswith(str(arrow_reference["city"].dtype.pyarrow_dtype).split("<")[0])

    profile = profile_dataframe(reference, column_kinds=kinds)
    assert profile_dataframe(arrow_reference, column_kinds=kinds).to_dict() == profile.to_dict()
    for current in (stable, moved):
        arrow_current = _as_arrow(current, arrow_type)
        on_spec = profile_dataframe(current, specs=profile.spec()).to_dict()
        assert profile_dataframe(arrow_current, specs=profile.spec()).to_dict() == on_spec
        categories = tuple(profile.columns["city"].counts)
        counted = profile_module.category_counts(current["city"])
        assert profile_module.category_counts(arrow_current["city"], categories) == counted
        assert profile_module.category_counts(arrow_current["city"]) == counted
        for side in (reference, profile):
            expected = compare_datasets(side, current, settings).to_dict()
            assert compare_datasets(side, arrow_current, settings).to_dict() == expected
        expected = compare_datasets(reference, current, settings).to_dict()
        assert compare_datasets(arrow_reference, arrow_current, settings).to_dict() == expected
    assert not compare_datasets(arrow_reference, _as_arrow(stable, arrow_type), settings).dataset_drift
    assert compare_datasets(profile, _as_arrow(moved, arrow_type), settings).drifted_columns == ["city"]


def test_pyarrow_binary_view_columns_profile_like_binary():
    from airflow_provider_mlprod.drift.compare import compare_datasets

    values = [b"a", b"b", None, b"a"] * 50
    binary = pd.DataFrame({"c": pd.array(values, dtype=pd.ArrowDtype(pa.binary()))})
    views = pd.DataFrame({"c": pd.array(values, dtype=pd.ArrowDtype(pa.binary_view()))})
    assert profile_dataframe(views).to_dict() == profile_dataframe(binary).to_dict()
    assert compare_datasets(binary, views).to_dict() == compare_datasets(binary, binary).to_dict()


@pytest.mark.parametrize(
    "arrow_type",
    [
        pa.struct([("tag", pa.string())]),
        pa.struct([("tag", pa.string_view())]),
        pa.list_(pa.string_view()),
        pa.map_(pa.string(), pa.int64()),
    ],
    ids=str,
)
def test_a_nested_pyarrow_column_is_refused_naming_it(arrow_type):
    """A struct, list or map column (a Parquet file read with dtype_backend="pyarrow") failed with a
    bare ArrowNotImplementedError from pyarrow's value_counts, which Airflow would retry."""
    from airflow_provider_mlprod.drift.compare import compare_datasets

    if pa.types.is_struct(arrow_type):
        values = [{"tag": "a"}, None, {"tag": "b"}]
    elif pa.types.is_map(arrow_type):
        values = [[("a", 1)], None, [("b", 2)]]
    else:
        values = [["a"], None, ["b"]]
    nested = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values * 20, type=arrow_type)))
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0] * 20, "meta": nested})
    for run in (lambda: profile_dataframe(frame), lambda: compare_datasets(frame, frame)):
        with pytest.raises(InputDataError, match=r"column 'meta' holds nested values \((struct|list|map)<"):
            run()
    assert profile_dataframe(frame, columns=["amount"]).columns["amount"].kind == "numeric"

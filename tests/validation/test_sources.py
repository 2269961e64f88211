"""Reading files: formats, locations with .open(), and a clear error for each kind of bad file."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.validation.sources import detect_file_format, read_table_file, write_table_file

from .conftest import make_orders


class OpenableLocation:
    """A stand-in for ObjectStoragePath: only ``open(mode)`` and ``str()``."""

    def __init__(self, path):
        self.path = path
        self.modes = []

    def open(self, mode):
        self.modes.append(mode)
        return self.path.open(mode)

    def __str__(self):
        return f"memory://bucket/{self.path.name}"


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_round_trip_each_format(tmp_path, suffix):
    frame = make_orders().drop(columns=["note"])
    path = tmp_path / f"orders{suffix}"
    assert write_table_file(frame, path) == str(path)
    read = read_table_file(path)
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)


def test_reads_and_writes_through_open(tmp_path):
    frame = make_orders().drop(columns=["note"])
    location = OpenableLocation(tmp_path / "orders.parquet")
    assert write_table_file(frame, location) == "memory://bucket/orders.parquet"
    assert len(read_table_file(location)) == 10
    assert location.modes == ["wb", "rb"]


def test_tsv_defaults_to_tab(tmp_path):
    path = tmp_path / "orders.tsv"
    path.write_text("id\tamount\n1\t2.5\n")
    assert list(read_table_file(path).columns) == ["id", "amount"]


def test_format_from_suffix_or_argument():
    assert detect_file_format("s3://bucket/x.PARQUET") == "parquet"
    assert detect_file_format("x.ndjson") == "jsonl"
    assert detect_file_format("x.data", "csv") == "csv"
    with pytest.raises(ConfigurationError, match=r"x\.data.*suffix"):
        detect_file_format("x.data")
    with pytest.raises(ConfigurationError, match="'xlsx' is not supported"):
        detect_file_format("x.csv", "xlsx")


def test_missing_file(tmp_path):
    with pytest.raises(InputDataError, match=r"orders\.csv' does not exist"):
        read_table_file(tmp_path / "orders.csv")


def test_empty_file(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(b"")
    with pytest.raises(InputDataError, match=r"orders\.csv' is empty"):
        read_table_file(path)


def test_blank_csv_is_empty(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("\n\n")
    with pytest.raises(InputDataError, match=r"orders\.csv' is empty"):
        read_table_file(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,amount,status\n")
    with pytest.raises(InputDataError, match=r"orders\.csv' has a header \(id, amount, status\) but no rows"):
        read_table_file(path)


def test_wrong_delimiter(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id;amount;status\n1;2.5;new\n")
    with pytest.raises(InputDataError, match=r"orders\.csv.*single column.*pass delimiter=';'"):
        read_table_file(path)
    assert list(read_table_file(path, delimiter=";").columns) == ["id", "amount", "status"]


def test_non_utf8_bytes(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes("id,name\n1,Jos\u00e9\n".encode("latin-1"))
    with pytest.raises(InputDataError, match=r"orders\.csv' is not valid utf-8 text.*xe9"):
        read_table_file(path)
    assert read_table_file(path, encoding="latin-1")["name"].tolist() == ["Jos\u00e9"]


def test_non_utf8_json_lines(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_bytes('{"name": "Jos\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(InputDataError, match=r"orders\.jsonl' is not valid utf-8 text"):
        read_table_file(path)


def test_ragged_csv(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,amount\n1,2\n3,4,5,6\n")
    with pytest.raises(InputDataError, match=r"orders\.csv' cannot be read as csv"):
        read_table_file(path)


def test_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "orders.parquet"
    path.write_text("id,amount\n1,2\n")
    with pytest.raises(InputDataError, match=r"orders\.parquet' cannot be read as parquet"):
        read_table_file(path)


def test_malformed_json_lines(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(InputDataError, match=r"orders\.jsonl' cannot be read as jsonl"):
        read_table_file(path)


def test_airflow_object_storage_path_round_trip(tmp_path):
    from airflow.sdk import ObjectStoragePath

    location = ObjectStoragePath(f"file://{tmp_path}/nested/orders.csv")
    frame = make_orders().drop(columns=["note"])
    assert write_table_file(frame, location) == f"file://{tmp_path}/nested/orders.csv"
    pd.testing.assert_frame_equal(read_table_file(location), frame)
    with pytest.raises(InputDataError, match=r"missing\.csv' does not exist"):
        read_table_file(ObjectStoragePath(f"file://{tmp_path}/missing.csv"))

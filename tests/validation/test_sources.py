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
    with pytest.raises(
        InputDataError, match=r"orders\.csv' line 3: 4 fields where the header \(line 1\) has 2"
    ):
        read_table_file(path)


def test_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "orders.parquet"
    path.write_text("id,amount\n1,2\n")
    with pytest.raises(InputDataError, match=r"orders\.parquet' cannot be read as parquet"):
        read_table_file(path)


def test_malformed_json_lines(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(
        InputDataError, match=r"orders\.jsonl' line 2 column 8: not valid JSON \(Expecting value\)"
    ):
        read_table_file(path)


def test_airflow_object_storage_path_round_trip(tmp_path):
    from airflow.sdk import ObjectStoragePath

    location = ObjectStoragePath(f"file://{tmp_path}/nested/orders.csv")
    frame = make_orders().drop(columns=["note"])
    assert write_table_file(frame, location) == f"file://{tmp_path}/nested/orders.csv"
    pd.testing.assert_frame_equal(read_table_file(location), frame)
    with pytest.raises(InputDataError, match=r"missing\.csv' does not exist"):
        read_table_file(ObjectStoragePath(f"file://{tmp_path}/missing.csv"))


# -- strict readers: every malformed line is named -------------------------------------------------


def test_repeated_csv_header_is_refused_naming_both_fields(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,amount,amount\n1,2,3\n")
    with pytest.raises(
        InputDataError, match=r"orders\.csv' line 1: header repeats column 'amount' \(fields 2 and 3\)"
    ):
        read_table_file(path)


def test_repeated_header_after_blank_lines_names_its_line(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("\n\nid,amount, id\n1,2,3\n")
    with pytest.raises(InputDataError, match=r"line 3: header repeats column 'id' \(fields 1 and 3\)"):
        read_table_file(path)


@pytest.mark.parametrize(
    ("content", "line", "fields"),
    [
        ("id,amount,status\n1,2,new\n3,4\n", 3, 2),  # short: pandas would pad it with a null
        ("id,amount\n1,2\n3,4\n5,6,7\n", 4, 3),  # long
        ("id,amount\n1\n", 2, 1),  # the first row is short
        ('id,note\n1,"two\nlines"\n2,"x",extra\n', 4, 3),  # a quoted line break does not shift lines
        ("a,b\n1,2,3\n", 2, 3),  # pandas would take the first column as the index
        ('id,amount\n1,2\n""\n3,4\n', 3, 1),  # a quoted empty line is a row to pandas, padded with nulls
        ("id,amount\n1,2\n\x0c\n3,4\n", 3, 1),  # so is a form feed (pandas skips only spaces and tabs)
    ],
)
def test_ragged_rows_are_refused_naming_the_line(tmp_path, content, line, fields):
    path = tmp_path / "orders.csv"
    path.write_text(content)
    with pytest.raises(InputDataError, match=rf"orders\.csv' line {line}: {fields} fields where the header"):
        read_table_file(path)


def test_a_quoted_blank_line_is_not_read_as_a_padded_row(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text('id,amount\n1,2\n   \n"  "\n3,4\n')  # pandas skips the unquoted spaces only
    message = r"orders\.csv': a line holding only quoted whitespace .* \(whitespace-only lines: 3, 4\)"
    with pytest.raises(InputDataError, match=message):
        read_table_file(path)
    path.write_text("id,amount\n1,2\n   \n\t\n3,4\n")  # unquoted blank lines stay skipped
    assert read_table_file(path)["id"].tolist() == [1, 3]


def test_ragged_rows_can_be_left_out_and_counted(tmp_path):
    from airflow_provider_mlprod.validation.sources import RaggedRow, read_table

    path = tmp_path / "orders.csv"
    path.write_text("id,amount\n1,2.5\n2\n3,4.5\n4,5,6\n5,1e3\n")
    read = read_table(path, ragged_rows="fail")
    assert read.ragged_rows == (RaggedRow(line=3, fields=1), RaggedRow(line=5, fields=3))
    assert read.ragged_count == 2
    assert read.frame["id"].tolist() == [1, 3, 5]
    assert str(read.frame["amount"].dtype) == "float64"  # types inferred as for a clean file
    with pytest.raises(ConfigurationError, match="ragged_rows 'skip' must be one of error, fail"):
        read_table(path, ragged_rows="skip")


def test_only_ragged_rows_is_not_an_empty_file(tmp_path):
    from airflow_provider_mlprod.validation.sources import read_table

    path = tmp_path / "orders.csv"
    path.write_text("id,amount\n1\n")
    read = read_table(path, ragged_rows="fail")
    assert (len(read.frame), read.ragged_count) == (0, 1)


def test_unterminated_quote_names_the_file(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text('id,note\n1,"open\n')
    with pytest.raises(InputDataError, match=r"orders\.csv' cannot be read as csv: .*EOF inside string"):
        read_table_file(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1}\n[1, 2]\n', r"line 2: expected one JSON object per line, got list"),
        ('{"id": 1}\n\n7\n', r"line 3: expected one JSON object per line, got int"),
        ('{"id": 1, "id": 2}\n', r"line 1: key 'id' appears twice in one object"),
        ('{"id": 1}\n{"id": 2}{"id": 3}\n', r"line 2 column 10: not valid JSON \(Extra data\)"),
        ('{"id": 1}\n{"id": NaN-}\n', r"line 2 column \d+: not valid JSON"),
    ],
)
def test_bad_json_lines_are_named(tmp_path, content, message):
    path = tmp_path / "orders.jsonl"
    path.write_text(content)
    with pytest.raises(InputDataError, match=r"orders\.jsonl' " + message):
        read_table_file(path)


def test_json_lines_with_blank_lines_and_crlf_read(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b'{"id": 1, "amount": 2.5}\r\n\r\n{"id": 2, "amount": null}\r\n')
    frame = read_table_file(path)
    assert frame["id"].tolist() == [1, 2]


class ResettingLocation:
    """An object-store file whose connection resets after the first byte was read."""

    def __init__(self, data: bytes, name: str, fail_at: str = "read"):
        self.data, self.name, self.fail_at = data, name, fail_at

    def open(self, mode):
        import io

        if self.fail_at == "open":
            raise ConnectionResetError(104, "Connection reset by peer")
        data = self.data
        first_read_fails = self.fail_at == "first read"

        class Resetting(io.BytesIO):
            reads = 0

            def read(self, size=-1):
                Resetting.reads += 1
                if Resetting.reads > (0 if first_read_fails else 1):
                    raise ConnectionResetError(104, "Connection reset by peer")
                return super().read(size)

            def readinto(self, buffer):
                raise ConnectionResetError(104, "Connection reset by peer")

        return Resetting(data)

    def __str__(self):
        return f"s3://bucket/{self.name}"


@pytest.mark.parametrize("fail_at", ["open", "first read", "read"])
@pytest.mark.parametrize("name", ["orders.csv", "orders.jsonl", "orders.parquet"])
def test_a_connection_reset_while_reading_is_retryable(name, fail_at):
    import io

    from airflow_provider_mlprod.operators.outcome import FINAL_ERRORS
    from airflow_provider_mlprod.validation.output_folder import StorageUnavailableError

    parquet = io.BytesIO()
    pd.DataFrame({"id": [1, 2]}).to_parquet(parquet)
    data = {"csv": b"id\n1\n", "jsonl": b'{"id": 1}\n', "parquet": parquet.getvalue()}[name.split(".")[1]]
    location = ResettingLocation(data, name, fail_at)
    with pytest.raises(
        StorageUnavailableError, match=rf"s3://bucket/{name}' could not be read this time"
    ) as raised:
        read_table_file(location)
    assert not isinstance(raised.value, FINAL_ERRORS)


@pytest.mark.parametrize(
    ("suffix", "text"), [(".csv", "id,amount\n1,2\n"), (".jsonl", '{"id": 1, "amount": 2}\n')]
)
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path, suffix, text):
    path = tmp_path / f"orders{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert list(read_table_file(path).columns) == ["id", "amount"]


def test_a_parquet_schema_that_repeats_a_column_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["amount", "amount"]), path)
    with pytest.raises(
        InputDataError, match=r"orders\.parquet': the Parquet schema repeats column\(s\) 'amount'"
    ):
        read_table_file(path)

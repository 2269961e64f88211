"""Read and write tabular files (CSV, Parquet, JSON lines) from a path or an object with ``.open()``.

A location is a ``str``/``os.PathLike`` on the local file system, or any object with an
``open(mode)`` method returning a binary file, such as Airflow's ``ObjectStoragePath``, so ``file://``,
``s3://`` and ``gs://`` locations behave alike wherever their fsspec backend is installed.

Every failure to read names the file: missing, empty, header without rows, a wrong delimiter (the
header read as one column containing another delimiter), bytes that are not valid text in the
expected encoding, or content that is not the announced format.

Readers are strict, and errors name the line:

- CSV: a header that repeats a name is refused (pandas would rename the second ``amount`` to
  ``amount.1`` and no expectation would ever read it); a row with fewer or more fields than the header
  is refused, naming its line (pandas pads a short row with nulls). With ``ragged_rows="fail"`` such rows
  are left out of the frame and returned as :class:`RaggedRow` records instead, for the caller to count
  as failures.
- JSON lines: every non-blank line must be one JSON object; the first that is not (bad JSON, an array,
  a number, a key given twice) is refused naming its line and column.

Public API: :func:`read_table_file`, :func:`read_table`, :class:`TableRead`, :class:`RaggedRow`,
:func:`write_table_file`, :func:`write_table_to`, :func:`open_for_writing`, :func:`detect_file_format`,
:data:`FILE_FORMATS`, :data:`RAGGED_ROW_POLICIES`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.validation.output_folder import (
    StorageUnavailableError,
    is_transient_storage_error,
)

if TYPE_CHECKING:
    import pandas as pd

FILE_FORMATS = ("csv", "parquet", "jsonl")
"""Supported file formats."""

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
"""File name suffixes and the format each implies (``.json`` is read as JSON lines)."""

DELIMITER_CANDIDATES = (",", ";", "\t", "|")
"""Delimiters looked for in a header read as a single column, to report a wrong delimiter."""

UTF8_BOM = b"\xef\xbb\xbf"
"""The byte order mark some tools put at the start of UTF-8 text; it is skipped, not read as data."""

RAGGED_ROW_POLICIES = ("error", "fail")
"""What a CSV row with the wrong number of fields does: ``error`` stops the read naming its line;
``fail`` leaves it out of the frame and reports it, so the caller can count it as a failing row."""

MAX_REPORTED_RAGGED_ROWS = 20
"""Ragged rows described individually; the count covers them all."""


@dataclass(frozen=True)
class RaggedRow:
    """A CSV row whose number of fields differs from the header's.

    :param line: the physical line (1-based) where the row starts.
    :param fields: how many fields it has.
    """

    line: int
    fields: int


@dataclass(frozen=True)
class TableRead:
    """A file read into a frame, with the rows left out because they were malformed.

    :param frame: the rows read.
    :param expected_fields: the header's width (CSV), else None.
    :param ragged_rows: up to :data:`MAX_REPORTED_RAGGED_ROWS` rows left out, in file order.
    :param ragged_count: how many rows were left out in all.
    """

    frame: pd.DataFrame
    expected_fields: int | None = None
    ragged_rows: tuple[RaggedRow, ...] = ()
    ragged_count: int = 0


def describe_location(location: Any) -> str:
    """The location as text for messages and summaries (a path or URI, never file content)."""
    return os.fspath(location) if isinstance(location, (str, os.PathLike)) else str(location)


def detect_file_format(location: Any, file_format: str | None = None) -> str:
    """Return ``file_format`` if given (checked), else the format implied by the location's suffix.

    :raises ConfigurationError: an unknown format or a suffix that implies none.
    """
    if file_format is not None:
        if file_format not in FILE_FORMATS:
            raise ConfigurationError(
                f"file format {file_format!r} is not supported; use one of {', '.join(FILE_FORMATS)}"
            )
        return file_format
    text = describe_location(location)
    suffix = Path(text.split("?", 1)[0]).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise ConfigurationError(
            f"file {text!r}: cannot tell the format from suffix {suffix or '(none)'!r}; pass file_format "
            f"({', '.join(FILE_FORMATS)})"
        )
    return SUFFIX_FORMATS[suffix]


def read_table_file(
    location: Any,
    *,
    file_format: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON-lines file into a DataFrame, failing clearly on unusable input.

    :param location: a local path or an object with ``open(mode)`` (e.g. ``ObjectStoragePath``).
    :param file_format: ``csv``, ``parquet`` or ``jsonl``; default from the suffix.
    :param delimiter: CSV delimiter; default ``\\t`` for ``.tsv`` files, else ``,``.
    :param encoding: text encoding of CSV and JSON-lines files.
    :raises InputDataError: missing, empty, header-only, wrong delimiter, undecodable or malformed file;
        a repeated CSV header, a CSV row of the wrong width or a bad JSON line, naming its line.
    """
    return read_table(location, file_format=file_format, delimiter=delimiter, encoding=encoding).frame


def read_table(
    location: Any,
    *,
    file_format: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    ragged_rows: str = "error",
) -> TableRead:
    """Read a file like :func:`read_table_file`; with ``ragged_rows="fail"`` CSV rows of the wrong width
    are left out and reported in the result instead of stopping the read.
    """
    import pandas as pd

    if ragged_rows not in RAGGED_ROW_POLICIES:
        raise ConfigurationError(
            f"ragged_rows {ragged_rows!r} must be one of {', '.join(RAGGED_ROW_POLICIES)}"
        )
    name = describe_location(location)
    file_format = detect_file_format(location, file_format)
    if delimiter is None:
        delimiter = "\t" if name.lower().endswith(".tsv") else ","
    read = None
    with _open_for_reading(location, name) as handle:
        try:
            start = handle.read(3)
        except Exception as exc:
            _raise_if_transient(exc, name)
            raise
        if not start:
            raise InputDataError(f"file {name!r} is empty")
        handle.seek(0)
        if start == UTF8_BOM and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            encoding = "utf-8-sig"  # else the mark sticks to the first column's name
        try:
            if file_format == "csv":
                read = _read_csv(handle, name, delimiter, encoding, ragged_rows)
            elif file_format == "jsonl":
                read = TableRead(_read_json_lines(handle, name, encoding))
            else:
                _check_parquet_names(handle, name)
                read = TableRead(pd.read_parquet(handle))
        except InputDataError:
            raise
        except UnicodeDecodeError as exc:
            raise InputDataError(
                f"file {name!r} is not valid {encoding} text: byte {exc.object[exc.start : exc.start + 1]!r} "
                f"cannot be decoded ({exc.reason})"
            ) from None
        except pd.errors.EmptyDataError:
            raise InputDataError(f"file {name!r} is empty (no header and no rows)") from None
        except Exception as exc:  # pandas ParserError/ValueError, pyarrow's own classes for bad Parquet
            _raise_if_transient(exc, name)  # a reset connection or a timeout while reading
            raise InputDataError(
                f"file {name!r} cannot be read as {file_format}: {_first_line(exc)}"
            ) from None
    frame = read.frame
    if file_format == "csv":
        _check_delimiter(frame, name, delimiter)
    if len(frame.columns) == 0:
        raise InputDataError(f"file {name!r} has no columns")
    if len(frame) == 0 and not read.ragged_count:
        raise InputDataError(
            f"file {name!r} has a header ({', '.join(map(str, frame.columns[:10]))}) but no rows"
        )
    return read


def write_table_file(frame: pd.DataFrame, location: Any, *, file_format: str | None = None) -> str:
    """Write ``frame`` (without its index) to ``location`` in the given or implied format; return where.

    :param frame: the rows to write.
    :param location: a local path (parent folders are created) or an object with ``open(mode)``.
    :param file_format: ``csv``, ``parquet`` or ``jsonl``; default from the suffix.
    """
    name = describe_location(location)
    file_format = detect_file_format(location, file_format)
    with open_for_writing(location) as handle:
        write_table_to(frame, handle, file_format)
    return name


def write_table_to(frame: pd.DataFrame, handle: IO[bytes], file_format: str) -> None:
    """Write ``frame`` (without its index) to an open binary handle as ``csv``, ``parquet`` or ``jsonl``."""
    if file_format == "csv":  # encoded here: not every store's file object says it is binary
        handle.write(frame.to_csv(index=False).encode("utf-8"))
    elif file_format == "parquet":
        frame.to_parquet(handle, index=False)
    elif file_format == "jsonl":
        text = frame.to_json(orient="records", lines=True, date_format="iso")
        handle.write(text.encode("utf-8"))
    else:
        raise ConfigurationError(f"file format {file_format!r} is not supported; use one of {FILE_FORMATS}")


def open_for_writing(location: Any) -> IO[bytes]:
    """Open a local path or an object with ``open(mode)`` for writing bytes, creating parent folders."""
    if hasattr(location, "open") and not isinstance(location, Path):
        parent = getattr(location, "parent", None)
        if parent is not None and hasattr(parent, "mkdir"):
            parent.mkdir(parents=True, exist_ok=True)
        return location.open("wb")
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _open_for_reading(location: Any, name: str) -> IO[bytes]:
    try:
        if hasattr(location, "open") and not isinstance(location, Path):
            handle = location.open("rb")
        else:
            handle = Path(location).open("rb")  # noqa: SIM115 - returned to the caller's with-block
    except FileNotFoundError:
        raise InputDataError(f"file {name!r} does not exist") from None
    except IsADirectoryError:
        raise InputDataError(f"file {name!r} is a directory") from None
    except PermissionError:
        raise InputDataError(f"file {name!r} cannot be read: permission denied") from None
    except Exception as exc:
        _raise_if_transient(exc, name)
        raise
    if not handle.seekable():
        with handle:
            try:
                return io.BytesIO(handle.read())
            except Exception as exc:
                _raise_if_transient(exc, name)
                raise
    return handle


def _raise_if_transient(exc: BaseException, name: str) -> None:
    """Raise a retryable error naming the file when ``exc`` is a reset connection, a timeout, no space..."""
    if is_transient_storage_error(exc):
        raise StorageUnavailableError(
            f"file {name!r} could not be read this time ({type(exc).__name__}); a retry may succeed"
        ) from exc


def _read_csv(handle: IO[bytes], name: str, delimiter: str, encoding: str, ragged_rows: str) -> TableRead:
    """Check the CSV's structure with the csv module (the same quoting rules pandas applies), then parse.

    A repeated header name or a row of the wrong width is found here, naming the line, before pandas
    would rename or pad it. With ``ragged_rows="fail"`` the well-formed rows are parsed and the others
    reported.
    """
    import pandas as pd

    text = io.TextIOWrapper(handle, encoding=encoding, errors="strict", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    header: list[str] | None = None
    header_line = 0
    ragged: list[RaggedRow] = []
    ragged_count = 0
    full_rows = 0
    blank_lines: list[int] = []  # whitespace-only lines: pandas skips them unless the spaces are quoted
    try:
        for record in reader:
            if _is_blank(record):
                if record and header is not None:
                    blank_lines.append(reader.line_num - record_line_span(record))
                continue  # blank lines are skipped, as pandas does
            if header is None:
                header, header_line = record, reader.line_num
                _check_header(header, name, header_line)
                continue
            if len(record) != len(header):
                line = reader.line_num - record_line_span(record)
                if ragged_rows == "error":
                    raise InputDataError(
                        f"file {name!r} line {line}: {len(record)} fields where the header (line "
                        f"{header_line}) has {len(header)}; fix the row, or pass ragged_rows='fail' to count "
                        "such rows as failures"
                    )
                ragged_count += 1
                if len(ragged) < MAX_REPORTED_RAGGED_ROWS:
                    ragged.append(RaggedRow(line=line, fields=len(record)))
                continue
            full_rows += 1
    except csv.Error as exc:
        raise InputDataError(f"file {name!r} line {reader.line_num}: {exc}") from None
    if header is None:
        raise InputDataError(f"file {name!r} is empty (no header and no rows)")
    text.detach()
    if not ragged_count:
        handle.seek(0)
        frame = pd.read_csv(handle, sep=delimiter, encoding=encoding, encoding_errors="strict")
        _check_row_count(frame, full_rows, len(header), blank_lines, name)
        return TableRead(frame, expected_fields=len(header))
    # Some rows were left out: parse the header and the well-formed rows again, as pandas would have.
    # Reading the file twice keeps pandas' type inference the same as for a clean file.
    handle.seek(0)
    rewritten = io.StringIO()
    writer = csv.writer(rewritten, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    text = io.TextIOWrapper(handle, encoding=encoding, errors="strict", newline="")
    seen_header = False
    for record in csv.reader(text, delimiter=delimiter):
        if _is_blank(record):
            continue
        if not seen_header:
            seen_header = True
            continue
        if len(record) == len(header):
            writer.writerow(record)
    text.detach()
    rewritten.seek(0)
    frame = pd.read_csv(rewritten, sep=delimiter)
    return TableRead(frame, expected_fields=len(header), ragged_rows=tuple(ragged), ragged_count=ragged_count)


def _is_blank(record: list[str]) -> bool:
    """An empty line, or one of spaces and tabs only (the lines pandas skips); a quoted ``""`` is a row."""
    return not record or (len(record) == 1 and record[0] != "" and not record[0].strip(" \t"))


def _check_row_count(
    frame: pd.DataFrame, full_rows: int, fields: int, blank_lines: list[int], name: str
) -> None:
    """Refuse a file where pandas read a row the structure check took for a blank line (``"  "`` quoted):
    it would be padded with nulls to the header's width and validated as a row."""
    if len(frame) == full_rows or fields == 1:
        return
    shown = ", ".join(map(str, blank_lines[:10])) or "unknown"
    raise InputDataError(
        f"file {name!r}: a line holding only quoted whitespace is read as a row of 1 field where the header "
        f"has {fields} (whitespace-only lines: {shown}); remove such lines or fill the row"
    )


def record_line_span(record: list[str]) -> int:
    """Line breaks inside a record's quoted fields: the record started that many lines earlier."""
    return sum(field.count("\n") for field in record)


def _check_parquet_names(handle: IO[bytes], name: str) -> None:
    """Refuse a Parquet schema that repeats a column name (Arrow would fail with an obscure message)."""
    import pyarrow.parquet as pq

    names = pq.ParquetFile(handle).schema_arrow.names
    handle.seek(0)
    repeated = sorted({column for column in names if names.count(column) > 1})
    if repeated:
        raise InputDataError(
            f"file {name!r}: the Parquet schema repeats column(s) {', '.join(map(repr, repeated))}; every "
            "column needs its own name"
        )


def _check_header(header: list[str], name: str, line: int) -> None:
    seen: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        key = column.strip()
        if key in seen:
            raise InputDataError(
                f"file {name!r} line {line}: header repeats column {key!r} (fields {seen[key]} and "
                f"{position}); every column needs its own name"
            )
        seen[key] = position


def _read_json_lines(handle: IO[bytes], name: str, encoding: str) -> pd.DataFrame:
    """Check every line is one JSON object, naming the first that is not, then parse with pandas."""
    import pandas as pd

    text = io.TextIOWrapper(handle, encoding=encoding, errors="strict")
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"), object_pairs_hook=_refuse_repeated_keys)
        except _RepeatedKeyError as exc:
            raise InputDataError(
                f"file {name!r} line {number}: key {exc.key!r} appears twice in one object"
            ) from None
        except ValueError as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            column = f" column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise InputDataError(f"file {name!r} line {number}{column}: not valid JSON ({detail})") from None
        if not isinstance(value, dict):
            raise InputDataError(
                f"file {name!r} line {number}: expected one JSON object per line, got {type(value).__name__}"
            )
    text.detach()
    handle.seek(0)
    text = io.TextIOWrapper(handle, encoding=encoding, errors="strict")
    return pd.read_json(text, lines=True)


class _RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _RepeatedKeyError(key)
        result[key] = value
    return result


def _check_delimiter(frame: pd.DataFrame, name: str, delimiter: str) -> None:
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    found = [
        candidate for candidate in DELIMITER_CANDIDATES if candidate != delimiter and candidate in header
    ]
    if found:
        raise InputDataError(
            f"file {name!r}: the header {header[:80]!r} was read as a single column with delimiter "
            f"{delimiter!r}, but it contains {found[0]!r}; pass delimiter={found[0]!r}"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]

"""Read and write tabular files (CSV, Parquet, JSON lines) from a path or an object with ``.open()``.

A location is a ``str``/``os.PathLike`` on the local file system, or any object with an
``open(mode)`` method returning a binary file, such as Airflow's ``ObjectStoragePath``, so ``file://``,
``s3://`` and ``gs://`` locations behave alike wherever their fsspec backend is installed.

Every failure to read names the file: missing, empty, header without rows, a wrong delimiter (the
header read as one column containing another delimiter), bytes that are not valid text in the
expected encoding, or content that is not the announced format.

Public API: :func:`read_table_file`, :func:`write_table_file`, :func:`open_for_writing`,
:func:`detect_file_format`, :data:`FILE_FORMATS`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError

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
    :raises InputDataError: missing, empty, header-only, wrong delimiter, undecodable or malformed file.
    """
    import pandas as pd

    name = describe_location(location)
    file_format = detect_file_format(location, file_format)
    if delimiter is None:
        delimiter = "\t" if name.lower().endswith(".tsv") else ","
    with _open_for_reading(location, name) as handle:
        if not handle.read(1):
            raise InputDataError(f"file {name!r} is empty")
        handle.seek(0)
        try:
            frame = _parse(handle, file_format, delimiter, encoding)
        except UnicodeDecodeError as exc:
            raise InputDataError(
                f"file {name!r} is not valid {encoding} text: byte {exc.object[exc.start : exc.start + 1]!r} "
                f"cannot be decoded ({exc.reason})"
            ) from None
        except pd.errors.EmptyDataError:
            raise InputDataError(f"file {name!r} is empty (no header and no rows)") from None
        except Exception as exc:  # pandas ParserError/ValueError, pyarrow's own classes for bad Parquet
            raise InputDataError(
                f"file {name!r} cannot be read as {file_format}: {_first_line(exc)}"
            ) from None
    if file_format == "csv":
        _check_delimiter(frame, name, delimiter)
    if len(frame.columns) == 0:
        raise InputDataError(f"file {name!r} has no columns")
    if len(frame) == 0:
        raise InputDataError(
            f"file {name!r} has a header ({', '.join(map(str, frame.columns[:10]))}) but no rows"
        )
    return frame


def write_table_file(frame: pd.DataFrame, location: Any, *, file_format: str | None = None) -> str:
    """Write ``frame`` (without its index) to ``location`` in the given or implied format; return where.

    :param frame: the rows to write.
    :param location: a local path (parent folders are created) or an object with ``open(mode)``.
    :param file_format: ``csv``, ``parquet`` or ``jsonl``; default from the suffix.
    """
    name = describe_location(location)
    file_format = detect_file_format(location, file_format)
    with open_for_writing(location) as handle:
        if file_format == "csv":
            frame.to_csv(handle, index=False, encoding="utf-8")
        elif file_format == "parquet":
            frame.to_parquet(handle, index=False)
        else:
            text = frame.to_json(orient="records", lines=True, date_format="iso")
            handle.write(text.encode("utf-8"))
    return name


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
    if not handle.seekable():
        with handle:
            return io.BytesIO(handle.read())
    return handle


def _parse(handle: IO[bytes], file_format: str, delimiter: str, encoding: str) -> pd.DataFrame:
    import pandas as pd

    if file_format == "csv":
        return pd.read_csv(handle, sep=delimiter, encoding=encoding, encoding_errors="strict")
    if file_format == "parquet":
        return pd.read_parquet(handle)
    text = io.TextIOWrapper(handle, encoding=encoding, errors="strict")
    return pd.read_json(text, lines=True)


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

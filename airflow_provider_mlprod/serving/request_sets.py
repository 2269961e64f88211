"""Request sets: the bodies a load test replays, streamed from JSON lines or from SQL rows.

A request set is a factory of iterators (``open()``), so a run can cycle through a set smaller than
the number of requests by reading it again, and nothing is ever held whole in memory. Each item is a
``RequestBody``: the encoded JSON body and where it came from (the line or row number, for errors).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_mlprod.exceptions import InputDataError


@dataclass(frozen=True)
class RequestBody:
    """One request of the set: its JSON body (encoded) and its line or row number (1-based)."""

    body: bytes
    position: int


class RequestSet:
    """A named, re-readable stream of request bodies."""

    def __init__(self, name: str, opener: Callable[[], Iterator[RequestBody]]) -> None:
        self.name = name
        self._opener = opener

    def open(self) -> Iterator[RequestBody]:
        """A fresh iterator over the set, from its first request."""
        return self._opener()

    def cycle(self) -> Iterator[RequestBody]:
        """The set read again and again; InputDataError when it holds no request at all."""
        while True:
            empty = True
            for item in self.open():
                empty = False
                yield item
            if empty:
                raise InputDataError(f"request set {self.name}: it holds no requests")


def json_lines_request_set(name: str, open_stream: Callable[[], IO]) -> RequestSet:
    """The request set of a JSON-lines file: one JSON object per line, blank lines skipped.

    :param name: how errors name the set (e.g. its URI).
    :param open_stream: opens the file (binary or text) for reading; called once per pass.
    A line that is not a JSON object raises InputDataError naming the set and the line number.
    """

    def read() -> Iterator[RequestBody]:
        with open_stream() as stream:
            for number, raw in enumerate(stream, start=1):
                text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputDataError(
                        f"request set {name}: line {number} is not valid JSON "
                        f"({exc.msg} at column {exc.colno})"
                    ) from None
                if not isinstance(value, dict):
                    raise InputDataError(
                        f"request set {name}: line {number} is a JSON {type(value).__name__}, "
                        "expected an object (one request body per line)"
                    )
                # The line is sent as it is (parsing it once checks it; encoding it again would
                # cost the load generator as much again per request).
                yield RequestBody(text.strip().encode(), number)

    return RequestSet(name, read)


def rows_request_set(name: str, open_rows: Callable[[], Iterable[Any]], *, body_column: str = "body"):
    """The request set of SQL rows (mappings): each row is a body, or its ``body_column`` holds one.

    When a row has a column named ``body_column`` its value (JSON text or an object) is the body;
    otherwise the whole row, column -> value, is the body.
    """

    def read() -> Iterator[RequestBody]:
        for number, row in enumerate(open_rows(), start=1):
            mapping = dict(row)
            value: Any = mapping
            if body_column in mapping:
                value = mapping[body_column]
                if isinstance(value, (str, bytes)):
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError as exc:
                        raise InputDataError(
                            f"request set {name}: row {number} column {body_column!r} is not valid JSON "
                            f"({exc.msg})"
                        ) from None
            if not isinstance(value, dict):
                raise InputDataError(
                    f"request set {name}: row {number} body is a {type(value).__name__}, expected an object"
                )
            try:
                body = json.dumps(value, separators=(",", ":"), default=_json_scalar).encode()
            except TypeError as exc:
                raise InputDataError(f"request set {name}: row {number}: {exc}") from None
            yield RequestBody(body, number)

    return RequestSet(name, read)


def sql_request_set(engine: Any, query: str, *, body_column: str = "body", chunk_rows: int = 1000):
    """The request set of a SQL query's rows on a SQLAlchemy engine, streamed in chunks."""
    from sqlalchemy import text

    def rows() -> Iterator[Any]:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=chunk_rows).execute(
                text(query)
            )
            yield from result.mappings()

    return rows_request_set("from the SQL query", rows, body_column=body_column)


def _json_scalar(value: Any) -> Any:
    """Decimals, dates and the like as JSON scalars."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"value {value!r} of type {type(value).__name__} cannot be sent as JSON")

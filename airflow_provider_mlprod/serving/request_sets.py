"""Request sets: the bodies a load test replays, streamed from JSON lines or from SQL rows.

A request set is a factory of iterators (``open()``), so a run can cycle through a set smaller than
the number of requests by reading it again, and nothing is ever held whole in memory. Each item is a
``RequestBody``: the encoded JSON body and where it came from (the line or row number, for errors).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_mlprod.exceptions import InputDataError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from airflow_provider_mlprod.sql.source import SqlSource


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
                yield RequestBody(json.dumps(value, separators=(",", ":")).encode(), number)

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


def sql_request_set(
    engine: sa.Engine, source: SqlSource, *, body_column: str = "body", chunk_rows: int = 1000
) -> RequestSet:
    """The request set of a SQL source's rows (a query with its bound parameters, or a table), streamed.

    Each pass reads in a read-only session on one snapshot (``sql.session.read_only_snapshot``),
    ``chunk_rows`` rows at a time; a failing query is a final error naming the source and its
    connection, a lost connection a retryable one (``sql.errors``).
    """
    import sqlalchemy as sa

    from airflow_provider_mlprod.sql.session import read_only_snapshot

    statement = (
        source.statement()
        if source.query is not None
        else sa.select(sa.text("*")).select_from(source.selectable([], "mlprod_requests"))
    )

    def rows() -> Iterator[Any]:
        with read_only_snapshot(engine) as connection:
            source.check_names(connection.dialect)
            result = source.run(connection, lambda: connection.execute(statement))
            while chunk := source.run(connection, lambda: result.fetchmany(chunk_rows)):
                yield from (row._mapping for row in chunk)

    return rows_request_set(source.where, rows, body_column=body_column)


def _json_scalar(value: Any) -> Any:
    """Decimals, dates and the like as JSON scalars."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"value {value!r} of type {type(value).__name__} cannot be sent as JSON")

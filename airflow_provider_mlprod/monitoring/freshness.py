"""Freshness probes: does a table or a file location hold data at or after a time bound, and how much?

Two probes, each run once per call (a sensor or trigger calls them repeatedly):

- :class:`TableFreshnessProbe` reads, from a table or a query (a ``SqlSource``, its parameters bound),
  in one read-only snapshot, the latest ``<timestamp_column>`` and the number of rows that have
  one (the count restricted to ``<timestamp_column> >= :bound`` when a bound is given; with the
  optional exclusive upper bound ``older_than``, both restricted to ``<timestamp_column> < :older_than``)
  with SQLAlchemy Core, on any database SQLAlchemy reaches. Table, schema and column names are checked
  to be plain identifiers when the probe is built, and the table and column are looked up in the
  database's catalog before the query runs.
- :class:`FileFreshnessProbe` lists the files under a location of an fsspec file system and reads
  their modification times: the newest one, and how many are at or after the bound.

Both return a :class:`FreshnessObservation`: what was seen (latest timestamp, new rows or files),
whether the condition holds, and a one-line message saying so.

Timestamps: bounds may be ISO 8601 text or datetimes; naive values are read as UTC, and every
timestamp in a result is timezone-aware UTC. A naive ``timestamp`` column is compared in UTC, a
``timestamp with time zone`` column as an instant. SQLite keeps timestamps as text: values must be ISO
8601 (``YYYY-MM-DD HH:MM:SS[.fff]``, ``T`` separator and ``+HH:MM``/``Z`` suffix allowed), compared
through ``julianday()`` to the millisecond, and the latest one is the row with the greatest
``julianday()`` (not the greatest text); values it cannot parse (like null ones) are not counted and
never taken as the latest.

The bound is inclusive: a timestamp equal to it counts (``max(ts) >= bound``), so a batch stamped
exactly with ``data_interval_end`` satisfies a wait for ``data_interval_end``. The optional upper bound
``older_than`` is exclusive (``ts < older_than``), so ``[data_interval_start, data_interval_end)`` waits
for one window's data only.

Public API: :func:`parse_timestamp`, :class:`FreshnessObservation`, :class:`TableFreshnessProbe`,
:class:`FileFreshnessProbe`, :class:`TimestampColumn` (the dialect-aware comparison, shared with
the label-coverage probe).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError
from airflow_provider_mlprod.sql.identifiers import check_identifier
from airflow_provider_mlprod.sql.session import read_only_snapshot
from airflow_provider_mlprod.sql.source import SqlSource
from airflow_provider_mlprod.timestamps import parse_timestamp

UTC = dt.timezone.utc


def check_positive_count(value: object, role: str) -> int | None:
    """Return ``value`` when it is None or an integer >= 1; raise ConfigurationError naming it otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{role} must be an integer of at least 1, got {value!r}")
    return value


def qualified_name(schema: str | None, table: str) -> str:
    """``schema.table`` or ``table``, as shown in messages."""
    return f"{schema}.{table}" if schema else table


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class FreshnessObservation:
    """What one freshness probe saw and whether the wait is over.

    :param source: the table or location probed (``table 'sales.orders'``, ``location '/data/in'``).
    :param unit: what was counted: ``"rows"`` or ``"files"``.
    :param latest: the newest timestamp seen (UTC), or None when there is no data.
    :param total: rows in the table or files under the location.
    :param newer_than: the bound (UTC), or None.
    :param new_count: rows or files at or after the bound (``total`` when there is no bound).
    :param min_new: the least ``new_count`` required, or None.
    :param satisfied: whether every requested condition holds.
    :param message: one line saying what was seen and whether it is enough.
    :param older_than: the exclusive upper bound (UTC), or None; rows or files at or after it are
        ignored (``latest``, ``total`` and ``new_count`` only count what lies before it).
    """

    source: str
    unit: str
    latest: dt.datetime | None
    total: int
    newer_than: dt.datetime | None
    new_count: int
    min_new: int | None
    satisfied: bool
    message: str
    older_than: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (timestamps as ISO 8601 text)."""
        return {
            "source": self.source,
            "unit": self.unit,
            "latest": _iso(self.latest),
            "total": self.total,
            "newer_than": _iso(self.newer_than),
            "older_than": _iso(self.older_than),
            "new_count": self.new_count,
            "min_new": self.min_new,
            "satisfied": self.satisfied,
            "message": self.message,
        }


def observe(
    *,
    source: str,
    unit: str,
    latest: dt.datetime | None,
    total: int,
    newer_than: dt.datetime | None,
    new_count: int,
    min_new: int | None,
    older_than: dt.datetime | None = None,
) -> FreshnessObservation:
    """Decide whether the figures satisfy the conditions and describe them in one line.

    With ``older_than``, the figures are those of the data before it (``latest`` included).
    """
    fresh_enough = newer_than is None or (latest is not None and latest >= newer_than)
    many_enough = min_new is None or new_count >= min_new
    satisfied = fresh_enough and many_enough
    before = f" before {_iso(older_than)}" if older_than is not None else ""
    seen = (
        f"latest timestamp{before} {_iso(latest)}"
        if latest is not None
        else f"no timestamp{before} (no data)"
    )
    parts = [f"{source}: {seen}"]
    if newer_than is not None and older_than is not None:
        parts.append(f"{new_count} {unit} in [{_iso(newer_than)}, {_iso(older_than)})")
    elif newer_than is not None:
        parts.append(f"{new_count} {unit} at or after {_iso(newer_than)}")
    elif older_than is not None:
        parts.append(f"{total} {unit} before {_iso(older_than)}")
    else:
        parts.append(f"{total} {unit} in all")
    wanted = []
    if newer_than is not None:
        wanted.append(f"latest >= {_iso(newer_than)}")
    if min_new is not None:
        wanted.append(f"at least {min_new} {'new ' if newer_than is not None else ''}{unit}")
    verdict = "satisfied" if satisfied else "not yet satisfied"
    message = f"{'; '.join(parts)} ({verdict}: wanted {' and '.join(wanted)})"
    return FreshnessObservation(
        source=source,
        unit=unit,
        latest=latest,
        total=total,
        newer_than=newer_than,
        new_count=new_count,
        min_new=min_new,
        satisfied=satisfied,
        message=message,
        older_than=older_than,
    )


_POSTGRESQL_TIMESTAMP_TYPES: dict[int, Any] = {
    1114: sa.DateTime(timezone=False),
    1184: sa.DateTime(timezone=True),
    1082: sa.Date(),
}
"""PostgreSQL type OIDs of a query's timestamp column, as its result description reports them."""


class TimestampColumn:
    """A table's timestamp column, looked up in the catalog, compared with bounds the way its database can.

    Build it on an open connection: it checks that the table and the column exist and that the column
    holds timestamps (a date or datetime type; on SQLite anything but a numeric type, read as ISO text).
    A bound is sent as the column's own type: a naive UTC ``timestamp`` for a naive column (so the
    session's time zone plays no part), an instant for a ``timestamp with time zone``. Naive bounds are
    read as UTC.
    """

    def __init__(
        self,
        connection: sa.Connection,
        table: sa.TableClause,
        column_name: str,
        role: str,
        *,
        expression: sa.ColumnElement[Any] | None = None,
    ):
        """Look the column up; :raises InputDataError: the table or column is missing or not a timestamp.

        :param expression: read the column through this expression (e.g. an alias's column) instead
            of ``table.c[column_name]``.
        """
        sqlite = connection.dialect.name == "sqlite"
        label = f"table {qualified_name(table.schema, table.name)!r}"
        column_type = reflected_column_types(connection, table.schema, table.name).get(column_name)
        if column_type is None:
            raise InputDataError(f"{label} has no column {column_name!r} ({role})")
        if sqlite:
            if isinstance(column_type, (sa.Integer, sa.Numeric, sa.Float)):
                raise InputDataError(
                    f"{role} {column_name!r} of {label} is {column_type}, not an ISO 8601 timestamp"
                )
        elif not isinstance(column_type, (sa.DateTime, sa.Date)):
            raise InputDataError(f"{role} {column_name!r} of {label} is {column_type}, not a timestamp")
        self._setup(
            sqlite=sqlite,
            expression=expression if expression is not None else table.c[column_name],
            column_type=column_type,
            role=role,
            label=label,
        )

    @classmethod
    def of_type(
        cls,
        dialect_name: str,
        expression: sa.ColumnElement[Any],
        column_type: Any,
        role: str,
        label: str,
    ) -> TimestampColumn:
        """A column whose type is known without the catalog (e.g. a query's column).

        :param column_type: its SQLAlchemy type; None when unknown: bounds are then sent as UTC
            instants (``timestamp with time zone``).
        """
        column = cls.__new__(cls)
        column._setup(
            sqlite=dialect_name == "sqlite",
            expression=expression,
            column_type=column_type,
            role=role,
            label=label,
        )
        return column

    @classmethod
    def of_query(
        cls, connection: sa.Connection, source: SqlSource, rows: sa.FromClause, column_name: str, role: str
    ) -> TimestampColumn:
        """A query's timestamp column ``rows.c[column_name]``, typed from the result's description.

        PostgreSQL reports the column's type in an empty result (``timestamp`` or ``timestamp with time
        zone``); elsewhere, and for other types, bounds are sent as UTC instants.

        :raises InputDataError: the query fails, naming it and its connection (a lost connection stays
            retryable).
        """
        expression = rows.c[column_name]
        column_type = None
        if connection.dialect.name == "postgresql":
            probe = sa.select(expression).select_from(rows).where(sa.false())
            result = source.run(connection, lambda: connection.execute(probe))
            description = result.cursor.description if result.cursor is not None else None
            result.close()
            if description:
                column_type = _POSTGRESQL_TIMESTAMP_TYPES.get(description[0][1])
        return cls.of_type(connection.dialect.name, expression, column_type, role, source.label)

    def _setup(
        self, *, sqlite: bool, expression: sa.ColumnElement[Any], column_type: Any, role: str, label: str
    ) -> None:
        self.sqlite = sqlite
        self.column_type = column_type if column_type is not None else sa.DateTime(timezone=True)
        self.with_time_zone = bool(getattr(self.column_type, "timezone", False))
        self.expression = expression
        self.role = role
        self.label = label

    def _comparable(self, expression: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.julianday(expression) if self.sqlite else expression

    def _bound(self, moment: dt.datetime) -> sa.ColumnElement[Any]:
        instant = moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment.astimezone(UTC)
        naive_utc = instant.replace(tzinfo=None)
        if self.sqlite:
            return sa.func.julianday(sa.literal(naive_utc.isoformat(" ")))
        return sa.literal(instant if self.with_time_zone else naive_utc, type_=self.column_type)

    def at_or_after(self, moment: dt.datetime) -> sa.ColumnElement[bool]:
        """SQL condition ``column >= moment``."""
        return self._comparable(self.expression) >= self._bound(moment)

    def before(self, moment: dt.datetime) -> sa.ColumnElement[bool]:
        """SQL condition ``column < moment``."""
        return self._comparable(self.expression) < self._bound(moment)

    def present(self) -> sa.ColumnElement[bool]:
        """SQL condition: the row has a timestamp (not null; on SQLite, text ``julianday()`` can read)."""
        return self._comparable(self.expression).is_not(None)

    def latest(self, source: sa.FromClause, *conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
        """A query of the column's newest value among the rows of ``source`` meeting ``conditions``.

        Elsewhere ``max(column)``; on SQLite, where the column is text, the row with the greatest
        ``julianday(column)`` (text that is not a timestamp has none and is skipped), so the text
        format does not decide which value is the newest.
        """
        if not self.sqlite:
            return sa.select(sa.func.max(self.expression)).select_from(source).where(*conditions)
        julian = sa.func.julianday(self.expression)
        return (
            sa.select(self.expression)
            .select_from(source)
            .where(julian.is_not(None), *conditions)
            .order_by(julian.desc())
            .limit(1)
        )

    def to_datetime(self, raw: object) -> dt.datetime | None:
        """A value read from the column as a UTC datetime (None stays None)."""
        if raw is None:
            return None
        try:
            return parse_timestamp(raw, self.role)
        except ConfigurationError:
            raise InputDataError(
                f"{self.role} {self.expression.name!r} of {self.label} holds {raw!r}, "
                "not an ISO 8601 timestamp"
            ) from None


def reflected_column_types(connection: sa.Connection, schema: str | None, table: str) -> dict[str, Any]:
    """The column types of ``schema.table`` from the catalog; :raises InputDataError: no such table."""
    inspector = sa.inspect(connection)
    if not inspector.has_table(table, schema=schema):
        raise InputDataError(f"table {qualified_name(schema, table)!r} does not exist")
    return {column["name"]: column["type"] for column in inspector.get_columns(table, schema=schema)}


@dataclass(frozen=True)
class TableFreshnessProbe:
    """Wait condition on a table or query: its latest timestamp is at or after ``newer_than`` and/or it
    has at least ``min_new_rows`` rows (at or after ``newer_than`` when given, else in all).

    With ``older_than`` (exclusive), rows at or after it are ignored: the latest timestamp and the
    counts are those of the rows before it, so a wait for an old window is not satisfied by the rows
    of later windows.

    Give ``table`` (optionally qualified, ``"sales.orders"``, or with ``schema``) or a ``source``
    (:class:`~airflow_provider_mlprod.sql.source.SqlSource`: a table, or a query with its bound
    parameters). Names are checked when the probe is built, before any SQL. Every run reads in one
    read-only snapshot; database errors are classified by ``sql.errors`` (a failing query is final and
    names the source and its connection, a lost connection is retryable).
    """

    table: str | None = None
    timestamp_column: str | None = None
    schema: str | None = None
    newer_than: dt.datetime | str | None = None
    min_new_rows: int | None = None
    older_than: dt.datetime | str | None = None
    source: SqlSource | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            source = SqlSource.from_arguments(table=self.table, schema=self.schema)
        elif not isinstance(self.source, SqlSource):
            raise ConfigurationError(f"source must be a SqlSource, got {type(self.source).__name__}")
        elif self.table is not None or self.schema is not None:
            raise ConfigurationError("give a table (and schema) or a source, not both")
        else:
            source = self.source
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "schema", source.schema)
        object.__setattr__(self, "table", source.table)
        check_identifier(self.timestamp_column, "timestamp column")
        _set_bounds(self)
        check_positive_count(self.min_new_rows, "min_new_rows")
        if self.newer_than is None and self.min_new_rows is None:
            raise ConfigurationError(
                f"{source.label}: give newer_than and/or min_new_rows, else there is nothing to wait for"
            )

    @property
    def label(self) -> str:
        """The source as messages name it: ``table 'sales.orders'`` or ``query '...'``."""
        return self.source.label  # type: ignore[union-attr]

    def run(self, engine: sa.Engine) -> FreshnessObservation:
        """Read the latest timestamp and the row counts in one read-only snapshot; decide.

        :raises InputDataError: the table, query or column is missing or fails, the column is not a
            timestamp, or it holds text that is not a timestamp.
        :raises DatabaseUnavailableError: a transient failure (retryable).
        """
        source: SqlSource = self.source  # type: ignore[assignment]
        name = str(self.timestamp_column)
        with read_only_snapshot(engine) as connection:
            if source.query is None:
                source.check_names(connection.dialect)
                rows: sa.FromClause = sa.table(source.table, sa.column(name), schema=source.schema)
                column = source.run(
                    connection, lambda: TimestampColumn(connection, rows, name, "timestamp column")
                )
            else:
                rows = source.selectable(source.column_names(connection), "mlprod_rows")
                if name not in rows.c:
                    raise InputDataError(f"{source.label} has no column {name!r} (timestamp column)")
                column = TimestampColumn.of_query(connection, source, rows, name, "timestamp column")
            scope = [column.present()]
            if self.older_than is not None:
                scope.append(column.before(self.older_than))

            def scalar(statement: sa.Select[Any]) -> Any:
                return source.run(connection, lambda: connection.execute(statement).scalar())

            latest_raw = scalar(column.latest(rows, *scope))
            total = scalar(sa.select(sa.func.count()).select_from(rows).where(*scope))
            new_count = total
            if self.newer_than is not None:
                new_count = scalar(
                    sa.select(sa.func.count())
                    .select_from(rows)
                    .where(column.at_or_after(self.newer_than), *scope)
                )
        return observe(
            source=self.label,
            unit="rows",
            latest=column.to_datetime(latest_raw),
            total=int(total),
            newer_than=self.newer_than,  # type: ignore[arg-type]
            new_count=int(new_count),
            min_new=self.min_new_rows,
            older_than=self.older_than,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class FileFreshnessProbe:
    """Wait condition on a file location: its newest file is modified at or after ``newer_than``
    and/or it holds at least ``min_new_files`` files (at or after ``newer_than`` when given).

    The location is a folder (every file below it counts) or a single file; a location that does not
    exist yet holds no file. Modification times come from the file system's listing
    (``mtime``, ``LastModified``, ``updated``...). With ``older_than`` (exclusive), files modified at
    or after it are ignored.
    """

    location: str
    newer_than: dt.datetime | str | None = None
    min_new_files: int | None = None
    older_than: dt.datetime | str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.location, str) or not self.location.strip():
            raise ConfigurationError(f"location {self.location!r} must be a non-empty path or URI")
        _set_bounds(self)
        check_positive_count(self.min_new_files, "min_new_files")
        if self.newer_than is None and self.min_new_files is None:
            raise ConfigurationError(
                f"location {self.location!r}: give newer_than and/or min_new_files, "
                "else there is nothing to wait for"
            )

    def run(self, fs: Any, path: str | None = None) -> FreshnessObservation:
        """List the files under the location on the fsspec file system ``fs`` and decide.

        :param fs: an fsspec ``AbstractFileSystem`` (e.g. ``ObjectStoragePath(uri).fs``).
        :param path: the location as ``fs`` spells it (e.g. ``ObjectStoragePath(uri).path``); default
            ``location``. Messages always name ``location``.
        :raises InputDataError: the file system reports no modification time for a file.
        """
        where = path if path is not None else self.location
        listing = fs.find(where, detail=True) if fs.exists(where) else {}
        times = [file_modification_time(name, info) for name, info in listing.items() if _is_file(info)]
        if self.older_than is not None:
            times = [moment for moment in times if moment < self.older_than]
        new_count = len(times)
        if self.newer_than is not None:
            new_count = sum(1 for moment in times if moment >= self.newer_than)
        return observe(
            source=f"location {self.location!r}",
            unit="files",
            latest=max(times) if times else None,
            total=len(times),
            newer_than=self.newer_than,
            new_count=new_count,
            min_new=self.min_new_files,
            older_than=self.older_than,  # type: ignore[arg-type]
        )


def _set_bounds(probe: TableFreshnessProbe | FileFreshnessProbe) -> None:
    """Parse the probe's ``newer_than``/``older_than`` to UTC; the range they make must not be empty."""
    for role in ("newer_than", "older_than"):
        value = getattr(probe, role)
        if value is not None:
            object.__setattr__(probe, role, parse_timestamp(value, role))
    newer_than, older_than = probe.newer_than, probe.older_than
    if newer_than is not None and older_than is not None and not newer_than < older_than:  # type: ignore[operator]
        raise ConfigurationError(
            f"newer_than {newer_than.isoformat()} must be before older_than "  # type: ignore[union-attr]
            f"{older_than.isoformat()} (older_than is exclusive)"  # type: ignore[union-attr]
        )


def _is_file(info: dict[str, Any]) -> bool:
    return info.get("type", "file") == "file"


_MODIFICATION_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")


def file_modification_time(name: str, info: dict[str, Any]) -> dt.datetime:
    """The modification time (UTC) of a file from its fsspec listing entry.

    :raises InputDataError: the entry has no recognisable modification time.
    """
    for key in _MODIFICATION_TIME_KEYS:
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, tz=UTC)
        try:
            return parse_timestamp(value, f"modification time of {name!r}")
        except ConfigurationError:
            continue
    raise InputDataError(f"file {name!r}: the file system reports no modification time")

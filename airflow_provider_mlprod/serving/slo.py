"""SLO windows over a request-log table, computed inside the database.

A request log has one row per served request: a timestamp, the latency in milliseconds, the HTTP
status and the model version, and optionally a timed-out flag, an output-check-failed flag, tokens
in and out and a cost. For a window ``[start, end)`` this module computes, in SQL:

- ``requests``, ``throughput_rps`` (requests / window seconds);
- ``error_rate``: share of rows with status >= 500 or no status (< 100);
- ``timeout_rate``: share flagged timed out (or, without that column, status 408 or 504);
- ``output_check_failure_rate`` when the log has the flag column;
- ``tokens_in``, ``tokens_out``, ``cost`` (sums) and ``cost_per_request`` when the log has them;
- ``p50_latency_ms``, ``p95_latency_ms``, ``p99_latency_ms``: exact with PostgreSQL's
  ``percentile_cont`` (DuckDB ``quantile_cont``); on other dialects from counts per latency bucket
  (log-spaced edges, each 25 % above the last, so ``GROUP BY`` does the work), interpolated inside the
  bucket, with ``percentile_error_ms`` stating the width of the bucket each percentile fell in.

The table, schema and column names are checked as plain SQL identifiers before any SQL runs; the
query runs through the SQL layer (:mod:`airflow_provider_mlprod.sql`): one read-only snapshot, and a
database error classified as retryable (the database is unavailable) or final, naming the
connection and the request log.

The metrics are then judged with the metric gate's spec language (``slos``), e.g.
``{"p95_latency_ms": {"max": 300}, "error_rate": {"max": 0.01}, "cost": {"max": 50}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import InputDataError, SpecError
from airflow_provider_mlprod.gates import GateResult, evaluate_gate
from airflow_provider_mlprod.sql.errors import classify_database_error
from airflow_provider_mlprod.sql.identifiers import check_identifier, check_identifier_length
from airflow_provider_mlprod.sql.session import read_only_snapshot

QUANTILES = {"p50_latency_ms": 0.5, "p95_latency_ms": 0.95, "p99_latency_ms": 0.99}
#: Bucket edges (ms) for dialects without an ordered-set percentile: 0.5 ms to ~5 min, x1.25 each.
BUCKET_EDGES_MS: tuple[float, ...] = tuple(0.5 * 1.25**i for i in range(61))


@dataclass(frozen=True)
class RequestLog:
    """Where the request log is and what its columns are called."""

    table: str
    schema: str | None = None
    timestamp: str = "ts"
    latency_ms: str = "latency_ms"
    status: str = "status"
    model_version: str = "model_version"
    timed_out: str | None = None
    output_check_failed: str | None = None
    tokens_in: str | None = None
    tokens_out: str | None = None
    cost: str | None = None

    @classmethod
    def from_mapping(cls, table: str, schema: str | None, columns: Mapping[str, str] | None) -> RequestLog:
        """The log of ``table`` with column names overridden by ``columns`` (role -> column), checked."""
        known = set(cls.__dataclass_fields__) - {"table", "schema"}
        unknown = sorted(set(columns or {}) - known)
        if unknown:
            raise SpecError(f"request log columns: unknown role(s) {unknown}; known roles: {sorted(known)}")
        return cls(table=table, schema=schema, **dict(columns or {})).checked()

    @property
    def columns(self) -> dict[str, str]:
        """Role -> column name, for the roles the log has."""
        roles = [name for name in self.__dataclass_fields__ if name not in ("table", "schema")]
        return {role: getattr(self, role) for role in roles if getattr(self, role)}

    def checked(self) -> RequestLog:
        """Raise SpecError naming a table, schema or column that is not a plain identifier; return self."""
        check_identifier(self.table, "request log table", SpecError)
        if self.schema is not None:
            check_identifier(self.schema, "request log schema", SpecError)
        for role, name in self.columns.items():
            check_identifier(name, f"request log column {role!r}", SpecError)
        return self


@dataclass(frozen=True)
class SloWindow:
    """The numbers of one window."""

    start: datetime
    end: datetime
    model_version: str | None
    metrics: dict[str, float]
    percentile_method: str
    percentile_error_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "window_start": self.start.isoformat(),
            "window_end": self.end.isoformat(),
            "model_version": self.model_version,
            "values": dict(self.metrics),
            "percentile_method": self.percentile_method,
            "percentile_error_ms": dict(self.percentile_error_ms),
        }


def compute_slo_window(
    engine: sa.Engine,
    log: RequestLog,
    start: datetime,
    end: datetime,
    *,
    model_version: str | None = None,
    force_buckets: bool = False,
    conn_id: str | None = None,
) -> SloWindow:
    """Compute the window's metrics in the database (see the module docstring).

    :param force_buckets: use bucket counts even where the dialect has an exact percentile.
    :param conn_id: the Airflow connection of ``engine``, named in database errors.
    :raises DatabaseUnavailableError: the database could not answer (a retry may succeed).
    :raises InputDataError: a missing table or column, a type error...: naming the connection.
    """
    if not end > start:
        raise SpecError(f"window end {end.isoformat()} must be after its start {start.isoformat()}")
    log.checked()
    columns = log.columns
    check_identifier_length(
        engine.dialect,
        (log.table, "request log table"),
        (log.schema, "request log schema"),
        *((name, f"request log column {role!r}") for role, name in columns.items()),
        error_class=SpecError,
    )
    types = {"timestamp": sa.DateTime()}
    table = sa.table(
        log.table, *(sa.column(name, types.get(role)) for role, name in columns.items()), schema=log.schema
    )
    c = {role: table.c[name] for role, name in columns.items()}
    where = sa.and_(c["timestamp"] >= start, c["timestamp"] < end)
    if model_version is not None:
        where = sa.and_(where, c["model_version"] == model_version)
    error = sa.or_(c["status"] >= 500, c["status"] < 100, c["status"].is_(None))
    timeout = c["timed_out"] == sa.true() if "timed_out" in c else c["status"].in_([408, 504])
    aggregates = [
        sa.func.count().label("requests"),
        sa.func.sum(sa.case((error, 1), else_=0)).label("errors"),
        sa.func.sum(sa.case((timeout, 1), else_=0)).label("timeouts"),
    ]
    if "output_check_failed" in c:
        aggregates.append(
            sa.func.sum(sa.case((c["output_check_failed"] == sa.true(), 1), else_=0)).label("check_failures")
        )
    for role in ("tokens_in", "tokens_out", "cost"):
        if role in c:
            aggregates.append(sa.func.coalesce(sa.func.sum(c[role]), 0).label(role))
    dialect = engine.dialect.name
    exact = not force_buckets and dialect in ("postgresql", "duckdb")
    if exact:
        for name, q in QUANTILES.items():
            if dialect == "postgresql":
                aggregates.append(sa.func.percentile_cont(q).within_group(c["latency_ms"]).label(name))
            else:
                aggregates.append(sa.func.quantile_cont(c["latency_ms"], q).label(name))
    try:
        with read_only_snapshot(engine) as connection:  # both queries see one snapshot
            row = connection.execute(sa.select(*aggregates).select_from(table).where(where)).mappings().one()
            buckets = None if exact else _bucket_counts(connection, table, c["latency_ms"], where)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        error = classify_database_error(exc, conn_id)
        if isinstance(error, InputDataError):  # deterministic: say which table was read
            raise InputDataError(f"request log {log.table!r} on {error}") from None
        raise error from None
    requests = int(row["requests"] or 0)
    seconds = (end - start).total_seconds()
    metrics: dict[str, float] = {"requests": float(requests), "throughput_rps": requests / seconds}
    if requests:
        metrics["error_rate"] = int(row["errors"]) / requests
        metrics["timeout_rate"] = int(row["timeouts"]) / requests
        if "check_failures" in row:
            metrics["output_check_failure_rate"] = int(row["check_failures"]) / requests
    for role in ("tokens_in", "tokens_out", "cost"):
        if role in row:
            metrics[role] = float(row[role])
    if "cost" in row and requests:
        metrics["cost_per_request"] = float(row["cost"]) / requests
    errors_ms: dict[str, float] = {}
    if exact:
        for name in QUANTILES:
            if row[name] is not None:
                metrics[name] = float(row[name])
    elif buckets:
        for name, q in QUANTILES.items():
            value, width = _bucket_quantile(buckets, q)
            metrics[name], errors_ms[name] = value, width
    return SloWindow(
        start=start,
        end=end,
        model_version=model_version,
        metrics=metrics,
        percentile_method=f"{dialect} {'percentile_cont' if dialect == 'postgresql' else 'quantile_cont'}"
        if exact
        else "bucket counts (log-spaced, x1.25)",
        percentile_error_ms=errors_ms,
    )


def _bucket_counts(connection: sa.Connection, table: Any, latency: Any, where: Any) -> dict[int, int]:
    bucket = sa.case(
        *((latency < edge, index) for index, edge in enumerate(BUCKET_EDGES_MS)),
        else_=len(BUCKET_EDGES_MS),
    ).label("bucket")
    query = (
        sa.select(bucket, sa.func.count().label("n"))
        .select_from(table)
        .where(sa.and_(where, latency.is_not(None)))
        .group_by(bucket)
    )
    return {int(b): int(n) for b, n in connection.execute(query)}


def _bucket_quantile(buckets: Mapping[int, int], q: float) -> tuple[float, float]:
    """The q-quantile interpolated inside its bucket, and that bucket's width (the error bound)."""
    total = sum(buckets.values())
    rank = q * total
    seen = 0
    for index in sorted(buckets):
        count = buckets[index]
        if seen + count >= rank:
            low = 0.0 if index == 0 else BUCKET_EDGES_MS[index - 1]
            high = BUCKET_EDGES_MS[index] if index < len(BUCKET_EDGES_MS) else low * 1.25
            share = (rank - seen) / count if count else 0.0
            return low + share * (high - low), high - low
        seen += count
    last = max(buckets)
    return BUCKET_EDGES_MS[min(last, len(BUCKET_EDGES_MS) - 1)], 0.0


def evaluate_slos(window: SloWindow, slos: Mapping[str, Any]) -> GateResult:
    """Judge a window against SLOs in the metric gate's spec language (a metric not measured fails)."""
    return evaluate_gate(window.metrics, slos)

"""MetricsStore: record and read metrics, validation and drift results, profiles and alert deliveries.

Every record of results is idempotent per task identity: a task retried three times leaves one
record, the last try's. Alert deliveries are the exception by design: they are a log, one row per
delivery attempt, which is what dedup and the audit trail read. Reads return plain dicts with
JSON-safe values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select

from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.engine import read_connection
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.migrations import ensure_schema
from airflow_provider_mlprod.store.rows import (
    as_utc,
    finite_float,
    from_json,
    run_pk,
    to_json,
    upsert,
    utcnow,
)


@dataclass(frozen=True)
class MetricPoint:
    """One recorded metric value."""

    name: str
    value: float
    model_name: str
    model_version: str
    dataset: str
    recorded_at: datetime
    run: RunIdentity

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "value": self.value,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "dataset": self.dataset,
            "recorded_at": self.recorded_at.isoformat(),
            "run": self.run.to_dict(),
        }


@dataclass(frozen=True)
class ProfileVersion:
    """A saved version of a reference profile (``saved`` False: a newer one was kept instead)."""

    name: str
    version: int
    as_of: datetime | None
    saved: bool

    @property
    def reference(self) -> str:
        """``name@version``: load exactly this version."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "version": self.version,
            "reference": self.reference,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "saved": self.saved,
        }


class MetricsStore:
    """Results and history in the metrics store behind ``engine`` (schema created on first use)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema(engine)

    # -- metrics -------------------------------------------------------------------------------

    def record_metrics(
        self,
        identity: RunIdentity,
        metrics: Mapping[str, Any],
        *,
        model_name: str = "",
        model_version: str = "",
        dataset: str = "",
    ) -> int:
        """Record ``metrics`` (name -> number) for this run; return how many were written.

        Every value is checked before anything is written: a non-numeric, NaN or infinite value
        raises StoreError naming the metric and writes nothing.
        """
        if not metrics:
            raise StoreError("no metrics to record")
        values = {str(name): finite_float(value, f"metric {name!r}") for name, value in metrics.items()}
        now = utcnow()
        with self.engine.begin() as connection:
            pk = run_pk(connection, identity)
            for name, value in values.items():
                upsert(
                    connection,
                    schema.metrics,
                    {
                        "run_pk": pk,
                        "name": name,
                        "value": value,
                        "model_name": model_name,
                        "model_version": model_version,
                        "dataset": dataset,
                        "recorded_at": now,
                    },
                    key=("run_pk", "name", "model_name", "model_version", "dataset"),
                )
            # The last try decides: metrics an earlier try of this task reported but this one does
            # not are removed.
            m = schema.metrics
            connection.execute(
                m.delete().where(
                    and_(
                        m.c.run_pk == pk,
                        m.c.model_name == model_name,
                        m.c.model_version == model_version,
                        m.c.dataset == dataset,
                        m.c.name.not_in(list(values)),
                    )
                )
            )
        return len(values)

    def metric_history(
        self,
        name: str,
        *,
        model_name: str | None = None,
        model_version: str | None = None,
        dataset: str | None = None,
        limit: int = 1000,
    ) -> list[MetricPoint]:
        """Recorded values of metric ``name``, oldest first, optionally for one model or dataset."""
        m, r = schema.metrics, schema.runs
        query = select(m, r.c.dag_id, r.c.run_id, r.c.task_id, r.c.map_index).join(r, m.c.run_pk == r.c.id)
        query = query.where(m.c.name == name)
        for column, value in (
            (m.c.model_name, model_name),
            (m.c.model_version, model_version),
            (m.c.dataset, dataset),
        ):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(m.c.recorded_at.desc(), m.c.id.desc()).limit(limit)
        with read_connection(self.engine) as connection:
            rows = connection.execute(query).mappings().all()
        return [
            MetricPoint(
                name=row["name"],
                value=row["value"],
                model_name=row["model_name"],
                model_version=row["model_version"],
                dataset=row["dataset"],
                recorded_at=as_utc(row["recorded_at"]),
                run=RunIdentity(row["dag_id"], row["run_id"], row["task_id"], row["map_index"]),
            )
            for row in reversed(rows)
        ]

    # -- validation and drift results ----------------------------------------------------------

    def record_validation(
        self, identity: RunIdentity, summary: Mapping[str, Any], *, suite: str, dataset: str
    ) -> int:
        """Record a validation summary (the dict a validation returns); return the row id."""
        counts = summary.get("counts") or {}
        try:
            values = {
                "success": bool(summary["success"]),
                "evaluated": int(counts["evaluated"]),
                "passed": int(counts["passed"]),
                "failed_critical": int(counts["failed_critical"]),
                "failed_warning": int(counts["failed_warning"]),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"validation summary for suite {suite!r} lacks a usable field: {exc}") from None
        rows = summary.get("rows_checked")
        with self.engine.begin() as connection:
            return upsert(
                connection,
                schema.validation_results,
                {
                    "run_pk": run_pk(connection, identity),
                    "suite": suite,
                    "dataset": dataset,
                    **values,
                    "rows_checked": int(rows) if rows is not None else None,
                    "summary_json": to_json(dict(summary), f"validation summary for suite {suite!r}"),
                    "recorded_at": utcnow(),
                },
                key=("run_pk", "suite", "dataset"),
            )

    def validation_history(self, *, suite: str | None = None, dataset: str | None = None) -> list[dict]:
        """Recorded validation results, oldest first."""
        v = schema.validation_results
        query = select(v).order_by(v.c.recorded_at, v.c.id)
        if suite is not None:
            query = query.where(v.c.suite == suite)
        if dataset is not None:
            query = query.where(v.c.dataset == dataset)
        with read_connection(self.engine) as connection:
            rows = connection.execute(query).mappings().all()
        return [
            {**{k: row[k] for k in row if k != "summary_json"}, "summary": from_json(row["summary_json"])}
            for row in rows
        ]

    def record_drift(self, identity: RunIdentity, summary: Mapping[str, Any], *, dataset: str) -> int:
        """Record a drift result with one history row per column; return the result's row id.

        ``summary`` is a drift result's ``to_dict()``: ``dataset_drift``, ``share_drifted`` and
        ``columns`` (a list of dicts with ``column``, ``test``, ``statistic``, ``threshold``, ``drifted``).
        """
        try:
            columns = list(summary["columns"])
            header = {
                "dataset_drift": bool(summary["dataset_drift"]),
                "share_drifted": finite_float(summary["share_drifted"], "share_drifted"),
            }
            column_rows = [
                {
                    "column_name": str(column["column"]),
                    "test": str(column["test"]),
                    "statistic": _optional_float(column.get("statistic")),
                    "threshold": _optional_float(column.get("threshold")),
                    "drifted": bool(column["drifted"]),
                }
                for column in columns
            ]
        except (KeyError, TypeError) as exc:
            raise StoreError(f"drift summary for dataset {dataset!r} lacks a usable field: {exc}") from None
        with self.engine.begin() as connection:
            result_id = upsert(
                connection,
                schema.drift_results,
                {
                    "run_pk": run_pk(connection, identity),
                    "dataset": dataset,
                    **header,
                    "summary_json": to_json(dict(summary), f"drift summary for dataset {dataset!r}"),
                    "recorded_at": utcnow(),
                },
                key=("run_pk", "dataset"),
            )
            connection.execute(
                schema.drift_columns.delete().where(schema.drift_columns.c.drift_result_id == result_id)
            )
            if column_rows:
                connection.execute(
                    schema.drift_columns.insert(),
                    [{"drift_result_id": result_id, **row} for row in column_rows],
                )
        return result_id

    def drift_history(self, dataset: str, column: str | None = None) -> list[dict]:
        """Per-column drift history of ``dataset``, oldest first."""
        d, c = schema.drift_results, schema.drift_columns
        query = (
            select(d.c.recorded_at, d.c.dataset_drift, c.c.column_name, c.c.test, c.c.statistic)
            .add_columns(c.c.threshold, c.c.drifted)
            .join(c, c.c.drift_result_id == d.c.id)
            .where(d.c.dataset == dataset)
            .order_by(d.c.recorded_at, d.c.id, c.c.column_name)
        )
        if column is not None:
            query = query.where(c.c.column_name == column)
        with read_connection(self.engine) as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    # -- reference profiles --------------------------------------------------------------------

    def save_profile(
        self,
        name: str,
        profile: Mapping[str, Any],
        identity: RunIdentity | None = None,
        *,
        as_of: datetime | None = None,
        replace_newer: bool = False,
    ) -> ProfileVersion:
        """Save ``profile`` as the next version of the reference profile ``name``; history is kept.

        :param identity: the task run saving it; a retry of the same run replaces its own version
            instead of adding one.
        :param as_of: the time of the data the profile describes (e.g. the run's data interval end).
            When the newest version describes later data, a backfill does not replace it: nothing is
            saved and the result says so (``saved`` False), unless ``replace_newer``.
        :param replace_newer: save even when the newest version describes later data.
        """
        _require_profile_name(name)
        p = schema.profile_versions
        profile_json = to_json(dict(profile), f"profile {name!r}")
        with self.engine.begin() as connection:
            pk = run_pk(connection, identity) if identity else None
            newest = connection.execute(
                select(p.c.version, p.c.as_of, p.c.run_pk)
                .where(p.c.name == name)
                .order_by(p.c.version.desc())
                .limit(1)
            ).first()
            own = None
            if pk is not None:
                own = connection.execute(
                    select(p.c.version)
                    .where(and_(p.c.name == name, p.c.run_pk == pk))
                    .order_by(p.c.version.desc())
                    .limit(1)
                ).scalar_one_or_none()
            newest_as_of = as_utc(newest.as_of) if newest is not None else None
            if (
                own is None
                and not replace_newer
                and as_of is not None
                and newest_as_of is not None
                and newest_as_of > as_utc(as_of)
            ):
                return ProfileVersion(name, newest.version, newest_as_of, saved=False)
            values = {"profile_json": profile_json, "as_of": as_of, "created_at": utcnow()}
            if own is not None and newest is not None and own == newest.version:
                connection.execute(
                    p.update().where(and_(p.c.name == name, p.c.version == own)).values(**values)
                )
                version = own
            else:
                version = (newest.version if newest is not None else 0) + 1
                connection.execute(p.insert().values(name=name, version=version, run_pk=pk, **values))
        return ProfileVersion(name, version, as_utc(as_of), saved=True)

    def load_profile(self, name: str) -> dict[str, Any]:
        """The stored reference profile: ``name`` is its newest version, ``name@N`` pins version N.

        StoreError when there is none.
        """
        base, version = _split_profile_ref(name)
        p = schema.profile_versions
        query = select(p.c.profile_json).where(p.c.name == base)
        query = query.where(p.c.version == version) if version is not None else query
        with read_connection(self.engine) as connection:
            text = connection.execute(query.order_by(p.c.version.desc()).limit(1)).scalar_one_or_none()
        if text is None:
            which = f"version {version} of " if version is not None else ""
            raise StoreError(f"no {which}reference profile named {base!r} in the metrics store")
        return from_json(text)

    def profile_versions(self, name: str) -> list[ProfileVersion]:
        """The saved versions of reference profile ``name``, oldest first."""
        p = schema.profile_versions
        with read_connection(self.engine) as connection:
            rows = connection.execute(
                select(p.c.version, p.c.as_of).where(p.c.name == name).order_by(p.c.version)
            ).all()
        return [ProfileVersion(name, row.version, as_utc(row.as_of), saved=True) for row in rows]

    # -- alert deliveries ----------------------------------------------------------------------

    def record_alert_delivery(
        self,
        *,
        dedup_key: str,
        channel: str,
        delivered: bool,
        attempts: int,
        status_code: int | None = None,
        error: str = "",
        identity: RunIdentity | None = None,
        owner: str | None = None,
    ) -> None:
        """Record one delivery attempt of an alert on one channel (``error`` must hold no secret) and
        end ``owner``'s claim of it (see :meth:`claim_alert`)."""
        with self.engine.begin() as connection:
            if owner is not None:
                c = schema.alert_claims
                mine = and_(c.c.dedup_key == dedup_key, c.c.channel == channel, c.c.owner == owner)
                connection.execute(c.delete().where(mine))
            connection.execute(
                schema.alert_deliveries.insert().values(
                    dedup_key=dedup_key,
                    channel=channel,
                    delivered=delivered,
                    attempts=attempts,
                    status_code=status_code,
                    error=error,
                    run_pk=run_pk(connection, identity) if identity else None,
                    sent_at=utcnow(),
                )
            )

    def claim_alert(
        self, dedup_key: str, channel: str, *, owner: str, seconds: float, seen_last: datetime | None
    ) -> bool:
        """Claim the send of an alert with ``dedup_key`` on ``channel`` for ``seconds``: True when
        ``owner`` may send it now, False when another sender has it (counted as a suppressed repeat).

        A compare-and-set in one short transaction, so no lock is held while the alert is sent: the
        claim is won by the one insert, or update of an expired claim (a dead sender's) or of the
        owner's own (a retry of the same task), that returns its row (a driver's row count is not
        reliable for an insert that does nothing), and only while no delivery on the channel is newer
        than ``seen_last``, the last one the caller read. Recording the delivery with the same
        ``owner`` ends the claim.
        """
        c, a = schema.alert_claims, schema.alert_deliveries
        now = utcnow()
        row = {"owner": owner, "claimed_until": now + timedelta(seconds=seconds)}
        key = and_(c.c.dedup_key == dedup_key, c.c.channel == channel)
        newer = and_(a.c.dedup_key == dedup_key, a.c.channel == channel, a.c.delivered.is_(True))
        newer = newer if seen_last is None else and_(newer, a.c.sent_at > seen_last)
        with self.engine.begin() as connection:
            claim = _insert(connection, c).values(dedup_key=dedup_key, channel=channel, **row)
            won = connection.execute(claim.on_conflict_do_nothing().returning(c.c.owner)).first() is not None
            if not won:
                free = or_(c.c.claimed_until < now, c.c.owner == owner)
                taken = c.update().where(key, free).values(**row).returning(c.c.owner)
                won = connection.execute(taken).first() is not None
            if won and connection.execute(select(a.c.id).where(newer).limit(1)).first() is not None:
                connection.execute(c.delete().where(key))  # delivered meanwhile: nothing to send
                won = False
            if not won:
                suppressed = {"dedup_key": dedup_key, "channel": channel, "suppressed_at": now}
                connection.execute(schema.alert_suppressions.insert().values(**suppressed))
        return won

    def delivered_recently(self, dedup_key: str, window: timedelta, channel: str | None = None) -> bool:
        """Whether an alert with ``dedup_key`` was delivered within ``window`` (optionally on one channel)."""
        a = schema.alert_deliveries
        condition = and_(
            a.c.dedup_key == dedup_key, a.c.delivered.is_(True), a.c.sent_at >= utcnow() - window
        )
        if channel is not None:
            condition = and_(condition, a.c.channel == channel)
        with read_connection(self.engine) as connection:
            return bool(connection.execute(select(func.count()).select_from(a).where(condition)).scalar())

    def last_alert_deliveries(self, dedup_keys: Sequence[str], channel: str) -> dict[str, datetime]:
        """When each of ``dedup_keys`` was last delivered on ``channel`` (UTC); others are left out."""
        a = schema.alert_deliveries
        condition = and_(a.c.dedup_key.in_(list(dedup_keys)), a.c.channel == channel, a.c.delivered.is_(True))
        query = select(a.c.dedup_key, func.max(a.c.sent_at)).where(condition).group_by(a.c.dedup_key)
        with read_connection(self.engine) as connection:
            return {key: as_utc(sent_at) for key, sent_at in connection.execute(query).all()}

    def record_alert_suppressed(self, *, dedup_key: str, channel: str) -> None:
        """Record that an alert with ``dedup_key`` was not sent on ``channel`` (a repeat in its cooldown)."""
        with self.engine.begin() as connection:
            connection.execute(
                schema.alert_suppressions.insert().values(
                    dedup_key=dedup_key, channel=channel, suppressed_at=utcnow()
                )
            )

    def alert_suppressed_count(self, dedup_key: str, channel: str, since: datetime) -> int:
        """How many times an alert with ``dedup_key`` was suppressed on ``channel`` after ``since``."""
        s = schema.alert_suppressions
        condition = and_(s.c.dedup_key == dedup_key, s.c.channel == channel, s.c.suppressed_at > since)
        with read_connection(self.engine) as connection:
            return int(connection.execute(select(func.count()).select_from(s).where(condition)).scalar())

    def alert_deliveries(self, dedup_key: str | None = None) -> list[dict]:
        """Recorded deliveries, oldest first."""
        a = schema.alert_deliveries
        query = select(a).order_by(a.c.sent_at, a.c.id)
        if dedup_key is not None:
            query = query.where(a.c.dedup_key == dedup_key)
        with read_connection(self.engine) as connection:
            return [dict(row) for row in connection.execute(query).mappings()]


def _insert(connection: Connection, table: Any) -> Any:
    """An INSERT of the connection's dialect (it has ``on_conflict_do_nothing``)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _require_profile_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"a reference profile name must be a non-empty string, got {name!r}")
    if "@" in name:
        raise StoreError(f"reference profile name {name!r} must not contain '@' (it selects a version)")


def _split_profile_ref(reference: str) -> tuple[str, int | None]:
    """``name`` -> (name, None); ``name@N`` -> (name, N)."""
    if not isinstance(reference, str) or not reference.strip():
        raise StoreError(f"a reference profile name must be a non-empty string, got {reference!r}")
    base, sep, version = reference.rpartition("@")
    if not sep:
        return reference, None
    if not base or not version.isdigit() or int(version) < 1:
        raise StoreError(f"reference profile {reference!r}: expected 'name' or 'name@N' with N >= 1")
    return base, int(version)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)

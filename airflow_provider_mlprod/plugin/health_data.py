"""What the model-health view shows, read from the metrics store (read-only).

The one place where the view touches the store: the registry's and the metrics store's public methods
where they answer the question, plain ``SELECT``s on the store's tables where they do not (lists of
models and datasets, the newest rows of long histories). Each function returns small dataclasses.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, desc, false, func, or_, select, true

from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.registry import CHAMPION, ModelRegistry, ModelVersion
from airflow_provider_mlprod.store.rows import as_utc, from_json

ALIAS_EVENTS = ("promoted", "rolled_back", "promotion_reverted", "approved")
VERDICT_EVENTS = ("blessed", "rejected")


@dataclass(frozen=True)
class RunRef:
    """The task run that wrote a record (empty strings when the store does not know it)."""

    dag_id: str = ""
    run_id: str = ""
    task_id: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id}


@dataclass(frozen=True)
class TimelineEntry:
    """One change of an alias (promotion, rollback, revert, approval)."""

    at: datetime
    event: str
    alias: str
    version: str
    previous_version: str
    run: RunRef
    approved_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "event": self.event,
            "alias": self.alias,
            "version": self.version,
            "previous_version": self.previous_version,
            "run": self.run.to_dict(),
            "approved_by": self.approved_by,
        }


@dataclass(frozen=True)
class GateVerdict:
    """A gate's verdict on one version, with its per-metric reasons."""

    at: datetime
    version: str
    passed: bool
    baseline_version: str
    metrics: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "version": self.version,
            "passed": self.passed,
            "baseline_version": self.baseline_version,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class MetricSeries:
    """Values of one metric over time (oldest first), as recorded by monitoring or training runs."""

    name: str
    points: list[tuple[datetime, float, str]]  # (recorded_at, value, model_version)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "points": [[t.isoformat(), v, ver] for t, v, ver in self.points]}


@dataclass(frozen=True)
class ModelHealth:
    """Everything the model page shows."""

    name: str
    aliases: dict[str, str]
    champion: ModelVersion | None
    timeline: list[TimelineEntry]
    verdicts: list[GateVerdict]
    metrics: list[MetricSeries]
    versions: int
    older_changes: bool = False  # the timeline holds the newest changes only
    more_metrics: int = 0  # metrics recorded but not in ``metrics`` (over the limit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": dict(self.aliases),
            "champion": self.champion.to_dict() if self.champion else None,
            "timeline": [entry.to_dict() for entry in self.timeline],
            "verdicts": [verdict.to_dict() for verdict in self.verdicts],
            "metrics": [series.to_dict() for series in self.metrics],
            "versions": self.versions,
        }


@dataclass(frozen=True)
class CheckRecord:
    """One validation or drift result of a dataset."""

    at: datetime
    success: bool
    headline: str
    report_location: str
    run: RunRef
    columns: dict[str, tuple[bool, float | None]] = field(default_factory=dict)  # drift: column -> verdict


@dataclass(frozen=True)
class DatasetHealth:
    """Validation and drift history of one dataset (newest last)."""

    name: str
    validations: list[CheckRecord]
    drifts: list[CheckRecord]


@dataclass(frozen=True)
class AlertDelivery:
    """One delivery attempt of an alert on one channel."""

    sent_at: datetime
    dedup_key: str
    channel: str
    delivered: bool
    attempts: int
    status_code: int | None
    error: str


def _runs_of(dag_ids: Collection[str] | None) -> Any:
    """The ids of the runs of ``dag_ids`` (a subquery), or None for no restriction."""
    if dag_ids is None:
        return None
    r = schema.runs
    return select(r.c.id).where(r.c.dag_id.in_(sorted(dag_ids)))


def _of_runs(column: Any, runs: Any, *, unattributed: bool = True) -> Any:
    """Rows whose ``run_pk`` is one of ``runs`` (and, if ``unattributed``, rows of no run)."""
    if runs is None:
        return true()
    return or_(column.in_(runs), column.is_(None) if unattributed else false())


class HealthReader:
    """Read-only queries of the model-health view over one metrics store engine.

    Every query takes ``dag_ids``: the DAGs whose records the reader of the page may see (None: all).
    Records written by runs of other DAGs are left out of every list, history and plot; records of no
    run (manual actions) stay.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = ModelRegistry(engine)

    def dag_ids(self) -> set[str]:
        """Every DAG id that wrote a record to the store."""
        r = schema.runs
        with self.engine.connect() as connection:
            return set(connection.execute(select(r.c.dag_id).distinct()).scalars())

    def model_names(self, dag_ids: Collection[str] | None = None) -> list[str]:
        if dag_ids is not None:
            return self._names_of_runs(_runs_of(dag_ids), unattributed=True)[0]
        m = schema.models
        with self.engine.connect() as connection:
            return list(connection.execute(select(m.c.name).distinct().order_by(m.c.name)).scalars())

    def dataset_names(self, dag_ids: Collection[str] | None = None) -> list[str]:
        if dag_ids is not None:
            return self._names_of_runs(_runs_of(dag_ids), unattributed=True)[1]
        v, d = schema.validation_results, schema.drift_results
        with self.engine.connect() as connection:
            names = set(connection.execute(select(v.c.dataset).distinct()).scalars())
            names |= set(connection.execute(select(d.c.dataset).distinct()).scalars())
        return sorted(name for name in names if name)

    def names_of_dag(self, dag_id: str, task_id: str | None = None) -> tuple[list[str], list[str]]:
        """Models and datasets that runs of ``dag_id`` (optionally of one task) recorded."""
        r = schema.runs
        runs = select(r.c.id).where(r.c.dag_id == dag_id)
        if task_id:
            runs = runs.where(r.c.task_id == task_id)
        return self._names_of_runs(runs, unattributed=False)

    def _names_of_runs(self, runs: Any, *, unattributed: bool) -> tuple[list[str], list[str]]:
        m, e = schema.models, schema.model_events
        v, d, mt = schema.validation_results, schema.drift_results, schema.metrics
        with self.engine.connect() as connection:
            models = set(
                connection.execute(
                    select(m.c.name).distinct().where(_of_runs(m.c.run_pk, runs, unattributed=unattributed))
                ).scalars()
            )
            models |= set(
                connection.execute(
                    select(e.c.model_name)
                    .distinct()
                    .where(_of_runs(e.c.run_pk, runs, unattributed=unattributed))
                ).scalars()
            )
            models |= set(
                connection.execute(select(mt.c.model_name).distinct().where(mt.c.run_pk.in_(runs))).scalars()
            )
            datasets = set(
                connection.execute(select(v.c.dataset).distinct().where(v.c.run_pk.in_(runs))).scalars()
            )
            datasets |= set(
                connection.execute(select(d.c.dataset).distinct().where(d.c.run_pk.in_(runs))).scalars()
            )
        return sorted(name for name in models if name), sorted(name for name in datasets if name)

    def model_health(
        self,
        name: str,
        *,
        verdicts: int = 20,
        points: int = 500,
        changes: int = 1000,
        series: int = 40,
        dag_ids: Collection[str] | None = None,
    ) -> ModelHealth | None:
        """The model page's content; None when the store knows no model of that name (that ``dag_ids``
        may see)."""
        e, r, m = schema.model_events, schema.runs, schema.models
        runs = _runs_of(dag_ids)
        # The alias changes and the newest gated versions only: the full event log (registrations and
        # verdicts of every version, with their JSON details) is 3x the rows for nothing shown.
        with self.engine.connect() as connection:
            version_count = connection.execute(
                select(func.count()).select_from(m).where(m.c.name == name, _of_runs(m.c.run_pk, runs))
            ).scalar_one()
            alias_rows = connection.execute(
                select(e.c.at, e.c.event, e.c.alias, e.c.version, e.c.previous_version, e.c.detail_json)
                .add_columns(r.c.dag_id, r.c.run_id, r.c.task_id)
                .outerjoin(r, e.c.run_pk == r.c.id)
                .where(e.c.model_name == name, e.c.event.in_(ALIAS_EVENTS), _of_runs(e.c.run_pk, runs))
                .order_by(desc(e.c.at), desc(e.c.id))
                .limit(changes + 1)
            ).all()[::-1]
            older_changes = len(alias_rows) > changes
            alias_rows = alias_rows[-changes:] if changes else []
            newest_gated = list(
                connection.execute(
                    select(e.c.version)
                    .where(e.c.model_name == name, e.c.event.in_(VERDICT_EVENTS), _of_runs(e.c.run_pk, runs))
                    .group_by(e.c.version)
                    .order_by(func.max(e.c.id).desc())
                    .limit(verdicts)
                ).scalars()
            )
        if not version_count and not alias_rows:
            return None
        timeline = [
            TimelineEntry(
                at=as_utc(row.at),
                event=row.event,
                alias=row.alias or CHAMPION,
                version=row.version,
                previous_version=row.previous_version,
                run=RunRef(row.dag_id or "", row.run_id or "", row.task_id or ""),
                approved_by=str((from_json(row.detail_json) or {}).get("approved_by") or ""),
            )
            for row in alias_rows
        ]
        verdict_list = []
        for version in newest_gated:
            blessing = self.registry.latest_blessing(name, version)
            if blessing is not None:
                verdict_list.append(
                    GateVerdict(
                        at=blessing.created_at,
                        version=version,
                        passed=blessing.passed,
                        baseline_version=blessing.baseline_version or "",
                        metrics=list(blessing.summary.get("metrics") or []),
                    )
                )
        a = schema.aliases
        with self.engine.connect() as connection:
            aliases = {
                row.alias: row.version
                for row in connection.execute(
                    select(a.c.alias, a.c.version).where(a.c.model_name == name).order_by(a.c.alias)
                )
            }
        metric_series, more_metrics = self._metric_series(name, points, runs, series)
        champion = self.registry.get_version(name, aliases[CHAMPION]) if CHAMPION in aliases else None
        return ModelHealth(
            name=name,
            aliases=aliases,
            champion=champion,
            timeline=timeline,
            verdicts=verdict_list,
            metrics=metric_series,
            versions=version_count,
            older_changes=older_changes,
            more_metrics=more_metrics,
        )

    def _metric_series(
        self, model_name: str, points: int, runs: Any = None, limit: int = 40
    ) -> tuple[list[MetricSeries], int]:
        """The newest ``points`` records of the first ``limit`` metrics (by name) recorded for the model
        (newest by insertion), and how many metrics were left out.

        Each metric reads backwards along the primary key and stops after ``points`` rows, so the cost
        does not grow with the history. (``MetricsStore.metric_history`` sorts the whole history by
        time and joins each point's run, which the page does not show: 2-3x slower at 10,000 runs.)
        """
        mt = schema.metrics
        series = []
        with self.engine.connect() as connection:
            names = connection.execute(
                select(mt.c.name)
                .where(mt.c.model_name == model_name, _of_runs(mt.c.run_pk, runs))
                .distinct()
                .order_by(mt.c.name)
            ).scalars()
            names = list(names)
            for metric in names[:limit]:
                rows = connection.execute(
                    select(mt.c.value, mt.c.model_version, mt.c.recorded_at)
                    .where(mt.c.model_name == model_name, mt.c.name == metric, _of_runs(mt.c.run_pk, runs))
                    .order_by(mt.c.id.desc())
                    .limit(points)
                ).all()
                values = sorted((as_utc(row.recorded_at), row.value, row.model_version) for row in rows)
                series.append(MetricSeries(metric, values))
        return series, max(len(names) - limit, 0)

    def dataset_health(
        self, name: str, *, limit: int = 60, dag_ids: Collection[str] | None = None
    ) -> DatasetHealth:
        """Newest ``limit`` validation and drift results of ``name`` (runs of ``dag_ids``), oldest first."""
        seen = true() if dag_ids is None else schema.runs.c.dag_id.in_(sorted(dag_ids))
        v, d, c, r = schema.validation_results, schema.drift_results, schema.drift_columns, schema.runs
        with self.engine.connect() as connection:
            validation_rows = connection.execute(
                select(v.c.recorded_at, v.c.success, v.c.suite, v.c.evaluated, v.c.passed, v.c.summary_json)
                .add_columns(r.c.dag_id, r.c.run_id, r.c.task_id)
                .join(r, v.c.run_pk == r.c.id)
                .where(v.c.dataset == name, seen)
                .order_by(desc(v.c.recorded_at), desc(v.c.id))
                .limit(limit)
            ).all()
            drift_rows = connection.execute(
                select(d.c.id, d.c.recorded_at, d.c.dataset_drift, d.c.share_drifted, d.c.summary_json)
                .add_columns(r.c.dag_id, r.c.run_id, r.c.task_id)
                .join(r, d.c.run_pk == r.c.id)
                .where(d.c.dataset == name, seen)
                .order_by(desc(d.c.recorded_at), desc(d.c.id))
                .limit(limit)
            ).all()
            columns: dict[int, dict[str, tuple[bool, float | None]]] = {}
            if drift_rows:
                for row in connection.execute(
                    select(c.c.drift_result_id, c.c.column_name, c.c.drifted, c.c.statistic).where(
                        c.c.drift_result_id.in_([row.id for row in drift_rows])
                    )
                ):
                    columns.setdefault(row.drift_result_id, {})[row.column_name] = (
                        row.drifted,
                        row.statistic,
                    )
        validations = [
            CheckRecord(
                at=as_utc(row.recorded_at),
                success=bool(row.success),
                headline=f"{row.suite}: {row.passed}/{row.evaluated} expectations passed",
                report_location=str((from_json(row.summary_json) or {}).get("report_location") or ""),
                run=RunRef(row.dag_id, row.run_id, row.task_id),
            )
            for row in reversed(validation_rows)
        ]
        drifts = [
            CheckRecord(
                at=as_utc(row.recorded_at),
                success=not row.dataset_drift,
                headline=f"{row.share_drifted:.0%} of columns drifted",
                report_location=str((from_json(row.summary_json) or {}).get("report_location") or ""),
                run=RunRef(row.dag_id, row.run_id, row.task_id),
                columns=columns.get(row.id, {}),
            )
            for row in reversed(drift_rows)
        ]
        return DatasetHealth(name=name, validations=validations, drifts=drifts)

    def alert_log(self, *, limit: int = 200, dag_ids: Collection[str] | None = None) -> list[AlertDelivery]:
        """The newest ``limit`` alert deliveries (of runs of ``dag_ids``), newest first."""
        a = schema.alert_deliveries
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(a)
                .where(_of_runs(a.c.run_pk, _runs_of(dag_ids)))
                .order_by(desc(a.c.sent_at), desc(a.c.id))
                .limit(limit)
            ).all()
        return [
            AlertDelivery(
                sent_at=as_utc(row.sent_at),
                dedup_key=row.dedup_key,
                channel=row.channel,
                delivered=bool(row.delivered),
                attempts=row.attempts,
                status_code=row.status_code,
                error=row.error,
            )
            for row in rows
        ]

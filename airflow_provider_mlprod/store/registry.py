"""ModelRegistry: model versions, gate blessings, aliases (champion, ...) and race-safe promotion.

Promotion is a compare-and-swap: a version may take an alias only if it holds a passing blessing, and
only while the alias still points at the version its gate compared against (the blessing's
baseline). If another promotion happened in between, the swap fails with ConcurrentUpdateError
instead of overwriting it. Every registration, blessing, rejection, promotion and rollback is also
written to an event log with its run identity and time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from airflow_provider_mlprod.exceptions import ConcurrentUpdateError, StoreError, StoreRefusal
from airflow_provider_mlprod.store import schema
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

CHAMPION = "champion"


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version."""

    name: str
    version: str
    artifact_uri: str
    metrics: dict[str, float]
    training_data: str
    status: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "version": self.version,
            "artifact_uri": self.artifact_uri,
            "metrics": dict(self.metrics),
            "training_data": self.training_data,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Blessing:
    """The outcome of a gate for one model version."""

    model_name: str
    version: str
    passed: bool
    baseline_version: str | None
    summary: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Promotion:
    """What an alias change did."""

    model_name: str
    alias: str
    version: str
    previous_version: str | None
    revision: int
    changed: bool
    owned: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``owned``: this task instance made the change, now or in an earlier try)."""
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "version": self.version,
            "previous_version": self.previous_version,
            "revision": self.revision,
            "changed": self.changed,
        }


class ModelRegistry:
    """The model registry in the metrics store behind ``engine`` (schema created on first use)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema(engine)

    # -- versions ------------------------------------------------------------------------------

    def register(
        self,
        identity: RunIdentity,
        *,
        name: str,
        version: str,
        artifact_uri: str,
        metrics: Mapping[str, Any] | None = None,
        training_data: str = "",
    ) -> ModelVersion:
        """Register ``name`` ``version``; a retry of the same task updates its own registration.

        A version registered by another task run is never overwritten: StoreError names it.
        """
        _require_text(name, "model name")
        _require_text(version, "model version")
        _require_text(artifact_uri, "artifact URI")
        clean_metrics = {str(k): finite_float(v, f"metric {k!r}") for k, v in (metrics or {}).items()}
        m = schema.models
        with self.engine.begin() as connection:
            pk = run_pk(connection, identity)
            existing = connection.execute(
                select(m.c.id, m.c.run_pk, m.c.artifact_uri, m.c.metrics_json, m.c.training_data).where(
                    and_(m.c.name == name, m.c.version == version)
                )
            ).first()
            if existing is not None and existing.run_pk != pk:
                raise StoreRefusal(
                    f"model {name!r} version {version!r} is already registered by another run; "
                    "versions are immutable, register a new version"
                )
            if existing is not None and _has_blessing(connection, existing.id):
                unchanged = (
                    existing.artifact_uri,
                    from_json(existing.metrics_json) or {},
                    existing.training_data,
                ) == (
                    artifact_uri,
                    clean_metrics,
                    training_data,
                )
                if not unchanged:
                    raise StoreRefusal(
                        f"model {name!r} version {version!r} was already gated; its artifact and metrics "
                        "cannot change any more: register a new version"
                    )
                return self._version_from(connection, name, version)
            upsert(
                connection,
                m,
                {
                    "name": name,
                    "version": version,
                    "artifact_uri": artifact_uri,
                    "metrics_json": to_json(clean_metrics, f"metrics of model {name!r} {version!r}"),
                    "training_data": training_data,
                    "status": "registered",
                    "run_pk": pk,
                    "created_at": utcnow(),
                },
                key=("name", "version"),
            )
            if existing is None:
                _log_event(connection, pk, name, version, "registered")
        return self.get_version(name, version)

    def get_version(self, name: str, version: str) -> ModelVersion:
        """The registered version; StoreRefusal when it is not registered."""
        with self.engine.connect() as connection:
            return self._version_from(connection, name, version)

    @staticmethod
    def _version_from(connection: Connection, name: str, version: str) -> ModelVersion:
        m = schema.models
        row = (
            connection.execute(select(m).where(and_(m.c.name == name, m.c.version == version)))
            .mappings()
            .first()
        )
        if row is None:
            raise StoreRefusal(f"model {name!r} version {version!r} is not registered")
        return ModelVersion(
            name=row["name"],
            version=row["version"],
            artifact_uri=row["artifact_uri"],
            metrics=from_json(row["metrics_json"]) or {},
            training_data=row["training_data"],
            status=row["status"],
            created_at=as_utc(row["created_at"]),
        )

    # -- blessings -----------------------------------------------------------------------------

    def record_blessing(
        self,
        identity: RunIdentity,
        *,
        name: str,
        version: str,
        passed: bool,
        baseline_version: str | None,
        summary: Mapping[str, Any],
    ) -> None:
        """Record a gate's verdict on ``name`` ``version``; the version must be registered.

        :param baseline_version: the champion version the gate compared against (``None``: none).
        """
        m, b = schema.models, schema.blessings
        with self.engine.begin() as connection:
            model_id = connection.execute(
                select(m.c.id).where(and_(m.c.name == name, m.c.version == version))
            ).scalar_one_or_none()
            if model_id is None:
                raise StoreRefusal(f"cannot bless model {name!r} version {version!r}: it is not registered")
            pk = run_pk(connection, identity)
            upsert(
                connection,
                b,
                {
                    "model_id": model_id,
                    "run_pk": pk,
                    "passed": bool(passed),
                    "baseline_version": baseline_version or "",
                    "summary_json": to_json(dict(summary), f"gate summary of {name!r} {version!r}"),
                    "created_at": utcnow(),
                },
                key=("model_id", "run_pk"),
            )
            status = "blessed" if passed else "rejected"
            connection.execute(m.update().where(m.c.id == model_id).values(status=status))
            _log_event(connection, pk, name, version, status, detail={"baseline_version": baseline_version})

    def latest_blessing(self, name: str, version: str) -> Blessing | None:
        """The most recent gate verdict on ``name`` ``version``, if any."""
        m, b = schema.models, schema.blessings
        query = (
            select(b)
            .join(m, m.c.id == b.c.model_id)
            .where(and_(m.c.name == name, m.c.version == version))
            .order_by(b.c.created_at.desc(), b.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        return Blessing(
            model_name=name,
            version=version,
            passed=row["passed"],
            baseline_version=row["baseline_version"] or None,
            summary=from_json(row["summary_json"]),
            created_at=as_utc(row["created_at"]),
        )

    # -- aliases -------------------------------------------------------------------------------

    def alias_version(self, name: str, alias: str = CHAMPION) -> str | None:
        """The version ``alias`` points at, or None."""
        a = schema.aliases
        with self.engine.connect() as connection:
            return connection.execute(
                select(a.c.version).where(and_(a.c.model_name == name, a.c.alias == alias))
            ).scalar_one_or_none()

    def champion(self, name: str) -> ModelVersion | None:
        """The current champion version of ``name``, or None."""
        version = self.alias_version(name, CHAMPION)
        return self.get_version(name, version) if version is not None else None

    def promote(self, identity: RunIdentity, *, name: str, version: str, alias: str = CHAMPION) -> Promotion:
        """Point ``alias`` at ``version`` if its latest blessing passed and the alias is unchanged since.

        The blessing is read and the alias swapped in one transaction that holds the model row, so a
        verdict recorded concurrently cannot slip between the check and the swap. Raises StoreRefusal
        when the version is not registered or holds no passing blessing, and ConcurrentUpdateError
        when the alias moved after the gate compared against it. A retry of the task that already made
        this promotion returns it unchanged (``owned``); a version that is already the alias's, by
        another run's promotion, is returned unchanged too (not ``owned``).
        """
        m, b = schema.models, schema.blessings
        with self.engine.begin() as connection:
            pk = run_pk(connection, identity)
            model_id = connection.execute(
                select(m.c.id).where(and_(m.c.name == name, m.c.version == version)).with_for_update()
            ).scalar_one_or_none()
            if model_id is None:
                raise StoreRefusal(f"model {name!r} version {version!r} is not registered")
            done = _own_last_change(connection, pk, name, alias, "promoted", version)
            if done is not None:
                return done
            a = schema.aliases
            current = connection.execute(
                select(a.c.version, a.c.revision).where(and_(a.c.model_name == name, a.c.alias == alias))
            ).first()
            if current is not None and current.version == version:  # promoted already, by another run
                return Promotion(name, alias, version, None, current.revision, changed=False, owned=False)
            blessing = connection.execute(
                select(b.c.passed, b.c.baseline_version)
                .where(b.c.model_id == model_id)
                .order_by(b.c.created_at.desc(), b.c.id.desc())
                .limit(1)
            ).first()
            if blessing is None:
                raise StoreRefusal(
                    f"refusing to promote model {name!r} version {version!r} to {alias!r}: "
                    "it has no gate verdict (run a gate on this exact version first)"
                )
            if not blessing.passed:
                raise StoreRefusal(
                    f"refusing to promote model {name!r} version {version!r} to {alias!r}: its gate failed"
                )
            return _swap(
                connection,
                pk,
                name=name,
                alias=alias,
                new_version=version,
                expected_version=blessing.baseline_version or None,
                event="promoted",
            )

    def rollback(self, identity: RunIdentity, *, name: str, alias: str = CHAMPION) -> Promotion:
        """Point ``alias`` back at the version it held before its current version was promoted.

        A retry of the task that already rolled back returns that rollback unchanged (it does not roll
        back a second step).
        """
        a, e = schema.aliases, schema.model_events
        with self.engine.begin() as connection:
            pk = run_pk(connection, identity)
            current = connection.execute(
                select(a.c.version).where(and_(a.c.model_name == name, a.c.alias == alias))
            ).scalar_one_or_none()
            if current is None:
                raise StoreRefusal(f"cannot roll back model {name!r}: alias {alias!r} points at no version")
            done = _own_last_change(connection, pk, name, alias, "rolled_back", current)
            if done is not None:
                return done
            previous = connection.execute(
                select(e.c.previous_version)
                .where(
                    and_(
                        e.c.model_name == name,
                        e.c.alias == alias,
                        e.c.event == "promoted",
                        e.c.version == current,
                    )
                )
                .order_by(e.c.at.desc(), e.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            if not previous:
                raise StoreRefusal(
                    f"cannot roll back model {name!r} alias {alias!r}: "
                    f"version {current!r} has no previous version"
                )
            return _swap(
                connection,
                pk,
                name=name,
                alias=alias,
                new_version=previous,
                expected_version=current,
                event="rolled_back",
            )

    def revert_promotion(self, identity: RunIdentity, promotion: Promotion) -> None:
        """Undo ``promotion`` (e.g. when its deployment failed): the alias returns to its previous version.

        The alias is removed if it had no previous version. Raises ConcurrentUpdateError if the alias
        moved again since.
        """
        a = schema.aliases
        still_ours = and_(
            a.c.model_name == promotion.model_name,
            a.c.alias == promotion.alias,
            a.c.version == promotion.version,
        )
        with self.engine.begin() as connection:
            pk = run_pk(connection, identity)
            if promotion.previous_version is None:
                result = connection.execute(a.delete().where(still_ours))
            else:
                result = connection.execute(
                    a.update()
                    .where(still_ours)
                    .values(
                        version=promotion.previous_version,
                        revision=a.c.revision + 1,
                        run_pk=pk,
                        updated_at=utcnow(),
                    )
                )
            if result.rowcount != 1:
                raise ConcurrentUpdateError(
                    f"cannot revert the promotion of model {promotion.model_name!r} version "
                    f"{promotion.version!r}: alias {promotion.alias!r} changed since"
                )
            _log_event(
                connection,
                pk,
                promotion.model_name,
                promotion.previous_version or "",
                "promotion_reverted",
                alias=promotion.alias,
                previous_version=promotion.version,
            )

    def events(self, name: str) -> list[dict]:
        """The model's event log, oldest first."""
        e, r = schema.model_events, schema.runs
        query = (
            select(e, r.c.dag_id, r.c.run_id, r.c.task_id, r.c.map_index)
            .outerjoin(r, e.c.run_pk == r.c.id)
            .where(e.c.model_name == name)
            .order_by(e.c.at, e.c.id)
        )
        with self.engine.connect() as connection:
            return [
                {**dict(row), "detail": from_json(row["detail_json"])}
                for row in connection.execute(query).mappings()
            ]


def _has_blessing(connection: Connection, model_id: int) -> bool:
    b = schema.blessings
    return connection.execute(select(b.c.id).where(b.c.model_id == model_id).limit(1)).first() is not None


def _own_last_change(
    connection: Connection, pk: int, name: str, alias: str, event: str, version: str
) -> Promotion | None:
    """The alias change this task already made (an earlier try), if the alias still shows it."""
    a, e = schema.aliases, schema.model_events
    row = connection.execute(
        select(a.c.version, a.c.revision, a.c.run_pk).where(and_(a.c.model_name == name, a.c.alias == alias))
    ).first()
    if row is None or row.run_pk != pk or row.version != version:
        return None
    last = connection.execute(
        select(e.c.event, e.c.run_pk, e.c.previous_version)
        .where(and_(e.c.model_name == name, e.c.alias == alias))
        .order_by(e.c.at.desc(), e.c.id.desc())
        .limit(1)
    ).first()
    if last is None or last.run_pk != pk or last.event != event:
        return None
    return Promotion(name, alias, version, last.previous_version or None, row.revision, changed=False)


def _swap(
    connection: Connection,
    pk: int,
    *,
    name: str,
    alias: str,
    new_version: str,
    expected_version: str | None,
    event: str,
) -> Promotion:
    """Compare-and-swap the alias from ``expected_version`` to ``new_version`` and log ``event``."""
    a = schema.aliases
    now = utcnow()
    row = connection.execute(
        select(a.c.version, a.c.revision).where(and_(a.c.model_name == name, a.c.alias == alias))
    ).first()
    current = row.version if row else None
    if current != expected_version:
        raise ConcurrentUpdateError(
            f"alias {alias!r} of model {name!r} now points at {current!r}, not at "
            f"{expected_version!r} as when version {new_version!r} was gated; "
            "re-run the gate against the new champion"
        )
    if row is None:
        result = connection.execute(_insert_alias_if_absent(connection, name, alias, new_version, pk, now))
        revision = 1
    else:
        revision = row.revision + 1
        result = connection.execute(
            a.update()
            .where(
                and_(
                    a.c.model_name == name,
                    a.c.alias == alias,
                    a.c.version == expected_version,
                    a.c.revision == row.revision,
                )
            )
            .values(version=new_version, revision=revision, run_pk=pk, updated_at=now)
        )
    if result.rowcount != 1:
        raise ConcurrentUpdateError(
            f"alias {alias!r} of model {name!r} was changed by another promotion while "
            f"promoting version {new_version!r}; re-run the gate against the new champion"
        )
    _log_event(connection, pk, name, new_version, event, alias=alias, previous_version=expected_version)
    return Promotion(name, alias, new_version, expected_version, revision, changed=True)


def _insert_alias_if_absent(connection: Connection, name, alias, version, pk, now):
    values = {
        "model_name": name,
        "alias": alias,
        "version": version,
        "revision": 1,
        "run_pk": pk,
        "updated_at": now,
    }
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return schema.aliases.insert().values(**values).execution_options(preserve_rowcount=True)
    # An INSERT keeps its rowcount only on request (psycopg 3 reports -1 otherwise).
    statement = insert(schema.aliases).values(**values).on_conflict_do_nothing()
    return statement.execution_options(preserve_rowcount=True)


def _log_event(
    connection: Connection,
    pk: int,
    name: str,
    version: str,
    event: str,
    *,
    alias: str = "",
    previous_version: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    e = schema.model_events
    latest = connection.execute(
        select(e.c.run_pk, e.c.version, e.c.event)
        .where(and_(e.c.model_name == name, e.c.alias == alias))
        .order_by(e.c.at.desc(), e.c.id.desc())
        .limit(1)
    ).first()
    if latest is not None and (latest.run_pk, latest.version, latest.event) == (pk, version, event):
        return  # a retry of the same task repeating its last step: one event, not one per try
    connection.execute(
        e.insert().values(
            model_name=name,
            version=version,
            event=event,
            alias=alias,
            previous_version=previous_version or "",
            run_pk=pk,
            detail_json=to_json(dict(detail or {}), "event detail"),
            at=utcnow(),
        )
    )


def _require_text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{what} must be a non-empty string, got {value!r}")

"""ModelRegistry: model versions, gate verdicts, aliases (champion, ...) and race-safe promotion.

The promotion rule. A gate's verdict (a *blessing*) is recorded for one exact version, one alias,
one gate kind (``metrics``, ...) and one stable gate name, with the hash of its spec, the version the
alias pointed at when the gate ran (its baseline) and the digest of the artifact it judged. A version
may take an alias only if, for every gate kind the promotion requires, every gate name of that kind
that judged this version for this alias has a passing *latest* verdict (latest by store revision), and
a required kind with no verdict fails closed. A failing latest verdict of a kind the promotion does
not require blocks it too: a kind left out of ``require`` is not needed, never ignored. A gate's own
retry replaces its verdict; another gate's pass never hides a failure. A rollback revokes: verdicts
recorded before the rollback no longer count for that version on that alias, so it returns there
only through a new passing gate run.

Promotion is a compare-and-swap: the alias moves only while it still points at the baseline the
gates compared against; of concurrent promoters, one wins and the others get ConcurrentUpdateError.
Changes of one alias, and the verdicts recorded for it, are serialised by a lock in the database (a
transaction-scoped advisory lock on PostgreSQL, the write lock on SQLite), which the database
releases if the holder dies.

Retries are idempotent against intervening changes: a retried promotion, rollback or gate finds its
own effect and returns it, or, when someone else changed the alias since its first try, fails with
ConcurrentUpdateError naming who and when; it never re-applies.

Every registration, verdict, promotion, rollback and revert is written to an event log. Verdicts and
events are ordered by the store's revision sequence, never by a worker's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select, text

from airflow_provider_mlprod.exceptions import ConcurrentUpdateError, StoreError, StoreRefusal
from airflow_provider_mlprod.store import schema
from airflow_provider_mlprod.store.engine import read_connection
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.migrations import ensure_schema
from airflow_provider_mlprod.store.rows import (
    as_utc,
    finite_float,
    from_json,
    next_revision,
    run_pk,
    to_json,
    upsert,
    utcnow,
)

CHAMPION = "champion"

#: The gate kinds a verdict may have, with what each judges. Adding a kind is adding an entry.
GATE_KINDS: dict[str, str] = {
    "metrics": "offline metrics against thresholds and the alias's current version",
    "serving": "a load test of the serving endpoint against latency, error and output thresholds",
    "outputs": "the candidate's outputs on a golden set against thresholds and the champion",
}
DEFAULT_REQUIRED_KINDS: tuple[str, ...] = ("metrics",)

_ALIAS_CHANGES = ("promoted", "rolled_back", "promotion_reverted")
_ALIAS_LOCK_KEY = 7_337_002


def register_gate_kind(kind: str, description: str) -> None:
    """Add a gate kind (e.g. ``"serving"``) that verdicts may carry and promotions may require."""
    _require_name(kind, "gate kind", MAX_KIND_LENGTH)
    GATE_KINDS.setdefault(kind, description)


def check_gate_kinds(kinds: str | Iterable[str], what: str = "gate kind") -> tuple[str, ...]:
    """``kinds`` as a tuple of known gate kinds; StoreError names an unknown or empty one."""
    values = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not values:
        raise StoreError(f"{what}: give at least one of {sorted(GATE_KINDS)}")
    for kind in values:
        if kind not in GATE_KINDS:
            raise StoreError(f"{what} {kind!r} is unknown; known kinds: {sorted(GATE_KINDS)}")
    return values


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
    artifact_digest: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "version": self.version,
            "artifact_uri": self.artifact_uri,
            "artifact_digest": self.artifact_digest,
            "metrics": dict(self.metrics),
            "training_data": self.training_data,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Blessing:
    """One gate's verdict on one model version for one alias."""

    model_name: str
    version: str
    passed: bool
    baseline_version: str | None
    summary: dict[str, Any]
    created_at: datetime
    alias: str = CHAMPION
    kind: str = "metrics"
    gate_name: str = ""
    spec_hash: str = ""
    artifact_digest: str = ""
    revision: int = 0
    run: RunIdentity | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (without the gate's summary)."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "alias": self.alias,
            "kind": self.kind,
            "gate_name": self.gate_name,
            "passed": self.passed,
            "baseline_version": self.baseline_version,
            "spec_hash": self.spec_hash,
            "artifact_digest": self.artifact_digest,
            "revision": self.revision,
            "run": self.run.to_dict() if self.run else None,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Eligibility:
    """Whether a version may take an alias now, by the promotion rule (see the module docstring).

    :param gates: the latest verdict of each gate name that counts, per required kind.
    :param reasons: why not, one line per problem (empty when eligible).
    :param baseline_versions: the alias versions the counted gates compared against.
    """

    model_name: str
    version: str
    alias: str
    require: tuple[str, ...]
    eligible: bool
    reasons: list[str] = field(default_factory=list)
    gates: list[Blessing] = field(default_factory=list)
    baseline_versions: list[str | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "alias": self.alias,
            "require": list(self.require),
            "eligible": self.eligible,
            "reasons": list(self.reasons),
            "gates": [gate.to_dict() for gate in self.gates],
            "baseline_versions": list(self.baseline_versions),
        }


@dataclass(frozen=True)
class Promotion:
    """What an alias change did.

    :param revision: the store revision of the change that put ``version`` on the alias.
    :param changed: this call moved the alias (False: it found the change already made).
    :param owned: this task instance made the change, now or in an earlier try.
    """

    model_name: str
    alias: str
    version: str
    previous_version: str | None
    revision: int
    changed: bool
    owned: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
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
        artifact_digest: str = "",
    ) -> ModelVersion:
        """Register ``name`` ``version``; a retry of the same task updates its own registration.

        :param artifact_digest: the content digest of the artifact (``sha256:<hex>``, see
            ``store.artifacts``); promotion and rollback refuse an artifact that no longer matches it.

        A version registered by another task run is never overwritten, and a version that a gate
        already judged keeps its artifact, digest and metrics: StoreRefusal names it.
        """
        _require_name(name, "model name")
        _require_name(version, "model version")
        _require_text(artifact_uri, "artifact URI")
        clean_metrics = {str(k): finite_float(v, f"metric {k!r}") for k, v in (metrics or {}).items()}
        m = schema.models
        with self.engine.begin() as connection:
            pk = run_pk(connection, identity)
            existing = connection.execute(
                select(
                    m.c.id,
                    m.c.run_pk,
                    m.c.artifact_uri,
                    m.c.metrics_json,
                    m.c.training_data,
                    m.c.artifact_digest,
                ).where(and_(m.c.name == name, m.c.version == version))
            ).first()
            if existing is not None and existing.run_pk != pk:
                raise StoreRefusal(
                    f"model {name!r} version {version!r} is already registered by another run; "
                    "versions are immutable, register a new version"
                )
            if existing is not None and _has_verdict(connection, existing.id):
                before = (
                    existing.artifact_uri,
                    from_json(existing.metrics_json) or {},
                    existing.training_data,
                    existing.artifact_digest,
                )
                if before != (artifact_uri, clean_metrics, training_data, artifact_digest):
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
                    "artifact_digest": artifact_digest or "",
                    "metrics_json": to_json(clean_metrics, f"metrics of model {name!r} {version!r}"),
                    "training_data": training_data,
                    "status": "registered",
                    "run_pk": pk,
                    "created_at": utcnow(),
                },
                key=("name", "version"),
            )
            if existing is None:
                _log_event(connection, pk, name, version, "registered", detail={"digest": artifact_digest})
        return self.get_version(name, version)

    def get_version(self, name: str, version: str) -> ModelVersion:
        """The registered version; StoreRefusal when it is not registered."""
        with read_connection(self.engine) as connection:
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
            artifact_digest=row["artifact_digest"],
        )

    # -- verdicts ------------------------------------------------------------------------------

    def record_blessing(
        self,
        identity: RunIdentity,
        *,
        name: str,
        version: str,
        passed: bool,
        baseline_version: str | None,
        summary: Mapping[str, Any],
        alias: str = CHAMPION,
        kind: str = "metrics",
        gate_name: str | None = None,
        spec_hash: str = "",
        artifact_digest: str | None = None,
    ) -> Blessing:
        """Record a gate's verdict on ``name`` ``version`` for ``alias``; the version must be registered.

        :param baseline_version: the version ``alias`` pointed at when the gate ran (``None``: none);
            the promotion later swaps the alias only if it still points there.
        :param alias: the alias the version competes for.
        :param kind: the gate kind, one of ``GATE_KINDS``.
        :param gate_name: the gate's stable name (default: the task id); a later verdict of the same
            name replaces this one for the promotion rule. A mapped task instance's gate name gets its
            map index (``fairness[3]``); two tasks of one DAG run cannot share a gate name.
        :param spec_hash: a hash of the gate's spec (thresholds, ...), for the record.
        :param artifact_digest: the digest of the artifact the gate judged (default: the registered
            one); a different digest is refused.

        A retry of the same task replaces its verdict; if the alias moved since its first try, it
        fails with ConcurrentUpdateError naming the change instead of re-judging against a new baseline.
        """
        check_gate_kinds(kind)
        _require_name(name, "model name")
        _require_name(version, "model version")
        _require_name(alias, "alias")
        gate = gate_name or identity.task_id
        if identity.map_index >= 0:  # each mapped instance is a gate of its own (e.g. one per segment)
            gate = f"{gate}[{identity.map_index}]"
        _require_name(gate, "gate name")
        m, v = schema.models, schema.verdicts
        with self.engine.begin() as connection:
            # A promotion reads the verdicts and swaps the alias under this lock: a verdict waits for
            # it, so no verdict the store orders before a promotion was unseen by that promotion.
            _lock_alias(connection, name, alias)
            model = connection.execute(
                select(m.c.id, m.c.artifact_digest).where(and_(m.c.name == name, m.c.version == version))
            ).first()
            if model is None:
                raise StoreRefusal(f"cannot bless model {name!r} version {version!r}: it is not registered")
            digest = model.artifact_digest if artifact_digest is None else artifact_digest
            if model.artifact_digest and digest != model.artifact_digest:
                raise StoreRefusal(
                    f"gate {gate!r} judged an artifact with digest {digest!r}, but model {name!r} version "
                    f"{version!r} was registered with {model.artifact_digest!r}"
                )
            pk = run_pk(connection, identity)
            _refuse_shared_gate_name(connection, identity, pk, model.id, alias, gate)
            key = and_(v.c.model_id == model.id, v.c.run_pk == pk, v.c.alias == alias, v.c.gate_name == gate)
            earlier = connection.execute(
                select(v.c.passed, v.c.baseline_version, v.c.revision).where(key)
            ).first()
            change = _last_alias_change(connection, name, alias) if earlier is not None else None
            if earlier is not None and (
                (earlier.baseline_version or None) != (baseline_version or None)
                # the alias moved and came back (e.g. promoted, then rolled back): same version, but
                # a re-judgement now would outlive the rollback that revoked the candidate
                or (change is not None and change.revision > earlier.revision)
            ):
                raise ConcurrentUpdateError(
                    f"gate {gate!r} first judged model {name!r} version {version!r} against "
                    f"{earlier.baseline_version or None!r}, but alias {alias!r} changed since"
                    f"{_describe_change(change)}; not re-judging against a new baseline: start a new run"
                )
            revision = next_revision(connection)
            upsert(
                connection,
                v,
                {
                    "model_id": model.id,
                    "run_pk": pk,
                    "alias": alias,
                    "kind": kind,
                    "gate_name": gate,
                    "passed": bool(passed),
                    "baseline_version": baseline_version or "",
                    "spec_hash": spec_hash or "",
                    "artifact_digest": digest or "",
                    "summary_json": to_json(dict(summary), f"gate summary of {name!r} {version!r}"),
                    "revision": revision,
                    "created_at": utcnow(),
                },
                key=("model_id", "run_pk", "alias", "gate_name"),
            )
            status = "blessed" if passed else "rejected"
            connection.execute(m.update().where(m.c.id == model.id).values(status=status))
            if earlier is None or bool(earlier.passed) != bool(passed):
                _log_event(
                    connection,
                    pk,
                    name,
                    version,
                    status,
                    alias=alias,
                    detail={
                        "gate_name": gate,
                        "kind": kind,
                        "baseline_version": baseline_version,
                        "spec_hash": spec_hash,
                    },
                    revision=revision,
                )
            return _verdict_rows(connection, and_(key))[0]

    def latest_blessing(self, name: str, version: str, alias: str | None = None) -> Blessing | None:
        """The most recent verdict on ``name`` ``version`` (for ``alias``, or any), by store revision."""
        m, v = schema.models, schema.verdicts
        condition = and_(m.c.name == name, m.c.version == version)
        if alias is not None:
            condition = and_(condition, v.c.alias == alias)
        with read_connection(self.engine) as connection:
            rows = _verdict_rows(connection, condition, limit=1)
        return rows[0] if rows else None

    def verdicts(self, name: str, version: str, alias: str | None = None) -> list[Blessing]:
        """Every verdict recorded on ``name`` ``version`` (for ``alias``, or any), newest first."""
        m, v = schema.models, schema.verdicts
        condition = and_(m.c.name == name, m.c.version == version)
        if alias is not None:
            condition = and_(condition, v.c.alias == alias)
        with read_connection(self.engine) as connection:
            return _verdict_rows(connection, condition)

    def promotion_eligibility(
        self,
        name: str,
        version: str,
        *,
        alias: str = CHAMPION,
        require: Iterable[str] = DEFAULT_REQUIRED_KINDS,
    ) -> Eligibility:
        """Whether ``version`` may take ``alias`` now by the promotion rule, and why not."""
        kinds = check_gate_kinds(require, "required gate kind")
        with read_connection(self.engine) as connection:
            return _eligibility(connection, name, version, alias, kinds)

    # -- aliases -------------------------------------------------------------------------------

    def alias_version(self, name: str, alias: str = CHAMPION) -> str | None:
        """The version ``alias`` points at, or None."""
        a = schema.aliases
        with read_connection(self.engine) as connection:
            return connection.execute(
                select(a.c.version).where(and_(a.c.model_name == name, a.c.alias == alias))
            ).scalar_one_or_none()

    def champion(self, name: str) -> ModelVersion | None:
        """The current champion version of ``name``, or None."""
        version = self.alias_version(name, CHAMPION)
        return self.get_version(name, version) if version is not None else None

    def rollback_target(self, name: str, alias: str = CHAMPION) -> str | None:
        """The version a rollback of ``alias`` would restore now, or None when there is none."""
        a = schema.aliases
        with read_connection(self.engine) as connection:
            current = connection.execute(
                select(a.c.version).where(and_(a.c.model_name == name, a.c.alias == alias))
            ).scalar_one_or_none()
            if current is None:
                return None
            return _promoted_from(connection, name, alias, current)

    def promote(
        self,
        identity: RunIdentity,
        *,
        name: str,
        version: str,
        alias: str = CHAMPION,
        require: Iterable[str] = DEFAULT_REQUIRED_KINDS,
        approved_by: str | None = None,
    ) -> Promotion:
        """Point ``alias`` at ``version`` if the promotion rule allows it and the alias is unchanged since.

        :param require: the gate kinds this alias requires (default ``("metrics",)``).
        :param approved_by: who approved the promotion (recorded with it), if anyone.

        The verdicts are read and the alias swapped in one transaction that holds the alias lock, so
        a verdict or a rollback recorded concurrently cannot slip between the check and the swap.
        Raises StoreRefusal when the rule refuses (naming each missing or failing gate, or the
        rollback that revoked the version), and ConcurrentUpdateError when the alias moved after the
        gates compared against it, or moved after an earlier try of this task promoted. A retry of
        the task that made this promotion returns it (``owned``); a version that already holds the
        alias by another run's promotion is returned unchanged (not ``owned``).
        """
        kinds = check_gate_kinds(require, "required gate kind")
        _require_name(name, "model name")
        _require_name(version, "model version")
        _require_name(alias, "alias")
        with self.engine.begin() as connection:
            _lock_alias(connection, name, alias)
            pk = run_pk(connection, identity)
            if _version_id(connection, name, version) is None:
                raise StoreRefusal(f"model {name!r} version {version!r} is not registered")
            current = _alias_row(connection, name, alias)
            last = _last_alias_change(connection, name, alias)
            if current is not None and current.version == version and current.run_pk == pk:
                previous = last.previous_version if last is not None and last.run_pk == pk else None
                return Promotion(name, alias, version, previous or None, current.revision, changed=False)
            mine = _own_change(connection, pk, name, alias, "promoted", version)
            if mine is not None and (last is None or last.run_pk != pk):
                raise ConcurrentUpdateError(
                    f"an earlier try of this task promoted model {name!r} version {version!r} to {alias!r} "
                    f"(store revision {mine.revision}), but the alias changed since{_describe_change(last)}; "
                    "not promoting again"
                )
            if current is not None and current.version == version:  # promoted already, by another run
                return Promotion(name, alias, version, None, current.revision, changed=False, owned=False)
            eligibility = _eligibility(connection, name, version, alias, kinds)
            if not eligibility.eligible:
                raise StoreRefusal(
                    f"refusing to promote model {name!r} version {version!r} to {alias!r}: "
                    + "; ".join(eligibility.reasons)
                )
            baselines = set(eligibility.baseline_versions)
            current_version = current.version if current is not None else None
            if baselines != {current_version}:
                compared = ", ".join(repr(b) for b in sorted(baselines, key=str))
                raise ConcurrentUpdateError(
                    f"alias {alias!r} of model {name!r} now points at {current_version!r}, not at "
                    f"{compared} as when version {version!r} was gated{_describe_change(last)}; "
                    "re-run the gates against the new version"
                )
            detail = {
                "require": list(kinds),
                "gates": [
                    {"gate_name": g.gate_name, "kind": g.kind, "revision": g.revision}
                    for g in eligibility.gates
                ],
            }
            if approved_by:
                detail["approved_by"] = approved_by
            return _swap(connection, pk, name, alias, current, version, "promoted", detail)

    def rollback(
        self, identity: RunIdentity, *, name: str, alias: str = CHAMPION, to_version: str | None = None
    ) -> Promotion:
        """Point ``alias`` back at the version it held before its current version was promoted.

        The rolled-back version is revoked for this alias: it returns only through a new passing gate
        run. A retry of the task that already rolled back returns that rollback unchanged; if the
        alias changed since, it fails with ConcurrentUpdateError naming the change (it never rolls back
        a second step).

        :param to_version: the version the caller expects to restore (e.g. the one whose artifact it
            verified); ConcurrentUpdateError when the rollback would restore another one.
        """
        _require_name(name, "model name")
        _require_name(alias, "alias")
        with self.engine.begin() as connection:
            _lock_alias(connection, name, alias)
            pk = run_pk(connection, identity)
            current = _alias_row(connection, name, alias)
            last = _last_alias_change(connection, name, alias)
            mine = _own_change(connection, pk, name, alias, "rolled_back", None)
            if mine is not None and not _reverted_by_itself(mine, last, pk):
                if last is not None and last.revision == mine.revision and current is not None:
                    return Promotion(
                        name, alias, current.version, mine.previous_version or None, current.revision, False
                    )
                raise ConcurrentUpdateError(
                    f"an earlier try of this task rolled alias {alias!r} of model {name!r} back to "
                    f"{mine.version!r} (store revision {mine.revision}), but the alias changed "
                    f"since{_describe_change(last)}; not rolling back again"
                )
            if current is None:
                raise StoreRefusal(f"cannot roll back model {name!r}: alias {alias!r} points at no version")
            previous = _promoted_from(connection, name, alias, current.version)
            if not previous:
                raise StoreRefusal(
                    f"cannot roll back model {name!r} alias {alias!r}: "
                    f"version {current.version!r} has no previous version"
                )
            if to_version is not None and previous != to_version:
                raise ConcurrentUpdateError(
                    f"a rollback of alias {alias!r} of model {name!r} would now restore {previous!r}, not "
                    f"{to_version!r}{_describe_change(last)}"
                )
            revocation = _standing_revocation(connection, name, alias, previous)
            if revocation is not None:
                raise StoreRefusal(
                    f"a rollback of alias {alias!r} of model {name!r} would restore {previous!r}, which was "
                    f"revoked from it{_describe_change(revocation)}; it returns only through a new "
                    "passing gate run and a promotion"
                )
            return _swap(
                connection, pk, name, alias, current, previous, "rolled_back", {"revokes": current.version}
            )

    def revert_promotion(self, identity: RunIdentity, promotion: Promotion) -> None:
        """Undo ``promotion`` (e.g. when its deployment failed): the alias returns to its previous version.

        The alias is removed if it had no previous version. Raises ConcurrentUpdateError if the alias
        moved again since.
        """
        name, alias = promotion.model_name, promotion.alias
        with self.engine.begin() as connection:
            _lock_alias(connection, name, alias)
            pk = run_pk(connection, identity)
            current = _alias_row(connection, name, alias)
            if current is None or current.version != promotion.version:
                change = _describe_change(_last_alias_change(connection, name, alias))
                raise ConcurrentUpdateError(
                    f"cannot revert the promotion of model {name!r} version {promotion.version!r}: "
                    f"alias {alias!r} changed since{change}"
                )
            _swap(connection, pk, name, alias, current, promotion.previous_version, "promotion_reverted", {})

    def events(self, name: str) -> list[dict]:
        """The model's event log in store revision order, each with the run that wrote it."""
        e, r = schema.model_events, schema.runs
        query = (
            select(e, r.c.dag_id, r.c.run_id, r.c.task_id, r.c.map_index)
            .outerjoin(r, e.c.run_pk == r.c.id)
            .where(e.c.model_name == name)
            .order_by(e.c.revision, e.c.id)
        )
        with read_connection(self.engine) as connection:
            return [
                {**dict(row), "detail": from_json(row["detail_json"])}
                for row in connection.execute(query).mappings()
            ]


# -- helpers (all run inside the caller's transaction) ------------------------------------------


def _lock_alias(connection: Connection, name: str, alias: str) -> None:
    """Serialise changes of one alias. SQLite: the write transaction already holds the file lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema() || ':' || :target))"),
            {"key": _ALIAS_LOCK_KEY, "target": f"{name}\x1f{alias}"},
        )


def _version_id(connection: Connection, name: str, version: str) -> int | None:
    m = schema.models
    return connection.execute(
        select(m.c.id).where(and_(m.c.name == name, m.c.version == version))
    ).scalar_one_or_none()


def _has_verdict(connection: Connection, model_id: int) -> bool:
    v, b = schema.verdicts, schema.blessings
    for table in (v, b):
        if connection.execute(select(table.c.id).where(table.c.model_id == model_id).limit(1)).first():
            return True
    return False


def _alias_row(connection: Connection, name: str, alias: str):
    a = schema.aliases
    return connection.execute(
        select(a.c.version, a.c.revision, a.c.run_pk).where(and_(a.c.model_name == name, a.c.alias == alias))
    ).first()


def _events_query():
    e, r = schema.model_events, schema.runs
    return select(
        e.c.event,
        e.c.version,
        e.c.previous_version,
        e.c.revision,
        e.c.run_pk,
        e.c.at,
        r.c.run_id,
        r.c.task_id,
    ).outerjoin(r, e.c.run_pk == r.c.id)


def _last_alias_change(connection: Connection, name: str, alias: str):
    e = schema.model_events
    query = _events_query().where(
        and_(e.c.model_name == name, e.c.alias == alias, e.c.event.in_(_ALIAS_CHANGES))
    )
    return connection.execute(query.order_by(e.c.revision.desc(), e.c.id.desc()).limit(1)).first()


def _own_change(connection: Connection, pk: int, name: str, alias: str, event: str, version: str | None):
    """The latest ``event`` this task instance made on the alias (any try), if any."""
    e = schema.model_events
    condition = and_(e.c.model_name == name, e.c.alias == alias, e.c.event == event, e.c.run_pk == pk)
    if version is not None:
        condition = and_(condition, e.c.version == version)
    query = _events_query().where(condition).order_by(e.c.revision.desc(), e.c.id.desc()).limit(1)
    return connection.execute(query).first()


def _describe_change(change) -> str:
    if change is None:
        return ""
    when = as_utc(change.at)
    verb = {"promoted": "promoted", "rolled_back": "rolled back to", "promotion_reverted": "reverted to"}
    return (
        f" (store revision {change.revision}: run {change.run_id!r} task {change.task_id!r} "
        f"{verb.get(change.event, change.event)} {change.version or None!r} at "
        f"{when.isoformat() if when else 'an unknown time'})"
    )


def _refuse_shared_gate_name(
    connection: Connection, identity: RunIdentity, pk: int, model_id: int, alias: str, gate: str
) -> None:
    """Refuse a gate name another task of the same DAG run already judged this version with.

    Two gates sharing one name would hide each other's verdicts (the latest would win).
    """
    v, r = schema.verdicts, schema.runs
    other = connection.execute(
        select(r.c.task_id, r.c.map_index)
        .join(v, v.c.run_pk == r.c.id)
        .where(
            and_(
                v.c.model_id == model_id,
                v.c.alias == alias,
                v.c.gate_name == gate,
                v.c.run_pk != pk,
                r.c.dag_id == identity.dag_id,
                r.c.run_id == identity.run_id,
            )
        )
        .limit(1)
    ).first()
    if other is not None:
        raise StoreRefusal(
            f"gate name {gate!r} of task {identity.task_id!r} is already used by task {other.task_id!r} "
            f"in run {identity.run_id!r} for this version and alias {alias!r}; give each gate its own "
            "gate_name, or a passing gate would hide a failing one"
        )


def _reverted_by_itself(mine, last, pk: int) -> bool:
    """Whether the task's own rollback ``mine`` was undone by the task itself (its deployment failed)."""
    return (
        last is not None
        and last.event == "promotion_reverted"
        and last.run_pk == pk
        and last.revision > mine.revision
        and last.version == (mine.previous_version or "")
    )


def _standing_revocation(connection: Connection, name: str, alias: str, version: str):
    """The rollback that revoked ``version`` from ``alias``, unless a later promotion put it back or
    the rollback was itself undone (its deployment failed and the task restored ``version``)."""
    e = schema.model_events
    about = and_(
        e.c.model_name == name,
        e.c.alias == alias,
        or_(
            and_(e.c.event == "rolled_back", e.c.previous_version == version),
            and_(e.c.event.in_(("promoted", "promotion_reverted")), e.c.version == version),
        ),
    )
    latest = connection.execute(
        _events_query().where(about).order_by(e.c.revision.desc(), e.c.id.desc()).limit(1)
    ).first()
    return latest if latest is not None and latest.event == "rolled_back" else None


def _promoted_from(connection: Connection, name: str, alias: str, version: str) -> str | None:
    """The version ``alias`` held before the latest promotion of ``version`` onto it."""
    e = schema.model_events
    previous = connection.execute(
        select(e.c.previous_version)
        .where(
            and_(e.c.model_name == name, e.c.alias == alias, e.c.event == "promoted", e.c.version == version)
        )
        .order_by(e.c.revision.desc(), e.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return previous or None


def _verdict_rows(connection: Connection, condition, limit: int | None = None) -> list[Blessing]:
    m, v, r = schema.models, schema.verdicts, schema.runs
    query = (
        select(v, m.c.name, m.c.version, r.c.dag_id, r.c.run_id, r.c.task_id, r.c.map_index)
        .join(m, m.c.id == v.c.model_id)
        .join(r, r.c.id == v.c.run_pk)
        .where(condition)
        .order_by(v.c.revision.desc(), v.c.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        Blessing(
            model_name=row["name"],
            version=row["version"],
            passed=bool(row["passed"]),
            baseline_version=row["baseline_version"] or None,
            summary=from_json(row["summary_json"]) or {},
            created_at=as_utc(row["created_at"]),
            alias=row["alias"],
            kind=row["kind"],
            gate_name=row["gate_name"],
            spec_hash=row["spec_hash"],
            artifact_digest=row["artifact_digest"],
            revision=row["revision"],
            run=RunIdentity(row["dag_id"], row["run_id"], row["task_id"], row["map_index"]),
        )
        for row in connection.execute(query).mappings()
    ]


def _eligibility(
    connection: Connection, name: str, version: str, alias: str, kinds: tuple[str, ...]
) -> Eligibility:
    m, v, e = schema.models, schema.verdicts, schema.model_events
    model = connection.execute(
        select(m.c.id, m.c.artifact_digest).where(and_(m.c.name == name, m.c.version == version))
    ).first()
    if model is None:
        return Eligibility(name, version, alias, kinds, False, [f"version {version!r} is not registered"])
    revoked = connection.execute(
        _events_query()
        .where(
            and_(
                e.c.model_name == name,
                e.c.alias == alias,
                e.c.event == "rolled_back",
                e.c.previous_version == version,
            )
        )
        .order_by(e.c.revision.desc())
        .limit(1)
    ).first()
    since = revoked.revision if revoked is not None else 0
    verdicts = _verdict_rows(connection, and_(v.c.model_id == model.id, v.c.alias == alias))
    reasons: list[str] = []
    counted: list[Blessing] = []
    # A kind the promotion does not require is not needed, but its failure is never ignored.
    other_latest: dict[tuple[str, str], Blessing] = {}
    for verdict in verdicts:
        if verdict.kind not in kinds and verdict.revision > since:
            other_latest.setdefault((verdict.kind, verdict.gate_name), verdict)
    for (kind, gate), verdict in sorted(other_latest.items()):
        if not verdict.passed:
            reasons.append(
                f"its latest {kind!r} verdict of gate {gate!r} failed (a failing verdict blocks the "
                "promotion even when its kind is not required)"
            )
    for kind in kinds:
        latest: dict[str, Blessing] = {}
        for verdict in verdicts:  # newest first: the first of each gate name is its latest
            if verdict.kind == kind:
                latest.setdefault(verdict.gate_name, verdict)
        current = {gate: verdict for gate, verdict in latest.items() if verdict.revision > since}
        if not current:
            if latest:
                reasons.append(
                    f"its {kind!r} verdicts predate the rollback that revoked it from {alias!r}"
                    f"{_describe_change(revoked)}; it needs a new passing gate run"
                )
            else:
                reasons.append(
                    f"it has no {kind!r} gate verdict for alias {alias!r} "
                    "(run a gate on this exact version for this alias first)"
                )
            continue
        for gate, verdict in sorted(current.items()):
            counted.append(verdict)
            if not verdict.passed:
                reasons.append(f"its latest {kind!r} verdict of gate {gate!r} failed")
            elif model.artifact_digest and verdict.artifact_digest != model.artifact_digest:
                reasons.append(
                    f"gate {gate!r} judged another artifact ({verdict.artifact_digest or 'none'!r})"
                )
        stale = sorted(gate for gate, verdict in latest.items() if gate not in current)
        if stale and current:
            reasons.append(
                f"gate(s) {stale} of kind {kind!r} judged it only before the rollback that revoked it"
                f"{_describe_change(revoked)}"
            )
    return Eligibility(
        name,
        version,
        alias,
        kinds,
        eligible=not reasons,
        reasons=reasons,
        gates=counted,
        baseline_versions=sorted({g.baseline_version for g in counted}, key=lambda b: b or ""),
    )


def _swap(
    connection: Connection,
    pk: int,
    name: str,
    alias: str,
    current,
    new_version: str | None,
    event: str,
    detail: Mapping[str, Any],
) -> Promotion:
    """Move the alias (under its lock) from ``current`` to ``new_version`` (None: remove it); log it."""
    a = schema.aliases
    revision = next_revision(connection)
    where = and_(a.c.model_name == name, a.c.alias == alias)
    if new_version is None:
        connection.execute(a.delete().where(where))
    elif current is None:
        connection.execute(
            a.insert().values(
                model_name=name,
                alias=alias,
                version=new_version,
                revision=revision,
                run_pk=pk,
                updated_at=utcnow(),
            )
        )
    else:
        connection.execute(
            a.update()
            .where(where)
            .values(version=new_version, revision=revision, run_pk=pk, updated_at=utcnow())
        )
    previous = current.version if current is not None else None
    _log_event(
        connection,
        pk,
        name,
        new_version or "",
        event,
        alias=alias,
        previous_version=previous,
        detail=detail,
        revision=revision,
    )
    return Promotion(name, alias, new_version or "", previous, revision, changed=True)


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
    revision: int | None = None,
) -> None:
    connection.execute(
        schema.model_events.insert().values(
            model_name=name,
            version=version,
            event=event,
            alias=alias,
            previous_version=previous_version or "",
            run_pk=pk,
            detail_json=to_json(dict(detail or {}), "event detail"),
            at=utcnow(),
            revision=revision if revision is not None else next_revision(connection),
        )
    )


def _require_text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{what} must be a non-empty string, got {value!r}")


#: The longest name (model, version, alias, gate) the store's columns hold on every database.
MAX_NAME_LENGTH = 250
#: The longest gate kind the verdicts' ``kind`` column holds.
MAX_KIND_LENGTH = 32


def _require_name(value: Any, what: str, limit: int = MAX_NAME_LENGTH) -> None:
    """A name the store can hold as it is on SQLite and PostgreSQL alike, or StoreError naming it.

    PostgreSQL refuses longer values and NUL bytes with a raw database error (which a retry cannot
    fix) where SQLite would store them; control characters also make log lines and messages lie.
    """
    _require_text(value, what)
    if len(value) > limit:
        raise StoreError(f"{what} is {len(value)} characters long; at most {limit} fit the store")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise StoreError(f"{what} must not contain control characters, got {value!r}")


__all__ = [
    "CHAMPION",
    "DEFAULT_REQUIRED_KINDS",
    "GATE_KINDS",
    "Blessing",
    "Eligibility",
    "ModelRegistry",
    "ModelVersion",
    "Promotion",
    "check_gate_kinds",
    "register_gate_kind",
]

"""Tables of the metrics store (SQLAlchemy Core), as ``store.migrations`` creates and upgrades them.

The migrations hold the DDL; these definitions are what the code reads and writes through, and a
test checks that both agree.

Every record points at the run that wrote it: the Airflow task identity (dag_id, run_id, task_id,
map_index), never the try number, so a retried task overwrites its own record instead of adding one.
Text columns that take part in a uniqueness rule are NOT NULL with ``''`` for "none", because NULLs
are never equal in a unique constraint.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

_NAME = 250


def _text_key(name: str) -> Column:
    return Column(name, String(_NAME), nullable=False, server_default="")


schema_version = Table(
    "mlprod_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(_NAME), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "mlprod_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(_NAME), nullable=False),
    Column("run_id", String(_NAME), nullable=False),
    Column("task_id", String(_NAME), nullable=False),
    Column("map_index", Integer, nullable=False, server_default="-1"),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("dag_id", "run_id", "task_id", "map_index", name="uq_mlprod_runs_identity"),
)

metrics = Table(
    "mlprod_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(_NAME), nullable=False),
    Column("value", Float, nullable=False),
    _text_key("model_name"),
    _text_key("model_version"),
    _text_key("dataset"),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "run_pk", "name", "model_name", "model_version", "dataset", name="uq_mlprod_metrics_per_run"
    ),
)

validation_results = Table(
    "mlprod_validation_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="CASCADE"), nullable=False),
    _text_key("suite"),
    _text_key("dataset"),
    Column("success", Boolean, nullable=False),
    Column("evaluated", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("failed_critical", Integer, nullable=False),
    Column("failed_warning", Integer, nullable=False),
    Column("rows_checked", Integer),
    Column("summary_json", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_pk", "suite", "dataset", name="uq_mlprod_validation_per_run"),
)

drift_results = Table(
    "mlprod_drift_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="CASCADE"), nullable=False),
    _text_key("dataset"),
    Column("dataset_drift", Boolean, nullable=False),
    Column("share_drifted", Float, nullable=False),
    Column("summary_json", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_pk", "dataset", name="uq_mlprod_drift_per_run"),
)

drift_columns = Table(
    "mlprod_drift_columns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "drift_result_id", Integer, ForeignKey("mlprod_drift_results.id", ondelete="CASCADE"), nullable=False
    ),
    Column("column_name", String(_NAME), nullable=False),
    Column("test", String(_NAME), nullable=False),
    Column("statistic", Float),
    Column("threshold", Float),
    Column("drifted", Boolean, nullable=False),
    UniqueConstraint("drift_result_id", "column_name", name="uq_mlprod_drift_column"),
)

profiles = Table(
    "mlprod_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(_NAME), nullable=False),
    Column("profile_json", Text, nullable=False),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="SET NULL")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", name="uq_mlprod_profiles_name"),
)

models = Table(
    "mlprod_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(_NAME), nullable=False),
    Column("version", String(_NAME), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("metrics_json", Text, nullable=False, server_default="{}"),
    Column("training_data", Text, nullable=False, server_default=""),
    Column("status", String(32), nullable=False),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    _text_key("artifact_digest"),
    UniqueConstraint("name", "version", name="uq_mlprod_models_version"),
)

blessings = Table(
    "mlprod_blessings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("mlprod_models.id", ondelete="CASCADE"), nullable=False),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="CASCADE"), nullable=False),
    Column("passed", Boolean, nullable=False),
    _text_key("baseline_version"),
    Column("summary_json", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_id", "run_pk", name="uq_mlprod_blessings_per_run"),
)

verdicts = Table(
    "mlprod_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("mlprod_models.id", ondelete="CASCADE"), nullable=False),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(_NAME), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("gate_name", String(_NAME), nullable=False),
    Column("passed", Boolean, nullable=False),
    _text_key("baseline_version"),
    Column("spec_hash", String(80), nullable=False, server_default=""),
    _text_key("artifact_digest"),
    Column("summary_json", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_id", "run_pk", "alias", "gate_name", name="uq_mlprod_verdicts_per_run"),
)

revision_sequence = Table(
    "mlprod_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", Integer, nullable=False),
)

profile_versions = Table(
    "mlprod_profile_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(_NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("profile_json", Text, nullable=False),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="SET NULL")),
    Column("as_of", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version", name="uq_mlprod_profile_versions"),
)

store_info = Table(
    "mlprod_store_info",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(_NAME), nullable=False),
)

aliases = Table(
    "mlprod_aliases",
    metadata,
    Column("model_name", String(_NAME), primary_key=True),
    Column("alias", String(_NAME), primary_key=True),
    Column("version", String(_NAME), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="SET NULL")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

model_events = Table(
    "mlprod_model_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(_NAME), nullable=False),
    Column("version", String(_NAME), nullable=False),
    Column("event", String(32), nullable=False),
    _text_key("alias"),
    _text_key("previous_version"),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="SET NULL")),
    Column("detail_json", Text, nullable=False, server_default="{}"),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("revision", Integer, nullable=False, server_default="0"),
)

alert_suppressions = Table(
    "mlprod_alert_suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(_NAME), nullable=False),
    Column("channel", String(_NAME), nullable=False),
    Column("suppressed_at", DateTime(timezone=True), nullable=False),
    Index("ix_mlprod_alert_suppressions_key", "dedup_key", "channel", "suppressed_at"),
)

alert_deliveries = Table(
    "mlprod_alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(_NAME), nullable=False),
    Column("channel", String(_NAME), nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text, nullable=False, server_default=""),
    Column("run_pk", Integer, ForeignKey("mlprod_runs.id", ondelete="SET NULL")),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Index("ix_mlprod_alert_deliveries_key", "dedup_key", "channel", "sent_at"),
)

alert_claims = Table(
    "mlprod_alert_claims",
    metadata,
    Column("dedup_key", String(_NAME), primary_key=True),
    Column("channel", String(_NAME), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=False),
)

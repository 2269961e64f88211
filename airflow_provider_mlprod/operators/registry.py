"""Model registry operators: register a version, promote it to an alias, roll an alias back.

Promotion and rollback emit an Airflow Asset event on ``mlprod://models/<name>`` with the new
version in its extra, so downstream DAGs can be scheduled on a new champion.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.assets import add_outlet, model_asset
from airflow_provider_mlprod.operators.metrics_input import MetricsSource
from airflow_provider_mlprod.operators.outcome import final_errors_fail_the_task
from airflow_provider_mlprod.operators.run_context import run_identity
from airflow_provider_mlprod.store.registry import CHAMPION

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.operators.deployment import DeploymentAction
    from airflow_provider_mlprod.store.identity import RunIdentity
    from airflow_provider_mlprod.store.registry import ModelRegistry, Promotion


class _RegistryOperator(BaseOperator):
    """Shared: the store connection and the registry."""

    ui_color = "#9ad1d4"

    def __init__(self, *, store_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store_conn_id = store_conn_id

    @cached_property
    def store_hook(self) -> MetricsStoreHook:
        """The metrics store."""
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        return MetricsStoreHook(store_conn_id=self.store_conn_id)

    def registry(self) -> ModelRegistry:
        """The model registry in the store."""
        return self.store_hook.registry()

    def _emit_model_event(self, context: Context, promotion: Promotion) -> None:
        asset = model_asset(promotion.model_name)
        if any(getattr(outlet, "uri", None) == asset.uri for outlet in self.outlets):
            context["outlet_events"][asset].extra = promotion.to_dict()


class RegisterModelOperator(_RegistryOperator):
    """Register a model version: name, version, artifact URI, metrics and training data reference.

    A retry of the task updates its own registration; a version registered by another run is never
    overwritten (versions are immutable). Metrics come from at most one of ``metrics``,
    ``metrics_task_id``, ``metrics_file`` or ``metrics_sql`` (see ModelMetricsGateOperator).

    :param model_name: the model.
    :param model_version: the version (templated), e.g. ``{{ run_id }}`` or a training run id.
    :param artifact_uri: where the artifact is: any ObjectStoragePath URI (templated).
    :param training_data: a reference to the training data (URI, table, snapshot id; templated).
    :param check_artifact_exists: fail when the artifact is not there (default True).
    """

    template_fields: Sequence[str] = (
        "model_name",
        "model_version",
        "artifact_uri",
        "training_data",
        "metrics_source",
    )
    template_ext: Sequence[str] = (".sql",)

    def __init__(
        self,
        *,
        model_name: str,
        model_version: str,
        artifact_uri: str,
        training_data: str = "",
        metrics: Any = None,
        metrics_task_id: str | None = None,
        metrics_xcom_key: str = "return_value",
        metrics_file: str | None = None,
        metrics_sql: str | None = None,
        sql_conn_id: str | None = None,
        metrics_key: str | None = None,
        check_artifact_exists: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.metrics_source = MetricsSource(
            metrics=metrics,
            metrics_task_id=metrics_task_id,
            metrics_xcom_key=metrics_xcom_key,
            metrics_file=metrics_file,
            metrics_sql=metrics_sql,
            sql_conn_id=sql_conn_id,
            metrics_key=metrics_key,
        ).check(self.task_id, allow_none=True)
        self.model_name = model_name
        self.model_version = model_version
        self.artifact_uri = artifact_uri
        self.training_data = training_data
        self.check_artifact_exists = check_artifact_exists

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        with final_errors_fail_the_task():
            artifact = ObjectStoragePath(self.artifact_uri)
            if self.check_artifact_exists and not artifact.exists():
                from airflow_provider_mlprod.exceptions import InputDataError

                raise InputDataError(
                    f"artifact of model {self.model_name!r} version {self.model_version!r} "
                    f"not found at {self.artifact_uri}"
                )
            metrics = self.metrics_source.read(context)[0] if self.metrics_source.given else {}
            model = self.registry().register(
                run_identity(context),
                name=self.model_name,
                version=str(self.model_version),
                artifact_uri=str(self.artifact_uri),
                metrics=metrics,
                training_data=str(self.training_data or ""),
            )
        self.log.info("Registered model %r version %r at %s", model.name, model.version, model.artifact_uri)
        return model.to_dict()


class _AliasOperator(_RegistryOperator):
    """Shared by promotion and rollback: move an alias, deploy, announce."""

    template_fields: Sequence[str] = ("deployment",)

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = CHAMPION,
        deployment: DeploymentAction | None = None,
        **kwargs: Any,
    ) -> None:
        add_outlet(kwargs, model_asset(model_name))
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias
        self.deployment = deployment

    def _move_alias(self, registry: ModelRegistry, identity: RunIdentity) -> Promotion:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        identity = run_identity(context)
        with final_errors_fail_the_task():
            registry = self.registry()
            promotion = self._move_alias(registry, identity)
        self.log.info(
            "Alias %r of model %r: %s -> %s",
            self.alias,
            self.model_name,
            promotion.previous_version,
            promotion.version,
        )
        summary: dict[str, Any] = promotion.to_dict()
        if self.deployment is not None:
            model = registry.get_version(self.model_name, promotion.version)
            try:
                summary["deployment"] = self.deployment.deploy(model, context)
            except Exception as exc:
                from airflow.sdk.exceptions import AirflowFailException

                failure = (
                    f"deployment of model {self.model_name!r} version {promotion.version!r} failed "
                    f"({type(exc).__name__}: {exc})"
                )
                if not promotion.owned:
                    raise AirflowFailException(
                        f"{failure}; alias {self.alias!r} was not moved by this task"
                    ) from exc
                try:
                    registry.revert_promotion(identity, promotion)
                except Exception as revert_error:
                    raise AirflowFailException(
                        f"{failure}; alias {self.alias!r} still points at {promotion.version!r}: "
                        f"restoring {promotion.previous_version!r} failed ({type(revert_error).__name__})"
                    ) from exc
                raise AirflowFailException(
                    f"{failure}; alias {self.alias!r} restored to {promotion.previous_version!r}"
                ) from exc
        self._emit_model_event(context, promotion)
        return summary


class PromoteModelOperator(_AliasOperator):
    """Point an alias (``champion``) at a model version that passed its gate, then deploy it.

    The alias moves only if this exact version's latest gate verdict passed, and only while the
    alias still points at the champion that gate compared against (compare-and-swap): if another
    promotion happened in between, the task fails instead of overwriting it. Once the alias is
    secured the deployment action runs; if it fails, the promotion is reverted and the task fails.
    Emits an Asset event on ``mlprod://models/<model_name>`` carrying the version.

    :param model_name: the model (not templated: it names the Asset).
    :param model_version: the version to promote (templated).
    :param alias: the alias to move (default ``champion``).
    :param deployment: an optional deployment action (see ``operators.deployment``); its own
        ``template_fields`` are rendered too.
    """

    template_fields: Sequence[str] = ("model_version", "deployment")

    def __init__(self, *, model_version: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_version = model_version

    def _move_alias(self, registry: ModelRegistry, identity: RunIdentity) -> Promotion:
        return registry.promote(
            identity, name=self.model_name, version=str(self.model_version), alias=self.alias
        )


class RollbackModelOperator(_AliasOperator):
    """Point an alias back at the version it held before its current version was promoted.

    The deployment action, if any, runs for the restored version (and the rollback is undone if it
    fails). Emits an Asset event on ``mlprod://models/<model_name>`` carrying the restored version.

    :param model_name: the model (not templated: it names the Asset).
    :param alias: the alias to roll back (default ``champion``).
    :param deployment: an optional deployment action run for the restored version.
    """

    def _move_alias(self, registry: ModelRegistry, identity: RunIdentity) -> Promotion:
        return registry.rollback(identity, name=self.model_name, alias=self.alias)

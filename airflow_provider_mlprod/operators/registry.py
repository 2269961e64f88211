"""Model registry operators: register a version, promote it to an alias, roll an alias back.

Registration pins the artifact's content digest; promotion and rollback check it before moving the
alias and deploying, and refuse an artifact that changed. Promotion and rollback emit an Airflow
Asset event on ``mlprod://models/<name>`` with the new version in its extra, so downstream DAGs can
be scheduled on a new champion. Every summary names the store it used (``store_id``, ``store``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.assets import add_outlet, model_asset
from airflow_provider_mlprod.operators.metrics_input import MetricsSource
from airflow_provider_mlprod.operators.outcome import final_errors_fail_the_task
from airflow_provider_mlprod.operators.run_context import run_identity
from airflow_provider_mlprod.store.registry import CHAMPION, DEFAULT_REQUIRED_KINDS

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

    def store_summary(self) -> dict[str, str]:
        """Which store this task uses (id and location, no secret), logged and put in the summary."""
        described = self.store_hook.describe()
        self.log.info("Using metrics store %s (store id %s)", described["store"], described["store_id"])
        return described

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
    :param pin_artifact: record the artifact's content digest (sha256, streamed), which promotion and
        rollback verify before deploying (default True; needs the artifact to be readable).
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
        metrics_sql_parameters: Mapping[str, Any] | None = None,
        metrics_sql_hook_params: Mapping[str, Any] | None = None,
        sql_conn_id: str | None = None,
        metrics_key: str | None = None,
        check_artifact_exists: bool = True,
        pin_artifact: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pin_artifact = pin_artifact
        self.metrics_source = MetricsSource(
            metrics=metrics,
            metrics_task_id=metrics_task_id,
            metrics_xcom_key=metrics_xcom_key,
            metrics_file=metrics_file,
            metrics_sql=metrics_sql,
            metrics_sql_parameters=metrics_sql_parameters,
            metrics_sql_hook_params=metrics_sql_hook_params,
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

        from airflow_provider_mlprod.store.artifacts import artifact_digest

        with final_errors_fail_the_task():
            store = self.store_summary()
            artifact = ObjectStoragePath(self.artifact_uri)
            if (self.check_artifact_exists or self.pin_artifact) and not artifact.exists():
                from airflow_provider_mlprod.exceptions import InputDataError

                raise InputDataError(
                    f"artifact of model {self.model_name!r} version {self.model_version!r} "
                    f"not found at {self.artifact_uri}"
                )
            digest = artifact_digest(artifact) if self.pin_artifact else ""
            metrics = self.metrics_source.read(context)[0] if self.metrics_source.given else {}
            model = self.registry().register(
                run_identity(context),
                name=self.model_name,
                version=str(self.model_version),
                artifact_uri=str(self.artifact_uri),
                metrics=metrics,
                training_data=str(self.training_data or ""),
                artifact_digest=digest,
            )
        self.log.info(
            "Registered model %r version %r at %s (%s)",
            model.name,
            model.version,
            model.artifact_uri,
            model.artifact_digest or "digest not pinned",
        )
        return {**model.to_dict(), **store}


class _AliasOperator(_RegistryOperator):
    """Shared by promotion and rollback: move an alias, deploy, announce."""

    template_fields: Sequence[str] = ("deployment",)

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = CHAMPION,
        deployment: DeploymentAction | None = None,
        verify_artifact: bool = True,
        **kwargs: Any,
    ) -> None:
        add_outlet(kwargs, model_asset(model_name))
        super().__init__(**kwargs)
        self.model_name = model_name
        self.alias = alias
        self.deployment = deployment
        self.verify_artifact = verify_artifact

    def _target_version(self, registry: ModelRegistry) -> str | None:
        """The version the alias will point at (None: there is none to move to)."""
        raise NotImplementedError

    def _move_alias(self, registry: ModelRegistry, identity: RunIdentity, target: str | None) -> Promotion:
        raise NotImplementedError

    def _check_artifact(self, registry: ModelRegistry, version: str) -> None:
        """Refuse an artifact whose content no longer matches the digest pinned at registration."""
        model = registry.get_version(self.model_name, version)
        if not model.artifact_digest:
            self.log.warning(
                "Model %r version %r was registered without an artifact digest; not verified",
                self.model_name,
                version,
            )
            return
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mlprod.store.artifacts import check_artifact_digest

        check_artifact_digest(
            ObjectStoragePath(model.artifact_uri),
            model.artifact_digest,
            f"model {self.model_name!r} version {version!r}",
        )

    def _summary_extra(self) -> dict[str, Any]:
        return {}

    def execute(self, context: Context) -> dict[str, Any]:
        identity = run_identity(context)
        with final_errors_fail_the_task():
            store = self.store_summary()
            registry = self.registry()
            target = self._target_version(registry)
            if self.verify_artifact and target is not None:
                self._check_artifact(registry, target)
            promotion = self._move_alias(registry, identity, target)
        self.log.info(
            "Alias %r of model %r: %s -> %s (store revision %s)",
            self.alias,
            self.model_name,
            promotion.previous_version,
            promotion.version,
            promotion.revision,
        )
        summary: dict[str, Any] = {**promotion.to_dict(), **self._summary_extra(), **store}
        if self.deployment is not None:
            model = registry.get_version(self.model_name, promotion.version)
            try:
                summary["deployment"] = _deploy(self.deployment, model, context, promotion)
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
    :param require: the gate kinds this alias requires (default ``["metrics"]``): every gate of each
        kind that judged this version for this alias must have passed in its latest verdict.
    :param approved_by: who approved the promotion (templated, e.g. from an approval task's XCom);
        recorded with the promotion.
    :param approved: the approval's outcome (templated, e.g. from an approval task's XCom); when
        given, anything but true fails the task without moving the alias, so clearing the promotion
        after a human rejected it does not promote. ``None`` (default): no approval step.
    :param verify_artifact: check the artifact's digest against the one pinned at registration
        before moving the alias (default True).
    """

    template_fields: Sequence[str] = ("model_version", "deployment", "approved_by", "approved")

    def __init__(
        self,
        *,
        model_version: str,
        require: Sequence[str] = DEFAULT_REQUIRED_KINDS,
        approved_by: str | None = None,
        approved: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_mlprod.exceptions import StoreError
        from airflow_provider_mlprod.store.registry import check_gate_kinds

        try:
            self.require = list(check_gate_kinds(require, "required gate kind"))
        except StoreError as exc:
            raise ValueError(f"task {self.task_id!r}: {exc}") from None
        self.model_version = model_version
        self.approved_by = approved_by
        self.approved = approved

    def _target_version(self, registry: ModelRegistry) -> str | None:
        if self.approved is not None and str(self.approved).strip().lower() != "true":
            from airflow_provider_mlprod.exceptions import StoreRefusal

            raise StoreRefusal(
                f"refusing to promote model {self.model_name!r} version {self.model_version!r} to "
                f"{self.alias!r}: its approval did not approve it (approved={str(self.approved)!r})"
            )
        return str(self.model_version)

    def _summary_extra(self) -> dict[str, Any]:
        return {"require": list(self.require), "approved_by": self.approved_by or None}

    def _move_alias(self, registry: ModelRegistry, identity: RunIdentity, target: str | None) -> Promotion:
        return registry.promote(
            identity,
            name=self.model_name,
            version=str(self.model_version),
            alias=self.alias,
            require=self.require,
            approved_by=str(self.approved_by) if self.approved_by else None,
        )


class RollbackModelOperator(_AliasOperator):
    """Point an alias back at the version it held before its current version was promoted.

    The deployment action, if any, runs for the restored version (and the rollback is undone if it
    fails). Emits an Asset event on ``mlprod://models/<model_name>`` carrying the restored version.

    :param model_name: the model (not templated: it names the Asset).
    :param alias: the alias to roll back (default ``champion``).
    :param deployment: an optional deployment action run for the restored version.
    :param verify_artifact: check the restored version's artifact against its pinned digest first.

    The rolled-back version is revoked for the alias: it returns only through a new passing gate run.
    """

    def _target_version(self, registry: ModelRegistry) -> str | None:
        return registry.rollback_target(self.model_name, self.alias)

    def _move_alias(self, registry: ModelRegistry, identity: RunIdentity, target: str | None) -> Promotion:
        return registry.rollback(identity, name=self.model_name, alias=self.alias, to_version=target)


def _deploy(action: DeploymentAction, model: Any, context: Context, promotion: Promotion) -> dict[str, Any]:
    """Run a deployment action, giving it the promotion when its ``deploy`` accepts one."""
    import inspect

    try:
        accepts = "promotion" in inspect.signature(action.deploy).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts:
        return action.deploy(model, context, promotion=promotion)
    return action.deploy(model, context)

"""Deployment actions run by PromoteModelOperator once the alias is secured.

A deployment action is any object with ``deploy(model, context) -> dict`` (the dict, JSON-safe, goes
into the promotion's XCom summary); when its ``deploy`` also takes a ``promotion`` keyword, it gets
the alias change it deploys (alias, version, store revision). Two are provided: copy the artifact to
a serving location, and call a deploy webhook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_mlprod.alerts.channels import IDEMPOTENCY_HEADER  # noqa: F401 (the header it sends)
from airflow_provider_mlprod.exceptions import DeliveryError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.store.registry import ModelVersion


class DeploymentAction(Protocol):
    """Deploys a promoted model version."""

    def deploy(self, model: ModelVersion, context: Context) -> dict[str, Any]:
        """Deploy ``model``; return a JSON-safe description of what was done."""
        ...


class CopyArtifactDeployment:
    """Copy the model artifact (a file or a folder) to a serving location.

    When the version has a pinned digest, the copy is checked against it before it replaces what is
    served: an artifact changed after the promotion checked it (a reused URI overwritten meanwhile)
    is refused and the serving location keeps its current content.

    :param destination: any ObjectStoragePath URI (``file://``, ``s3://``, ...); the artifact is
        copied to exactly this path, replacing what is there. Templated.
    """

    template_fields = ("destination",)

    def __init__(self, destination: str) -> None:
        self.destination = destination

    def deploy(self, model: ModelVersion, context: Context) -> dict[str, Any]:
        """Copy to a staging path next to the destination, then swap it in; the old copy is restored
        if the swap fails, so the serving location never holds a half-written artifact."""
        import uuid

        from airflow.sdk import ObjectStoragePath

        source = ObjectStoragePath(model.artifact_uri)
        destination = ObjectStoragePath(self.destination)
        if not source.exists():
            raise FileNotFoundError(
                f"artifact of model {model.name!r} version {model.version!r} "
                f"not found at {model.artifact_uri}"
            )
        token = uuid.uuid4().hex[:12]
        staging = destination.parent / f".{destination.name}.staging-{token}"
        backup = destination.parent / f".{destination.name}.previous-{token}"
        destination.parent.mkdir(parents=True, exist_ok=True)
        recursive = source.is_dir()
        try:
            source.copy(staging, recursive=recursive)
            if model.artifact_digest:
                from airflow_provider_mlprod.store.artifacts import check_artifact_digest

                check_artifact_digest(
                    staging,
                    model.artifact_digest,
                    f"model {model.name!r} version {model.version!r}",
                    shown_as=model.artifact_uri,
                )
        except BaseException:
            _remove(staging)
            raise
        had_previous = destination.exists()
        if had_previous:
            destination.move(backup, recursive=destination.is_dir())
        try:
            staging.move(destination, recursive=recursive)
        except BaseException:
            _remove(staging)
            if had_previous:
                backup.move(destination, recursive=backup.is_dir())
            raise
        if had_previous:
            _remove(backup)
        return {"action": "copy_artifact", "destination": self.destination}


def _remove(path: Any) -> None:
    """Delete a file or folder if it exists."""
    if not path.exists():
        return
    if path.is_dir():
        path.rmdir(recursive=True)
    else:
        path.unlink()


class WebhookDeployment:
    """POST ``{"model", "version", "artifact_uri", "artifact_digest", "alias", "revision"}`` to a deploy
    webhook, with an ``Idempotency-Key`` header.

    The alias is the one the promotion or rollback moved. The key is the same for every attempt and
    every task retry that deploys the same alias change (model, alias, version, store revision), so the
    receiver can drop duplicates; a new alias change gets a new key.

    :param conn_id: an ``mlprodwebhook`` connection (URL in its password, optional signing secret);
        the request is signed and retried like an alert.
    :param alias: the alias reported when the action is called without a promotion (default
        ``champion``).
    """

    template_fields = ("conn_id",)

    def __init__(self, conn_id: str, alias: str = "champion") -> None:
        self.conn_id = conn_id
        self.alias = alias

    def deploy(self, model: ModelVersion, context: Context, promotion: Any = None) -> dict[str, Any]:
        import hashlib
        import json

        from airflow_provider_mlprod.alerts.channels import signed_headers
        from airflow_provider_mlprod.alerts.delivery import post_with_retries
        from airflow_provider_mlprod.hooks.alert_channels import JsonWebhookChannelHook

        hook = JsonWebhookChannelHook(self.conn_id)
        alias = promotion.alias if promotion is not None else self.alias
        revision = promotion.revision if promotion is not None else None
        body = {
            "model": model.name,
            "version": model.version,
            "artifact_uri": model.artifact_uri,
            "artifact_digest": model.artifact_digest,
            "alias": alias,
            "revision": revision,
        }
        identity = json.dumps([model.name, alias, model.version, revision, model.artifact_digest])
        key = hashlib.sha256(identity.encode()).hexdigest()
        target = hook.get_target()
        payload = json.dumps(body, sort_keys=True).encode()
        result = post_with_retries(
            channel=self.conn_id,
            kind="deploy_webhook",
            url=target.url,
            body=payload,
            headers=lambda: signed_headers(target, payload, key),
            secrets=[target.signing_secret, *target.headers.values()],
            policy=hook.get_retry_policy(),
        )
        if result.status != "delivered":
            raise DeliveryError(f"deploy webhook {self.conn_id!r} failed: {result.error}")
        return {
            "action": "webhook",
            "conn_id": self.conn_id,
            "alias": alias,
            "idempotency_key": key,
            "status_code": result.status_code,
        }

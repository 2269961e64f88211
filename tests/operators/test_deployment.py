"""Deployment actions: copy an artifact (file or folder) and call a signed deploy webhook."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from airflow_provider_mlprod.alerts.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature
from airflow_provider_mlprod.exceptions import DeliveryError
from airflow_provider_mlprod.operators.deployment import CopyArtifactDeployment, WebhookDeployment
from airflow_provider_mlprod.store.registry import ModelVersion

SECRET = "deploy-signing-SECRET-123"


def model(artifact_uri: str) -> ModelVersion:
    return ModelVersion("churn", "7", artifact_uri, {}, "", "blessed", datetime.now(timezone.utc))


def test_copy_file_and_folder(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"weights")
    result = CopyArtifactDeployment(f"file://{tmp_path}/serving/current.pkl").deploy(
        model(str(tmp_path / "model.pkl")), {}
    )
    assert result["action"] == "copy_artifact"
    assert (tmp_path / "serving" / "current.pkl").read_bytes() == b"weights"

    folder = tmp_path / "saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "v.bin").write_bytes(b"v1")
    CopyArtifactDeployment(f"file://{tmp_path}/serving/folder").deploy(model(f"file://{folder}"), {})
    (folder / "variables" / "v.bin").write_bytes(b"v2")
    CopyArtifactDeployment(f"file://{tmp_path}/serving/folder").deploy(model(f"file://{folder}"), {})
    assert (tmp_path / "serving" / "folder" / "variables" / "v.bin").read_bytes() == b"v2"


def test_missing_artifact_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="artifact of model 'churn' version '7' not found"):
        CopyArtifactDeployment(str(tmp_path / "out")).deploy(model(str(tmp_path / "absent.pkl")), {})


def test_webhook_deployment_is_signed_and_failures_hide_the_url(monkeypatch, httpserver):
    httpserver.expect_request("/deploy", method="POST").respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEPLOY_HOOK",
        json.dumps(
            {
                "conn_type": "mlprod_webhook",
                "password": httpserver.url_for("/deploy"),
                "extra": {"signing_secret": SECRET, "timeout": 2},
            }
        ),
    )
    result = WebhookDeployment("deploy_hook").deploy(model("s3://m/7.pkl"), {})
    assert result.pop("idempotency_key")
    assert result == {"action": "webhook", "conn_id": "deploy_hook", "alias": "champion", "status_code": 200}
    request, _ = httpserver.log[0]
    assert request.get_json() == {
        "alias": "champion",
        "artifact_uri": "s3://m/7.pkl",
        "artifact_digest": "",
        "model": "churn",
        "version": "7",
        "revision": None,
    }
    expected = compute_signature(SECRET, request.headers[TIMESTAMP_HEADER], request.get_data())
    assert request.headers[SIGNATURE_HEADER] == expected

    httpserver.clear()
    httpserver.expect_request("/deploy").respond_with_data("bad", status=400)
    with pytest.raises(DeliveryError, match="deploy webhook 'deploy_hook' failed") as info:
        WebhookDeployment("deploy_hook").deploy(model("s3://m/7.pkl"), {})
    assert httpserver.url_for("/deploy") not in str(info.value)
    assert SECRET not in str(info.value)


def test_a_failed_swap_keeps_the_deployed_artifact(tmp_path, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    serving = tmp_path / "serving" / "model.pkl"
    serving.parent.mkdir()
    serving.write_bytes(b"v1")
    (tmp_path / "v2.pkl").write_bytes(b"v2")
    real_move = ObjectStoragePath.move

    def failing_move(self, path, recursive=False, **kwargs):
        if ".staging-" in self.name:
            raise OSError("disk full")
        return real_move(self, path, recursive=recursive, **kwargs)

    monkeypatch.setattr(ObjectStoragePath, "move", failing_move)
    with pytest.raises(OSError, match="disk full"):
        CopyArtifactDeployment(f"file://{serving}").deploy(model(str(tmp_path / "v2.pkl")), {})
    assert serving.read_bytes() == b"v1"
    assert sorted(p.name for p in serving.parent.iterdir()) == ["model.pkl"]  # no staging or backup left


def test_a_failed_copy_keeps_the_deployed_artifact(tmp_path, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    serving = tmp_path / "serving" / "model.pkl"
    serving.parent.mkdir()
    serving.write_bytes(b"v1")
    (tmp_path / "v2.pkl").write_bytes(b"v2")
    monkeypatch.setattr(
        ObjectStoragePath, "copy", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("read error"))
    )
    with pytest.raises(OSError, match="read error"):
        CopyArtifactDeployment(f"file://{serving}").deploy(model(str(tmp_path / "v2.pkl")), {})
    assert serving.read_bytes() == b"v1"


def test_webhook_deployment_sends_the_promotions_alias_and_one_key_per_alias_change(monkeypatch, httpserver):
    from airflow_provider_mlprod.operators.deployment import IDEMPOTENCY_HEADER
    from airflow_provider_mlprod.store.registry import Promotion

    monkeypatch.setenv(
        "AIRFLOW_CONN_DEPLOY_HOOK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for("/deploy")}),
    )
    # the first attempt fails with a 503 and is retried: both attempts carry the same key
    httpserver.expect_ordered_request("/deploy").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/deploy").respond_with_data("ok")
    challenger = Promotion("churn", "challenger", "7", "6", revision=41, changed=True)
    first = WebhookDeployment("deploy_hook").deploy(model("s3://m/7.pkl"), {}, promotion=challenger)
    (request_1, _), (request_2, _) = httpserver.log[:2]
    assert request_1.get_json()["alias"] == "challenger"
    assert request_1.get_json()["revision"] == 41
    assert (
        request_1.headers[IDEMPOTENCY_HEADER]
        == request_2.headers[IDEMPOTENCY_HEADER]
        == first["idempotency_key"]
    )
    # a task retry deploying the same alias change sends the same key; another change a new one
    httpserver.clear()
    httpserver.expect_request("/deploy").respond_with_data("ok")
    again = WebhookDeployment("deploy_hook").deploy(model("s3://m/7.pkl"), {}, promotion=challenger)
    later = Promotion("churn", "challenger", "7", "8", revision=57, changed=True)
    other = WebhookDeployment("deploy_hook").deploy(model("s3://m/7.pkl"), {}, promotion=later)
    assert again["idempotency_key"] == first["idempotency_key"] != other["idempotency_key"]

"""Airflow's own CLI sees the provider: providers list, hooks, and the [mlprod] config section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def airflow_cli(*args: str, home: Path) -> str:
    airflow = Path(sys.executable).with_name("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    return subprocess.run([str(airflow), *args], capture_output=True, text=True, env=env, check=True).stdout


def test_providers_list_hooks_and_config(tmp_path):
    providers = json.loads(airflow_cli("providers", "list", "-o", "json", home=tmp_path))
    (mine,) = [p for p in providers if p["package_name"] == "airflow-provider-mlprod"]
    assert mine["version"]

    hooks = json.loads(airflow_cli("providers", "hooks", "-o", "json", home=tmp_path))
    mlprod_hooks = {
        h["connection_type"]: h["class"] for h in hooks if h["package_name"] == "airflow-provider-mlprod"
    }
    assert set(mlprod_hooks) == {
        "mlprodstore",
        "mlprodslack",
        "mlprodteams",
        "mlprodwebhook",
        "mlprodpagerduty",
        "mlprodduckdb",
    }

    notifications = json.loads(airflow_cli("providers", "notifications", "-o", "json", home=tmp_path))
    classes = {n["notification_class_name"] for n in notifications}
    assert "airflow_provider_mlprod.notifications.mlprod.MlprodNotifier" in classes

    config = airflow_cli("config", "list", "--section", "mlprod", home=tmp_path)
    for option in ("store_conn_id", "embedded_store_path", "report_folder", "alert_conn_ids"):
        assert option in config

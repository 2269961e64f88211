"""The [mlprod] configuration section: defaults, overrides and the embedded locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_mlprod import config


def test_defaults_live_under_airflow_home(airflow_home: Path):
    assert config.embedded_store_path() == airflow_home / "mlprod" / "metrics.db"
    assert config.report_folder() == str(airflow_home / "mlprod" / "reports")
    assert config.alert_conn_ids() == []
    assert config.store_conn_id() == "mlprod_store_default"


def test_environment_overrides_each_option(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE_PATH", str(tmp_path / "store.db"))
    monkeypatch.setenv("AIRFLOW__MLPROD__REPORT_FOLDER", "s3://bucket/reports")
    monkeypatch.setenv("AIRFLOW__MLPROD__ALERT_CONN_IDS", " slack_a , ,pd_b ")
    monkeypatch.setenv("AIRFLOW__MLPROD__STORE_CONN_ID", "my_store")
    assert config.embedded_store_path() == tmp_path / "store.db"
    assert config.report_folder() == "s3://bucket/reports"
    assert config.alert_conn_ids() == ["slack_a", "pd_b"]
    assert config.store_conn_id() == "my_store"


def test_unknown_option_is_named():
    with pytest.raises(KeyError, match="no option 'reports'"):
        config.get_option("reports")

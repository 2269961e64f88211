"""The provider registers with Airflow: entry point, metadata schema, hooks, connection forms, config."""

from __future__ import annotations

import json
from importlib.metadata import entry_points, version
from pathlib import Path

import jsonschema
import pytest

import airflow_provider_mlprod
from airflow_provider_mlprod.get_provider_info import get_provider_info


def test_entry_point_points_at_get_provider_info():
    (entry,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_prov")
    ]
    assert entry.load() is get_provider_info


def test_package_name_and_version_match_the_distribution():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-mlprod"
    assert info["versions"][0] == airflow_provider_mlprod.__version__ == version("airflow-provider-mlprod")


@pytest.mark.parametrize("schema_file", ["provider_info.schema.json", "provider.yaml.schema.json"])
def test_info_validates_against_airflow_schemas(schema_file):
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / schema_file).read_text())
    info = get_provider_info()
    if schema_file == "provider.yaml.schema.json":
        # The yaml schema also requires fields that only exist in provider.yaml sources.
        schema = {**schema, "required": [k for k in schema.get("required", []) if k in info]}
    jsonschema.validate(info, schema)


def test_providers_managers_discover_hooks_connection_forms_and_config():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    runtime = ProvidersManagerTaskRuntime()
    assert runtime.providers["airflow-provider-mlprod"].version == airflow_provider_mlprod.__version__
    ui = ProvidersManager()
    for conn_type in ("mlprod_store", "mlprod_slack", "mlprod_teams", "mlprod_webhook", "mlprod_pagerduty"):
        hook_info = runtime.hooks[conn_type]
        assert hook_info is not None, conn_type
        assert hook_info.package_name == "airflow-provider-mlprod"
        assert conn_type in ui.field_behaviours, conn_type
    assert "extra__mlprod_store__sqlalchemy_url" in ui.connection_form_widgets
    assert ui.connection_form_widgets["extra__mlprod_webhook__signing_secret"].is_sensitive
    sections = {section: body for _, config in runtime.provider_configs for section, body in config.items()}
    assert set(sections["mlprod"]["options"]) == {
        "store_conn_id",
        "embedded_store_path",
        "report_folder",
        "alert_conn_ids",
    }


def test_every_declared_hook_class_imports_and_has_its_connection_attributes():
    from airflow.sdk.module_loading import import_string

    for entry in get_provider_info()["connection-types"]:
        hook_class = import_string(entry["hook-class-name"])
        assert hook_class.conn_type == entry["connection-type"]
        for attr in ("conn_name_attr", "default_conn_name", "hook_name"):
            assert getattr(hook_class, attr), f"{hook_class.__name__}.{attr}"
        assert "get_ui_field_behaviour" not in hook_class.__dict__
        assert "get_connection_form_widgets" not in hook_class.__dict__

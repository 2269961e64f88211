"""The provider registers with Airflow: entry point, metadata schema, hooks, connection forms, config."""

from __future__ import annotations

import json
import re
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
    for conn_type in ("mlprodstore", "mlprodslack", "mlprodteams", "mlprodwebhook", "mlprodpagerduty"):
        hook_info = runtime.hooks[conn_type]
        assert hook_info is not None, conn_type
        assert hook_info.package_name == "airflow-provider-mlprod"
        assert conn_type in ui.field_behaviours, conn_type
    assert "extra__mlprodstore__sqlalchemy_url" in ui.connection_form_widgets
    assert ui.connection_form_widgets["extra__mlprodwebhook__signing_secret"].is_sensitive
    sections = {section: body for _, config in runtime.provider_configs for section, body in config.items()}
    assert set(sections["mlprod"]["options"]) == {
        "store_conn_id",
        "embedded_store",
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


def test_connection_types_are_valid_uri_schemes_and_old_names_stay_accepted():
    """RFC3986 schemes allow no ``_`` (Airflow warns about each such type); the old names still work."""
    from airflow_provider_mlprod.hooks.alert_channels import ALERT_CHANNEL_HOOKS
    from airflow_provider_mlprod.hooks.store import STORE_CONN_TYPES

    declared = [entry["connection-type"] for entry in get_provider_info()["connection-types"]]
    assert declared == [
        "mlprodstore", "mlprodslack", "mlprodteams", "mlprodwebhook", "mlprodpagerduty", "mlprodduckdb",
    ]  # fmt: skip
    assert all(re.fullmatch(r"[a-z][a-z0-9+.-]*", conn_type) for conn_type in declared)
    assert {"mlprodstore", "mlprod_store"} <= set(STORE_CONN_TYPES)
    for name in ("slack", "teams", "webhook", "pagerduty"):
        assert ALERT_CHANNEL_HOOKS[f"mlprod{name}"] is ALERT_CHANNEL_HOOKS[f"mlprod_{name}"]


def test_the_config_section_names_the_current_connection_types():
    """``airflow config list --section mlprod`` shows these texts: no type name of the earlier release."""
    from airflow_provider_mlprod.config import OPTIONS

    old_type = re.compile(r"\bmlprod_(store|slack|teams|webhook|pagerduty)\b")
    for option in OPTIONS:
        assert not old_type.search(option.description), option.name
        assert not old_type.search(option.example or ""), option.name


def test_plugin_and_cli_are_declared_and_load():
    from airflow.sdk.module_loading import import_string

    info = get_provider_info()
    (plugin,) = info["plugins"]
    plugin_class = import_string(plugin["plugin-class"])
    assert plugin_class.name == plugin["name"] == "mlprod"
    (app,) = plugin_class.fastapi_apps
    assert app["url_prefix"] == "/mlprod"
    assert {view["destination"] for view in plugin_class.external_views} == {"nav", "dag", "task"}
    (cli,) = info["cli"]
    (group,) = import_string(cli)()
    assert group.name == "mlprod"
    assert {command.name for command in group.subcommands} == {"examples", "models", "rollback", "store"}


def test_airflow_discovers_the_plugin_from_the_provider():
    from airflow import plugins_manager

    plugins = plugins_manager._get_plugins()[0]
    assert "mlprod" in {plugin.name for plugin in plugins}
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert "/mlprod" in {app["url_prefix"] for app in apps}

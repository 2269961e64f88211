"""``airflow mlprod``: the commands on real SQLite and PostgreSQL stores, and the CLI as Airflow runs it.

Output goes through Airflow's console, which renders every value as text (as Airflow's own commands do).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_mlprod.cli import commands
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.registry import ModelRegistry

REPO_ROOT = Path(__file__).resolve().parents[2]


def args(**values) -> argparse.Namespace:
    return argparse.Namespace(output="json", **values)


def json_output(capsys) -> list[dict]:
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def store_url(db_url, monkeypatch):
    """The test database as the default store connection (new type name), with two promotions."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLPROD_STORE_DEFAULT",
        json.dumps({"conn_type": "mlprodstore", "extra": {"sqlalchemy_url": db_url}}),
    )
    engine = create_store_engine(db_url)
    registry = ModelRegistry(engine)
    for version in ("v1", "v2"):
        run = RunIdentity("release", f"manual__{version}", "step")
        registry.register(run, name="churn", version=version, artifact_uri=f"file:///m/{version}")
        baseline = registry.alias_version("churn")
        registry.record_blessing(
            run, name="churn", version=version, passed=True, baseline_version=baseline, summary={}
        )
        registry.promote(run, name="churn", version=version)
    engine.dispose()
    return db_url


def test_store_check_and_migrate(store_url, capsys):
    commands.store_migrate(args())
    (migrated,) = json_output(capsys)
    assert int(migrated["schema_version"]) >= 1
    commands.store_check(args())
    (checked,) = json_output(capsys)
    assert (checked["reachable"], checked["up_to_date"]) == ("True", "True")
    assert "password" not in json.dumps(checked).lower()


def test_models_list_and_show(store_url, capsys):
    commands.models_list(args())
    (churn,) = json_output(capsys)
    assert (churn["model"], churn["versions"], churn["aliases"]) == ("churn", "2", "champion=v2")
    commands.models_show(args(name="churn"))
    events = [(row["event"], row["version"]) for row in json_output(capsys)]
    assert events[-1] == ("promoted", "v2")
    with pytest.raises(SystemExit, match="knows no model 'nope'"):
        commands.models_show(args(name="nope"))


def test_rollback_is_the_registry_compare_and_swap_recorded_as_manual(store_url, capsys):
    commands.rollback(args(name="churn", alias="champion"))
    (rolled,) = json_output(capsys)
    assert (rolled["version"], rolled["previous_version"], rolled["changed"]) == ("v1", "v2", "True")
    commands.models_show(args(name="churn"))
    last = json_output(capsys)[-1]
    assert (last["event"], last["version"]) == ("rolled_back", "v1")
    assert last["by"].startswith(f"{commands.CLI_DAG_ID}/manual__")
    assert last["by"].endswith("/rollback")
    with pytest.raises(SystemExit, match="has no previous version"):
        commands.rollback(args(name="churn", alias="champion"))
    with pytest.raises(SystemExit, match="alias 'challenger' points at no version"):
        commands.rollback(args(name="churn", alias="challenger"))


def test_examples_copy_refuses_to_overwrite_unless_forced(tmp_path, capsys):
    commands.examples_copy(argparse.Namespace(directory=str(tmp_path), force=False, output="json"))
    copied = {row["file"] for row in json_output(capsys)}
    assert {"mlprod_monitoring.py", "expectations/customer_batch.json"} <= copied
    assert (tmp_path / "expectations" / "warehouse_orders.json").is_file()
    with pytest.raises(SystemExit, match="exist already"):
        commands.examples_copy(argparse.Namespace(directory=str(tmp_path), force=False, output="json"))
    commands.examples_copy(argparse.Namespace(directory=str(tmp_path), force=True, output="table"))
    assert "unpause" in capsys.readouterr().out


def test_airflow_cli_runs_the_provider_commands(tmp_path):
    airflow = Path(sys.executable).with_name("airflow")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__MLPROD__"))},
        "AIRFLOW_HOME": str(tmp_path),
    }

    def run(*arguments: str) -> str:
        result = subprocess.run(
            [str(airflow), *arguments], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    assert "examples" in run("mlprod", "--help")
    copied = json.loads(run("mlprod", "examples", "copy", str(tmp_path / "dags"), "-o", "json"))
    assert len(copied) == len(list(commands.example_files(REPO_ROOT / "dags")))
    (checked,) = json.loads(run("mlprod", "store", "check", "--output", "json"))
    assert checked["store"].endswith("metrics.db")

"""``airflow mlprod`` under hostile conditions: an unreachable store, a store with a password, folders
that cannot take the examples. Every failure is one line naming the problem, no traceback, no secret,
and nothing on stdout (so ``--output json`` is never half-printed)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_mlprod.cli import commands

PASSWORD = "s3cr3t-pw"


def args(**values) -> argparse.Namespace:
    return argparse.Namespace(output="json", **values)


@pytest.fixture
def unreachable_store(monkeypatch, closed_port):
    url = f"postgresql+psycopg://mlprod:{PASSWORD}@127.0.0.1:{closed_port}/store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLPROD_STORE_DEFAULT",
        json.dumps({"conn_type": "mlprodstore", "extra": {"sqlalchemy_url": url, "connect_timeout": 2}}),
    )
    return url


#: Every command that opens the store, with the arguments it needs.
STORE_COMMANDS = [
    (commands.models_list, {}),
    (commands.models_show, {"name": "churn"}),
    (commands.rollback, {"name": "churn", "alias": "champion"}),
    (commands.store_check, {}),
    (commands.store_migrate, {}),
]


@pytest.mark.parametrize(
    ("command", "values"),
    STORE_COMMANDS,
)
def test_an_unreachable_store_is_one_clean_error(unreachable_store, capfd, command, values):
    """Failed before the fix for every command but ``store check``: a SQLAlchemy traceback."""
    with pytest.raises(SystemExit) as raised:
        command(args(**values))
    message = str(raised.value.code)
    assert "127.0.0.1" in message
    assert "store" in message
    assert PASSWORD not in message
    # The message is the whole output (Python prints it on exit); the command itself writes nothing.
    # What the real CLI prints, logs included, is searched in test_the_cli_prints_one_line_and_no_password.
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("command", [("store", "check"), ("models", "list")])
def test_the_cli_prints_one_line_and_no_password(unreachable_store, tmp_path, command):
    """``airflow mlprod`` as a user runs it, its log at DEBUG: the password is in none of its output."""
    airflow = Path(sys.executable).with_name("airflow")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__MLPROD__"))},
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW_CONN_MLPROD_STORE_DEFAULT": os.environ["AIRFLOW_CONN_MLPROD_STORE_DEFAULT"],
    }
    done = subprocess.run(
        [str(airflow), "mlprod", *command, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "the metrics store at postgresql+psycopg://mlprod:***@127.0.0.1:" in done.stderr
    output = done.stdout + done.stderr
    assert "Connection Retrieved 'mlprod_store_default'" in output  # the log lines are in the output
    assert "Traceback" not in output
    assert PASSWORD not in output


MISCONFIGURED_STORES = {
    "undefined": ("gone_store", None),
    "bad extra": (
        "bad_store",
        {
            "conn_type": "mlprodstore",
            "extra": {
                "sqlalchemy_url": f"postgresql+psycopg://mlprod:{PASSWORD}@127.0.0.1:5432/store",
                "statement_timeout": -1,
            },
        },
    ),
    "port not a number": (
        "portless_store",
        {
            "conn_type": "mlprodstore",
            "extra": {"sqlalchemy_url": f"postgresql+psycopg://mlprod:{PASSWORD}@127.0.0.1:pg/store"},
        },
    ),
    "sqlite folder cannot be made": (
        "unmakeable_store",
        {"conn_type": "mlprodstore", "extra": {"sqlalchemy_url": "sqlite:////proc/mlprod/store.db"}},
    ),
}


@pytest.mark.parametrize("store", sorted(MISCONFIGURED_STORES))
@pytest.mark.parametrize(
    ("command", "values"),
    STORE_COMMANDS,
)
def test_a_misconfigured_store_connection_is_one_clean_error(monkeypatch, capfd, store, command, values):
    """Failed before the fix for ``store check``: a ConnectionConfigError traceback."""
    conn_id, connection = MISCONFIGURED_STORES[store]
    monkeypatch.setenv("AIRFLOW__MLPROD__STORE_CONN_ID", conn_id)
    if connection is not None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    with pytest.raises(SystemExit) as raised:
        command(args(**values))
    message = str(raised.value.code)
    assert f"connection {conn_id!r}" in message
    assert PASSWORD not in message
    assert capfd.readouterr() == ("", "")  # the message is the whole output, as above


def test_examples_copy_into_a_path_that_is_a_file_fails_cleanly(tmp_path, capsys):
    """Failed before the fix: a FileExistsError/NotADirectoryError traceback."""
    target = tmp_path / "not_a_folder"
    target.write_text("x")
    with pytest.raises(SystemExit) as raised:
        commands.examples_copy(args(directory=str(target), force=False))
    assert str(target) in str(raised.value.code)
    assert capsys.readouterr().out == ""
    assert target.read_text() == "x"


def test_examples_copy_into_an_unwritable_place_leaves_nothing_half_written(tmp_path, capsys):
    """A folder whose subfolder cannot be created (a file is in the way): nothing is copied at all."""
    target = tmp_path / "dags"
    target.mkdir()
    source = commands.examples_source()
    nested = sorted({path.parts[0] for path in commands.example_files(source) if len(path.parts) > 1})
    assert nested, "the examples ship files in subfolders (expectation suites)"
    (target / nested[0]).write_text("in the way")
    with pytest.raises(SystemExit) as raised:
        commands.examples_copy(args(directory=str(target), force=True))
    assert str(target) in str(raised.value.code)
    assert sorted(p.name for p in target.iterdir()) == [nested[0]]
    assert capsys.readouterr().out == ""


def test_examples_copy_into_an_existing_folder_with_other_files(tmp_path, capsys):
    target = tmp_path / "dags"
    target.mkdir()
    (target / "my_dag.py").write_text("# mine")
    commands.examples_copy(args(directory=str(target), force=False))
    copied = json.loads(capsys.readouterr().out)
    assert copied
    assert (target / "my_dag.py").read_text() == "# mine"
    assert all((target / row["file"]).is_file() for row in copied)

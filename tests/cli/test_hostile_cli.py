"""``airflow mlprod`` under hostile conditions: an unreachable store, a store with a password, folders
that cannot take the examples. Every failure is one line naming the problem, no traceback, no secret,
and nothing on stdout (so ``--output json`` is never half-printed)."""

from __future__ import annotations

import argparse
import json

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


@pytest.mark.parametrize(
    ("command", "values"),
    [
        (commands.models_list, {}),
        (commands.models_show, {"name": "churn"}),
        (commands.rollback, {"name": "churn", "alias": "champion"}),
        (commands.store_check, {}),
        (commands.store_migrate, {}),
    ],
)
def test_an_unreachable_store_is_one_clean_error(unreachable_store, capsys, command, values):
    """Failed before the fix for every command but ``store check``: a SQLAlchemy traceback."""
    with pytest.raises(SystemExit) as raised:
        command(args(**values))
    message = str(raised.value.code)
    assert "127.0.0.1" in message
    assert "store" in message
    assert PASSWORD not in message
    out, err = capsys.readouterr()
    assert out == ""
    assert PASSWORD not in err


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

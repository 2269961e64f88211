"""The wheel: LICENSE, the example DAGs and suites as package data, the provider and plugin entry points."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_license_examples_and_entry_points(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = tmp_path.glob("airflow_provider_mlprod-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (license_file,) = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
        assert "Apache License" in archive.read(license_file).decode()
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        entry_text = archive.read(entry_points).decode()
        shipped = {
            name.removeprefix("airflow_provider_mlprod/example_dags/")
            for name in names
            if name.startswith("airflow_provider_mlprod/example_dags/")
        }
    expected = {
        str(path.relative_to(REPO_ROOT / "dags"))
        for path in (REPO_ROOT / "dags").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert shipped == expected
    assert "expectations/customer_batch.json" in shipped
    assert "airflow_provider_mlprod.get_provider_info:get_provider_info" in entry_text
    assert "[airflow.plugins]" in entry_text
    assert "airflow_provider_mlprod.plugin:MlprodPlugin" in entry_text

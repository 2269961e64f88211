"""The drift package itself imports nothing heavy, so modules a DAG file imports stay cheap."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_package_import_is_light():
    code = (
        "import sys, airflow_provider_mlprod.drift; "
        "print(sorted({'pandas', 'numpy', 'scipy', 'sqlalchemy', 'airflow'} & set(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"


def test_engine_modules_do_not_import_airflow():
    for path in (REPO_ROOT / "airflow_provider_mlprod" / "drift").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import airflow\b|from airflow[. ])", text, re.MULTILINE), path

"""Build hook: ship the example DAGs and expectation suites (``dags/``) inside the package.

``airflow mlprod examples copy DIR`` copies them from ``airflow_provider_mlprod/example_dags/`` of an
installed wheel. Everything else about the build is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLES = Path(__file__).resolve().parent / "dags"


class BuildPyWithExamples(build_py):
    """build_py, then a copy of dags/ (DAG files and suites, no caches) as package data."""

    def run(self) -> None:
        super().run()
        if not EXAMPLES.is_dir():  # building from an sdist that lacks them would ship a wheel without
            raise SystemExit(f"cannot build: the example DAG folder {EXAMPLES} is missing")
        target = Path(self.build_lib) / "airflow_provider_mlprod" / "example_dags"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithExamples})

"""Every example DAG parses without import errors or deprecation warnings."""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: How a DagBag keeps a warning raised while it imported a DAG file: ``file:line: Category: message``.
CAPTURED_WARNING = re.compile(
    r"(?P<file>.*?):(?P<line>\d+|None): (?P<category>[\w.]+): (?P<message>.*)", re.S
)


def _is_deprecation(category: type | str) -> bool:
    if isinstance(
        category, str
    ):  # a name as the DagBag keeps it, e.g. airflow.exceptions.RemovedInAirflow4Warning
        module, _, name = category.rpartition(".")
        try:
            category = getattr(importlib.import_module(module or "builtins"), name)
        except (ImportError, AttributeError):
            return "Deprecat" in name
    return issubclass(category, DeprecationWarning) or "Deprecat" in category.__name__


def parse(folder: Path):
    """The DagBag of ``folder`` and the deprecation warnings of Airflow, this project or ``folder``
    raised while it was parsed, as ``file:line: message``."""
    from airflow.models import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(folder))
    ours = ("airflow", str(REPO), str(folder))
    deprecations = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if _is_deprecation(w.category)
        if any(part in w.filename for part in ours)
    ]
    # A warning raised while a DAG file is imported reaches this side re-raised as a UserWarning; only the
    # DagBag's own record of it keeps its category.
    for texts in bag.captured_warnings.values():
        for text in texts:
            found = CAPTURED_WARNING.fullmatch(text)
            assert found, f"unreadable captured warning: {text!r}"
            if _is_deprecation(found["category"]) and any(part in found["file"] for part in ours):
                deprecations.append(f"{found['file']}:{found['line']}: {found['message']}")
    return bag, deprecations


def test_a_deprecation_raised_while_a_dag_file_is_imported_is_seen(tmp_path):
    """The control for the check below: a DAG file that warns is caught by it."""
    (tmp_path / "deprecated_dag.py").write_text(
        "import warnings\n"
        "from datetime import datetime\n"
        "from airflow.sdk import DAG\n"
        "warnings.warn('old_argument is deprecated', DeprecationWarning, stacklevel=1)\n"
        "dag = DAG('deprecated_dag', schedule=None, start_date=datetime(2026, 1, 1))\n"
    )
    bag, deprecations = parse(tmp_path)
    assert list(bag.dags) == ["deprecated_dag"]
    assert deprecations == [f"{tmp_path / 'deprecated_dag.py'}:4: old_argument is deprecated"]


def test_every_dag_file_parses_cleanly():
    bag, deprecations = parse(REPO / "dags")
    assert bag.import_errors == {}
    dag_files = {Path(dag.fileloc).name for dag in bag.dags.values()}
    assert dag_files == {path.name for path in (REPO / "dags").glob("*.py")}
    assert deprecations == []

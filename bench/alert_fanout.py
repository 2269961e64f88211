"""Alert path benchmark: code size of the alert path, and one alert fanned out to four channels.

``--lines``: the non-blank, non-comment line count of all alert-path code (``alerts/``,
``notifications/``, ``operators/alerts.py``, ``hooks/alert_channels.py``), as formatted by
``ruff format``. The same count in shell::

    cat $(find airflow_provider_mlprod/alerts airflow_provider_mlprod/notifications \\
        airflow_provider_mlprod/operators/alerts.py airflow_provider_mlprod/hooks/alert_channels.py \\
        -name '*.py') | grep -v '^\\s*$' | grep -v '^\\s*#' | wc -l

Run from the repository root: ``python bench/alert_fanout.py --lines``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALERT_PATH = (
    "airflow_provider_mlprod/alerts",
    "airflow_provider_mlprod/notifications",
    "airflow_provider_mlprod/operators/alerts.py",
    "airflow_provider_mlprod/hooks/alert_channels.py",
)
_BLANK_OR_COMMENT = re.compile(r"^\s*(#.*)?$")


def alert_path_lines(root: Path = ROOT) -> dict[str, int]:
    """Non-blank, non-comment lines per alert-path file (run ``ruff format`` first)."""
    counts: dict[str, int] = {}
    for entry in ALERT_PATH:
        path = root / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            lines = file.read_text(encoding="utf-8").splitlines()
            counts[str(file.relative_to(root))] = sum(
                1 for line in lines if not _BLANK_OR_COMMENT.match(line)
            )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", action="store_true", help="print the alert-path line count")
    args = parser.parse_args()
    if args.lines:
        counts = alert_path_lines()
        for name, count in counts.items():
            print(f"{count:6d}  {name}")
        print(f"{sum(counts.values()):6d}  total")


if __name__ == "__main__":
    main()

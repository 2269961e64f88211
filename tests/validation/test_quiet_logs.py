"""GX's INFO log flood and progress bars stay out of the logs of a validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import logging
logging.basicConfig(level=logging.INFO)
import pandas as pd
from airflow_provider_mlprod.validation.runner import validate_dataframe
frame = pd.DataFrame({"amount": [1.0, None, 3.0]})
summary = validate_dataframe(frame, [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}},
    {"type": "expect_column_quantile_values_to_be_between",
     "kwargs": {"column": "amount", "quantile_ranges": {"quantiles": [0.5], "value_ranges": [[0, 5]]}}},
])
print("failed", summary.failed_critical)
logging.getLogger("quiet_logs_probe").info("validation done")  # an INFO line the output must show
"""


def test_validation_prints_no_gx_info_lines_or_progress_bars():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "failed 1"
    output = done.stdout + done.stderr
    assert "INFO:quiet_logs_probe:validation done" in output  # INFO lines reach the captured output
    assert "Calculating Metrics" not in output
    assert "INFO:great_expectations" not in output

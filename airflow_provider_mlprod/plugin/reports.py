"""Read one report from ``[mlprod] report_folder`` (a local folder or any ObjectStoragePath URI)."""

from __future__ import annotations

from airflow_provider_mlprod import config
from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.operators.reports import REPORT_KINDS, is_safe_report_parts


class UnknownReport(LookupError):
    """No report at that address: an unknown kind, an unsafe name, or no such file."""


def read_report(kind: str, dag_id: str, run_id: str, file_name: str, folder: str | None = None) -> bytes:
    """The HTML of the report ``<kind>/<dag_id>/<run_id>/<file_name>`` under the report folder.

    Raises ConfigurationError for a kind that is not one of REPORT_KINDS or a part that is not a plain
    name (``..``, slashes, hidden files, anything but ``.html``), before touching storage; UnknownReport
    when the file does not exist.
    """
    if kind not in REPORT_KINDS:
        raise ConfigurationError(f"unknown report kind {kind!r}; known kinds: {list(REPORT_KINDS)}")
    if not is_safe_report_parts(kind, dag_id, run_id, file_name):
        raise ConfigurationError("report address refused: every part must be a plain name, the file .html")
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(folder or config.report_folder()) / kind / dag_id / run_id / file_name
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise UnknownReport(f"no {kind} report {dag_id}/{run_id}/{file_name}") from None

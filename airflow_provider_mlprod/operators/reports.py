"""Where an operator's HTML report goes, and the extra link that opens it from the task.

Reports land under ``[mlprod] report_folder`` (a folder or any ObjectStoragePath URI) as
``<kind>/<dag_id>/<run_id>/<task_id>[.<map_index>].html``, so a retry overwrites its own report.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_mlprod import config

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_mlprod.store.identity import RunIdentity

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def report_path(kind: str, identity: RunIdentity, folder: str | None = None) -> ObjectStoragePath:
    """The report location of this task instance (folder: the argument, else ``[mlprod] report_folder``)."""
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(folder or config.report_folder())
    name = _safe(identity.task_id) + (f".{identity.map_index}" if identity.map_index >= 0 else "")
    return root / kind / _safe(identity.dag_id) / _safe(identity.run_id) / f"{name}.html"


def report_url(path: Any) -> str:
    """A URL for the report: ``file://`` for local files, the storage URI otherwise."""
    text = str(path)
    return text if "://" in text else f"file://{text}"


class ReportLink(BaseOperatorLink):
    """Extra link "mlprod report": opens the HTML report the task wrote."""

    name = "mlprod report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.providers.common.compat.sdk import XCom

        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""


def push_report_link(context: Any, url: str) -> None:
    """Store the report URL where :class:`ReportLink` reads it."""
    context["ti"].xcom_push(key=ReportLink().xcom_key, value=url)


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("_") or "_"

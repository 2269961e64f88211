"""Where an operator's HTML report goes, and the extra link that opens it from the task.

Reports land under ``[mlprod] report_folder`` (a folder or any ObjectStoragePath URI) as
``<kind>/<dag_id>/<run_id>/<task_id>[.<map_index>].html``, so a retry overwrites its own report. The
default folder, under ``$AIRFLOW_HOME``, is used only where every task shares one machine (the
LocalExecutor, ``dag.test()``); elsewhere a task writing a report fails until the folder is set.

The extra link "mlprod report" is a same-origin address of the provider's plugin in the API server
(``<[api] base_url>/mlprod/reports/<kind>/<dag_id>/<run_id>/<file>``), which serves the report
behind Airflow's authentication: the UI renders only http(s) or same-origin links, and a browser cannot
open a ``file://`` or ``s3://`` location from an http page anyway.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_provider_mlprod import config

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_mlprod.store.identity import RunIdentity

REPORT_KINDS = ("validation", "drift", "outputs", "serving")
"""The kinds of report operators write: the first folder level under the report folder."""

PLUGIN_PREFIX = "/mlprod"
"""Where the provider's FastAPI app is mounted in the API server."""

REPORTS_ROUTE = f"{PLUGIN_PREFIX}/reports"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,249}")
_UNSERVED = "="
"""Prefix of the folder of a DAG whose id is not a plain name: such a folder is never served, because the
plugin authorises a report by the DAG id in its address, which must then be exactly the DAG's id."""


def report_path(kind: str, identity: RunIdentity, folder: str | None = None) -> ObjectStoragePath:
    """The report location of this task instance (folder: the argument, else ``[mlprod] report_folder``)."""
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(folder or _report_folder_of_this_task())
    name = _safe(identity.task_id) + (f".{identity.map_index}" if identity.map_index >= 0 else "")
    return root / kind / _dag_folder(identity.dag_id) / _safe(identity.run_id) / f"{name}.html"


def _report_folder_of_this_task() -> str:
    """``[mlprod] report_folder``; its default under ``$AIRFLOW_HOME`` only where every task shares this disk.

    Off the LocalExecutor each worker would write its reports into its own ``$AIRFLOW_HOME``, where the
    API server cannot read them and the task's link would silently lead nowhere: the task fails instead.
    """
    if config.get_option("report_folder"):
        return config.report_folder()
    from airflow_provider_mlprod.hooks.placement import single_machine

    shared, executor = single_machine()
    if not shared:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"[mlprod] report_folder is not set, and this task runs on {executor}: its report would land "
            f"in this worker's own {config.report_folder()}, which the API server cannot read. Set "
            "[mlprod] report_folder (AIRFLOW__MLPROD__REPORT_FOLDER) to one shared folder or object "
            "storage URI on every worker and on the API server"
        )
    return config.report_folder()


def report_url(path: Any) -> str:
    """The storage location of the report: ``file://`` for local files, the storage URI otherwise."""
    text = str(path)
    return text if "://" in text else f"file://{text}"


def report_relative_parts(location: str, folder: str | None = None) -> tuple[str, str, str, str] | None:
    """``(kind, dag_id, run_id, file_name)`` of a report stored under the report folder, else None.

    ``location`` is what :func:`report_url` returned; ``folder`` defaults to ``[mlprod] report_folder``.
    A location outside the folder, of another layout or with an unsafe part gives None.
    """
    root = _without_file_scheme(folder or config.report_folder()).rstrip("/")
    text = _without_file_scheme(location)
    if not text.startswith(root + "/"):
        return None
    parts = text[len(root) + 1 :].split("/")
    if len(parts) != 4 or not is_safe_report_parts(*parts):
        return None
    kind, dag_id, run_id, file_name = parts
    return kind, dag_id, run_id, file_name


def is_safe_report_parts(kind: str, dag_id: str, run_id: str, file_name: str) -> bool:
    """Whether the parts name a report: a known kind, plain names, an ``.html`` file, no ``..``."""
    return (
        kind in REPORT_KINDS
        and all(_SEGMENT.fullmatch(part) and ".." not in part for part in (dag_id, run_id, file_name))
        and file_name.endswith(".html")
    )


def plugin_url(route: str, base_url: str | None = None) -> str:
    """The address of a plugin route under ``[api] base_url`` (a subpath deployment keeps its path).

    Without a base URL the address is absolute-path (``/mlprod/...``): same origin as the UI.
    """
    if base_url is None:
        from airflow.sdk import conf

        base_url = conf.get("api", "base_url", fallback="") or ""
    return base_url.rstrip("/") + route


def report_link_url(location: str, *, folder: str | None = None, base_url: str | None = None) -> str:
    """The link for a report location: the plugin's address when it lies under the report folder.

    An ``http(s)`` location is kept as it is; any other location the plugin cannot serve gives ``""``
    (the UI would drop a ``file://`` or ``s3://`` link anyway).
    """
    if not location:
        return ""
    if location.startswith(("http://", "https://")):
        return location
    parts = report_relative_parts(location, folder)
    if parts is None:
        return ""
    return plugin_url(f"{REPORTS_ROUTE}/" + "/".join(quote(part, safe="") for part in parts), base_url)


class ReportLink(BaseOperatorLink):
    """Extra link "mlprod report": opens the HTML report the task wrote, served by the provider's plugin."""

    name = "mlprod report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.providers.common.compat.sdk import XCom

        location = XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""
        return report_link_url(str(location))


def push_report_link(context: Any, url: str) -> None:
    """Store the report location where :class:`ReportLink` reads it."""
    context["ti"].xcom_push(key=ReportLink().xcom_key, value=url)


def _dag_folder(dag_id: str) -> str:
    """The DAG's id itself when it is a plain name; otherwise a folder the plugin refuses to serve."""
    if _SEGMENT.fullmatch(dag_id) and ".." not in dag_id:
        return dag_id
    return _UNSERVED + _safe(dag_id)


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("_") or "_"


def _without_file_scheme(text: str) -> str:
    return text.removeprefix("file://") if text.startswith("file:///") else text

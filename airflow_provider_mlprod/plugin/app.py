"""The FastAPI app the plugin mounts in the API server under ``/mlprod``.

- ``GET /mlprod/reports/<kind>/<dag_id>/<run_id>/<file>.html``: a report from ``[mlprod] report_folder``,
  for users the auth manager lets read that DAG's task instances. Unknown kinds and anything that is not
  a plain name (``..``, hidden files) are refused before storage is touched.
- ``GET /mlprod/health/...``: the model-health view (models, datasets, alert deliveries), for users who
  may read DAGs. Each page shows only the records of DAGs the auth manager lets the user read (and
  manual actions from the CLI): a user denied a DAG sees none of its models, datasets, runs or reports.

Every response, errors included, is ``no-store`` and carries a Content-Security-Policy that allows no
script and no resource from elsewhere: reports and pages are self-contained.

FastAPI and the API server's security modules are imported when the app is built (in the API server),
not when this module is: the route signatures are evaluated then, so annotations are not postponed here.
"""

import threading
from typing import Annotated, Any

from airflow_provider_mlprod.exceptions import ConfigurationError
from airflow_provider_mlprod.operators.reports import PLUGIN_PREFIX, plugin_url, report_link_url
from airflow_provider_mlprod.plugin import pages
from airflow_provider_mlprod.plugin.reports import UnknownReport, read_report

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_readers: dict[str, object] = {}
_readers_lock = threading.Lock()


def health_reader():
    """The model-health reader of the configured metrics store (one engine per store and process)."""
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.plugin.health_data import HealthReader

    hook = MetricsStoreHook()
    key = hook.location
    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            reader = _readers[key] = HealthReader(hook.get_conn())
    return reader


def link(route: str) -> str:
    """The address of a plugin route under ``[api] base_url``."""
    return plugin_url(PLUGIN_PREFIX + route)


def create_app() -> Any:
    """The plugin's FastAPI app (no OpenAPI docs: these are pages, not an API)."""
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import HTMLResponse, RedirectResponse

    from airflow_provider_mlprod.cli.commands import CLI_DAG_ID
    from airflow_provider_mlprod.plugin.auth import (
        can_read_dags,
        can_read_task_instances_of_dag,
        current_user,
        readable_dag_ids,
    )

    reads_dags, reads_dag_in_path, user_dep = (
        can_read_dags(),
        can_read_task_instances_of_dag(),
        current_user(),
    )

    def visible_dags(reader: Any, user: Any) -> set[str]:
        """The DAGs whose records ``user`` may see: those the auth manager lets them read, and the CLI's."""
        return readable_dag_ids(user, reader.dag_ids() - {CLI_DAG_ID}) | {CLI_DAG_ID}

    def _html(text: str, status_code: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status_code, headers=SECURITY_HEADERS)

    app = FastAPI(title="mlprod", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(request: Any, call_next: Any) -> Any:
        # On every response, the errors of FastAPI and of the auth dependencies (401, 403, 404, 405, 422)
        # included: a browser must never run script or load anything in the plugin's origin path.
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/reports/{kind}/{dag_id}/{run_id}/{file_name}", dependencies=[reads_dag_in_path])
    def report(kind: str, dag_id: str, run_id: str, file_name: str) -> HTMLResponse:
        try:
            content = read_report(kind, dag_id, run_id, file_name)
        except ConfigurationError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        except UnknownReport as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return HTMLResponse(content, headers=SECURITY_HEADERS)

    @app.get("/health", dependencies=[reads_dags], include_in_schema=False)
    def health_root() -> RedirectResponse:
        return RedirectResponse(link("/health/"))

    @app.get("/health/", dependencies=[reads_dags])
    def health_index(user: Annotated[Any, user_dep]) -> HTMLResponse:
        reader = health_reader()
        dags = visible_dags(reader, user)
        return _html(pages.index_page(reader.model_names(dags), reader.dataset_names(dags), link))

    @app.get("/health/dags/{dag_id}", dependencies=[reads_dag_in_path])
    def health_of_dag(dag_id: str, task_id: Annotated[str | None, Query()] = None) -> HTMLResponse:
        models, datasets = health_reader().names_of_dag(dag_id, task_id or None)
        title = f"Model health of {dag_id}" + (f".{task_id}" if task_id else "")
        return _html(pages.index_page(models, datasets, link, title=title))

    @app.get("/health/models/{name:path}", dependencies=[reads_dags])
    def health_model(name: str, user: Annotated[Any, user_dep]) -> HTMLResponse:
        reader = health_reader()
        health = reader.model_health(name, dag_ids=visible_dags(reader, user))
        if health is None:
            return _html(pages.not_found_page(f"The metrics store knows no model {name!r}.", link), 404)
        return _html(pages.model_page(health, link))

    @app.get("/health/datasets/{name:path}", dependencies=[reads_dags])
    def health_dataset(name: str, user: Annotated[Any, user_dep]) -> HTMLResponse:
        reader = health_reader()
        health = reader.dataset_health(name, dag_ids=visible_dags(reader, user))
        return _html(pages.dataset_page(health, link, report_link_url))

    @app.get("/health/alerts", dependencies=[reads_dags])
    def health_alerts(user: Annotated[Any, user_dep]) -> HTMLResponse:
        reader = health_reader()
        return _html(pages.alerts_page(reader.alert_log(dag_ids=visible_dags(reader, user)), link))

    return app

"""Serving guardrails in Airflow: a load-test gate before promotion and an SLO monitor after it.

The statistics, the generator and the SLO arithmetic live in ``airflow_provider_mlprod.serving``;
these operators read their arguments and connections, call it, record and push the summary, and
decide the task's outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.assets import slo_breach_alias, slo_breach_asset
from airflow_provider_mlprod.exceptions import ConfigurationError, SpecError
from airflow_provider_mlprod.operators.outcome import final_errors_fail_the_task
from airflow_provider_mlprod.operators.reports import ReportLink, push_report_link, report_path, report_url
from airflow_provider_mlprod.operators.run_context import run_identity
from airflow_provider_mlprod.operators.sql_arguments import (
    build_sql_source,
    check_sql_source_arguments,
    mapping_argument,
)
from airflow_provider_mlprod.sql.source import ArgumentNames

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.serving.loadgen import Endpoint
    from airflow_provider_mlprod.serving.request_sets import RequestSet
    from airflow_provider_mlprod.store.identity import RunIdentity
    from airflow_provider_mlprod.store.registry import ModelRegistry

#: The kind of gate a serving verdict is, as recorded with its blessing.
SERVING_GATE_KIND = "serving"
#: The store's dataset label of the load-test metrics time series.
LOAD_TEST_DATASET = "serving_load_test"
CHAMPION_ALIAS = "champion"
REQUESTS_SQL = ArgumentNames(
    table=None, schema=None, query="requests_sql", parameters="requests_sql_parameters"
)
"""The load test's names of its SQL request set's arguments."""
#: Keys of an ``http`` connection's extra that Airflow's HttpHook takes as session options, not headers.
_SESSION_OPTIONS = frozenset(
    {
        "proxies",
        "proxy",
        "verify",
        "verify_ssl",
        "cert",
        "stream",
        "timeout",
        "allow_redirects",
        "max_redirects",
        "trust_env",
        "check_response",
        "auth_type",
        "auth_kwargs",
    }
)
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password|signature", re.IGNORECASE)


def record_serving_blessing(
    registry: ModelRegistry,
    identity: RunIdentity,
    *,
    name: str,
    version: str,
    passed: bool,
    baseline_version: str | None,
    summary: Mapping[str, Any],
    gate_kind: str = SERVING_GATE_KIND,
) -> None:
    """Record the serving verdict on ``name`` ``version`` as a blessing of kind ``gate_kind``.

    The one place a serving verdict reaches the registry; a promotion with ``require=["serving"]``
    then needs a passing verdict of this kind.
    """
    registry.record_blessing(
        identity,
        name=name,
        version=version,
        passed=passed,
        baseline_version=baseline_version,
        summary=summary,
        kind=gate_kind,
    )


def url_endpoint(url: str, name: str) -> Endpoint:
    """The endpoint at a plain URL, for unauthenticated endpoints (a URL with credentials is refused)."""
    from urllib.parse import urlsplit

    from airflow_provider_mlprod.serving.loadgen import Endpoint

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} endpoint URL must be an http(s) URL with a host")
    if parts.username or parts.password or parts.query:
        raise ConfigurationError(
            f"{name} endpoint URL must not carry credentials or a query: put them in an http connection"
        )
    return Endpoint(name=name, url=url)


def http_endpoint(conn_id: str, path: str, name: str) -> Endpoint:
    """The endpoint of an Airflow ``http`` connection plus ``path``, with its auth headers and TLS.

    Host (with or without scheme), ``schema`` (``http``/``https``), port; login and password become
    Basic auth; the extra's keys are request headers (as for Airflow's HttpHook), except HttpHook's
    session options (``proxy``, ``verify``, ``cert``, ``timeout``, ...: never sent to the endpoint),
    and a ``headers`` mapping in the extra is sent too (as the golden-set gate reads the same
    connection). Of the session options, ``verify`` and ``cert`` are applied
    (:func:`airflow_provider_mlprod.serving.tls.tls_settings`: checked and loaded here, so a bad one
    fails before any request); the others are not (no proxy: the endpoint is called directly).
    Secret values are masked in task logs, and never formatted into a message.
    """
    import base64

    from airflow.sdk.log import mask_secret

    from airflow_provider_mlprod.hooks.connections import connection_extra, get_connection
    from airflow_provider_mlprod.serving.loadgen import Endpoint
    from airflow_provider_mlprod.serving.tls import tls_settings

    conn = get_connection(conn_id)
    if (conn.conn_type or "") not in ("http", "https"):
        raise ConfigurationError(f"connection {conn_id!r} has type {conn.conn_type!r}, expected 'http'")
    host = (conn.host or "").strip()
    if not host:
        raise ConfigurationError(f"connection {conn_id!r} has no host")
    if "://" in host:
        base = host.rstrip("/")
    else:
        scheme = conn.schema or conn.conn_type or "http"
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    headers: dict[str, str] = {}
    extra = connection_extra(conn)
    nested = extra.get("headers")
    fields = [(k, v) for k, v in extra.items() if k != "headers" and str(k).lower() not in _SESSION_OPTIONS]
    if isinstance(nested, Mapping):
        fields += list(nested.items())
    for key, value in fields:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            headers[str(key)] = str(value)
            if _SECRET_HEADER.search(str(key)):
                mask_secret(str(value))
    if conn.login or conn.password:
        if conn.password:
            mask_secret(conn.password)
        token = base64.b64encode(f"{conn.login or ''}:{conn.password or ''}".encode()).decode()
        mask_secret(token)
        headers.setdefault("Authorization", f"Basic {token}")
    tls = tls_settings(extra, conn_id)
    return Endpoint(name=name, url=base + "/" + path.lstrip("/"), headers=headers, tls=tls)


class _StoreMixin:
    store_conn_id: str | None

    @cached_property
    def store_hook(self) -> MetricsStoreHook:
        """The metrics store."""
        from airflow_provider_mlprod.hooks.store import MetricsStoreHook

        return MetricsStoreHook(store_conn_id=self.store_conn_id)


class ServingLoadTestOperator(_StoreMixin, BaseOperator):
    """Load-test a model's serving endpoint (and the champion's, side by side) and gate it on thresholds.

    Replays a request set (``requests_path``: JSON lines at any ObjectStoragePath URI, or
    ``requests_sql`` on ``sql_conn_id``: one request per row; streamed, never loaded whole) against
    the endpoint of the ``http`` connection ``http_conn_id`` + ``endpoint``. With
    ``champion_http_conn_id`` every request goes to both endpoints, alternating, so the comparison
    is fair on a noisy machine. ``mode="closed"``: ``concurrency`` clients; ``mode="open"``: a
    target ``rate`` (requests/s over both endpoints) with latency from each request's intended send
    time. ``warmup_requests`` per endpoint are not measured.

    ``thresholds`` is a metric-gate spec (``airflow_provider_mlprod.gates``) over the candidate's
    numbers (``p95_latency_ms``, ``error_rate``, ``timeout_rate``, ``output_check_pass_rate``,
    ``throughput_rps``, ``5xx_rate``, ...) and, with a champion in the run, the side-by-side
    ``p95_latency_ms_ratio``, ``error_rate_diff``, ...; see ``airflow_provider_mlprod.serving.evaluation``.
    A metric that was not measured fails its rule.

    The verdict is recorded as a blessing of the version (kind ``serving``), the candidate's metrics
    as a time series in the store (dataset ``serving_load_test``), the summary pushed to XCom, and
    an HTML report with latency histogram and CDF is written (extra link "mlprod report"). The task
    then fails without retry if a threshold failed. An endpoint that answers no request at all
    gives no verdict and records nothing: the task fails and may retry.

    :param model_name: registered model name.
    :param model_version: the version behind the endpoint (templated).
    :param http_conn_id: ``http`` connection of the candidate's server (auth from the connection, and
        TLS: its extra's ``verify``, true, false or a CA bundle path, and ``cert``, a client
        certificate; see :func:`http_endpoint`). ``verify`` false is logged as a warning every run
        and shown as ``tls_verified: false`` in the summary.
    :param endpoint_url: or the candidate's full URL (templated), for an endpoint without
        credentials, e.g. a server a setup task started; a URL with credentials is refused.
    :param champion_endpoint_url: likewise for the champion.
    :param endpoint: path of the prediction route (templated, default ``/predict``).
    :param champion_http_conn_id: ``http`` connection of the champion's server, to compare with.
    :param champion_endpoint: its path (default: ``endpoint``).
    :param requests_path: JSON-lines request set (templated).
    :param requests_sql: or a query whose rows are the requests (templated, or a ``.sql`` file); a
        ``body`` column holds the JSON body, otherwise the row is the body. One read-only SELECT, read in
        a read-only session.
    :param requests_sql_parameters: the query's bind parameters, written ``:name`` in the SQL
        (templated: never put values into the SQL with Jinja).
    :param sql_conn_id: the SQL connection of ``requests_sql``.
    :param hook_params: arguments for that connection's Airflow hook when the engine is built.
    :param mode: ``closed`` or ``open``.
    :param requests: measured requests per endpoint (the set is read again when shorter).
    :param duration_s: or stop after this many seconds (warm-up included); both: whichever first.
    :param concurrency: closed loop: number of clients.
    :param rate: open loop: target requests per second.
    :param warmup_requests: requests per endpoint sent first and not measured.
    :param timeout_s: per-request timeout.
    :param output_checks: check list (see ``airflow_provider_mlprod.serving.response_checks``: ``status``
        and any check of the output-check registry, on the body or a JSON ``field``);
        default: status 2xx and a JSON body.
    :param thresholds: metric-gate spec; checked at parse time.
    :param if_no_baseline: ``pass`` or ``fail``: change rules while there is no champion endpoint.
    :param alias: the alias the version competes for (default ``champion``).
    :param store_conn_id: metrics store connection (default ``[mlprod] store_conn_id``).
    :param report_folder: overrides ``[mlprod] report_folder``.

    .. seealso:: README section "Serving guardrails".
    """

    template_fields: Sequence[str] = (
        "model_version",
        "endpoint",
        "champion_endpoint",
        "endpoint_url",
        "champion_endpoint_url",
        "requests_path",
        "requests_sql",
        "requests_sql_parameters",
        "sql_conn_id",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"requests_sql": "sql", "requests_sql_parameters": "json"}
    operator_extra_links = (ReportLink(),)
    ui_color = "#f9c784"

    def __init__(
        self,
        *,
        model_name: str,
        model_version: str,
        thresholds: Mapping[str, Any],
        http_conn_id: str | None = None,
        endpoint_url: str | None = None,
        champion_endpoint_url: str | None = None,
        endpoint: str = "/predict",
        champion_http_conn_id: str | None = None,
        champion_endpoint: str | None = None,
        requests_path: str | None = None,
        requests_sql: str | None = None,
        requests_sql_parameters: Mapping[str, Any] | None = None,
        sql_conn_id: str | None = None,
        hook_params: Mapping[str, Any] | None = None,
        mode: str = "closed",
        requests: int | None = 1000,
        duration_s: float | None = None,
        concurrency: int = 8,
        rate: float | None = None,
        warmup_requests: int = 20,
        timeout_s: float = 5.0,
        output_checks: Sequence[Mapping[str, Any]] | None = None,
        if_no_baseline: str | None = None,
        alias: str = CHAMPION_ALIAS,
        store_conn_id: str | None = None,
        report_folder: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_mlprod.gates import parse_thresholds
        from airflow_provider_mlprod.serving.loadgen import LoadPlan
        from airflow_provider_mlprod.serving.response_checks import ResponseChecks

        def invalid(problem: str) -> ValueError:
            return ValueError(f"task {self.task_id!r}: {problem}")

        try:
            rules = parse_thresholds(thresholds)
            self.plan = LoadPlan(
                mode=mode,
                requests=requests,
                duration_s=duration_s,
                concurrency=concurrency,
                rate=rate,
                warmup_requests=warmup_requests,
                timeout_s=timeout_s,
            ).check()
            ResponseChecks.from_spec(output_checks)
        except SpecError as exc:
            raise invalid(str(exc)) from None
        if any(rule.compares_to_baseline for rule in rules) and if_no_baseline not in ("pass", "fail"):
            raise invalid(
                "if_no_baseline must be 'pass' or 'fail' when a threshold compares with the champion "
                f"(what happens when no champion endpoint is given?); got {if_no_baseline!r}"
            )
        if (http_conn_id is None) == (endpoint_url is None):
            raise invalid("give exactly one of http_conn_id and endpoint_url for the candidate")
        if champion_http_conn_id is not None and champion_endpoint_url is not None:
            raise invalid("give at most one of champion_http_conn_id and champion_endpoint_url")
        if (requests_path is None) == (requests_sql is None):
            raise invalid("give exactly one request set: requests_path or requests_sql")
        check_sql_source_arguments(
            self.task_id,
            REQUESTS_SQL,
            conn_id=sql_conn_id,
            query=requests_sql,
            parameters=requests_sql_parameters,
            hook_params=hook_params,
            required=False,
        )
        self.model_name = model_name
        self.model_version = model_version
        self.http_conn_id = http_conn_id
        self.endpoint_url = endpoint_url
        self.champion_endpoint_url = champion_endpoint_url
        self.endpoint = endpoint
        self.champion_http_conn_id = champion_http_conn_id
        self.champion_endpoint = champion_endpoint
        self.requests_path = requests_path
        self.requests_sql = requests_sql
        self.requests_sql_parameters = mapping_argument(requests_sql_parameters)
        self.sql_conn_id = sql_conn_id
        self.hook_params = mapping_argument(hook_params)
        self.output_checks = list(output_checks) if output_checks is not None else None
        self.thresholds = dict(thresholds)
        self.if_no_baseline = if_no_baseline
        self.alias = alias
        self.store_conn_id = store_conn_id
        self.report_folder = report_folder
        self.serving_summary: dict[str, Any] | None = None

    def _request_set(self) -> RequestSet:
        from airflow_provider_mlprod.serving.request_sets import json_lines_request_set, sql_request_set

        if self.requests_path:
            from airflow.sdk import ObjectStoragePath

            path = ObjectStoragePath(str(self.requests_path))
            return json_lines_request_set(str(self.requests_path), lambda: path.open("rb"))
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_source

        source = build_sql_source(
            REQUESTS_SQL,
            conn_id=self.sql_conn_id,
            query=self.requests_sql,
            parameters=self.requests_sql_parameters or None,
            hook_params=self.hook_params or None,
        )
        return sql_request_set(engine_for_source(source), source)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mlprod.serving.evaluation import CANDIDATE, CHAMPION, evaluate_serving
        from airflow_provider_mlprod.serving.loadgen import run_load_test
        from airflow_provider_mlprod.serving.report import render_serving_report
        from airflow_provider_mlprod.serving.response_checks import ResponseChecks
        from airflow_provider_mlprod.serving.tls import TlsSettings
        from airflow_provider_mlprod.validation.sources import open_for_writing

        identity = run_identity(context)
        version = str(self.model_version)
        with final_errors_fail_the_task():
            registry = self.store_hook.registry()
            registry.get_version(self.model_name, version)  # refuse an unregistered version up front
            champion_version = registry.alias_version(self.model_name, self.alias)
            if self.http_conn_id:
                endpoints = [http_endpoint(self.http_conn_id, str(self.endpoint), CANDIDATE)]
            else:
                endpoints = [url_endpoint(str(self.endpoint_url), CANDIDATE)]
            if self.champion_http_conn_id:
                path = str(self.champion_endpoint or self.endpoint)
                endpoints.append(http_endpoint(self.champion_http_conn_id, path, CHAMPION))
            elif self.champion_endpoint_url:
                endpoints.append(url_endpoint(str(self.champion_endpoint_url), CHAMPION))
            for target in endpoints:
                if target.tls_verified is None:
                    self.log.info("Loading %s at %s", target.name, target.display_url)
                else:
                    tls = (target.tls or TlsSettings()).describe()
                    self.log.info("Loading %s at %s (TLS: %s)", target.name, target.display_url, tls)
                (target.tls or TlsSettings()).warn_if_unverified(
                    target.url, self.log, f"{target.name} at {target.display_url}"
                )
            result = run_load_test(
                endpoints, self._request_set(), self.plan, ResponseChecks.from_spec(self.output_checks)
            )
            gate = evaluate_serving(
                result,
                self.thresholds,
                champion_version=champion_version,
                if_no_baseline=self.if_no_baseline,  # type: ignore[arg-type]
            )
            report = report_path("serving", identity, self.report_folder)
            summary = {
                "gate_kind": SERVING_GATE_KIND,
                "model_name": self.model_name,
                "model_version": version,
                "champion_version": champion_version,
                **gate.to_dict(),
                "load_test": result.to_dict(),
                "report_location": report_url(report),
            }
            with open_for_writing(report) as handle:
                page = render_serving_report(summary, result.to_dict(with_distribution=True))
                handle.write(page.encode("utf-8"))
            candidate_metrics = result.endpoint(CANDIDATE).metrics()
            self.store_hook.metrics_store().record_metrics(
                identity,
                candidate_metrics,
                model_name=self.model_name,
                model_version=version,
                dataset=LOAD_TEST_DATASET,
            )
            record_serving_blessing(
                registry,
                identity,
                name=self.model_name,
                version=version,
                passed=gate.passed,
                baseline_version=champion_version,
                summary=summary,
            )
        self.serving_summary = summary
        push_report_link(context, summary["report_location"])
        for verdict in gate.verdicts:
            self.log.info("%s %s", "PASS" if verdict.passed else "FAIL", verdict.reason)
        if not gate.passed:
            from airflow.sdk.exceptions import AirflowFailException

            context["ti"].xcom_push(key="return_value", value=summary)
            reasons = "; ".join(v.reason for v in gate.failures)
            raise AirflowFailException(
                f"model {self.model_name!r} version {version!r} failed the serving gate: {reasons}"
            )
        return summary


# -- after promotion: the SLO monitor ----------------------------------------------------------


#: The store's dataset label of the SLO time series.
SLO_DATASET = "serving_slo"


class ServingSloMonitorOperator(_StoreMixin, BaseOperator):
    """Compute a served model's SLO numbers over a window of its request log and act on a breach.

    Per window ``[window_start, window_end)`` of the request-log table (one row per request:
    timestamp, latency in ms, HTTP status, model version; optionally a timed-out flag, an
    output-check-failed flag, tokens in/out and cost), the database computes latency percentiles
    (PostgreSQL ``percentile_cont``; elsewhere from bucket counts, the error stated), error and
    timeout rates, throughput, output-check failure share and token and cost sums; see
    ``airflow_provider_mlprod.serving.slo``. ``slos`` is a metric-gate spec over them (budgets too:
    ``"cost": {"max": 50}``); a metric that could not be measured (an empty window) breaches.

    The numbers are recorded as a time series in the store (dataset ``serving_slo``), the summary is
    pushed to XCom, and on a breach an Asset event on ``mlprod://models/<model_name>/slo_breach`` is
    added (through an alias, so only a breach emits it; schedule the rollback DAG on
    :func:`airflow_provider_mlprod.assets.slo_breach_asset`) and ``on_breach`` decides: ``continue``
    (default: the task succeeds so the event is recorded, and logs the breach as a warning), ``fail``
    or ``skip`` (the breach then reaches failure callbacks such as the mlprod notifier, but no Asset
    event is recorded).

    :param sql_conn_id: the SQL connection holding the request log.
    :param model_name: the model (not templated: it names the Asset).
    :param request_log_table: the table (templated).
    :param request_log_schema: its schema.
    :param columns: column names by role (``timestamp``, ``latency_ms``, ``status``,
        ``model_version``, ``timed_out``, ``output_check_failed``, ``tokens_in``, ``tokens_out``,
        ``cost``); the first four default to ``ts``, ``latency_ms``, ``status``, ``model_version``.
    :param slos: metric-gate spec; checked at parse time.
    :param model_version: the version to watch (templated); default the alias's current version.
    :param alias: the alias watched when no version is given (default ``champion``).
    :param window_start: / ``window_end``: templated, default the run's data interval.
    :param on_breach: ``continue`` (default), ``fail`` or ``skip``.
    :param store_conn_id: metrics store connection (default ``[mlprod] store_conn_id``).
    """

    template_fields: Sequence[str] = (
        "sql_conn_id",
        "request_log_table",
        "model_version",
        "window_start",
        "window_end",
    )
    ui_color = "#f7a072"

    def __init__(
        self,
        *,
        sql_conn_id: str,
        model_name: str,
        request_log_table: str,
        slos: Mapping[str, Any],
        request_log_schema: str | None = None,
        columns: Mapping[str, str] | None = None,
        model_version: str | None = None,
        alias: str = CHAMPION_ALIAS,
        window_start: str = "{{ data_interval_start }}",
        window_end: str = "{{ data_interval_end }}",
        on_breach: str = "continue",
        store_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_mlprod.assets import add_outlet
        from airflow_provider_mlprod.gates import parse_thresholds
        from airflow_provider_mlprod.operators.outcome import check_on_failure
        from airflow_provider_mlprod.serving.slo import RequestLog

        add_outlet(kwargs, slo_breach_alias(model_name))
        super().__init__(**kwargs)
        try:
            rules = parse_thresholds(slos)
            templated = "{{" in request_log_table  # checked again once rendered
            RequestLog.from_mapping(
                "request_log" if templated else request_log_table, request_log_schema, columns
            )
        except SpecError as exc:
            raise ValueError(f"task {self.task_id!r}: {exc}") from None
        if any(rule.compares_to_baseline for rule in rules):
            raise ValueError(f"task {self.task_id!r}: SLOs are absolute bounds (min/max), not change rules")
        self.sql_conn_id = sql_conn_id
        self.model_name = model_name
        self.request_log_table = request_log_table
        self.request_log_schema = request_log_schema
        self.columns = dict(columns or {})
        self.slos = dict(slos)
        self.model_version = model_version
        self.alias = alias
        self.window_start = window_start
        self.window_end = window_end
        self.on_breach = check_on_failure(on_breach, self.task_id, "on_breach")
        self.store_conn_id = store_conn_id
        self.slo_summary: dict[str, Any] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mlprod.hooks.sql_sources import engine_for_connection
        from airflow_provider_mlprod.operators.outcome import settle
        from airflow_provider_mlprod.serving.slo import RequestLog, compute_slo_window, evaluate_slos

        identity = run_identity(context)
        with final_errors_fail_the_task():
            start, end = (
                _window_bound(self.window_start, "window_start"),
                _window_bound(self.window_end, "window_end"),
            )
            version = str(self.model_version) if self.model_version else None
            if version is None:
                version = self.store_hook.registry().alias_version(self.model_name, self.alias)
            log = RequestLog.from_mapping(str(self.request_log_table), self.request_log_schema, self.columns)
            window = compute_slo_window(
                engine_for_connection(str(self.sql_conn_id)),
                log,
                start,
                end,
                model_version=version,
                conn_id=str(self.sql_conn_id),
            )
            verdict = evaluate_slos(window, self.slos)
            self.store_hook.metrics_store().record_metrics(
                identity,
                window.metrics,
                model_name=self.model_name,
                model_version=version or "",
                dataset=SLO_DATASET,
            )
        summary = {
            "model_name": self.model_name,
            "model_version": version,
            **window.to_dict(),
            "breached": not verdict.passed,
            **verdict.to_dict(),
        }
        self.slo_summary = summary
        for rule in verdict.verdicts:
            self.log.info("%s %s", "OK" if rule.passed else "BREACH", rule.reason)
        message = (
            f"model {self.model_name!r} version {version!r} breached its SLOs in "
            f"[{summary['window_start']}, {summary['window_end']}): "
            + "; ".join(v.reason for v in verdict.failures)
        )
        if not verdict.passed:
            asset = slo_breach_asset(self.model_name)
            summary["slo_breach_asset"] = asset.uri
            context["outlet_events"][slo_breach_alias(self.model_name)].add(
                asset,
                extra={
                    "model_version": version,
                    "window_start": summary["window_start"],
                    "window_end": summary["window_end"],
                    "breaches": [v.reason for v in verdict.failures],
                },
            )
            context["ti"].xcom_push(key="return_value", value=summary)
        settle(self.on_breach, verdict.passed, message, self.log, "on_breach")
        return summary


def _window_bound(value: Any, role: str) -> Any:
    from datetime import datetime, timezone

    if value in (None, "", "None"):
        raise ConfigurationError(
            f"{role} rendered to {value!r}: this run has no data interval (a manual or asset-triggered "
            "run); pass window_start and window_end explicitly"
        )
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigurationError(f"{role} {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment

"""MlprodNotifier, and the Airflow side of every alert: :class:`AlertSettings` (shared with
``SendAlertOperator``), :func:`send_alert_via_connections` and :func:`summary_alert` (README "Alerts")."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_mlprod.alerts.message import DEFAULT_DEDUP_WINDOW, SEVERITIES
from airflow_provider_mlprod.exceptions import ConfigurationError, ConnectionConfigError, MlprodError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.alerts.message import Alert
    from airflow_provider_mlprod.alerts.routing import DispatchReport
    from airflow_provider_mlprod.store.identity import RunIdentity

log = logging.getLogger(__name__)

#: Longest the alert path waits on the metrics store per connect or statement (a lock included).
STORE_TIMEOUT_SECONDS = 3.0
#: Task state -> (phrase in the default title, default severity).
STATE_WORDING: dict[str, tuple[str, str]] = {
    "failed": ("failed", "critical"),
    "up_for_retry": ("failed and will be retried", "warning"),
    "success": ("succeeded", "info"),
    "skipped": ("was skipped", "info"),
}


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def send_alert_via_connections(
    alert: Alert, settings: AlertSettings, identity: RunIdentity | None = None
) -> DispatchReport:
    """Send ``alert`` on the alert connections of ``settings`` and those its routing names, with dedup
    and history in its metrics store when reachable; :class:`AlertDeliveryError` if all failed."""
    from airflow_provider_mlprod import config
    from airflow_provider_mlprod.alerts import routing as router
    from airflow_provider_mlprod.alerts.channels import LogTarget
    from airflow_provider_mlprod.hooks.alert_channels import alert_channel_hook

    Channel, routing = router.Channel, router.checked_rule(settings.routing)
    conn_ids = list(config.alert_conn_ids() if settings.alert_conn_ids is None else settings.alert_conn_ids)
    conn_ids = [c for c in conn_ids if not isinstance(c, str) or c.strip()]  # a template may render one blank
    conn_ids += [conn_id for routed in (routing or {}).values() for conn_id in routed]
    channels = []
    for index, conn_id in enumerate(dict.fromkeys(conn_ids)):
        if "://" in str(conn_id):  # a pasted webhook URL is its secret: never look it up nor show it
            log.error("alert channel %d cannot be used: %s", index, router.URL_AS_CONN_ID)
            channels.append(Channel(f"alert connection {index}", error=router.URL_AS_CONN_ID))
            continue
        if conn_id == router.DEFAULT_CHANNEL_NAME:  # the built-in task log, never a connection to look up
            channels.append(Channel(conn_id, LogTarget()))
            continue
        try:
            hook = alert_channel_hook(conn_id)
            channels.append(Channel(conn_id, hook.get_target(), hook.get_retry_policy()))
        except Exception as exc:  # a secrets backend's message may hold a secret: keep only the type
            reason = str(exc) if isinstance(exc, ConnectionConfigError) else None
            reason = reason or f"connection {conn_id!r} could not be read ({type(exc).__name__})"
            log.error("alert channel %r cannot be used: %s", conn_id, reason)
            channels.append(Channel(conn_id, error=reason))
    store, window = _metrics_store_or_none(settings.store_conn_id), settings.dedup_window
    return router.send_alert(alert, channels, rule=routing, store=store, identity=identity, window=window)


def _metrics_store_or_none(store_conn_id: str | None) -> Any:
    """The metrics store opened with short timeouts, or ``None`` (fail open)."""
    from airflow_provider_mlprod.alerts.routing import store_call
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.store.engine import create_store_engine
    from airflow_provider_mlprod.store.metrics_store import MetricsStore

    hook = MetricsStoreHook(store_conn_id=store_conn_id)
    try:
        url = hook.url  # reads the connection's own timeouts too
        connect, statement = (min(value, STORE_TIMEOUT_SECONDS) for value in hook._timeouts)
        engine = create_store_engine(
            url, connect_timeout=connect, statement_timeout=statement, busy_timeout=STORE_TIMEOUT_SECONDS
        )
        return store_call(engine, lambda: MetricsStore(engine))  # creates the schema once
    except Exception as exc:
        error = str(exc) if isinstance(exc, MlprodError) else type(exc).__name__
        log.warning("metrics store unusable (%s); alert sent without dedup or history", error)
    return None


def _attribute(holder: Any, name: str) -> Any:
    """``holder.name`` or ``holder[name]``, or ``None``; never raises (context pieces may be missing)."""
    try:
        return holder.get(name) if isinstance(holder, Mapping) else getattr(holder, name, None)
    except Exception:
        return None


def _text(*found: tuple[Any, str]) -> str | None:
    """The first non-empty string among the ``(holder, name)`` attributes."""
    return next(
        (text for holder, name in found if isinstance(text := _attribute(holder, name), str) and text), None
    )


def _http(url: Any) -> str | None:
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def run_url(dag_id: str, run_id: str) -> str | None:
    """The run's page in the Airflow UI under ``[api] base_url``; ``None`` without an http(s) base."""
    from urllib.parse import quote

    from airflow_provider_mlprod.operators.reports import plugin_url

    return _http(plugin_url(f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"))


def summary_alert(
    ti: Any,
    task_id: str,
    *,
    key: str = "return_value",
    kind: str | None = None,
    required: bool = True,
    **ids: Any,
) -> Alert | None:
    """The alert of the summary ``task_id`` pushed under ``key``, linked to its report (as the plugin
    serves it) and run; ``InputDataError`` if unreadable, or absent when ``required`` (else ``None``)."""
    from airflow_provider_mlprod.alerts.summaries import alert_from_summary
    from airflow_provider_mlprod.exceptions import InputDataError
    from airflow_provider_mlprod.operators.reports import report_link_url
    from airflow_provider_mlprod.summaries import summary_from_dict, summary_kind_of

    map_index = _attribute(ti, "map_index")
    indexes = {"map_indexes": map_index} if isinstance(map_index, int) and map_index >= 0 else {}
    data = ti.xcom_pull(task_ids=task_id, key=key, **indexes)
    if data is None or (kind is None and summary_kind_of(data) is None):
        if not required:
            return None
        what = "no summary" if data is None else "no validation, drift or gate summary (set summary_kind)"
        raise InputDataError(f"task {task_id!r} pushed {what} under XCom key {key!r}")
    summary = summary_from_dict(data, kind)
    ids.update(dag_id=ti.dag_id, run_id=ti.run_id, task_id=task_id, run_url=run_url(ti.dag_id, ti.run_id))
    ids["report_url"] = _http(report_link_url(summary.report_location or ""))
    return alert_from_summary(summary, **ids)


def task_dedup_key(dag_id: str | None, task_id: str | None, map_index: Any) -> str:
    """``mlprod:task:<dag>:<task>``, and ``:<map index>`` for a mapped instance (one instance's
    success never closes another's failure); empty without both ids."""
    instance = f":{map_index}" if isinstance(map_index, int) and map_index >= 0 else ""
    return f"mlprod:task:{dag_id}:{task_id}{instance}" if dag_id and task_id else ""


def _identity_or_none(context: Mapping[str, Any]) -> RunIdentity | None:
    from airflow_provider_mlprod.store.identity import RunIdentity

    ti, map_index = context.get("ti"), _attribute(context.get("ti"), "map_index")
    ids = {name: _attribute(ti, name) for name in ("dag_id", "run_id", "task_id")}
    try:
        return RunIdentity(**ids, map_index=map_index if isinstance(map_index, int) else -1)
    except ConfigurationError:
        return None


class AlertSettings:
    """The arguments the notifier and ``SendAlertOperator`` share, checked at parse time (a template
    after rendering).

    :param title: headline (Jinja); default the summary's, else one naming the task and its state.
    :param text: body text (Jinja).
    :param severity: ``info``, ``warning`` or ``critical`` (Jinja); default the summary's, else by
        the task's state (notifier) or ``warning`` (operator).
    :param alert_conn_ids: alert connection ids; ``None`` reads ``[mlprod] alert_conn_ids``; empty:
        the task log (``log``, also usable beside other connections).
    :param routing: severity -> connection ids, e.g. ``{"critical": ["pd_oncall", "slack_ml"]}``.
    :param dedup_window: the same alert within this window (timedelta or seconds) is sent once per channel.
    :param repeat_every: while the same alert keeps coming, at most one reminder per channel per this
        interval, titled "Repeat (N suppressed since ...)"; replaces ``dedup_window``. Needs the
        store: without it every alert is sent.
    :param dedup_key: what makes two alerts "the same" (Jinja).
    :param store_conn_id: the metrics store; ``None`` reads ``[mlprod] store_conn_id``.
    """

    template_fields = ("title", "text", "severity", "dedup_key", "alert_conn_ids", "routing", "store_conn_id")

    def __init__(
        self,
        *,
        title: str | None = None,
        text: str | None = None,
        severity: str | None = None,
        alert_conn_ids: Sequence[str] | None = None,
        routing: Mapping[str, Sequence[str]] | str | None = None,
        dedup_window: timedelta | float = DEFAULT_DEDUP_WINDOW,
        repeat_every: timedelta | float | None = None,
        dedup_key: str | None = None,
        store_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_mlprod.alerts.routing import URL_AS_CONN_ID, checked_rule

        super().__init__(**kwargs)
        owner = f"task {self.task_id!r}" if hasattr(self, "task_id") else type(self).__name__
        self.title, self.text, self.severity, self.dedup_key = title, text, severity, dedup_key
        if isinstance(alert_conn_ids, str):  # list("slack_ml") would be eight one-letter connection ids
            raise ValueError(f"{owner}: alert_conn_ids must be a list of connection ids, not a string")
        self.alert_conn_ids = list(alert_conn_ids) if alert_conn_ids is not None else None
        self.routing, self.store_conn_id = routing, store_conn_id
        if any("://" in str(conn_id) for conn_id in self.alert_conn_ids or ()):
            raise ValueError(f"{owner}: {URL_AS_CONN_ID}")
        if severity is not None and not is_template(severity) and severity not in SEVERITIES:
            raise ValueError(f"{owner}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        name = "dedup_window" if repeat_every is None else "repeat_every"
        window = dedup_window if repeat_every is None else repeat_every
        if isinstance(window, bool) or not isinstance(window, timedelta | int | float):
            raise ValueError(f"{owner}: {name} must be a timedelta or seconds, got {window!r}")
        self.dedup_window = window if isinstance(window, timedelta) else timedelta(seconds=window)
        if self.dedup_window <= timedelta(0):
            raise ValueError(f"{owner}: {name} must be positive, got {self.dedup_window}")
        try:
            checked_rule(None if isinstance(routing, str) else routing)  # a string: after rendering
        except ConfigurationError as exc:
            raise ValueError(f"{owner}: {exc}") from None

    def overridden(self, alert: Alert, severity: str | None, action: str | None = None, **add: Any) -> Alert:
        """``alert`` plus ``add``'s facts and links, with the title, text, severity, key and action given."""
        given = {"title": self.title, "summary": self.text, "severity": severity}
        given.update(dedup_key=self.dedup_key, action=action)
        changes = {key: str(value).strip() for key, value in given.items() if value and str(value).strip()}
        facts, links = {**alert.facts, **add.get("facts", {})}, [*alert.links, *add.get("links", ())]
        return dataclasses.replace(alert, facts=facts, links=links, **changes)


class MlprodNotifier(AlertSettings, BaseNotifier):
    """Send an alert from a task callback (failure, retry, success) or as a ``DeadlineAlert``'s
    ``AsyncCallback`` (run in the triggerer). One dedup key per task, and a success resolves: as
    ``on_success_callback`` it closes what a failure opened. A summary the task pushed is the alert's
    base; given arguments (see :class:`AlertSettings`) replace built fields."""

    def __init__(self, *, context: Context | None = None, **settings: Any) -> None:
        super().__init__(context=context, **settings)
        self.last_report: dict[str, Any] | None = None
        self._template_sources = {name: getattr(self, name) for name in self.template_fields}

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render from the original text each time (a notifier may serve several callbacks)."""
        for name, source in self._template_sources.items():
            setattr(self, name, copy.deepcopy(source))
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Context) -> None:
        """Build the alert from ``context`` and send it; raise only when every channel failed."""
        alert, identity = self.build_alert(context), _identity_or_none(context)
        report = send_alert_via_connections(alert, self, identity)
        self.last_report = report.to_dict()
        outcome = (report.delivered_channels, report.suppressed_channels, report.failed_channels)
        log.info("alert %r: delivered %s, suppressed %s, failed %s", alert.title, *outcome)
        own_key = task_dedup_key(alert.dag_id, alert.task_id, _attribute(context.get("ti"), "map_index"))
        if alert.action == "resolve" and own_key not in ("", alert.dedup_key) and not self.dedup_key:
            # a failure before the task pushed its summary (a crash) was keyed by the task: close it too
            send_alert_via_connections(dataclasses.replace(alert, dedup_key=own_key), self, identity)

    async def async_notify(self, context: Context) -> None:
        """Send from the triggerer (deadline alerts) in a thread of its own: the event loop's shared
        pool (a few threads) would queue alerts, and other triggers, behind one hanging channel."""
        import contextvars
        from concurrent.futures import ThreadPoolExecutor

        own_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlprod-alert")
        try:
            call = contextvars.copy_context().run
            await asyncio.get_running_loop().run_in_executor(own_thread, call, self.notify, context)
        finally:
            own_thread.shutdown(wait=False)

    def build_alert(self, context: Mapping[str, Any]) -> Alert:
        """The alert for ``context``; missing context pieces or an unreadable summary never raise."""
        from airflow_provider_mlprod.alerts.message import Alert, AlertLink

        ti, dag_run, dag, deadline = (context.get(key) for key in ("ti", "dag_run", "dag", "deadline"))
        dag_id = _text((ti, "dag_id"), (dag_run, "dag_id"), (dag, "dag_id"))
        # a deadline's dag_run is the REST API's run model: its run id is under "dag_run_id"
        run_id = _text((ti, "run_id"), (dag_run, "run_id"), (dag_run, "dag_run_id"))
        task_id, log_url = _text((ti, "task_id")), _http(_attribute(ti, "log_url"))
        state = str(_attribute(ti, "state") or "").rsplit(".", 1)[-1].lower() or None
        facts: dict[str, Any] = {}
        if isinstance(try_number := _attribute(ti, "try_number"), int) and not isinstance(try_number, bool):
            facts["Try"] = try_number
        if isinstance(error := context.get("exception"), BaseException):
            facts["Error type"], state = type(error).__name__, state or "failed"
        facts.update({"State": state} if state else {})
        facts.update({"Deadline": str(at)} if (at := _attribute(deadline, "deadline_time")) else {})
        alert = None
        if ti is not None and task_id and hasattr(ti, "xcom_pull"):
            try:
                alert = summary_alert(ti, task_id, required=False, log_url=log_url)
            except Exception as exc:  # a summary that cannot be read: the task's own alert instead
                error = exc if isinstance(exc, MlprodError) else type(exc).__name__
                log.warning("the summary of task %r is not usable for the alert: %s", task_id, error)
        if alert is None:
            phrase, severity = STATE_WORDING.get(state or "", ("needs attention", "warning"))
            dag_name = dag_id or "unknown DAG"
            title = f"{f'Task {task_id}' if task_id else 'A task'} {phrase} in DAG {dag_name}"
            if deadline is not None and not task_id:
                title = f"DAG {dag_name}: run {run_id or '(unknown)'} missed its deadline"
                severity = "warning"
            deadline_run = run_url(dag_id, run_id) if deadline is not None and dag_id and run_id else None
            labelled = (("Task log", log_url), ("Run", deadline_run))
            links = [AlertLink(label, url) for label, url in labelled if url]
            # one key per task whatever its state, so a success resolves what a failure opened
            key = task_dedup_key(dag_id, task_id, _attribute(ti, "map_index"))
            action = "resolve" if state == "success" else "trigger"
            ids = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id}
            alert = Alert(title, severity, links=links, dedup_key=key, action=action, **ids)
        if (severity := self.severity) and severity not in SEVERITIES:  # a template rendered it
            log.error("severity %r is not one of %s; sending as critical", severity, ", ".join(SEVERITIES))
            severity = "critical"
        return self.overridden(alert, severity, facts=facts)

"""MlprodNotifier, and the Airflow side of every alert: connections to channels, the store, summaries.

:func:`send_alert_via_connections` turns alert connections into channels, opens the metrics store
with short timeouts (or goes on without it) and calls the router; :func:`summary_alert` builds the
alert of a summary a task pushed, linked to its served report, the run and the task log. The
notifier and ``SendAlertOperator`` use both. Only ``airflow.sdk`` is imported at module level.

.. seealso:: README section "Alerts".
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_mlprod.alerts.message import SEVERITIES
from airflow_provider_mlprod.exceptions import ConfigurationError, ConnectionConfigError, MlprodError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.alerts.message import Alert
    from airflow_provider_mlprod.alerts.routing import DispatchReport
    from airflow_provider_mlprod.store.identity import RunIdentity

log = logging.getLogger(__name__)

DEFAULT_DEDUP_WINDOW = timedelta(hours=1)
#: Longest the alert path waits on the metrics store per connect or statement (a lock included).
STORE_TIMEOUT_SECONDS = 3.0
#: Task state -> (phrase in the default title, default severity).
STATE_WORDING: dict[str, tuple[str, str]] = {
    "failed": ("failed", "critical"),
    "up_for_retry": ("failed and will be retried", "warning"),
    "success": ("succeeded", "info"),
    "skipped": ("was skipped", "info"),
}


def checked_window(dedup_window: Any, repeat_every: Any, owner: str) -> timedelta:
    """The cooldown: ``repeat_every`` when given, else ``dedup_window`` (a timedelta or seconds, > 0)."""
    name, value = ("dedup_window", dedup_window) if repeat_every is None else ("repeat_every", repeat_every)
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise ValueError(f"{owner}: {name} must be a timedelta or seconds, got {value!r}")
    window = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if window <= timedelta(0):
        raise ValueError(f"{owner}: {name} must be positive, got {window}")
    return window


def checked_severity(value: str | None, owner: str) -> str | None:
    """A severity checked at DAG parse time, unless it is a template (checked after rendering)."""
    if value is not None and "{{" not in value and "{%" not in value and value not in SEVERITIES:
        raise ValueError(f"{owner}: severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return value


def checked_routing(value: Any, owner: str) -> Any:
    """A routing rule (severity -> list of connection ids) checked for shape; a template string passes."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{owner}: routing must map a severity to a list of connection ids")
    for severity, conn_ids in value.items():
        if severity not in SEVERITIES:
            raise ValueError(f"{owner}: routing key {severity!r} is not one of {', '.join(SEVERITIES)}")
        if isinstance(conn_ids, str) or not isinstance(conn_ids, Sequence):
            raise ValueError(f"{owner}: routing for {severity!r} must be a list of connection ids")
    return value


def rendered_routing(value: Any, owner: str = "alert") -> Mapping[str, Sequence[str]] | None:
    """The routing rule after rendering (a string is parsed as JSON); ConfigurationError names it."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigurationError(
                f"{owner}: parameter 'routing' rendered to text that is not JSON; "
                'give a mapping such as {"critical": ["pd_oncall"]}'
            ) from None
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{owner}: parameter 'routing' must render to a JSON object")
    try:
        return checked_routing(value, owner)
    except ValueError as exc:
        raise ConfigurationError(f"{exc} (parameter 'routing')") from None


def send_alert_via_connections(
    alert: Alert,
    *,
    alert_conn_ids: Sequence[str] | None = None,
    routing: Any = None,
    dedup_window: timedelta = DEFAULT_DEDUP_WINDOW,
    store_conn_id: str | None = None,
    identity: RunIdentity | None = None,
) -> DispatchReport:
    """Send ``alert`` on the channels of its alert connections, with dedup and history in the store.

    :param alert_conn_ids: ``None`` reads ``[mlprod] alert_conn_ids``; ``"log"`` is the task log;
        connections named in ``routing`` are added.
    :param routing: severity -> connection ids (a rendered JSON string is parsed); ``None``: all.
    :param store_conn_id: the metrics store; ``None`` reads ``[mlprod] store_conn_id``. When it
        cannot be reached the alert is sent without dedup or history.
    :raises AlertDeliveryError: when every routed channel failed (recorded first).
    """
    from airflow_provider_mlprod import config
    from airflow_provider_mlprod.alerts.channels import LogTarget
    from airflow_provider_mlprod.alerts.routing import DEFAULT_CHANNEL_NAME, Channel, send_alert
    from airflow_provider_mlprod.hooks.alert_channels import alert_channel_hook

    routing = rendered_routing(routing)
    conn_ids = list(config.alert_conn_ids() if alert_conn_ids is None else alert_conn_ids)
    conn_ids += [conn_id for routed in (routing or {}).values() for conn_id in routed]
    channels = []
    for conn_id in dict.fromkeys(conn_ids):
        if conn_id == DEFAULT_CHANNEL_NAME:  # the built-in task log, never a connection to look up
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
    store = _metrics_store_or_none(store_conn_id)
    return send_alert(alert, channels, rule=routing, store=store, identity=identity, window=dedup_window)


def _metrics_store_or_none(store_conn_id: str | None) -> Any:
    """The metrics store opened with short timeouts, or ``None`` (fail open)."""
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
        return MetricsStore(engine)
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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
    """The alert of the validation, drift or gate summary ``task_id`` pushed under ``key``, linked to
    its report as the plugin serves it and to the run (both under ``[api] base_url``).

    :raises InputDataError: for a summary that cannot be read, and (when ``required``; else ``None``
        is returned) when nothing or something else was pushed.
    """
    from airflow_provider_mlprod.alerts.summaries import alert_from_summary
    from airflow_provider_mlprod.exceptions import InputDataError
    from airflow_provider_mlprod.operators.reports import report_link_url
    from airflow_provider_mlprod.summaries import summary_from_dict, summary_kind_of

    map_index = _attribute(ti, "map_index")
    indexes = {"map_indexes": map_index} if isinstance(map_index, int) and map_index >= 0 else {}
    data = ti.xcom_pull(task_ids=task_id, key=key, **indexes)
    if not required and (data is None or (kind is None and summary_kind_of(data) is None)):
        return None
    if data is None:
        raise InputDataError(f"task {task_id!r} pushed no summary under XCom key {key!r}")
    if kind is None and summary_kind_of(data) is None:
        raise InputDataError(
            f"the XCom of task {task_id!r} is not a validation, drift or gate summary; set summary_kind"
        )
    summary = summary_from_dict(data, kind)
    return alert_from_summary(
        summary,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=task_id,
        report_url=_http(report_link_url(summary.report_location or "")),
        run_url=run_url(ti.dag_id, ti.run_id),
        **ids,
    )


def _identity_or_none(context: Mapping[str, Any]) -> RunIdentity | None:
    from airflow_provider_mlprod.store.identity import RunIdentity

    ti = context.get("ti")
    map_index = _attribute(ti, "map_index")
    try:
        ids = {name: _attribute(ti, name) for name in ("dag_id", "run_id", "task_id")}
        return RunIdentity(**ids, map_index=map_index if isinstance(map_index, int) else -1)
    except ConfigurationError:
        return None


class AlertSettings:
    """Where alerts go and how often: the settings the notifier and ``SendAlertOperator`` share."""

    store_conn_id: str | None

    def _check_settings(
        self, owner: str, severity: Any, conn_ids: Any, routing: Any, window: Any, repeat: Any
    ) -> None:
        self.severity = checked_severity(severity, owner)
        self.alert_conn_ids = list(conn_ids) if conn_ids is not None else None
        self.routing = checked_routing(routing, owner)
        self.dedup_window = checked_window(window, repeat, owner)

    def send(self, alert: Alert, identity: RunIdentity | None) -> DispatchReport:
        """Send ``alert`` on this task's alert connections (:func:`send_alert_via_connections`)."""
        return send_alert_via_connections(
            alert,
            alert_conn_ids=self.alert_conn_ids,
            routing=self.routing,
            dedup_window=self.dedup_window,
            store_conn_id=self.store_conn_id,
            identity=identity,
        )


class MlprodNotifier(AlertSettings, BaseNotifier):
    """Send an alert to the mlprod alert channels from a task callback or a deadline alert.

    Usable as ``on_failure_callback``, ``on_retry_callback``, ``on_success_callback`` and as the
    ``AsyncCallback`` of a ``DeadlineAlert`` (it then runs in the triggerer). A task alert's dedup key
    is the task's whatever its state, and a success is a ``resolve``: the same notifier as
    ``on_success_callback`` closes what a failure opened, where it is open. When the task pushed a
    validation, drift or gate summary, the alert is built from it; ``title``, ``text``, ``severity``
    and ``dedup_key``, when given, replace the built ones.

    :param title: headline (Jinja); default "Task <task> failed in DAG <dag>" or the summary's.
    :param text: body text (Jinja).
    :param severity: ``info``, ``warning`` or ``critical`` (Jinja); default the summary's, else by state.
    :param alert_conn_ids: alert connection ids; ``None`` reads ``[mlprod] alert_conn_ids``; empty:
        the task log.
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
        routing: Mapping[str, Sequence[str]] | None = None,
        dedup_window: timedelta | float = DEFAULT_DEDUP_WINDOW,
        repeat_every: timedelta | float | None = None,
        dedup_key: str | None = None,
        store_conn_id: str | None = None,
        context: Context | None = None,
    ) -> None:
        super().__init__(context=context)
        self.title, self.text, self.dedup_key, self.store_conn_id = title, text, dedup_key, store_conn_id
        self._check_settings(
            type(self).__name__, severity, alert_conn_ids, routing, dedup_window, repeat_every
        )
        self.last_report: dict[str, Any] | None = None
        self._template_sources = {name: getattr(self, name) for name in self.template_fields}

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render from the original text each time (a notifier may serve several callbacks)."""
        for name, source in self._template_sources.items():
            setattr(self, name, copy.deepcopy(source))
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Context) -> None:
        """Build the alert from ``context`` and send it; raise only when every channel failed."""
        alert = self.build_alert(context)
        report = self.send(alert, _identity_or_none(context))
        self.last_report = report.to_dict()
        log.info(
            "alert %r: delivered %s, suppressed %s, failed %s",
            *(alert.title, report.delivered_channels, report.suppressed_channels, report.failed_channels),
        )

    async def async_notify(self, context: Context) -> None:
        """Send from the triggerer (deadline alerts): the blocking send runs in a worker thread."""
        await asyncio.to_thread(self.notify, context)

    def build_alert(self, context: Mapping[str, Any]) -> Alert:
        """The alert for ``context``; missing context pieces or an unreadable summary never raise."""
        from airflow_provider_mlprod.alerts.message import Alert, AlertLink

        ti, dag_run, deadline = context.get("ti"), context.get("dag_run"), context.get("deadline")
        dag_id = _text(
            _attribute(ti, "dag_id")
            or _attribute(dag_run, "dag_id")
            or _attribute(context.get("dag"), "dag_id")
        )
        # a deadline's dag_run is the REST API's run model: its run id is under "dag_run_id"
        run_id = _text(
            _attribute(ti, "run_id") or _attribute(dag_run, "run_id") or _attribute(dag_run, "dag_run_id")
        )
        task_id, log_url = _text(_attribute(ti, "task_id")), _http(_attribute(ti, "log_url"))
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
            if deadline is not None and not task_id:
                title, severity = (
                    f"DAG {dag_id or 'unknown DAG'}: run {run_id or '(unknown)'} missed its deadline",
                    "warning",
                )
            else:
                phrase, severity = STATE_WORDING.get(state or "", ("needs attention", "warning"))
                title = (
                    f"{f'Task {task_id}' if task_id else 'A task'} {phrase} in DAG {dag_id or 'unknown DAG'}"
                )
            deadline_run = run_url(dag_id, run_id) if deadline is not None and dag_id and run_id else None
            labelled = (("Task log", log_url), ("Run", deadline_run))
            alert = Alert(
                title=title,
                severity=severity,
                facts=facts,
                links=[AlertLink(label, url) for label, url in labelled if url],
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                # one key per task whatever its state, so a success resolves what a failure opened
                dedup_key=f"mlprod:task:{dag_id}:{task_id}" if dag_id and task_id else "",
                action="resolve" if state == "success" else "trigger",
            )
        else:
            alert = dataclasses.replace(alert, facts={**alert.facts, **facts})
        changes = {"title": self.title, "summary": self.text, "severity": self._rendered_severity()}
        changes["dedup_key"] = self.dedup_key
        return dataclasses.replace(
            alert, **{k: str(v).strip() for k, v in changes.items() if v and str(v).strip()}
        )

    def _rendered_severity(self) -> str | None:
        if self.severity and self.severity not in SEVERITIES:
            log.error(
                "severity %r is not one of %s; sending as critical", self.severity, ", ".join(SEVERITIES)
            )
            return "critical"
        return self.severity

"""MlprodNotifier: alerts from task callbacks and deadline alerts, on the mlprod alert channels.

The notifier builds an :class:`~airflow_provider_mlprod.alerts.message.Alert` from the callback's
context (dag / run / task ids, the try's log URL and, when the task pushed a validation, drift or
gate summary as its XCom return value, the facts of that summary), then sends it with
:func:`send_alert_via_connections`, which the alert operator uses too.

Only ``airflow.sdk`` and light provider modules are imported here; the alert engine (``requests``,
SQLAlchemy) is imported when an alert is sent.

.. seealso:: README section "Alerts".
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
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

#: Longest the alert path waits on the metrics store per connect or statement (a store lock held
#: elsewhere included): store trouble delays an alert by seconds, then it is sent without the store.
STORE_TIMEOUT_SECONDS = 3.0

#: Task instance state -> (phrase in the default title, default severity).
STATE_WORDING: dict[str, tuple[str, str]] = {
    "failed": ("failed", "critical"),
    "up_for_retry": ("failed and will be retried", "warning"),
    "success": ("succeeded", "info"),
    "skipped": ("was skipped", "info"),
}


def checked_dedup_window(value: timedelta | float | int, owner: str, name: str = "dedup_window") -> timedelta:
    """``value`` (a timedelta or seconds) as a positive timedelta; ValueError names ``owner`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise ValueError(f"{owner}: {name} must be a timedelta or seconds, got {value!r}")
    window = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if window <= timedelta(0):
        raise ValueError(f"{owner}: {name} must be positive, got {window}")
    return window


def checked_severity(value: str | None, owner: str) -> str | None:
    """Validate a severity at DAG parse time unless it is a Jinja template (checked after rendering)."""
    if value is None or "{{" in value or "{%" in value:
        return value
    if value not in SEVERITIES:
        raise ValueError(f"{owner}: severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return value


def checked_routing(
    value: Mapping[str, Sequence[str]] | None, owner: str
) -> Mapping[str, Sequence[str]] | None:
    """Validate the shape of a routing rule at DAG parse time (severity -> list of connection ids)."""
    if value is None or isinstance(value, str):
        return value  # a template string, rendered to a mapping later
    if not isinstance(value, Mapping):
        raise ValueError(f"{owner}: routing must map a severity to a list of connection ids")
    for severity, conn_ids in value.items():
        if severity not in SEVERITIES:
            raise ValueError(f"{owner}: routing key {severity!r} is not one of {', '.join(SEVERITIES)}")
        if isinstance(conn_ids, str) or not isinstance(conn_ids, Sequence):
            raise ValueError(f"{owner}: routing for {severity!r} must be a list of connection ids")
    return value


def rendered_routing(
    value: Mapping[str, Sequence[str]] | str | None, owner: str = "alert"
) -> Mapping[str, Sequence[str]] | None:
    """The routing rule after template rendering: a string is parsed as JSON, then the shape is checked.

    :raises ConfigurationError: naming the ``routing`` parameter when the value is not a JSON object
        mapping a severity to a list of connection ids.
    """
    import json

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
    routing: Mapping[str, Sequence[str]] | None = None,
    dedup_window: timedelta = DEFAULT_DEDUP_WINDOW,
    store_conn_id: str | None = None,
    identity: RunIdentity | None = None,
) -> DispatchReport:
    """Send ``alert`` on the channels of the given alert connections, with dedup and history.

    :param alert: the alert.
    :param alert_conn_ids: the channels' connection ids; ``None`` reads ``[mlprod] alert_conn_ids``;
        empty (and no routing) means the task log. Connection ids named in ``routing`` are added.
    :param routing: severity -> connection ids (``"log"`` is the task log); ``None`` sends to all; a
        JSON string (a rendered template) is parsed. A ``resolve`` goes to those connections, of every
        severity, that have an open trigger for the alert (its latest delivery there is a trigger),
        and to the task log; without a reachable store, to all of them.
    :param dedup_window: how long a delivered alert suppresses the same alert on the same channel.
    :param store_conn_id: the metrics store holding dedup state and history; ``None`` reads
        ``[mlprod] store_conn_id`` (the embedded store by default). An unreachable store is logged
        and the alert is sent without dedup.
    :param identity: the task run that sends (linked to the history rows).
    :raises AlertDeliveryError: when every routed channel failed (recorded in the store first).
    :raises ConfigurationError: for a routing rule naming a severity or channel that does not exist.
    """
    from airflow_provider_mlprod import config
    from airflow_provider_mlprod.alerts.log_channel import LogTarget
    from airflow_provider_mlprod.alerts.routing import DEFAULT_CHANNEL_NAME, ChannelSpec, dispatch_alert
    from airflow_provider_mlprod.hooks.alert_channels import alert_channel_hook

    routing = rendered_routing(routing)
    conn_ids = list(config.alert_conn_ids() if alert_conn_ids is None else alert_conn_ids)
    for routed in (routing or {}).values():
        conn_ids.extend(routed)
    # "log" is the built-in task-log channel, never a connection to look up; listed, it is kept.
    specs = [ChannelSpec(DEFAULT_CHANNEL_NAME, LogTarget())] if DEFAULT_CHANNEL_NAME in conn_ids else []
    unusable: dict[str, str] = {}
    for conn_id in dict.fromkeys(conn_id for conn_id in conn_ids if conn_id != DEFAULT_CHANNEL_NAME):
        try:
            hook = alert_channel_hook(conn_id)
            specs.append(ChannelSpec(hook.channel_name, hook.get_target(), hook.get_retry_policy()))
        except ConnectionConfigError as exc:
            log.error("alert channel %r cannot be used: %s", conn_id, exc)
            unusable[conn_id] = str(exc)
        except Exception as exc:
            # e.g. a secrets backend failing: its message may hold a secret, so only the type is kept.
            reason = f"connection {conn_id!r} could not be read ({type(exc).__name__})"
            log.error("alert channel %r cannot be used: %s", conn_id, reason)
            unusable[conn_id] = reason
    return dispatch_alert(
        alert,
        specs,
        rule=routing,
        dedup_window=dedup_window,
        metrics_store=_metrics_store_or_none(store_conn_id),
        identity=identity,
        unusable_channels=unusable,
    )


def _metrics_store_or_none(store_conn_id: str | None) -> Any:
    """The metrics store for dedup and history, opened with short timeouts, or ``None`` (fail open)."""
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook
    from airflow_provider_mlprod.store.engine import create_store_engine
    from airflow_provider_mlprod.store.metrics_store import MetricsStore

    hook = MetricsStoreHook(store_conn_id=store_conn_id)
    try:
        url = hook.url  # reads the connection's own timeouts too
        connect_timeout, statement_timeout = (min(value, STORE_TIMEOUT_SECONDS) for value in hook._timeouts)
        engine = create_store_engine(
            url,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            busy_timeout=STORE_TIMEOUT_SECONDS,
        )
        return MetricsStore(engine)
    except MlprodError as exc:
        log.warning("metrics store unusable (%s); alert sent without dedup or history", exc)
    except Exception as exc:
        log.warning("metrics store unreachable (%s); alert sent without dedup or history", type(exc).__name__)
    return None


class MlprodNotifier(BaseNotifier):
    """Send an alert to the mlprod alert channels from a task callback or a deadline alert.

    Usable as ``on_failure_callback``, ``on_retry_callback``, ``on_success_callback`` and in a
    ``DeadlineAlert`` (``AsyncCallback(MlprodNotifier, kwargs={...})``). A task alert's dedup key is
    the task's (``mlprod:task:<dag>:<task>``) whatever its state, and a success is a ``resolve``: the
    same notifier as ``on_success_callback`` closes what a failure opened, on the channels where it
    is open (nothing is posted when nothing is open).

    When the task pushed a validation, drift or gate summary as its return value, the alert carries
    that summary's title, facts, severity and dedup key; otherwise it says which task did what.
    ``title``, ``text``, ``severity`` and ``dedup_key``, when given, replace the built ones.

    :param title: headline (Jinja); default "Task <task> failed in DAG <dag>" or the summary's title.
    :param text: body text (Jinja); default the summary's text, or nothing.
    :param severity: ``info``, ``warning`` or ``critical`` (Jinja); default the summary's severity, else
        by task state (failed: critical, up for retry: warning, success / skipped: info).
    :param alert_conn_ids: alert connection ids; ``None`` reads ``[mlprod] alert_conn_ids``; empty
        means the task log.
    :param routing: severity -> connection ids, e.g. ``{"critical": ["pd_oncall", "slack_ml"]}``.
    :param dedup_window: the same alert within this window (timedelta or seconds) is sent once per
        channel.
    :param repeat_every: while the same alert keeps coming (a failing task on every run), send it on
        each channel at most once per this interval (timedelta or seconds), as a reminder titled
        "Repeat (N suppressed since ...)"; replaces ``dedup_window`` when given. Needs the store: when
        it is unreachable, every alert is sent.
    :param dedup_key: what makes two alerts "the same" (Jinja); default from title, dag and task.
    :param store_conn_id: the metrics store for dedup and history; ``None`` reads ``[mlprod]``.
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
        owner = type(self).__name__
        self.title = title
        self.text = text
        self.severity = checked_severity(severity, owner)
        self.alert_conn_ids = list(alert_conn_ids) if alert_conn_ids is not None else None
        self.routing = checked_routing(routing, owner)
        # repeat_every is the cooldown of a repeating alert; given, it replaces dedup_window.
        self.dedup_window = checked_dedup_window(
            dedup_window if repeat_every is None else repeat_every,
            owner,
            "dedup_window" if repeat_every is None else "repeat_every",
        )
        self.dedup_key = dedup_key
        self.store_conn_id = store_conn_id
        self.last_report: dict[str, Any] | None = None
        self._template_sources = {name: getattr(self, name) for name in self.template_fields}

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render the templated fields from their original text, so a notifier reused for several
        callbacks in one process (retry, then failure) renders each time afresh."""
        for name, source in self._template_sources.items():
            setattr(self, name, copy.deepcopy(source))
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Context) -> None:
        """Build the alert from ``context`` and send it; raise only when every channel failed."""
        alert = self.build_alert(context)
        report = send_alert_via_connections(
            alert,
            alert_conn_ids=self.alert_conn_ids,
            routing=self.routing,
            dedup_window=self.dedup_window,
            store_conn_id=self.store_conn_id,
            identity=_identity_or_none(context),
        )
        self.last_report = report.to_dict()
        log.info(
            "alert %r: delivered %s, suppressed %s, failed %s",
            alert.title,
            report.delivered_channels,
            report.suppressed_channels,
            report.failed_channels,
        )

    async def async_notify(self, context: Context) -> None:
        """Send from the triggerer (deadline alerts): the blocking send runs in a worker thread."""
        await asyncio.to_thread(self.notify, context)

    def build_alert(self, context: Mapping[str, Any]) -> Alert:
        """The alert for ``context``; missing context pieces or an unreadable summary never raise."""
        from airflow_provider_mlprod.alerts.message import Alert

        facts = CallbackFacts.from_context(context)
        severity = self._rendered_severity()
        title = str(self.title).strip() if self.title else ""
        dedup_key = str(self.dedup_key).strip() if self.dedup_key else ""
        alert = _summary_alert(facts)
        if alert is None:
            default_title, default_severity = facts.default_wording()
            task_key = f"mlprod:task:{facts.dag_id}:{facts.task_id}" if facts.dag_id and facts.task_id else ""
            return Alert(
                title=title or default_title,
                severity=severity or default_severity,
                summary=str(self.text or ""),
                facts=facts.shown,
                links=facts.log_links(),
                dag_id=facts.dag_id,
                run_id=facts.run_id,
                task_id=facts.task_id,
                # One key per task whatever its state, so a success resolves what a failure opened.
                dedup_key=dedup_key or task_key,
                action="resolve" if facts.state == "success" else "trigger",
            )
        changes: dict[str, Any] = {"facts": {**alert.facts, **facts.shown}}
        if title:
            changes["title"] = title
        if self.text:
            changes["summary"] = str(self.text)
        if severity:
            changes["severity"] = severity
        if dedup_key:
            changes["dedup_key"] = dedup_key
        return dataclasses.replace(alert, **changes)

    def _rendered_severity(self) -> str | None:
        if not self.severity:
            return None
        if self.severity in SEVERITIES:
            return self.severity
        log.error("severity %r is not one of %s; sending as critical", self.severity, ", ".join(SEVERITIES))
        return "critical"


def _attribute(holder: Any, name: str) -> Any:
    """``holder.name`` or ``holder[name]``, or ``None``; never raises (context pieces may be missing)."""
    if holder is None:
        return None
    try:
        if isinstance(holder, Mapping):
            return holder.get(name)
        return getattr(holder, name, None)
    except Exception:
        return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclasses.dataclass
class CallbackFacts:
    """What a callback context says about the run: ids, state, try, error type and log URL.

    Task callbacks carry a task instance (``ti``); deadline alerts carry only ``dag_run`` (a dict) and
    ``deadline``. Every piece may be missing.
    """

    ti: Any = None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    state: str | None = None
    log_url: str | None = None
    run_url: str | None = None
    missed_deadline: bool = False
    shown: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> CallbackFacts:
        """Read what is there from ``context``."""
        ti = context.get("ti")
        dag_run = context.get("dag_run")
        dag = context.get("dag")
        state = _text_or_none(str(_attribute(ti, "state") or "")) if ti is not None else None
        facts = cls(
            ti=ti,
            dag_id=_text_or_none(
                _attribute(ti, "dag_id") or _attribute(dag_run, "dag_id") or _attribute(dag, "dag_id")
            ),
            # A deadline's dag_run is the REST API's run model: its run id is under "dag_run_id".
            run_id=_text_or_none(
                _attribute(ti, "run_id") or _attribute(dag_run, "run_id") or _attribute(dag_run, "dag_run_id")
            ),
            task_id=_text_or_none(_attribute(ti, "task_id")),
            state=state.rsplit(".", 1)[-1].lower() if state else None,
            missed_deadline=context.get("deadline") is not None,
        )
        url = _text_or_none(_attribute(ti, "log_url"))
        facts.log_url = url if url and url.startswith(("http://", "https://")) else None
        try_number = _attribute(ti, "try_number")
        if isinstance(try_number, int) and not isinstance(try_number, bool):
            facts.shown["Try"] = try_number
        error = context.get("exception")
        if isinstance(error, BaseException):
            facts.shown["Error type"] = type(error).__name__
            facts.state = facts.state or "failed"
        if facts.state:
            facts.shown["State"] = facts.state
        deadline = context.get("deadline")
        deadline_time = _attribute(deadline, "deadline_time")
        if deadline_time:
            facts.shown["Deadline"] = str(deadline_time)
        if facts.missed_deadline and facts.dag_id and facts.run_id:
            facts.run_url = run_url(facts.dag_id, facts.run_id)
        return facts

    def default_wording(self) -> tuple[str, str]:
        """The default title and severity for this context."""
        dag_id = self.dag_id or "unknown DAG"
        if self.missed_deadline and not self.task_id:
            return f"DAG {dag_id}: run {self.run_id or '(unknown)'} missed its deadline", "warning"
        phrase, severity = STATE_WORDING.get(self.state or "", ("needs attention", "warning"))
        subject = f"Task {self.task_id}" if self.task_id else "A task"
        return f"{subject} {phrase} in DAG {dag_id}", severity

    def log_links(self) -> list:
        """The task log link, when the context has an http(s) log URL, and the run's link for a deadline."""
        from airflow_provider_mlprod.alerts.message import AlertLink

        links = [AlertLink("Task log", self.log_url)] if self.log_url else []
        return links + ([AlertLink("Run", self.run_url)] if self.run_url else [])


def run_url(dag_id: str, run_id: str) -> str | None:
    """The run's page in the Airflow UI under ``[api] base_url``; ``None`` without an http(s) base."""
    from urllib.parse import quote

    from airflow.sdk import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    if not base.startswith(("http://", "https://")):
        return None
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _summary_alert(facts: CallbackFacts) -> Alert | None:
    """The alert for the summary the task pushed as its return value, or ``None`` (never raises)."""
    if facts.ti is None or not facts.task_id or not hasattr(facts.ti, "xcom_pull"):
        return None
    try:
        map_index = _attribute(facts.ti, "map_index")
        kwargs: dict[str, Any] = {"task_ids": facts.task_id, "key": "return_value"}
        if isinstance(map_index, int) and map_index >= 0:
            kwargs["map_indexes"] = map_index
        summary = facts.ti.xcom_pull(**kwargs)
    except Exception as exc:
        log.warning("no summary read for the alert (%s)", type(exc).__name__)
        return None
    from airflow_provider_mlprod.alerts.summaries import alert_from_summary, summary_kind_of

    kind = summary_kind_of(summary)
    if kind is None:
        return None
    try:
        return alert_from_summary(
            summary,
            kind,
            dag_id=facts.dag_id,
            run_id=facts.run_id,
            task_id=facts.task_id,
            log_url=facts.log_url,
        )
    except MlprodError as exc:
        log.warning("the %s summary of task %r is not usable for the alert: %s", kind, facts.task_id, exc)
        return None


def _identity_or_none(context: Mapping[str, Any]) -> RunIdentity | None:
    from airflow_provider_mlprod.store.identity import RunIdentity

    ti = context.get("ti")
    try:
        map_index = _attribute(ti, "map_index")
        return RunIdentity(
            dag_id=_attribute(ti, "dag_id"),
            run_id=_attribute(ti, "run_id"),
            task_id=_attribute(ti, "task_id"),
            map_index=map_index if isinstance(map_index, int) else -1,
        )
    except ConfigurationError:
        return None

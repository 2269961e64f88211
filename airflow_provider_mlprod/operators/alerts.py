"""SendAlertOperator: an explicit alert step, from templated text or from an upstream summary.

.. seealso:: README section "Alerts".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.notifications.mlprod import (
    DEFAULT_DEDUP_WINDOW,
    AlertSettings,
    run_url,
    summary_alert,
)
from airflow_provider_mlprod.operators.outcome import final_errors_fail_the_task
from airflow_provider_mlprod.operators.run_context import run_identity
from airflow_provider_mlprod.summaries import SUMMARY_KINDS

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlprod.alerts.message import Alert


class SendAlertOperator(AlertSettings, BaseOperator):
    """Send one alert to the mlprod alert channels, with routing, dedup and delivery history.

    The alert is either written here (``title``, ``text``, ``severity``, ``facts``, ``links``) or built
    from the summary an upstream task pushed (``summary_task_id``, ``summary_kind``); ``title``,
    ``text`` and ``severity`` given alongside a summary replace the built ones.

    Returns (to XCom) the delivery report: per channel ``status`` (delivered / failed / suppressed),
    attempts, HTTP status and error; no URL and no secret. The task fails only when every routed
    channel failed, naming each channel and its last error, after the alert was written in full to
    the task log at ERROR and the failures recorded in the metrics store: a retryable failure when at
    least one failure was transient (connection, timeout, 429, 5xx), so the task's ``retries``
    deliver it later; a final one when every failure was deterministic (401, 403, 404, bad
    configuration). A partial failure is logged as a warning and marked in the report.

    :param title: headline (templated); required without ``summary_task_id``.
    :param text: body text (templated).
    :param severity: ``info``, ``warning`` or ``critical`` (templated); default ``warning``, or the
        summary's severity.
    :param facts: key -> value pairs shown with the alert (templated); a dict or list, or the text a
        template renders one to (``{'passed': 9}``), is shown as ``passed 9``.
    :param links: label -> http(s) URL (templated); links must not carry secrets. A "Run" link to the
        run's page is added when ``[api] base_url`` is an http(s) address.
    :param summary_task_id: the task whose XCom holds a validation, drift or gate summary.
    :param summary_kind: ``validation``, ``drift`` or ``gate``; ``None`` guesses from the keys.
    :param summary_xcom_key: the XCom key of the summary.
    :param alert_conn_ids: ``routing``, ``dedup_window``, ``repeat_every``, ``dedup_key``,
        ``store_conn_id``: as for :class:`~airflow_provider_mlprod.notifications.mlprod.MlprodNotifier`.
    :param action: ``trigger`` or ``resolve`` (closes the PagerDuty incident of the same dedup key);
        default ``trigger``, or the summary's action (``resolve`` when it passed). Given alongside a
        summary, it replaces the summary's action.
    """

    template_fields: Sequence[str] = (
        "title",
        "text",
        "severity",
        "facts",
        "links",
        "summary_task_id",
        "summary_kind",
        "alert_conn_ids",
        "routing",
        "dedup_key",
        "action",
        "store_conn_id",
    )
    template_fields_renderers = {"facts": "json", "links": "json", "routing": "json", "text": "md"}
    ui_color = "#f7d6d0"

    def __init__(
        self,
        *,
        title: str | None = None,
        text: str = "",
        severity: str | None = None,
        facts: Mapping[str, Any] | None = None,
        links: Mapping[str, str] | None = None,
        summary_task_id: str | None = None,
        summary_kind: str | None = None,
        summary_xcom_key: str = "return_value",
        alert_conn_ids: Sequence[str] | None = None,
        routing: Mapping[str, Sequence[str]] | None = None,
        dedup_window: timedelta | float = DEFAULT_DEDUP_WINDOW,
        repeat_every: timedelta | float | None = None,
        dedup_key: str | None = None,
        action: str | None = None,
        store_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = f"task {self.task_id!r}"
        if not title and not summary_task_id:
            raise ValueError(f"{owner}: give a title, or a summary_task_id to build the alert from")
        if summary_kind is not None and "{{" not in summary_kind and summary_kind not in SUMMARY_KINDS:
            raise ValueError(f"{owner}: summary_kind must be one of {', '.join(SUMMARY_KINDS)}")
        self.title, self.text, self.dedup_key, self.action, self.store_conn_id = (
            title,
            text,
            dedup_key,
            action,
            store_conn_id,
        )
        self.facts = dict(facts) if facts is not None else {}
        self.links = dict(links) if links is not None else {}
        self.summary_task_id, self.summary_kind, self.summary_xcom_key = (
            summary_task_id,
            summary_kind,
            summary_xcom_key,
        )
        self._check_settings(owner, severity, alert_conn_ids, routing, dedup_window, repeat_every)
        self.delivery_report: dict[str, Any] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Build the alert, send it, push the report; fail only when every channel failed."""
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from airflow_provider_mlprod.alerts.routing import AlertDeliveryError

        with final_errors_fail_the_task():
            alert = self.build_alert(context)
            try:
                report = self.send(alert, run_identity(context))
            except AlertDeliveryError as exc:
                self.delivery_report = self._report_dict(alert, exc.report)
                context["ti"].xcom_push(key="return_value", value=self.delivery_report)
                # A transient failure (connection, timeout, 429, 5xx) is retried by Airflow; dedup keeps
                # the retry off the channels that did get it. Only deterministic failures are final.
                raise (AirflowException if exc.transient else AirflowFailException)(str(exc)) from None
        self.delivery_report = self._report_dict(alert, report)
        return self.delivery_report

    def build_alert(self, context: Context) -> Alert:
        """The alert this task sends (from its own fields, or from the upstream summary)."""
        import dataclasses

        from airflow_provider_mlprod.alerts.message import Alert, AlertLink, readable_fact
        from airflow_provider_mlprod.exceptions import SpecError

        ti = context["ti"]
        if not isinstance(self.facts, Mapping) or not isinstance(self.links, Mapping):
            raise SpecError(f"task {ti.task_id!r}: facts and links must render to dicts")
        if self.action is not None and self.action not in ("trigger", "resolve"):
            raise SpecError(f"task {ti.task_id!r}: action {self.action!r} is not 'trigger' or 'resolve'")
        links = [AlertLink(str(label), str(url)) for label, url in self.links.items()]
        facts = {str(key): readable_fact(value) for key, value in self.facts.items()}
        if not self.summary_task_id:
            url = run_url(ti.dag_id, ti.run_id)
            return Alert(
                title=str(self.title),
                severity=self.severity or "warning",
                summary=str(self.text or ""),
                facts=facts,
                links=[
                    *links,
                    *([AlertLink("Run", url)] if url and url not in {x.url for x in links} else []),
                ],
                dedup_key=str(self.dedup_key or ""),
                action=self.action or "trigger",
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                task_id=ti.task_id,
            )
        alert = summary_alert(ti, self.summary_task_id, key=self.summary_xcom_key, kind=self.summary_kind)
        changes: dict[str, Any] = {"facts": {**alert.facts, **facts}, "links": [*alert.links, *links]}
        fields = {
            "title": self.title,
            "summary": self.text,
            "severity": self.severity,
            "dedup_key": self.dedup_key,
        }
        changes.update({field: str(value) for field, value in fields.items() if value})
        changes.update({"action": self.action} if self.action else {})
        return dataclasses.replace(alert, **changes)

    @staticmethod
    def _report_dict(alert: Alert, report: Any) -> dict[str, Any]:
        from airflow_provider_mlprod.alerts.routing import stored_dedup_key

        key = stored_dedup_key(alert.dedup_key, alert.action, alert.severity)
        return {"title": alert.title, **report.to_dict(), "store_dedup_key": key}

"""SendAlertOperator: an explicit alert step, from templated text or an upstream summary (README "Alerts")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mlprod.notifications.mlprod import (
    AlertSettings,
    is_template,
    run_url,
    send_alert_via_connections,
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

    The alert is written here or built from an upstream summary (fields given replace the built ones).
    Returns the delivery report (no URL, no secret). Fails only when every routed channel failed:
    retryable if a failure was transient (connection, timeout, 429, 5xx), else final (401, 404, ...).
    While retries are left, a transient failure on some channels is retried too (dedup spares the rest).

    :param facts: key -> value shown with the alert (templated); a dict or list, or the text a
        template renders one to (``{'passed': 9}``), is shown as ``passed 9``.
    :param links: label -> http(s) URL (templated), never secrets; a "Run" link is added.
    :param summary_task_id: the task whose XCom holds a validation, drift or gate summary.
    :param summary_kind: ``validation``, ``drift`` or ``gate``; ``None`` guesses from the keys.
    :param summary_xcom_key: the XCom key of the summary.
    :param action: ``trigger`` or ``resolve``; default ``trigger``, or the summary's.
    Other arguments: see :class:`~airflow_provider_mlprod.notifications.mlprod.AlertSettings`.
    """

    template_fields: Sequence[str] = (
        *AlertSettings.template_fields,
        "facts",
        "links",
        "summary_task_id",
        "summary_kind",
        "action",
    )
    template_fields_renderers = {"facts": "json", "links": "json", "routing": "json", "text": "md"}
    ui_color = "#f7d6d0"

    def __init__(
        self,
        *,
        text: str = "",
        facts: Mapping[str, Any] | None = None,
        links: Mapping[str, str] | None = None,
        summary_task_id: str | None = None,
        summary_kind: str | None = None,
        summary_xcom_key: str = "return_value",
        action: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(text=text, **kwargs)
        if not self.title and not summary_task_id:
            raise ValueError(f"task {self.task_id!r}: give a title, or a summary_task_id to alert from")
        if summary_kind is not None and not is_template(summary_kind) and summary_kind not in SUMMARY_KINDS:
            raise ValueError(f"task {self.task_id!r}: summary_kind must be one of {', '.join(SUMMARY_KINDS)}")
        self.facts, self.links = dict(facts or {}), dict(links or {})
        self.summary_task_id, self.summary_kind = summary_task_id, summary_kind
        self.summary_xcom_key, self.action = summary_xcom_key, action
        self.delivery_report: dict[str, Any] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from airflow_provider_mlprod.alerts.routing import AlertDeliveryError

        with final_errors_fail_the_task():
            alert = self.build_alert(context)
            try:
                report = send_alert_via_connections(alert, self, run_identity(context))
            except AlertDeliveryError as exc:
                self.delivery_report = exc.report.to_dict()
                context["ti"].xcom_push(key="return_value", value=self.delivery_report)
                # A transient failure (connection, timeout, 429, 5xx) is retried by Airflow; dedup keeps
                # the retry off the channels that did get it. Only deterministic failures are final.
                raise (AirflowException if exc.transient else AirflowFailException)(str(exc)) from None
        self.delivery_report = report.to_dict()
        pending = [r.channel for r in report.results if r.failed and r.transient]
        if pending and context["ti"].try_number <= self.retries:  # the retry sends only there (dedup)
            context["ti"].xcom_push(key="return_value", value=self.delivery_report)
            raise AirflowException(f"alert {alert.title!r} not delivered on {pending} yet; retrying there")
        return self.delivery_report

    def build_alert(self, context: Context) -> Alert:
        from airflow_provider_mlprod.alerts.message import Alert, AlertLink, readable_fact
        from airflow_provider_mlprod.exceptions import SpecError

        ti = context["ti"]
        if not isinstance(self.facts, Mapping) or not isinstance(self.links, Mapping):
            raise SpecError(f"task {ti.task_id!r}: facts and links must render to dicts")
        links = [AlertLink(str(label), str(url)) for label, url in self.links.items()]
        facts = {str(key): readable_fact(value) for key, value in self.facts.items()}
        if self.summary_task_id:
            alert = summary_alert(ti, self.summary_task_id, key=self.summary_xcom_key, kind=self.summary_kind)
        else:
            url = run_url(ti.dag_id, ti.run_id)
            links += [AlertLink("Run", url)] if url and url not in {link.url for link in links} else []
            ids = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id}
            alert = Alert(title=str(self.title), severity="warning", **ids)
        return self.overridden(alert, self.severity, self.action, facts=facts, links=links)

"""Route one alert to several named channels by severity, with dedup and the all-failed rule.

:func:`dispatch_alert` is the one call the notifier and the alert operator make: it takes the
channels as :class:`ChannelSpec` (name, target, retry policy) and the metrics store, whose delivery
history is both the dedup state and where every result is written, and runs an :class:`AlertRouter`.

Channels are named targets, e.g. ``{"oncall": PagerDutyTarget(...), "team": SlackWebhookTarget(...)}``;
the name (never the URL) identifies a channel in results, logs and errors. The routing rule maps a
severity to channel names, e.g. ``{"critical": ["oncall", "team"], "warning": ["team"],
"info": ["log"]}``.

Rules:

- no rule: every configured channel gets every alert; no channel at all: the built-in log channel;
- a severity that the rule leaves out, or maps to an empty list, goes to the log channel, so no
  alert is dropped silently; the name ``log`` is always available (a configured ``log`` wins);
- a ``resolve`` is routed to the union of the channels of every severity (whatever its own
  severity), so it can reach each channel that may hold the incident it closes (e.g. PagerDuty routed
  for ``critical`` only). With a dedup store it is sent only to the channels with an open trigger for
  the same alert dedup key (the latest delivery of that alert there, any severity, is a trigger:
  :meth:`DedupStore.has_open_trigger`); the others get a ``suppressed`` result with the reason
  :data:`NO_OPEN_TRIGGER`, so a passing run that closes nothing posts nothing. Task-log channels
  (the built-in ``log``) always get it, so nothing is dropped silently. A store that cannot answer
  counts as "open" (a resolve too many beats an incident left open). Without a dedup store a resolve
  goes to the whole union; dedup and history apply to it as to any alert;
- dedup (when a store is given): per channel, the key ``<dedup_key>|<action>|<severity>|<channel>``
  seen within the window is not sent again (result status ``suppressed``), unless the opposite action
  (trigger / resolve) of the same dedup key was delivered on that channel after it: a resolve ends
  the window of its trigger and vice versa; a key is recorded only after its channel accepted the
  alert, so a task retry re-sends only to the channels that failed;
- a channel whose send raises an unexpected exception is a failed result (error: the exception's
  type name, never its message); the other channels are still tried;
- a dedup store that raises is logged and the alert is sent anyway (fail open); the store is then
  not asked again for the rest of that alert, so a hung store costs one timeout, not one per channel;
- the channels due are sent at the same time (at most :data:`MAX_PARALLEL_CHANNELS` threads), each
  under its own delivery deadline, so one hanging channel delays no other;
- each channel may have its own delivery options or retry policy (``options_by_channel``); the
  others use the router's ``options``;
- a channel whose configuration could not be read (``unusable_channels``) is still routed, and each
  time it is routed it is a failed result, never a silent drop;
- with a delivery history, every delivered and failed result is written there before the
  all-failed error is raised;
- if every channel that was tried failed (none delivered, none suppressed), :func:`AlertRouter.dispatch`
  logs the whole alert at ERROR (so it is never lost) and raises :class:`AlertDeliveryError` naming
  each channel and its last error; the results are on its ``report`` attribute and its ``transient``
  flag says whether any failure may pass on a later try. A partial failure returns the report with
  the failed channels marked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.alerts.channels import ChannelTarget, channel_kind_of, send_to_target
from airflow_provider_mlprod.alerts.dedup import DedupStore, DeliveryHistory, router_key
from airflow_provider_mlprod.alerts.delivery import DeliveryOptions, DeliveryResult, RetryPolicy
from airflow_provider_mlprod.alerts.log_channel import LogTarget, render_alert_text
from airflow_provider_mlprod.alerts.message import SEVERITIES, Alert
from airflow_provider_mlprod.exceptions import ConfigurationError, DeliveryError, StoreError

if TYPE_CHECKING:
    from airflow_provider_mlprod.store.identity import RunIdentity
    from airflow_provider_mlprod.store.metrics_store import MetricsStore

log = logging.getLogger(__name__)

DEFAULT_CHANNEL_NAME = "log"
#: Channels of one alert sent at the same time, at most.
MAX_PARALLEL_CHANNELS = 8
DEFAULT_DEDUP_WINDOW = timedelta(hours=1)

#: ``kind`` of the result of a channel whose configuration could not be read.
UNUSABLE_KIND = "unusable"

#: ``reason`` of a result suppressed because the channel had the same alert within the dedup window.
DUPLICATE = "already sent within the dedup window"
#: ``reason`` of a resolve not sent to a channel that has no open trigger for its alert.
NO_OPEN_TRIGGER = "no open trigger"


@dataclass
class DispatchReport:
    """The outcome of routing one alert: one :class:`DeliveryResult` per routed channel."""

    dedup_key: str
    severity: str
    action: str
    results: list[DeliveryResult] = field(default_factory=list)

    @property
    def delivered_channels(self) -> list[str]:
        """Names of the channels that accepted the alert in this call."""
        return [result.channel for result in self.results if result.delivered]

    @property
    def failed_channels(self) -> list[str]:
        """Names of the channels that could not be reached or refused the alert."""
        return [result.channel for result in self.results if result.failed]

    @property
    def suppressed_channels(self) -> list[str]:
        """Names of the channels skipped: they got the same alert within the window, or the alert is a
        resolve and they have no open trigger (each result's ``reason`` says which)."""
        return [result.channel for result in self.results if result.status == "suppressed"]

    @property
    def all_failed(self) -> bool:
        """True when at least one channel was tried and none delivered or was suppressed."""
        return bool(self.results) and all(result.failed for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-safe dict (no URL, no secret)."""
        return {
            "dedup_key": self.dedup_key,
            "severity": self.severity,
            "action": self.action,
            "delivered": self.delivered_channels,
            "failed": self.failed_channels,
            "suppressed": self.suppressed_channels,
            "results": [result.to_dict() for result in self.results],
        }


class AlertDeliveryError(DeliveryError):
    """Every channel of an alert failed. ``report`` holds the per-channel results; ``transient`` says
    whether at least one failure may pass on a later try (connection, timeout, 429, 5xx), so a task
    retry can still deliver it; when ``False`` every failure was deterministic (401, 403, 404, a bad
    configuration)."""

    def __init__(self, alert_title: str, report: DispatchReport) -> None:
        self.report = report
        self.transient = any(result.transient for result in report.results)
        failures = "; ".join(
            f"channel {result.channel!r} ({result.kind}): {result.error} after {result.attempts} attempt(s)"
            for result in report.results
        )
        super().__init__(f"alert {alert_title!r} was not delivered on any channel: {failures}")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AlertRouter:
    """Send alerts to named channels chosen by severity, with dedup, history and failure accounting.

    :param channels: channel name -> target; names must not look like URLs.
    :param rule: severity -> channel names; ``None`` sends every alert to every channel.
    :param dedup_store: where delivered keys are remembered; ``None`` disables dedup.
    :param dedup_window: how long a sent alert suppresses the same alert on the same channel.
    :param options: retry policy and injectable sleep / jitter / session for HTTP channels; the
        default of every channel that ``options_by_channel`` leaves out.
    :param options_by_channel: channel name -> its own :class:`DeliveryOptions`, or a
        :class:`RetryPolicy` that replaces only the policy of ``options`` (sleep, jitter source and
        session stay shared). Each connection can so set its own timeout and attempts.
    :param unusable_channels: channel name -> why it cannot be used (e.g. a connection without a
        webhook URL; the text must hold no secret). Such a channel takes part in the rule; each time
        it is routed it is a failed result of kind :data:`UNUSABLE_KIND`, so it is never dropped
        silently.
    :param history: where every delivered and every failed result is written (suppressed results are
        not deliveries and are not written), before the all-failed error is raised; it may be the
        dedup store itself (the metrics store's delivery history is both).
    :param clock: returns the current timezone-aware time (injectable for dedup tests).
    """

    def __init__(
        self,
        channels: Mapping[str, ChannelTarget],
        rule: Mapping[str, Sequence[str]] | None = None,
        *,
        dedup_store: DedupStore | None = None,
        dedup_window: timedelta = DEFAULT_DEDUP_WINDOW,
        options: DeliveryOptions | None = None,
        options_by_channel: Mapping[str, DeliveryOptions | RetryPolicy] | None = None,
        unusable_channels: Mapping[str, str] | None = None,
        history: DeliveryHistory | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        unusable = dict(unusable_channels or {})
        for name, target in channels.items():
            _check_channel_name(name)
            channel_kind_of(target)
        for name, reason in unusable.items():
            _check_channel_name(name)
            if name in channels:
                raise ConfigurationError(f"alert routing: channel {name!r} is both configured and unusable")
            if not isinstance(reason, str):
                raise ConfigurationError(
                    f"alert routing: the reason channel {name!r} is unusable is not text"
                )
        self.channels: dict[str, ChannelTarget] = dict(channels)
        self.unusable_channels: dict[str, str] = unusable
        if DEFAULT_CHANNEL_NAME not in unusable:
            self.channels.setdefault(DEFAULT_CHANNEL_NAME, LogTarget())
        self.rule = self._checked_rule(rule, [*channels, *unusable])
        if dedup_window <= timedelta(0):
            raise ConfigurationError(f"alert routing: dedup_window must be positive, got {dedup_window}")
        self.dedup_store = dedup_store
        self.dedup_window = dedup_window
        self.history = history
        self.options = options or DeliveryOptions()
        self.options_by_channel = self._checked_channel_options(options_by_channel or {})
        self.clock = clock
        self._store_usable = True

    def _checked_channel_options(
        self, options_by_channel: Mapping[str, DeliveryOptions | RetryPolicy]
    ) -> dict[str, DeliveryOptions]:
        checked: dict[str, DeliveryOptions] = {}
        for name, channel_options in options_by_channel.items():
            if name not in self.channels and name not in self.unusable_channels:
                raise ConfigurationError(
                    f"alert routing: options given for unknown channel {name!r}; "
                    f"configured: {sorted(self.channels)}"
                )
            if isinstance(channel_options, RetryPolicy):
                checked[name] = replace(self.options, policy=channel_options)
            elif isinstance(channel_options, DeliveryOptions):
                checked[name] = channel_options
            else:
                raise ConfigurationError(
                    f"alert routing: options of channel {name!r} must be DeliveryOptions or a RetryPolicy, "
                    f"got {type(channel_options).__name__}"
                )
        return checked

    def options_for(self, channel: str) -> DeliveryOptions:
        """Return the delivery options of ``channel``: its own, else the router's default."""
        return self.options_by_channel.get(channel, self.options)

    def _checked_rule(
        self, rule: Mapping[str, Sequence[str]] | None, configured: Sequence[str]
    ) -> dict[str, list[str]]:
        if rule is None:
            every = list(configured) or [DEFAULT_CHANNEL_NAME]
            return {severity: list(every) for severity in SEVERITIES}
        checked: dict[str, list[str]] = {}
        for severity, names in rule.items():
            if severity not in SEVERITIES:
                raise ConfigurationError(f"alert routing: rule key {severity!r} is not one of {SEVERITIES}")
            if isinstance(names, str):
                raise ConfigurationError(
                    f"alert routing: rule for {severity!r} must be a list of channel names, not a string"
                )
            known = [*self.channels, *self.unusable_channels]
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ConfigurationError(
                    f"alert routing: rule for {severity!r} names unknown channel(s) {unknown}; "
                    f"configured: {sorted(known)}"
                )
            checked[severity] = list(dict.fromkeys(names))
        for severity in SEVERITIES:
            if not checked.get(severity):
                checked[severity] = [DEFAULT_CHANNEL_NAME]
        return checked

    def channels_for(self, severity: str, action: str = "trigger") -> list[str]:
        """Return the channel names an alert of ``severity`` and ``action`` is routed to: the rule's
        channels for ``severity``; for a ``resolve``, the channels of every severity (highest first),
        of which :meth:`dispatch` sends only to those with an open trigger when a dedup store is set."""
        if severity not in SEVERITIES:
            raise ConfigurationError(f"alert routing: severity {severity!r} is not one of {SEVERITIES}")
        if action == "resolve":
            return list(dict.fromkeys(name for level in reversed(SEVERITIES) for name in self.rule[level]))
        return list(self.rule[severity])

    @staticmethod
    def dedup_store_key(alert: Alert, channel: str) -> str:
        """Return the dedup store key of ``alert`` on ``channel``."""
        return router_key(alert.dedup_key, alert.action, alert.severity, channel)

    def dispatch(self, alert: Alert) -> DispatchReport:
        """Send ``alert`` to its channels and return the report; raise if every tried channel failed.

        Each delivered and failed result is written to the history first; when every channel
        failed, the alert text is logged at ERROR so it is not lost, then the error is raised.

        :raises AlertDeliveryError: (a :class:`DeliveryError`) when no channel delivered the alert and
            none had it already within the dedup window.
        """
        report = DispatchReport(dedup_key=alert.dedup_key, severity=alert.severity, action=alert.action)
        self._store_usable = True
        results: dict[str, DeliveryResult | None] = {}
        for name in self.channels_for(alert.severity, alert.action):
            if alert.action == "resolve" and not self._resolve_is_due(alert, name):
                log.info("alert %r: channel %r has no open trigger; resolve not sent", alert.title, name)
                results[name] = self._suppressed(name, NO_OPEN_TRIGGER)
            elif name in self.unusable_channels:
                error = self.unusable_channels[name]
                results[name] = DeliveryResult(channel=name, kind=UNUSABLE_KIND, status="failed", error=error)
            elif self._seen_recently(self.dedup_store_key(alert, name), name):
                log.info(
                    "alert %r: channel %r had it within %s; not sent again",
                    alert.title,
                    name,
                    self.dedup_window,
                )
                results[name] = self._suppressed(name, DUPLICATE)
                self._store_call("record_suppressed", self.dedup_store_key(alert, name), self.clock())
            else:
                results[name] = None  # to send
        # First or repeat, per channel, decided before sending (store work stays on this thread).
        due = {name: self._first_or_repeat(alert, name) for name, result in results.items() if result is None}
        if due:
            # Each channel in its own thread with its own deadline: a hanging one delays no other.
            with ThreadPoolExecutor(max_workers=min(len(due), MAX_PARALLEL_CHANNELS)) as pool:
                sent = pool.map(lambda item: self._send(*item), due.items())
                results.update(zip(due, sent, strict=True))
        for name, result in results.items():
            report.results.append(result)
            self._keep(self.dedup_store_key(alert, name), result)
        if report.all_failed:
            log.error(
                "alert %r reached no channel; its text follows so it is not lost:\n%s",
                alert.title,
                render_alert_text(alert),
            )
            raise AlertDeliveryError(alert.title, report)
        if report.failed_channels:
            log.warning(
                "alert %r: delivered on %s, failed on %s",
                alert.title,
                report.delivered_channels + report.suppressed_channels,
                report.failed_channels,
            )
        return report

    def _send(self, name: str, alert: Alert) -> DeliveryResult:
        """Send to one channel; an unexpected exception is a failed result naming only its type."""
        target = self.channels[name]
        try:
            return send_to_target(target, alert, channel=name, options=self.options_for(name))
        except Exception as exc:
            # The message may quote a header value, URL or secret: keep the type name only.
            error = type(exc).__name__
            log.warning("alert %r: channel %r raised %s while sending", alert.title, name, error)
            return DeliveryResult(
                channel=name, kind=channel_kind_of(target).kind, status="failed", error=error
            )

    def _store_call(self, method: str, *args: Any) -> Any:
        """Call the dedup store; ``None`` without a usable store or when the call fails (fail open)."""
        if self.dedup_store is None or not self._store_usable or not hasattr(self.dedup_store, method):
            return None
        try:
            return getattr(self.dedup_store, method)(*args)
        except Exception as exc:
            self._store_usable = False
            error = str(exc) if isinstance(exc, StoreError) else type(exc).__name__
            log.warning("alert dedup store unusable (%s); sending without it", error)
            return None

    def _first_or_repeat(self, alert: Alert, name: str) -> Alert:
        """``alert`` as sent to ``name``: a trigger whose incident is still open there (delivered
        before, not resolved since) is a repeat, titled so with the count of repeats suppressed since."""
        if alert.action != "trigger" or isinstance(self.channels.get(name), LogTarget):
            return alert
        key = self.dedup_store_key(alert, name)
        last = self._store_call("last_sent", key)
        if last is None or not self._store_call("has_open_trigger", alert.dedup_key, name):
            return alert
        count = self._store_call("suppressed_since", key, last) or 0
        since = last.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        facts = {**alert.facts, "Repeats suppressed": count, "Last sent": since}
        return replace(alert, title=f"Repeat ({count} suppressed since {since}): {alert.title}", facts=facts)

    def _suppressed(self, name: str, reason: str) -> DeliveryResult:
        return DeliveryResult(channel=name, kind=self._kind_of(name), status="suppressed", reason=reason)

    def _kind_of(self, name: str) -> str:
        if name in self.unusable_channels:
            return UNUSABLE_KIND
        return channel_kind_of(self.channels[name]).kind

    def _resolve_is_due(self, alert: Alert, channel: str) -> bool:
        """Whether the resolve ``alert`` is sent to ``channel``: always without a dedup store and on a
        task-log channel; otherwise only when the channel has an open trigger for the alert."""
        if (
            self.dedup_store is None
            or not self._store_usable
            or isinstance(self.channels.get(channel), LogTarget)
        ):
            return True
        try:
            return bool(self.dedup_store.has_open_trigger(alert.dedup_key, channel))
        except Exception as exc:
            # StoreError texts hold no secret; of anything else (a store without the lookup, a driver
            # error) only the type name is kept.
            error = str(exc) if isinstance(exc, StoreError) else type(exc).__name__
            self._store_usable = False
            log.warning(
                "alert dedup store cannot tell whether channel %r has an open trigger (%s); "
                "sending the resolve anyway",
                channel,
                error,
            )
            return True

    def _seen_recently(self, store_key: str, channel: str) -> bool:
        if self.dedup_store is None or not self._store_usable:
            return False
        try:
            return self.dedup_store.seen_recently(store_key, self.dedup_window, self.clock())
        except StoreError as exc:
            self._store_usable = False
            log.warning("alert dedup store unusable for channel %r (%s); sending anyway", channel, exc)
            return False

    def _keep(self, store_key: str, result: DeliveryResult) -> None:
        """Write ``result`` to the history, and a delivery to the dedup store; never raises."""
        if result.status == "suppressed" or not self._store_usable:
            return
        try:
            if self.history is not None:
                self.history.record_result(store_key, result)
            if result.delivered and self.dedup_store is not None and self.dedup_store is not self.history:
                self.dedup_store.record(store_key, self.clock())
        except Exception as exc:
            self._store_usable = False  # fail open: the next rows of this alert are not tried either
            error = str(exc) if isinstance(exc, StoreError) else type(exc).__name__
            log.warning("alert channel %r: delivery not recorded (%s)", result.channel, error)


def _check_channel_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError("alert routing: a channel name is empty")
    if "://" in name:
        raise ConfigurationError(
            "alert routing: a channel name looks like a URL; name channels, keep URLs in targets"
        )


@dataclass(frozen=True)
class ChannelSpec:
    """One named channel: its target and how hard to try it.

    :param name: the channel's name in results, logs and the store (a connection id, never a URL).
    :param target: the channel target (Slack, Teams, webhook, PagerDuty or log).
    :param policy: timeout and retries of this channel.
    """

    name: str
    target: ChannelTarget
    policy: RetryPolicy = field(default_factory=RetryPolicy)


def dispatch_alert(
    alert: Alert,
    channels: Sequence[ChannelSpec | tuple[str, ChannelTarget, RetryPolicy]],
    *,
    rule: Mapping[str, Sequence[str]] | None = None,
    dedup_store: DedupStore | None = None,
    dedup_window: timedelta = DEFAULT_DEDUP_WINDOW,
    metrics_store: MetricsStore | None = None,
    identity: RunIdentity | None = None,
    unusable_channels: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DispatchReport:
    """Send ``alert`` to the channels ``rule`` picks for its severity and return the report.

    :param alert: the alert.
    :param channels: ``ChannelSpec`` or ``(name, target, retry policy)`` per configured channel.
    :param rule: severity -> channel names, as in :class:`AlertRouter`; ``None`` sends to every channel
        (to the task log when there is none). Names in ``unusable_channels`` may appear in it.
    :param dedup_store: dedup state; when ``None`` and ``metrics_store`` is given, the metrics store's
        delivery history is the dedup state.
    :param dedup_window: how long a delivered alert suppresses the same alert on the same channel.
    :param metrics_store: where every delivered and failed result is recorded; ``None`` records nothing.
    :param identity: the task run that sends, linked to the recorded rows.
    :param unusable_channels: channel name -> why it cannot be used (e.g. a connection without a
        webhook URL; the text must hold no secret). Each routed one is a failed result.
    :param sleep: called with each retry wait in seconds.
    :raises AlertDeliveryError: (a ``DeliveryError``) when no routed channel delivered the alert and
        none had it already within the window; it names each channel and its last error, and its
        ``report`` holds the results. The failures are recorded before it is raised.
    :raises ConfigurationError: for a bad rule, a duplicate or malformed channel name.
    """
    specs = [spec if isinstance(spec, ChannelSpec) else ChannelSpec(*spec) for spec in channels]
    unusable = dict(unusable_channels or {})
    names = [spec.name for spec in specs] + list(unusable)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"alert dispatch: channel(s) {duplicates} configured more than once")
    for name in names:
        if not isinstance(name, str) or "|" in name:
            raise ConfigurationError(f"alert dispatch: channel name {name!r} must be a string without '|'")

    from airflow_provider_mlprod.alerts.store_dedup import MetricsStoreDedup

    history = MetricsStoreDedup(metrics_store, identity=identity) if metrics_store is not None else None
    router = AlertRouter(
        {spec.name: spec.target for spec in specs},
        rule,
        dedup_store=dedup_store if dedup_store is not None else history,
        dedup_window=dedup_window,
        options=DeliveryOptions(sleep=sleep),
        options_by_channel={spec.name: spec.policy for spec in specs},
        unusable_channels=unusable,
        history=history,
    )
    return router.dispatch(alert)

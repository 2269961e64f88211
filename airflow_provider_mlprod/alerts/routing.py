"""The one router (:func:`send_alert`): where an alert goes, dedup and cooldown, concurrent sends, history.

- No rule: every channel gets every alert; no channel, or a severity the rule leaves out: the task
  log (``log``). A ``resolve`` goes only where a trigger of its dedup key is open (and to ``log``).
- With the metrics store, a channel that had the same alert within the window (nothing opposite since),
  or that another process is sending it on (its claim in the store), is ``suppressed`` and the repeat
  counted; the next send is titled ``Repeat (N suppressed since ...)``. A task retry re-sends only
  where delivery failed. Store trouble: sent without (fail open).
- Due channels are sent at once (a bounded pool), each under its own deadline. When none delivered
  and none was suppressed, the alert's text is logged at ERROR and :class:`AlertDeliveryError` raised.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_mlprod.alerts.channels import ChannelTarget, LogTarget, channel_kind_of, send_to_target
from airflow_provider_mlprod.alerts.delivery import DeliveryResult, RetryPolicy, run_within
from airflow_provider_mlprod.alerts.message import ACTIONS, DEFAULT_DEDUP_WINDOW, SEVERITIES, Alert, sha256
from airflow_provider_mlprod.exceptions import ConfigurationError, DeliveryError, StoreError
from airflow_provider_mlprod.store import schema

if TYPE_CHECKING:
    from airflow_provider_mlprod.store.identity import RunIdentity
    from airflow_provider_mlprod.store.metrics_store import MetricsStore

log = logging.getLogger(__name__)

DEFAULT_CHANNEL_NAME = "log"
MAX_PARALLEL_CHANNELS = 8
#: Longest one call of the alert path on the store may take (its own timeouts bound the connect and
#: each statement, not a connection that stalls once open); then the alert goes on without the store.
STORE_CALL_SECONDS = 10.0
UNUSABLE_KIND = "unusable"
DUPLICATE = "already sent within the dedup window"
IN_PROGRESS = "being sent by another task"
#: A claim of a send lasts the channel's deadline plus this (the store calls around the send), so a
#: sender that died never holds back the task's retry for long.
CLAIM_MARGIN_SECONDS = 30.0
NO_OPEN_TRIGGER = "no open trigger"
DEDUP_KEY_COLUMN_CHARS: int = schema.alert_deliveries.c.dedup_key.type.length
#: A routing rule: severity -> the names of the channels that get alerts of that severity.
Rule = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Channel:
    """One named channel. The name (a connection id, never a URL) identifies it in results and the
    store. ``error`` (no secret in it) marks a channel whose configuration could not be read; its
    ``target`` is then ``None``."""

    name: str
    target: ChannelTarget | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    error: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError("alert routing: a channel name is empty")
        if len(self.name) > DEDUP_KEY_COLUMN_CHARS:
            raise ConfigurationError(f"alert routing: channel name over {DEDUP_KEY_COLUMN_CHARS} characters")
        if "://" in self.name:
            raise ConfigurationError("alert routing: a channel name looks like a URL; keep URLs in targets")
        if self.error is None:
            channel_kind_of(self.target)

    @property
    def kind(self) -> str:
        return UNUSABLE_KIND if self.error is not None else channel_kind_of(self.target).kind


@dataclass
class DispatchReport:
    """One :class:`DeliveryResult` per routed channel of ``alert``."""

    alert: Alert
    results: list[DeliveryResult] = field(default_factory=list)

    def channels(self, status: str) -> list[str]:
        """The names of the channels whose result has ``status``."""
        return [result.channel for result in self.results if result.status == status]

    delivered_channels = property(lambda self: self.channels("delivered"))
    failed_channels = property(lambda self: self.channels("failed"))
    suppressed_channels = property(lambda self: self.channels("suppressed"))

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dict (no URL, no secret), with the alert's key as the store holds it."""
        alert = self.alert
        data = {name: getattr(alert, name) for name in ("title", "dedup_key", "severity", "action")}
        data.update({status: self.channels(status) for status in ("delivered", "failed", "suppressed")})
        data["store_dedup_key"] = stored_dedup_key(alert.dedup_key, alert.action, alert.severity)
        return {**data, "results": [result.to_dict() for result in self.results]}


class AlertDeliveryError(DeliveryError):
    """No channel delivered the alert (``report``); ``transient``: a failure may pass on a later try."""

    def __init__(self, report: DispatchReport) -> None:
        self.report = report
        self.transient = any(result.transient for result in report.results)
        failures = "; ".join(
            f"channel {r.channel!r} ({r.kind}): {r.error} after {r.attempts} attempt(s)"
            for r in report.results
        )
        super().__init__(f"alert {report.alert.title!r} was not delivered on any channel: {failures}")


def stored_dedup_key(alert_dedup_key: str, action: str, severity: str) -> str:
    """The store's ``dedup_key`` value: ``<alert key>|<action>|<severity>``, the alert key hashed if long."""
    value = f"{alert_dedup_key}|{action}|{severity}"
    if len(value) > DEDUP_KEY_COLUMN_CHARS:
        value = f"sha256:{sha256(alert_dedup_key)}|{action}|{severity}"
    return value


def store_call(engine: Any, call: Callable[[], Any]) -> Any:
    """``call()``, bounded by :data:`STORE_CALL_SECONDS` on a database server (a connection there can
    stall once open); on SQLite in this thread (its lock waits are bounded by the busy timeout, and
    an in-memory database exists only in its own thread's connection)."""
    return call() if engine.dialect.name == "sqlite" else run_within(STORE_CALL_SECONDS, call)


class _FailOpen:
    """The metrics store for one alert: its stored key, and calls that fail open (the first error is
    logged, then the store is left alone and the alert goes out without dedup or history)."""

    def __init__(self, store: MetricsStore | None, alert: Alert, identity: RunIdentity | None) -> None:
        self.store, self.usable, self.alert_key = store, store is not None, alert.dedup_key
        self.key = stored_dedup_key(alert.dedup_key, alert.action, alert.severity)
        self.owner = sha256(json.dumps(identity.to_dict())) if identity else uuid.uuid4().hex

    def __call__(self, method: str, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        if not self.usable:
            return default
        try:
            return store_call(self.store.engine, lambda: getattr(self.store, method)(*args, **kwargs))
        except Exception as exc:  # a driver's message may hold the store URL: keep only the type
            self.usable = False
            error = str(exc) if isinstance(exc, StoreError) else type(exc).__name__
            after = (
                "delivery not recorded" if method.startswith("record") else "sending without dedup or history"
            )
            log.warning("alert store unusable (%s); %s", error, after)
            return default

    def deliveries(self, channel: str) -> dict[tuple[str, str], datetime] | None:
        """(action, severity) -> when this alert was last delivered on ``channel``; ``None``: unknown."""
        keys = {stored_dedup_key(self.alert_key, a, s): (a, s) for a in ACTIONS for s in SEVERITIES}
        found = self("last_alert_deliveries", list(keys), channel)
        return None if found is None else {keys[key]: at for key, at in found.items()}


URL_AS_CONN_ID = (
    "an alert connection id looks like a URL; put the URL in a connection's password field and give "
    "that connection's id"
)


def checked_rule(rule: Any) -> Rule | None:
    """A routing rule (severity -> channel names, or its JSON text) checked for shape; ``None`` is no rule."""
    try:
        rule = json.loads(rule) if isinstance(rule, str) else rule
    except ValueError:
        raise ConfigurationError(
            "alert routing: parameter 'routing' rendered to text that is not JSON; "
            'give a mapping such as {"critical": ["pd_oncall"]}'
        ) from None
    if rule is not None and not isinstance(rule, Mapping):
        raise _bad_rule("routing must map a severity to a list of connection ids")
    for key, routed in (rule or {}).items():
        if key not in SEVERITIES:
            raise _bad_rule(f"routing key {key!r} is not one of {SEVERITIES}")
        if isinstance(routed, str) or not isinstance(routed, Sequence):
            raise _bad_rule(f"routing for {key!r} must be a list of connection ids")
        if any("://" in str(conn_id) for conn_id in routed):  # never quoted: the URL is the secret
            raise _bad_rule(URL_AS_CONN_ID)
    return rule


def _bad_rule(problem: str) -> ConfigurationError:
    return ConfigurationError(f"alert routing: {problem} (parameter 'routing')")


def routed_channels(
    rule: Rule | None, configured: Sequence[str], severity: str, action: str = "trigger"
) -> list[str]:
    """The channel names an alert goes to under ``rule`` (see the module docstring)."""
    if (rule := checked_rule(rule)) is None:
        return list(configured) or [DEFAULT_CHANNEL_NAME]
    names = [*configured, DEFAULT_CHANNEL_NAME]
    for key, routed in rule.items():
        if unknown := [name for name in routed if name not in names]:
            raise _bad_rule(
                f"routing for {key!r} names unknown channel(s) {unknown}; configured: {sorted(names)}"
            )
    levels = list(reversed(SEVERITIES)) if action == "resolve" else [severity]
    return list(dict.fromkeys(name for level in levels for name in rule.get(level) or [DEFAULT_CHANNEL_NAME]))


def send_alert(
    alert: Alert,
    channels: Sequence[Channel],
    *,
    rule: Rule | None = None,
    store: MetricsStore | None = None,
    identity: RunIdentity | None = None,
    window: timedelta = DEFAULT_DEDUP_WINDOW,
) -> DispatchReport:
    """Send ``alert`` to the channels ``rule`` picks; ``store`` holds dedup state and history (linked
    to the sending task run ``identity``). :class:`AlertDeliveryError` when no routed channel delivered
    it or had it already (recorded and logged first); :class:`ConfigurationError` for a bad rule."""
    if window <= timedelta(0):
        raise ConfigurationError(f"alert routing: dedup_window must be positive, got {window}")
    named = {channel.name: channel for channel in channels}
    if twice := [name for name, count in Counter(c.name for c in channels).items() if count > 1]:
        raise ConfigurationError(f"alert routing: channel(s) {twice} configured more than once")
    routed = routed_channels(rule, list(named), alert.severity, alert.action)
    named.setdefault(DEFAULT_CHANNEL_NAME, Channel(DEFAULT_CHANNEL_NAME, LogTarget()))
    store = _FailOpen(store, alert, identity)
    results: dict[str, DeliveryResult | None] = {}
    due: dict[str, Alert] = {}
    for name in routed:
        channel, seen = named[name], store.deliveries(name)
        # the time of this reading, not of the call: a delivery another sender recorded since the call
        # began is within the window (the claim below only looks for deliveries newer than the one read)
        now = datetime.now(timezone.utc)
        known = seen or {}
        at = {a: max((when for (b, _), when in known.items() if b == a), default=None) for a in ACTIONS}
        is_open = at["trigger"] is not None and (at["resolve"] is None or at["resolve"] <= at["trigger"])
        sent = known.get((alert.action, alert.severity))
        opposite = at["resolve" if alert.action == "trigger" else "trigger"]
        task_log = isinstance(channel.target, LogTarget)  # gets every resolve, never a "Repeat" title
        claim = channel.policy.total_seconds + CLAIM_MARGIN_SECONDS
        if alert.action == "resolve" and seen is not None and not is_open and not task_log:
            log.info("alert %r: channel %r has no open trigger; resolve not sent", alert.title, name)
            results[name] = DeliveryResult(name, channel.kind, "suppressed", reason=NO_OPEN_TRIGGER)
        elif channel.error is not None:
            results[name] = DeliveryResult(name, UNUSABLE_KIND, "failed", error=channel.error)
        elif sent is not None and now - window < sent <= now and (opposite is None or opposite <= sent):
            log.info("alert %r: channel %r had it within %s; not sent again", alert.title, name, window)
            results[name] = DeliveryResult(name, channel.kind, "suppressed", reason=DUPLICATE)
            store("record_alert_suppressed", dedup_key=store.key, channel=name)
        elif not store(
            "claim_alert", store.key, name, owner=store.owner, seen_last=sent, default=True, seconds=claim
        ):
            log.info("alert %r: channel %r is being sent by another task; not sent", alert.title, name)
            results[name] = DeliveryResult(name, channel.kind, "suppressed", reason=IN_PROGRESS)
        else:
            results[name], due[name] = None, alert
            if alert.action == "trigger" and sent is not None and is_open and not task_log:
                count = store("alert_suppressed_count", store.key, name, sent, default=0)
                since = sent.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                facts = {**alert.facts, "Repeats suppressed": count, "Last sent": since}
                title = f"Repeat ({count} suppressed since {since}): {alert.title}"
                due[name] = replace(alert, title=title, facts=facts)
    if due:  # each channel in its own thread under its own deadline: a hanging one delays no other
        with ThreadPoolExecutor(max_workers=min(len(due), MAX_PARALLEL_CHANNELS)) as pool:
            outcomes = pool.map(_send, [named[name] for name in due], due.values())
        results.update(zip(due, outcomes, strict=True))
    report = DispatchReport(alert, list(results.values()))
    for r in (result for result in report.results if result.status != "suppressed"):
        row = {"channel": r.channel, "delivered": r.delivered, "attempts": r.attempts, "error": r.error or ""}
        row.update(dedup_key=store.key, status_code=r.status_code, identity=identity, owner=store.owner)
        store("record_alert_delivery", **row)
    if all(result.failed for result in report.results):
        log.error("alert %r reached no channel; the alert in full:\n%s", alert.title, alert.to_text())
        raise AlertDeliveryError(report)
    if report.failed_channels:
        done = report.delivered_channels + report.suppressed_channels
        log.warning("alert %r: delivered on %s, failed on %s", alert.title, done, report.failed_channels)
    return report


def _send(channel: Channel, alert: Alert) -> DeliveryResult:
    """Send to one channel; an unexpected exception is a failed result naming only its type."""
    try:
        return send_to_target(channel.target, alert, channel=channel.name, policy=channel.policy)
    except Exception as exc:  # its message may quote a header, URL or secret
        log.warning("alert %r: channel %r raised %s", alert.title, channel.name, type(exc).__name__)
        return DeliveryResult(channel.name, channel.kind, "failed", error=type(exc).__name__)

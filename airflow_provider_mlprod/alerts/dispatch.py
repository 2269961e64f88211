"""Send one alert to configured channels, each with its own retry policy, and keep the history.

:func:`dispatch_alert` is what the notifier and the alert operator call. It takes the channels as a
list of :class:`ChannelSpec` (name, target, retry policy), checks the names, and hands everything to
one :class:`~airflow_provider_mlprod.alerts.routing.AlertRouter`, which does the routing (rule
checking, the log fallback, per-channel dedup and retry policy, unusable channels, the all-failed
rule). With a metrics store, its delivery history is both the dedup state (unless another dedup
store is given) and where every delivered and failed result is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow_provider_mlprod.alerts.channels import ChannelTarget
from airflow_provider_mlprod.alerts.dedup import DedupStore
from airflow_provider_mlprod.alerts.delivery import DeliveryOptions, RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import DEFAULT_DEDUP_WINDOW, AlertRouter, DispatchReport
from airflow_provider_mlprod.alerts.store_dedup import MetricsStoreDedup
from airflow_provider_mlprod.exceptions import ConfigurationError

if TYPE_CHECKING:
    from airflow_provider_mlprod.store.identity import RunIdentity
    from airflow_provider_mlprod.store.metrics_store import MetricsStore


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

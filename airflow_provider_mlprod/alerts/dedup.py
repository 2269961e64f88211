"""Dedup state: "was this alert already sent to this channel within the window?".

:class:`DedupStore` is the interface the router needs; the metrics store provides the durable one.
:class:`InMemoryDedupStore` keeps the state in a dict (tests, single-process use).

:class:`DeliveryHistory` is where the router writes every delivered and failed result (the metrics
store's delivery history); it may be the same object as the dedup store.

Keys are opaque strings built by the router (alert dedup key, action, severity and channel name);
they hold no secret. A store records a key only after a delivery succeeded, so a failed delivery is
tried again next time. ``seen_recently`` followed by ``record`` is not atomic: two concurrent
senders may both send (a duplicate is preferred over a lost alert).

A delivered ``resolve`` ends the dedup window of the ``trigger`` it closes, and a delivered
``trigger`` ends the window of the ``resolve`` before it: a key is "seen recently" only when no
delivery of the opposite action (same alert dedup key and channel, any severity) is newer than its
own (see :func:`opposite_action_keys`). So fail, pass, fail within the window pages twice.

A channel has an *open trigger* for an alert dedup key when the latest delivery of that alert on
that channel (any severity) is a ``trigger``, not a ``resolve`` (see :func:`trigger_is_open`); the
router sends a ``resolve`` only to such channels (and the task log), so a passing run that closes
nothing posts nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from airflow_provider_mlprod.alerts.message import ACTIONS, SEVERITIES

if TYPE_CHECKING:
    from airflow_provider_mlprod.alerts.delivery import DeliveryResult


#: A router key: ``<alert dedup key>|<action>|<severity>|<channel>``.
ROUTER_KEY = re.compile(
    r"^(?P<alert_key>.+)\|(?P<action>{actions})\|(?P<severity>{severities})\|(?P<channel>[^|]+)$".format(
        actions="|".join(ACTIONS), severities="|".join(SEVERITIES)
    ),
    re.DOTALL,
)


def router_key(alert_key: str, action: str, severity: str, channel: str) -> str:
    """The router key ``<alert dedup key>|<action>|<severity>|<channel>`` (see :data:`ROUTER_KEY`)."""
    return f"{alert_key}|{action}|{severity}|{channel}"


def action_keys(alert_key: str, action: str, channel: str) -> list[str]:
    """The router keys of ``action`` for ``alert_key`` on ``channel``, one per severity."""
    return [router_key(alert_key, action, severity, channel) for severity in SEVERITIES]


def opposite_action_keys(key: str) -> list[str]:
    """The router keys of the other action (``trigger`` <-> ``resolve``) for the same alert dedup key
    and channel, one per severity; empty when ``key`` is not a router key."""
    match = ROUTER_KEY.match(key)
    if match is None:
        return []
    return [
        other
        for action in ACTIONS
        if action != match["action"]
        for other in action_keys(match["alert_key"], action, match["channel"])
    ]


def trigger_is_open(alert_key: str, channel: str, last_delivery: Callable[[str], datetime | None]) -> bool:
    """Whether ``channel`` has an open trigger for ``alert_key``: its latest delivered trigger (any
    severity) is not older than its latest delivered resolve (any severity).

    ``last_delivery`` returns when a router key was last delivered, or ``None``. A trigger and a
    resolve with the same time count as open: a resolve too many beats an incident left open.
    """
    latest = {
        action: max(
            (at for at in map(last_delivery, action_keys(alert_key, action, channel)) if at is not None),
            default=None,
        )
        for action in ACTIONS
    }
    trigger, resolve = latest["trigger"], latest["resolve"]
    return trigger is not None and (resolve is None or resolve <= trigger)


def is_duplicate(
    sent_at: datetime | None, opposite_sent_at: datetime | None, window: timedelta, now: datetime
) -> bool:
    """Whether a delivery at ``sent_at`` suppresses a new one at ``now``: it lies in
    ``(now - window, now]`` and no delivery of the opposite action (``opposite_sent_at``) is newer."""
    if sent_at is None or not now - window < sent_at <= now:
        return False
    return opposite_sent_at is None or opposite_sent_at <= sent_at


@runtime_checkable
class DedupStore(Protocol):
    """Where the router remembers what it sent. Implementations raise ``StoreError`` when unusable."""

    def seen_recently(self, key: str, window: timedelta, now: datetime) -> bool:
        """Return whether ``key`` was recorded at a time in ``(now - window, now]`` and no key of the
        opposite action (:func:`opposite_action_keys`) was recorded after it."""
        ...

    def record(self, key: str, sent_at: datetime) -> None:
        """Remember that ``key`` was sent at ``sent_at`` (timezone-aware)."""
        ...

    def has_open_trigger(self, alert_key: str, channel: str) -> bool:
        """Return whether the latest delivery of the alert ``alert_key`` on ``channel`` (any severity)
        is a trigger, not a resolve (:func:`trigger_is_open`); ``False`` when nothing was delivered."""
        ...

    def last_sent(self, key: str) -> datetime | None:
        """Return when ``key`` was last delivered, or ``None``."""
        ...

    def record_suppressed(self, key: str, at: datetime) -> None:
        """Remember that ``key`` was not sent at ``at`` (a repeat within the window)."""
        ...

    def suppressed_since(self, key: str, since: datetime) -> int:
        """Return how many times ``key`` was suppressed after ``since``."""
        ...


@runtime_checkable
class DeliveryHistory(Protocol):
    """Where the router writes each delivered and failed result. Raises ``StoreError`` when unusable."""

    def record_result(self, key: str, result: DeliveryResult) -> None:
        """Record one delivered or failed ``result`` under the router key ``key``."""
        ...


class InMemoryDedupStore:
    """A thread-safe, process-local :class:`DedupStore` keeping the last send time per key."""

    def __init__(self) -> None:
        self._last_sent: dict[str, datetime] = {}
        self._suppressed: dict[str, list[datetime]] = {}
        self._lock = threading.Lock()

    def seen_recently(self, key: str, window: timedelta, now: datetime) -> bool:
        """Return whether ``key`` was recorded at a time in ``(now - window, now]`` and no key of the
        opposite action was recorded after it."""
        with self._lock:
            sent_at = self._last_sent.get(key)
            opposite = [
                self._last_sent[other] for other in opposite_action_keys(key) if other in self._last_sent
            ]
        return is_duplicate(sent_at, max(opposite, default=None), window, now)

    def record(self, key: str, sent_at: datetime) -> None:
        """Remember that ``key`` was sent at ``sent_at``."""
        with self._lock:
            self._last_sent[key] = sent_at

    def has_open_trigger(self, alert_key: str, channel: str) -> bool:
        """Return whether the latest delivery of ``alert_key`` on ``channel`` is a trigger."""
        with self._lock:
            return trigger_is_open(alert_key, channel, self._last_sent.get)

    def last_sent(self, key: str) -> datetime | None:
        """Return when ``key`` was last recorded, or ``None``."""
        with self._lock:
            return self._last_sent.get(key)

    def record_suppressed(self, key: str, at: datetime) -> None:
        """Remember that ``key`` was suppressed at ``at``."""
        with self._lock:
            self._suppressed.setdefault(key, []).append(at)

    def suppressed_since(self, key: str, since: datetime) -> int:
        """Return how many times ``key`` was suppressed after ``since``."""
        with self._lock:
            return sum(1 for at in self._suppressed.get(key, []) if at > since)

    def keys(self) -> list[str]:
        """Return every recorded key (for inspection in tests)."""
        with self._lock:
            return list(self._last_sent)

"""Dedup state: "was this alert already sent to this channel within the window?".

:class:`DedupStore` is the interface the router needs; the metrics store provides the durable one.
:class:`InMemoryDedupStore` keeps the state in a dict (tests, single-process use).

:class:`DeliveryHistory` is where the router writes every delivered and failed result (the metrics
store's delivery history); it may be the same object as the dedup store.

Keys are opaque strings built by the router (alert dedup key, action, severity and channel name);
they hold no secret. A store records a key only after a delivery succeeded, so a failed delivery is
tried again next time. ``seen_recently`` followed by ``record`` is not atomic: two concurrent
senders may both send (a duplicate is preferred over a lost alert).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from airflow_provider_mlprod.alerts.delivery import DeliveryResult


@runtime_checkable
class DedupStore(Protocol):
    """Where the router remembers what it sent. Implementations raise ``StoreError`` when unusable."""

    def seen_recently(self, key: str, window: timedelta, now: datetime) -> bool:
        """Return whether ``key`` was recorded at a time in ``(now - window, now]``."""
        ...

    def record(self, key: str, sent_at: datetime) -> None:
        """Remember that ``key`` was sent at ``sent_at`` (timezone-aware)."""
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
        self._lock = threading.Lock()

    def seen_recently(self, key: str, window: timedelta, now: datetime) -> bool:
        """Return whether ``key`` was recorded at a time in ``(now - window, now]``."""
        with self._lock:
            sent_at = self._last_sent.get(key)
        return sent_at is not None and now - window < sent_at <= now

    def record(self, key: str, sent_at: datetime) -> None:
        """Remember that ``key`` was sent at ``sent_at``."""
        with self._lock:
            self._last_sent[key] = sent_at

    def keys(self) -> list[str]:
        """Return every recorded key (for inspection in tests)."""
        with self._lock:
            return list(self._last_sent)

"""Dedup state and delivery history in the metrics store: a :class:`DedupStore` over ``MetricsStore``.

The router asks about per-channel keys ``<alert dedup key>|<action>|<severity>|<channel>``; the store
keeps one row per delivery with a ``dedup_key`` column and a ``channel`` column (250 characters
each). :class:`MetricsStoreDedup` maps one onto the other:

- ``channel`` column: the channel name (the last ``|``-separated part of the key, so channel names
  must not contain ``|``; alert connection ids cannot);
- ``dedup_key`` column: ``<alert dedup key>|<action>|<severity>``, so a ``resolve`` is never
  suppressed by the ``trigger`` before it and an escalation from warning to critical is sent again.
  When that text is longer than the column, the alert dedup key part is replaced by
  ``sha256:<hex digest>`` (see :func:`stored_dedup_key`).

"Seen recently" means a *delivered* row for the same columns within the window, with no delivered
row of the opposite action (same alert dedup key and channel, any severity) newer than it: a
delivered resolve ends the window of its trigger and vice versa. A channel has an "open trigger" for
an alert when its latest delivered row for that alert (any severity) is a trigger. Failed deliveries
are recorded too (history, diagnosis) but never suppress a later attempt nor open a trigger. Store
failures surface as :class:`StoreError`, which the router logs before sending anyway (a duplicate
beats a lost alert).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from airflow_provider_mlprod.alerts.dedup import (
    ROUTER_KEY,
    is_duplicate,
    opposite_action_keys,
    trigger_is_open,
)
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import StoreError
from airflow_provider_mlprod.store import schema

if TYPE_CHECKING:
    from airflow_provider_mlprod.alerts.delivery import DeliveryResult
    from airflow_provider_mlprod.store.identity import RunIdentity
    from airflow_provider_mlprod.store.metrics_store import MetricsStore

#: Longest value the store's ``dedup_key`` and ``channel`` columns hold.
DEDUP_KEY_COLUMN_CHARS: int = schema.alert_deliveries.c.dedup_key.type.length
CHANNEL_COLUMN_CHARS: int = schema.alert_deliveries.c.channel.type.length


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def stored_dedup_key(alert_dedup_key: str, action: str, severity: str) -> str:
    """The ``dedup_key`` column value for an alert key, action and severity (fits the column)."""
    value = f"{alert_dedup_key}|{action}|{severity}"
    if len(value) <= DEDUP_KEY_COLUMN_CHARS:
        return value
    return f"{_digest(alert_dedup_key)}|{action}|{severity}"


def stored_channel(channel: str) -> str:
    """The ``channel`` column value for a channel name (hashed only if longer than the column)."""
    return channel if len(channel) <= CHANNEL_COLUMN_CHARS else _digest(channel)


def store_columns(router_key: str) -> tuple[str, str]:
    """Split a router key ``<alert key>|<action>|<severity>|<channel>`` into ``(dedup_key, channel)``
    column values.

    :raises StoreError: when the key does not have that form (the router then sends anyway).
    """
    match = ROUTER_KEY.match(router_key)
    if match is None:
        raise StoreError(
            "alert dedup: key does not end in '|<action>|<severity>|<channel>'; "
            "channel names must not contain '|'"
        )
    return (
        stored_dedup_key(match["alert_key"], match["action"], match["severity"]),
        stored_channel(match["channel"]),
    )


class MetricsStoreDedup:
    """A :class:`~airflow_provider_mlprod.alerts.dedup.DedupStore` whose state is the delivery history
    in a :class:`~airflow_provider_mlprod.store.metrics_store.MetricsStore`.

    :param store: the metrics store.
    :param identity: the task run that sends, linked to every row written (optional).
    """

    def __init__(self, store: MetricsStore, *, identity: RunIdentity | None = None) -> None:
        self.store = store
        self.identity = identity

    def seen_recently(self, key: str, window: timedelta, now: datetime) -> bool:
        """Return whether ``key`` was delivered at a time in ``(now - window, now]`` with no delivery of
        the opposite action (same alert key and channel, any severity) after it."""
        sent_at = self._last_delivery(key)
        if not is_duplicate(sent_at, None, window, now):
            return False
        opposite = [self._last_delivery(other) for other in opposite_action_keys(key)]
        latest_opposite = max((at for at in opposite if at is not None), default=None)
        return is_duplicate(sent_at, latest_opposite, window, now)

    def has_open_trigger(self, alert_key: str, channel: str) -> bool:
        """Return whether the latest delivered row of ``alert_key`` on ``channel`` (any severity) is a
        trigger, not a resolve; failed rows do not count.

        :raises StoreError: when the store cannot be read or ``channel`` contains ``|``.
        """
        return trigger_is_open(alert_key, channel, self._last_delivery)

    def last_sent(self, key: str) -> datetime | None:
        """Return when ``key`` was last delivered, or ``None``."""
        return self._last_delivery(key)

    def record_suppressed(self, key: str, at: datetime) -> None:
        """Record that ``key`` was suppressed (the store stamps its own time)."""
        dedup_key, channel = store_columns(key)
        try:
            self.store.record_alert_suppressed(dedup_key=dedup_key, channel=channel)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"alert history: suppressed repeat not recorded ({type(exc).__name__})"
            ) from None

    def suppressed_since(self, key: str, since: datetime) -> int:
        """Return how many times ``key`` was suppressed after ``since``."""
        dedup_key, channel = store_columns(key)
        try:
            return self.store.alert_suppressed_count(dedup_key, channel, since)
        except SQLAlchemyError as exc:
            raise StoreError(f"alert history: suppressed repeats not read ({type(exc).__name__})") from None

    def _last_delivery(self, key: str) -> datetime | None:
        dedup_key, channel = store_columns(key)
        try:
            return self.store.last_alert_delivery(dedup_key, channel)
        except SQLAlchemyError as exc:
            raise StoreError(f"alert dedup: metrics store lookup failed ({type(exc).__name__})") from None

    def record(self, key: str, sent_at: datetime) -> None:
        """Record a delivered row for ``key`` (one attempt, no status); the store stamps its own time.

        Prefer :meth:`record_result`, which keeps the attempts, HTTP status and error.
        """
        dedup_key, channel = store_columns(key)
        self._write(dedup_key, channel, delivered=True, attempts=1, status_code=None, error="")

    def record_result(self, key: str, result: DeliveryResult) -> None:
        """Record one delivery result (delivered or failed) for ``key`` with its attempts, status and
        error; a suppressed result is not a delivery and is not recorded."""
        if result.status == "suppressed":
            return
        dedup_key, channel = store_columns(key)
        self._write(
            dedup_key,
            channel,
            delivered=result.delivered,
            attempts=result.attempts,
            status_code=result.status_code,
            error=result.error or "",
        )

    def deliveries_of(self, alert: Alert) -> list[dict]:
        """The recorded deliveries of ``alert`` (its dedup key, action and severity), oldest first."""
        key = stored_dedup_key(alert.dedup_key, alert.action, alert.severity)
        try:
            return self.store.alert_deliveries(key)
        except SQLAlchemyError as exc:
            raise StoreError(f"alert history: metrics store read failed ({type(exc).__name__})") from None

    def _write(
        self,
        dedup_key: str,
        channel: str,
        *,
        delivered: bool,
        attempts: int,
        status_code: int | None,
        error: str,
    ) -> None:
        try:
            self.store.record_alert_delivery(
                dedup_key=dedup_key,
                channel=channel,
                delivered=delivered,
                attempts=attempts,
                status_code=status_code,
                error=error,
                identity=self.identity,
            )
        except SQLAlchemyError as exc:
            raise StoreError(
                f"alert history: metrics store write for channel {channel!r} failed ({type(exc).__name__})"
            ) from None

"""Fixtures for the alert engine tests: a fast retry policy, a sample alert, a closed port; store readers."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert, AlertLink
from airflow_provider_mlprod.alerts.routing import stored_dedup_key
from airflow_provider_mlprod.store.metrics_store import MetricsStore


@pytest.fixture
def recorded_sleeps() -> list[float]:
    """The waits a sender asked for, in order (nothing actually sleeps)."""
    return []


@pytest.fixture
def fast_policy(recorded_sleeps: list[float]) -> RetryPolicy:
    """A retry policy that records waits instead of sleeping, with a seeded jitter source."""
    return RetryPolicy(
        timeout_seconds=2.0,
        max_attempts=3,
        base_delay_seconds=0.5,
        max_delay_seconds=5.0,
        sleep=recorded_sleeps.append,
        rng=random.Random(7),
    )


@pytest.fixture
def sample_alert() -> Alert:
    """A critical alert with facts, links and run ids."""
    return Alert(
        title="Validation failed: orders (2 of 5 expectations)",
        severity="critical",
        summary="Suite 'orders' on orders: 3 passed, 2 failed of 5.\n• expect_column_values_to_not_be_null",
        facts={"Evaluated": 5, "Failed": 2, "Null share": 0.125, "Suite": "orders"},
        links=[
            AlertLink("Report", "https://reports.example/orders"),
            AlertLink("Task log", "https://af.example/log"),
        ],
        dag_id="etl",
        run_id="manual__2026-01-01",
        task_id="validate",
        dedup_key="mlprod:validation:etl:validate:orders",
        created_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc),
    )


@pytest.fixture
def closed_port_url(closed_port: int) -> str:
    """An http URL on 127.0.0.1 whose port refuses connections for the whole test."""
    return f"http://127.0.0.1:{closed_port}/services/T0CLOSED/B0CLOSED/closed-port-token"


def delivery_rows(store: MetricsStore, alert: Alert) -> list[dict]:
    """The store's delivery rows of ``alert`` (its dedup key, action and severity)."""
    return store.alert_deliveries(stored_dedup_key(alert.dedup_key, alert.action, alert.severity))


def last_deliveries(store: MetricsStore, alert_key: str, channel: str) -> dict:
    """(action, severity) -> last delivery time of ``alert_key`` on ``channel``."""
    keys = {
        stored_dedup_key(alert_key, a, s): (a, s)
        for a in ("trigger", "resolve")
        for s in ("info", "warning", "critical")
    }
    return {keys[key]: at for key, at in store.last_alert_deliveries(list(keys), channel).items()}

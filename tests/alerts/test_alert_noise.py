"""Noise control on a real metrics store: cooldown, repeats counted into the next reminder, first vs
repeat in the title, a resolve that ends a repeat series, and failing open without a store."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.channels import JsonWebhookTarget
from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import Channel, send_alert
from airflow_provider_mlprod.store.metrics_store import MetricsStore

FAST = RetryPolicy(timeout_seconds=2.0, max_attempts=1)
COOLDOWN = timedelta(seconds=3)  # wide enough for a busy machine


@pytest.fixture
def store(db_url: str):
    engine = sa.create_engine(db_url)
    yield MetricsStore(engine)
    engine.dispose()


def _send(httpserver: HTTPServer, store, action: str = "trigger"):
    alert = Alert(title="Load failed", severity="critical", action=action, dedup_key="mlprod:task:etl:load")
    channels = [Channel("hook", JsonWebhookTarget(httpserver.url_for("/hook")), FAST)]
    return send_alert(alert, channels, store=store, window=COOLDOWN)


def _titles(httpserver: HTTPServer) -> list[str]:
    return [json.loads(request.get_data())["title"] for request, _ in httpserver.log]


def test_repeats_in_the_cooldown_are_counted_into_the_next_reminder(httpserver: HTTPServer, store):
    httpserver.expect_request("/hook").respond_with_data("ok")

    assert _send(httpserver, store).delivered_channels == ["hook"]
    for _ in range(3):
        assert _send(httpserver, store).suppressed_channels == ["hook"]
    time.sleep(COOLDOWN.total_seconds() + 0.2)
    assert _send(httpserver, store).delivered_channels == ["hook"]
    assert _send(httpserver, store).suppressed_channels == ["hook"]  # a new cooldown began
    time.sleep(COOLDOWN.total_seconds() + 0.2)
    _send(httpserver, store)

    first, reminder, second_reminder = _titles(httpserver)
    assert first == "Load failed"
    assert reminder.startswith("Repeat (3 suppressed since ")
    assert reminder.endswith("): Load failed")
    assert second_reminder.startswith("Repeat (1 suppressed since ")
    facts = json.loads(httpserver.log[1][0].get_data())["facts"]
    assert facts["Repeats suppressed"] == "3"


def test_after_a_resolve_the_next_failure_is_a_first_again(httpserver: HTTPServer, store):
    httpserver.expect_request("/hook").respond_with_data("ok")

    _send(httpserver, store)
    _send(httpserver, store, action="resolve")
    time.sleep(COOLDOWN.total_seconds() + 0.2)
    _send(httpserver, store)

    assert _titles(httpserver) == ["Load failed", "Load failed", "Load failed"]
    assert [json.loads(r.get_data())["action"] for r, _ in httpserver.log] == [
        "trigger",
        "resolve",
        "trigger",
    ]


def test_without_a_store_nothing_is_suppressed(httpserver: HTTPServer):
    httpserver.expect_request("/hook").respond_with_data("ok")

    reports = [_send(httpserver, None) for _ in range(3)]

    assert [report.delivered_channels for report in reports] == [["hook"]] * 3
    assert _titles(httpserver) == ["Load failed"] * 3

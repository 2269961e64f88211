"""Hostile far ends and hostile alert text: a channel keeps its deadline, its size limits and its secrets."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from airflow_provider_mlprod.alerts.channels import (
    EVENT_MAX_BYTES,
    JsonWebhookTarget,
    PagerDutyTarget,
    SlackWebhookTarget,
    build_pagerduty_payload,
    send_to_target,
)
from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert, AlertLink
from airflow_provider_mlprod.alerts.routing import Channel, send_alert


@contextmanager
def raw_server(answer: Callable[[socket.socket, threading.Event], None], path: str) -> Iterator[str]:
    """A loopback server that calls ``answer(connection, stop)`` on each connection, in a thread of its
    own; yields the URL of ``path`` on it, and stops (``stop`` set, listener closed) on exit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def handle(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                answer(connection, stop)
            except OSError:
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{path}"
    finally:
        stop.set()
        listener.close()


@pytest.fixture
def header_dripping_url() -> Iterator[str]:
    """A server that answers a status line, then one header line every 0.3 s for a minute: each
    read gets a byte well within any read timeout, so only a deadline on the whole answer ends it."""

    def drip(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(200):
            if stop.wait(0.3):
                return
            connection.sendall(b"X-Drip: 1\r\n")

    with raw_server(drip, "/services/T0DRIP/B0DRIP/drip-token") as url:
        yield url


def test_a_server_dripping_its_headers_is_cut_off_at_the_delivery_deadline(header_dripping_url):
    policy = RetryPolicy(timeout_seconds=1.0, max_attempts=3, total_seconds=2.0)
    started = time.monotonic()

    result = send_to_target(
        SlackWebhookTarget(header_dripping_url), Alert(title="t", severity="critical"), policy=policy
    )

    elapsed = time.monotonic() - started
    assert result.failed
    assert result.transient
    assert "drip-token" not in (result.error or "")
    assert elapsed < policy.total_seconds + 1.0, elapsed


def test_a_dripping_channel_delays_no_other_and_the_alert_ends_at_its_deadline(
    header_dripping_url, httpserver: HTTPServer
):
    httpserver.expect_request("/healthy").respond_with_data("ok")
    channels = [
        Channel(
            "drip",
            SlackWebhookTarget(header_dripping_url),
            RetryPolicy(timeout_seconds=1.0, total_seconds=2.0),
        ),
        Channel("healthy", JsonWebhookTarget(httpserver.url_for("/healthy"))),
    ]
    started = time.monotonic()

    report = send_alert(Alert(title="t", severity="critical"), channels)

    assert report.delivered_channels == ["healthy"]
    assert report.failed_channels == ["drip"]
    assert time.monotonic() - started < 2.0 + 1.0


def test_a_header_token_echoed_without_its_scheme_is_redacted(httpserver: HTTPServer, caplog):
    token = "tok-Sup3rSecret-4711"

    def refuse(request: Request) -> Response:
        return Response(f"invalid token {request.headers['Authorization'].split()[-1]}", status=401)

    httpserver.expect_request("/echo").respond_with_handler(refuse)
    target = JsonWebhookTarget(httpserver.url_for("/echo"), headers={"Authorization": f"Bearer {token}"})
    caplog.set_level(logging.DEBUG)

    result = send_to_target(target, Alert(title="t", severity="critical"), policy=RetryPolicy(max_attempts=1))

    assert result.failed
    assert result.status_code == 401
    assert "invalid token ***" in result.error
    assert token not in json.dumps(result.to_dict())
    assert "not delivered after 1 attempt(s): HTTP 401 UNAUTHORIZED: invalid token ***" in caplog.text
    assert token not in caplog.text


def test_a_lone_surrogate_in_alert_text_is_sent_not_a_final_failure(httpserver: HTTPServer):
    """A file name decoded with surrogateescape carries a lone surrogate; UTF-8 cannot encode it."""
    httpserver.expect_request("/hook").respond_with_data("ok")
    name = b"orders_\xff.csv".decode("utf-8", "surrogateescape")

    alert = Alert(title=f"Validation failed: {name}", severity="critical", summary=name, facts={"File": name})
    result = send_to_target(
        JsonWebhookTarget(httpserver.url_for("/hook")), alert, policy=RetryPolicy(max_attempts=1)
    )

    assert result.delivered
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["title"].startswith("Validation failed: orders_")
    assert sent["title"].endswith(".csv")


def test_pagerduty_event_with_oversized_links_fits_512_kb():
    links = [AlertLink("Report", "https://reports.example/?q=" + "x" * 700_000)]
    links += [
        AlertLink(f"Link {index}", f"https://reports.example/{index}/" + "y" * 100) for index in range(6000)
    ]
    alert = Alert(title="Gate rejected", severity="critical", links=links)

    event = build_pagerduty_payload(PagerDutyTarget("r" * 32), alert)

    assert len(json.dumps(event).encode("utf-8")) <= EVENT_MAX_BYTES
    assert event["links"], "the links that fit are kept"
    assert "truncated" in event["payload"]["custom_details"]


def test_a_deadline_beyond_the_platforms_longest_wait_still_delivers(httpserver: HTTPServer):
    httpserver.expect_request("/patient").respond_with_data("ok")
    policy = RetryPolicy(timeout_seconds=1e12, total_seconds=1e13)  # "never give up", as a connection's extra

    result = send_to_target(
        JsonWebhookTarget(httpserver.url_for("/patient")), Alert(title="t", severity="info"), policy=policy
    )

    assert result.delivered


def test_an_in_memory_store_keeps_dedup():
    """An in-memory SQLite database lives in one thread's connection: store calls stay in the caller's."""
    from airflow_provider_mlprod.alerts.channels import LogTarget
    from airflow_provider_mlprod.store.engine import create_store_engine
    from airflow_provider_mlprod.store.metrics_store import MetricsStore

    store = MetricsStore(create_store_engine("sqlite://"))
    alert = Alert(title="Orders late", severity="critical", dedup_key="orders-late")

    first = send_alert(alert, [Channel("task_log_twin", LogTarget())], store=store)
    second = send_alert(alert, [Channel("task_log_twin", LogTarget())], store=store)

    assert first.delivered_channels == ["task_log_twin"]
    assert second.suppressed_channels == ["task_log_twin"]


def test_an_error_body_with_control_bytes_is_recorded_and_keeps_dedup_on_postgresql(
    httpserver: HTTPServer, postgres_url
):
    """PostgreSQL refuses NUL in text: a far end answering one would make the store refuse the row,
    and the store is then left alone for the rest of the alert (no dedup for the healthy channel)."""
    from airflow_provider_mlprod.store.engine import create_store_engine
    from airflow_provider_mlprod.store.metrics_store import MetricsStore

    httpserver.expect_request("/binary").respond_with_response(
        Response(b"bad \x00gateway\x1b[31m", status=404)
    )
    httpserver.expect_request("/healthy").respond_with_data("ok")
    store = MetricsStore(create_store_engine(postgres_url))
    channels = [
        Channel("binary", JsonWebhookTarget(httpserver.url_for("/binary"))),
        Channel("healthy", JsonWebhookTarget(httpserver.url_for("/healthy"))),
    ]
    alert = Alert(title="Orders late", severity="critical", dedup_key="orders-late-binary")

    first = send_alert(alert, channels, store=store)
    second = send_alert(alert, channels, store=store)

    assert first.delivered_channels == ["healthy"]
    assert second.suppressed_channels == ["healthy"]
    [failure, *_] = [row for row in store.alert_deliveries() if row["channel"] == "binary"]
    assert failure["error"] == "HTTP 404 NOT FOUND: bad gateway [31m"


@pytest.fixture
def body_dripping_url() -> Iterator[str]:
    """A server that answers 500 at once, then its body one byte every 2.8 s."""

    def drip(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 1000\r\n\r\nx")
        while not stop.wait(2.8):
            connection.sendall(b"x")

    with raw_server(drip, "/hooks/body-drip") as url:
        yield url


def test_an_error_body_dripping_just_inside_the_read_timeout_ends_at_the_deadline(body_dripping_url):
    policy = RetryPolicy(timeout_seconds=3.0, max_attempts=3, total_seconds=3.0)
    started = time.monotonic()

    result = send_to_target(
        JsonWebhookTarget(body_dripping_url), Alert(title="t", severity="critical"), policy=policy
    )

    assert result.failed
    assert result.status_code == 500
    assert time.monotonic() - started < policy.total_seconds + 1.0

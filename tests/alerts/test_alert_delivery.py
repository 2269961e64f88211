"""Reliability of HTTP delivery against a real local server: retries, Retry-After, timeouts, refusals."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from airflow_provider_mlprod.alerts.channels import JsonWebhookTarget, SlackWebhookTarget, send_to_target
from airflow_provider_mlprod.alerts.delivery import (
    RetryPolicy,
    backoff_delay,
    post_with_retries,
    redact,
    retry_after_seconds,
    secret_fragments,
)
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import ConfigurationError


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    """A separate server that handles each request in its own thread (for handlers that hang)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def _post(url: str, policy: RetryPolicy):
    return post_with_retries(
        channel="ch",
        kind="webhook",
        url=url,
        body=b"{}",
        headers={"Content-Type": "application/json"},
        policy=policy,
    )


def test_500_then_200_is_retried_and_delivered(httpserver: HTTPServer, fast_policy, recorded_sleeps) -> None:
    httpserver.expect_ordered_request("/hook").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok", status=200)

    result = _post(httpserver.url_for("/hook"), fast_policy)

    assert (result.delivered, result.attempts, result.status_code, result.error) == (True, 2, 200, None)
    assert len(httpserver.log) == 2
    assert len(recorded_sleeps) == 1
    assert 0.0 <= recorded_sleeps[0] <= 0.5
    httpserver.check_assertions()


def test_persistent_503_uses_all_attempts_with_growing_backoff_caps(
    httpserver: HTTPServer, recorded_sleeps
) -> None:
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    policy = RetryPolicy(timeout_seconds=2, max_attempts=4, base_delay_seconds=1.0, max_delay_seconds=3.0)

    result = _post(httpserver.url_for("/hook"), replace(policy, sleep=recorded_sleeps.append))

    assert (result.delivered, result.attempts, result.status_code) == (False, 4, 503)
    assert result.error == "HTTP 503 SERVICE UNAVAILABLE: down"
    assert len(httpserver.log) == 4
    assert len(recorded_sleeps) == 3
    for retry_number, wait in enumerate(recorded_sleeps, start=1):
        assert 0.0 <= wait <= min(3.0, 2 ** (retry_number - 1))
    assert result.waits == recorded_sleeps


def test_429_retry_after_seconds_is_honoured(httpserver: HTTPServer, fast_policy, recorded_sleeps) -> None:
    httpserver.expect_ordered_request("/hook").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3"}
    )
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")

    result = _post(httpserver.url_for("/hook"), fast_policy)

    assert (result.delivered, result.attempts) == (True, 2)
    assert recorded_sleeps == [3.0]


def test_429_retry_after_beyond_max_delay_is_honoured_within_the_deadline(
    httpserver: HTTPServer, fast_policy, recorded_sleeps
) -> None:
    # max_delay_seconds bounds backoff only: the server's 40 s fits the 60 s deadline and is kept.
    httpserver.expect_ordered_request("/hook").respond_with_data(
        "", status=429, headers={"Retry-After": "40"}
    )
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")

    result = _post(httpserver.url_for("/hook"), fast_policy)

    assert result.delivered
    assert fast_policy.max_delay_seconds < 40
    assert recorded_sleeps == [40.0]


def test_429_retry_after_past_the_deadline_is_not_shortened(
    httpserver: HTTPServer, fast_policy, recorded_sleeps
) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=429, headers={"Retry-After": "3600"})

    result = _post(httpserver.url_for("/hook"), fast_policy)

    assert (result.delivered, result.attempts, result.transient) == (False, 1, True)
    assert "deadline" in result.error
    assert recorded_sleeps == []


def test_429_retry_after_http_date_is_honoured(httpserver: HTTPServer, fast_policy, recorded_sleeps) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=4), usegmt=True)
    httpserver.expect_ordered_request("/hook").respond_with_data(
        "", status=429, headers={"Retry-After": when}
    )
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")

    result = _post(httpserver.url_for("/hook"), fast_policy)

    assert result.delivered
    (wait,) = recorded_sleeps
    assert 2.0 <= wait <= 4.0


def test_400_is_not_retried(httpserver: HTTPServer, fast_policy, recorded_sleeps) -> None:
    httpserver.expect_request("/hook").respond_with_data("invalid_payload", status=400)

    result = _post(httpserver.url_for("/hook"), fast_policy)

    assert (result.delivered, result.attempts, result.status_code) == (False, 1, 400)
    assert result.error == "HTTP 400 BAD REQUEST: invalid_payload"
    assert len(httpserver.log) == 1
    assert recorded_sleeps == []


def test_redirect_is_not_followed(httpserver: HTTPServer, fast_policy) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    result = _post(httpserver.url_for("/hook"), fast_policy)
    assert (result.delivered, result.attempts, result.status_code) == (False, 1, 302)
    assert len(httpserver.log) == 1


def test_handler_hanging_past_timeout_is_a_retried_timeout(
    threaded_server: HTTPServer, recorded_sleeps
) -> None:
    release = threading.Event()

    def hang(request: Request) -> Response:
        release.wait(5)
        return Response("late")

    threaded_server.expect_request("/hook").respond_with_handler(hang)
    policy = RetryPolicy(timeout_seconds=0.2, max_attempts=2, base_delay_seconds=0.0)
    try:
        result = _post(threaded_server.url_for("/hook"), replace(policy, sleep=recorded_sleeps.append))
    finally:
        release.set()

    assert (result.delivered, result.attempts, result.status_code) == (False, 2, None)
    assert result.error == "timed out after 0.2 s (ReadTimeout)"
    assert recorded_sleeps == [0.0]


def test_retry_after_past_the_deadline_gives_up_without_waiting(
    httpserver: HTTPServer, recorded_sleeps
) -> None:
    httpserver.expect_request("/hook/s3cret-path").respond_with_data(
        "busy", status=503, headers={"Retry-After": "30"}
    )
    policy = RetryPolicy(timeout_seconds=2, max_attempts=4, total_seconds=1)
    url = httpserver.url_for("/hook/s3cret-path")

    started = time.monotonic()
    result = _post(url, replace(policy, sleep=recorded_sleeps.append))
    elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert (result.failed, result.attempts, result.status_code) == (True, 1, 503)
    assert result.error == (
        "gave up after 1 attempt(s): the delivery deadline of 1 s would pass "
        "(last error: HTTP 503 SERVICE UNAVAILABLE: busy)"
    )
    assert "s3cret-path" not in result.error
    assert recorded_sleeps == []
    assert result.waits == []
    assert len(httpserver.log) == 1


def test_waits_that_fit_the_deadline_are_taken(httpserver: HTTPServer, recorded_sleeps) -> None:
    httpserver.expect_ordered_request("/hook").respond_with_data("", status=429, headers={"Retry-After": "2"})
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    policy = RetryPolicy(timeout_seconds=2, total_seconds=5)

    result = _post(httpserver.url_for("/hook"), replace(policy, sleep=recorded_sleeps.append))

    assert (result.delivered, result.attempts) == (True, 2)
    assert recorded_sleeps == [2.0]


def test_backoff_past_the_deadline_gives_up(httpserver: HTTPServer, recorded_sleeps) -> None:
    httpserver.expect_request("/hook").respond_with_data("down", status=500)
    policy = RetryPolicy(timeout_seconds=2, base_delay_seconds=10, max_delay_seconds=10, total_seconds=2)
    seed = next(seed for seed in range(100) if backoff_delay(1, policy, random.Random(seed)) > 2.5)

    result = _post(
        httpserver.url_for("/hook"),
        replace(policy, sleep=recorded_sleeps.append, rng=random.Random(seed)),
    )

    assert (result.failed, result.attempts) == (True, 1)
    assert result.error.startswith("gave up after 1 attempt(s): the delivery deadline of 2 s would pass")
    assert recorded_sleeps == []


def test_handler_hanging_past_the_deadline_fails_fast(threaded_server: HTTPServer, recorded_sleeps) -> None:
    release = threading.Event()

    def hang(request: Request) -> Response:
        release.wait(3)
        return Response("late")

    threaded_server.expect_request("/hook").respond_with_handler(hang)
    policy = RetryPolicy(timeout_seconds=10, max_attempts=4, base_delay_seconds=0.0, total_seconds=0.5)
    started = time.monotonic()
    try:
        result = _post(threaded_server.url_for("/hook"), replace(policy, sleep=recorded_sleeps.append))
    finally:
        elapsed = time.monotonic() - started
        release.set()

    assert elapsed < 1.5
    assert (result.failed, result.status_code) == (True, None)
    assert "the delivery deadline of 0.5 s would pass" in result.error
    assert "timed out after" in result.error
    assert "ReadTimeout" in result.error


def _trickle(status: int, seconds: float = 3.0):
    def handler(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                yield b"x"
                time.sleep(0.05)

        return Response(body(), status=status, content_type="text/plain")

    return handler


def test_error_body_trickling_past_the_deadline_is_cut_off(
    threaded_server: HTTPServer, recorded_sleeps
) -> None:
    threaded_server.expect_request("/hook").respond_with_handler(_trickle(503))
    policy = RetryPolicy(timeout_seconds=10, max_attempts=4, total_seconds=0.5)

    started = time.monotonic()
    result = _post(threaded_server.url_for("/hook"), replace(policy, sleep=recorded_sleeps.append))
    elapsed = time.monotonic() - started

    assert elapsed < 1.5
    assert (result.failed, result.attempts, result.status_code) == (True, 1, 503)
    assert result.error.startswith("gave up after 1 attempt(s): the delivery deadline of 0.5 s would pass")
    assert "HTTP 503" in result.error
    assert recorded_sleeps == []


def test_success_with_a_trickling_body_is_delivered_without_reading_it(threaded_server: HTTPServer) -> None:
    threaded_server.expect_request("/hook").respond_with_handler(_trickle(200))
    policy = RetryPolicy(timeout_seconds=10, total_seconds=0.5)

    started = time.monotonic()
    result = _post(threaded_server.url_for("/hook"), policy)

    assert time.monotonic() - started < 1.5
    assert (result.delivered, result.attempts, result.status_code) == (True, 1, 200)


def test_refused_connection_is_retried_then_reported(
    closed_port_url: str, fast_policy, recorded_sleeps
) -> None:
    result = _post(closed_port_url, fast_policy)

    assert (result.delivered, result.attempts, result.status_code) == (False, 3, None)
    assert result.error == "connection failed (ConnectionError)"
    assert len(recorded_sleeps) == 2


def test_single_attempt_policy_never_sleeps(closed_port_url: str, recorded_sleeps) -> None:
    policy = RetryPolicy(max_attempts=1)
    result = _post(closed_port_url, replace(policy, sleep=recorded_sleeps.append))
    assert (result.attempts, recorded_sleeps) == (1, [])


def test_webhook_retry_is_signed_afresh(httpserver: HTTPServer, recorded_sleeps, monkeypatch) -> None:
    import types

    from airflow_provider_mlprod.alerts import channels

    httpserver.expect_ordered_request("/hook").respond_with_data("", status=502)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    ticks = iter([1_700_000_000.0, 1_700_000_009.0])
    target = JsonWebhookTarget(httpserver.url_for("/hook"), signing_secret="s1gning-secret-value")
    monkeypatch.setattr(channels, "time", types.SimpleNamespace(time=lambda: next(ticks)))

    result = send_to_target(
        target,
        Alert(title="x", severity="info"),
        policy=RetryPolicy(base_delay_seconds=0, sleep=recorded_sleeps.append),
    )

    assert result.delivered
    stamps = [request.headers["X-Mlprod-Timestamp"] for request, _ in httpserver.log]
    assert stamps == ["1700000000", "1700000009"]
    signatures = {request.headers["X-Mlprod-Signature"] for request, _ in httpserver.log}
    assert len(signatures) == 2
    keys = {request.headers["Idempotency-Key"] for request, _ in httpserver.log}
    assert len(keys) == 1  # the same on every attempt


def test_session_is_used_when_given(httpserver: HTTPServer) -> None:
    import requests

    httpserver.expect_request("/services/a").respond_with_data("ok")
    with requests.Session() as session:
        session.headers["X-From-Session"] = "yes"
        result = send_to_target(
            SlackWebhookTarget(httpserver.url_for("/services/a")),
            Alert(title="x", severity="info"),
            policy=RetryPolicy(session=session),
        )
    assert result.delivered
    assert httpserver.log[0][0].headers["X-From-Session"] == "yes"


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("  7 ", 7.0), ("0", 0.0), ("-3", None), ("soon", None), ("nan", None)],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_date_in_the_past_is_zero() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert retry_after_seconds("Wed, 31 Dec 2025 23:59:00 GMT", now=now) == 0.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0


def test_backoff_is_full_jitter_within_cap() -> None:
    policy = RetryPolicy(base_delay_seconds=1.0, max_delay_seconds=10.0)
    rng = random.Random(1)
    draws = [backoff_delay(5, policy, rng) for _ in range(500)]
    assert min(draws) >= 0.0
    assert max(draws) <= 10.0
    assert max(draws) > 9.0
    assert min(draws) < 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout_seconds": 0},
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"base_delay_seconds": -1},
        {"max_delay_seconds": -1},
        {"total_seconds": 0},
        {"total_seconds": -5},
        {"total_seconds": float("inf")},
        {"total_seconds": float("nan")},
    ],
)
def test_invalid_retry_policy_is_rejected(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError, match="retry policy"):
        RetryPolicy(**kwargs)


def test_redaction_covers_url_parts() -> None:
    url = "https://hooks.example/services/T0SECRET/B0SECRET/xoxTOKEN123?sig=abcdef123"
    fragments = secret_fragments(url, ["routing-key-1"])
    text = f"{url} /services/T0SECRET/B0SECRET/xoxTOKEN123 xoxTOKEN123 sig=abcdef123 routing-key-1"
    redacted = redact(text, fragments)
    for secret in ("xoxTOKEN123", "T0SECRET", "abcdef123", "routing-key-1", "hooks.example/services"):
        assert secret not in redacted

"""HTTP delivery of one channel payload: timeout, retries with backoff and jitter, secret-free results.

:func:`post_with_retries` POSTs a prepared body and returns a :class:`DeliveryResult`; it never
raises for a network or HTTP failure. The rules:

- every request has a timeout (:attr:`RetryPolicy.timeout_seconds`, default 10 s);
- one delivery, all attempts and waits included, has a deadline (:attr:`RetryPolicy.total_seconds`,
  default 60 s): each request's connect and read timeouts are capped at the time left, a wait
  (backoff or ``Retry-After``) that would end past the deadline is not started (the delivery gives up
  instead), and an error response's body is read in small pieces only until the deadline, so a server
  that trickles bytes cannot hold a delivery open. One socket read can still overrun the deadline by
  up to its read timeout, and name resolution is not covered by any timeout of requests;
- connection errors, timeouts, HTTP 5xx and HTTP 429 are retried, up to
  :attr:`RetryPolicy.max_attempts` attempts in all;
- the delay before retry *n* (n = 1, 2, ...) is "full jitter": a uniform draw from
  ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``; a ``Retry-After`` header (seconds or an
  HTTP-date) on a 429 or 503 replaces the draw and is honoured as given: when it would end past the
  delivery deadline, the delivery gives up instead of retrying early;
- any other 4xx, and 3xx (redirects are not followed), fails at once;
- 2xx is success.

The error text of a result is built by this module from the exception *type* and the HTTP status,
never from the exception message (requests puts the URL in it). A short excerpt of an error response
body is kept for diagnosis after every known secret is replaced by ``***``.

While a request is on the wire, the HTTP transport's own log lines are guarded
(:func:`transport_log_guarded`): its DEBUG lines are dropped, since they show the request path and a
webhook's path is its secret (``POST /services/T000/B000/token``), and any other line it writes has
the known secrets replaced by ``***``. Every caller of :func:`post_with_retries` (alert channels,
deployment webhooks) is covered.
"""

from __future__ import annotations

import http.client
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_mlprod.exceptions import ConfigurationError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

#: Characters of an error response body kept in a result (after redaction).
RESPONSE_EXCERPT_CHARS = 200

#: Bytes of an error response body read at most (the rest is never downloaded).
RESPONSE_READ_BYTES = 8192

#: Bytes asked for per read of an error response body (each read returns what one receive gives).
RESPONSE_READ_CHUNK_BYTES = 1024

#: Shortest string treated as a secret fragment when redacting (shorter ones would mangle text).
MIN_SECRET_FRAGMENT_CHARS = 6

#: Loggers of the HTTP transport that write the request line or URL (its path is a webhook's secret).
TRANSPORT_LOGGERS: tuple[str, ...] = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one delivery.

    :param timeout_seconds: connect and read timeout of each request.
    :param max_attempts: attempts in all, the first included (1 means no retry).
    :param base_delay_seconds: backoff base; the cap for retry *n* is ``base * 2 ** (n - 1)``.
    :param max_delay_seconds: upper bound of one backoff wait (a ``Retry-After`` is bounded by
        ``total_seconds`` only).
    :param total_seconds: deadline of one delivery: the most all attempts and waits on one channel
        may take together (see the module docstring).
    """

    timeout_seconds: float = 10.0
    max_attempts: int = 4
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    total_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0:
            raise ConfigurationError(f"retry policy: timeout_seconds must be > 0, got {self.timeout_seconds}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError(
                f"retry policy: max_attempts must be an integer >= 1, got {self.max_attempts}"
            )
        if not self.base_delay_seconds >= 0:
            raise ConfigurationError(
                f"retry policy: base_delay_seconds must be >= 0, got {self.base_delay_seconds}"
            )
        if not self.max_delay_seconds >= 0:
            raise ConfigurationError(
                f"retry policy: max_delay_seconds must be >= 0, got {self.max_delay_seconds}"
            )
        if not (self.total_seconds > 0 and math.isfinite(self.total_seconds)):
            raise ConfigurationError(
                f"retry policy: total_seconds must be a finite number > 0, got {self.total_seconds}"
            )


@dataclass(frozen=True)
class DeliveryOptions:
    """Everything about *how* to send that is not the target: retry policy and injectable I/O.

    :param policy: timeout and retry settings.
    :param sleep: called with each wait in seconds (inject a recorder in tests).
    :param rng: random source of the backoff jitter; a fresh ``random.Random()`` when ``None``.
    :param session: a ``requests.Session`` to reuse connections; plain ``requests.post`` when ``None``.
    """

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random | None = None
    session: requests.Session | None = None


def require_http_url(url: object, kind: str, what: str = "webhook URL") -> None:
    """Raise :class:`ConfigurationError` unless ``url`` is an http(s) address; the message never shows it."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{kind} target: {what} is empty")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{kind} target: {what} must be an http:// or https:// address with a host")


@dataclass
class DeliveryResult:
    """The outcome of sending one alert to one channel. Holds no URL and no secret.

    :param channel: the channel's configured name (never its URL).
    :param kind: channel kind (``slack``, ``teams``, ``webhook``, ``pagerduty``, ``log``).
    :param status: ``"delivered"``, ``"failed"`` or ``"suppressed"`` (not sent: see ``reason``).
    :param attempts: requests made (0 when suppressed).
    :param status_code: HTTP status of the last response, ``None`` without one.
    :param error: what went wrong last, ``None`` on success.
    :param waits: seconds waited before each retry, in order.
    :param reason: why a suppressed result was not sent (e.g. sent within the dedup window, or a
        resolve for a channel with no open trigger); ``None`` otherwise.
    :param transient: whether the last failure may pass on a later try (connection error, timeout,
        HTTP 429 or 5xx); ``False`` for a delivery and for a deterministic refusal (other 4xx).
    """

    channel: str
    kind: str
    status: str
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    waits: list[float] = field(default_factory=list)
    reason: str | None = None
    transient: bool = False

    @property
    def delivered(self) -> bool:
        """Whether the channel accepted the alert in this call."""
        return self.status == "delivered"

    @property
    def failed(self) -> bool:
        """Whether the channel could not be reached or refused the alert."""
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-safe dict."""
        return {
            "channel": self.channel,
            "kind": self.kind,
            "status": self.status,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "status_code": self.status_code,
            "error": self.error,
            "waits": list(self.waits),
            "reason": self.reason,
            "transient": self.transient,
        }


def secret_fragments(url: str, secrets: Iterable[str | None] = ()) -> list[str]:
    """List the strings to redact for a target: the URL, its path, query and long path segments, and
    the given secrets. Longest first, so a whole URL is replaced before its parts."""
    fragments: set[str] = {url}
    parts = urlsplit(url)
    fragments.update({parts.path, parts.query, parts.path + ("?" + parts.query if parts.query else "")})
    fragments.update(parts.path.split("/"))
    fragments.update(parts.query.replace("&", "=").split("="))
    fragments.update(secret for secret in secrets if secret)
    return sorted(
        (fragment for fragment in fragments if len(fragment) >= MIN_SECRET_FRAGMENT_CHARS),
        key=len,
        reverse=True,
    )


def redact(text: str, fragments: Iterable[str]) -> str:
    """Replace every fragment in ``text`` by ``***``."""
    for fragment in fragments:
        text = text.replace(fragment, "***")
    return text


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or HTTP-date) into seconds; ``None`` if absent or
    unreadable. A date in the past gives 0."""
    if header is None:
        return None
    header = header.strip()
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds else None
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


class _TransportLogGuard(logging.Filter):
    """Drop DEBUG records of the transport; redact the known secrets from any other record."""

    def __init__(self, fragments: Iterable[str]) -> None:
        super().__init__()
        self.fragments = list(fragments)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return False
        message = record.getMessage()
        redacted = redact(message, self.fragments)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


@contextmanager
def transport_log_guarded(fragments: Iterable[str] = ()) -> Iterator[None]:
    """Guard the HTTP transport's log lines while the block runs (see the module docstring).

    :param fragments: the secrets to replace by ``***`` in transport records above DEBUG (see
        :func:`secret_fragments`).
    """
    guard = _TransportLogGuard(fragments)
    loggers = [logging.getLogger(name) for name in TRANSPORT_LOGGERS]
    for logger in loggers:
        logger.addFilter(guard)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(guard)


def backoff_delay(retry_number: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Return the full-jitter delay before retry ``retry_number`` (1-based).

    A uniform draw from ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``.
    """
    ceiling = min(policy.max_delay_seconds, policy.base_delay_seconds * (2 ** (retry_number - 1)))
    return rng.uniform(0.0, ceiling)


def _is_retryable_status(status_code: int) -> bool:
    return status_code == 429 or 500 <= status_code <= 599


def post_with_retries(
    *,
    channel: str,
    kind: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]],
    secrets: Iterable[str | None] = (),
    options: DeliveryOptions | None = None,
) -> DeliveryResult:
    """POST ``body`` to ``url`` under ``policy`` and return the outcome; never raises for network or
    HTTP failures.

    tenacity's :class:`~tenacity.Retrying` drives the attempts (its stop and wait hooks carry the
    attempt count, the deadline, the full-jitter backoff and ``Retry-After``; the sleep is
    injectable). The transport's log lines are guarded during each request
    (:func:`transport_log_guarded`).

    :param channel: non-secret channel name used in the result and in log lines.
    :param kind: channel kind, copied to the result.
    :param url: the endpoint; treated as a secret (it never reaches a log line or the result).
    :param body: the exact bytes to send.
    :param headers: request headers, or a function returning them for each attempt (to re-sign).
    :param secrets: further strings to keep out of the result (routing key, signing secret).
    :param options: retry policy, sleep, jitter source and session; defaults when ``None``.
    """
    import requests
    from tenacity import Retrying, retry_if_result

    options = options or DeliveryOptions()
    policy = options.policy
    rng = options.rng or random.Random()
    post = options.session.post if options.session is not None else requests.post
    fragments = secret_fragments(url, secrets)
    deadline = time.monotonic() + policy.total_seconds
    result = DeliveryResult(channel=channel, kind=kind, status="failed")
    retry_after: list[float | None] = [None]

    def attempt() -> bool:
        """One request; returns whether another attempt may help."""
        retry_after[0] = None
        request_timeout = min(policy.timeout_seconds, deadline - time.monotonic())
        if request_timeout <= 0:  # only after a wait that overslept
            result.error = _deadline_error(result.attempts, policy, result.error)
            return False
        result.attempts += 1
        try:
            with transport_log_guarded(fragments):
                response = post(
                    url,
                    data=body,
                    headers=dict(headers() if callable(headers) else headers),
                    timeout=(request_timeout, request_timeout),
                    allow_redirects=False,
                    stream=True,
                )
        except requests.RequestException as exc:
            result.status_code = None
            if isinstance(exc, requests.Timeout):
                result.error = f"timed out after {_seconds_text(request_timeout)} s ({type(exc).__name__})"
            elif isinstance(exc, requests.ConnectionError):
                result.error = f"connection failed ({type(exc).__name__})"
            else:
                result.error = f"request could not be sent ({type(exc).__name__})"
            result.transient = isinstance(exc, requests.Timeout | requests.ConnectionError)
            return result.transient
        try:
            result.status_code = response.status_code
            if 200 <= response.status_code <= 299:
                # Accepted, even past the deadline: the body is not needed and is never read.
                result.status, result.error, result.transient = "delivered", None, False
                return False
            result.transient = _is_retryable_status(response.status_code)
            result.error = _http_error_text(response, fragments, deadline)
            if response.status_code in (429, 503):
                retry_after[0] = retry_after_seconds(response.headers.get("Retry-After"))
            return result.transient
        finally:
            response.close()

    def wait(state: Any) -> float:
        if retry_after[0] is not None:
            return retry_after[0]  # the server's wish, bounded only by the deadline (see stop)
        return backoff_delay(state.attempt_number, policy, rng)

    def stop(state: Any) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        if state.upcoming_sleep >= deadline - time.monotonic():
            result.error = _deadline_error(result.attempts, policy, result.error)
            return True
        return False

    def before_sleep(state: Any) -> None:
        log.warning(
            "alert channel %r (%s): attempt %d of %d failed: %s; retrying in %.2f s",
            channel,
            kind,
            state.attempt_number,
            policy.max_attempts,
            result.error,
            state.upcoming_sleep,
        )
        result.waits.append(state.upcoming_sleep)

    Retrying(
        retry=retry_if_result(bool),
        wait=wait,
        stop=stop,
        sleep=options.sleep,
        before_sleep=before_sleep,
        retry_error_callback=lambda state: False,
    )(attempt)
    if result.delivered:
        log.info(
            "alert channel %r (%s): delivered, HTTP %s after %d attempt(s)",
            channel,
            kind,
            result.status_code,
            result.attempts,
        )
    else:
        log.error(
            "alert channel %r (%s): not delivered after %d attempt(s): %s",
            channel,
            kind,
            result.attempts,
            result.error,
        )
    return result


def _seconds_text(seconds: float) -> str:
    return f"{round(seconds, 2):g}"


def _deadline_error(attempts: int, policy: RetryPolicy, last_error: str | None) -> str:
    text = (
        f"gave up after {attempts} attempt(s): the delivery deadline of "
        f"{_seconds_text(policy.total_seconds)} s would pass"
    )
    return f"{text} (last error: {last_error})" if last_error else text


def _http_error_text(response: requests.Response, fragments: list[str], deadline: float) -> str:
    reason = redact(response.reason or "", fragments)
    text = f"HTTP {response.status_code}" + (f" {reason}" if reason else "")
    excerpt = _body_excerpt(response, fragments, deadline)
    return f"{text}: {excerpt}" if excerpt else text


def _body_excerpt(response: requests.Response, fragments: list[str], deadline: float) -> str:
    """Read the start of an error body, one receive at a time and only until the deadline, and return
    it redacted, whitespace-collapsed and cut to :data:`RESPONSE_EXCERPT_CHARS`."""
    import requests
    import urllib3

    read = getattr(response.raw, "read1", None) or response.raw.read
    chunks: list[bytes] = []
    size = 0
    complete = False
    try:
        while size < RESPONSE_READ_BYTES and time.monotonic() < deadline:
            chunk = read(min(RESPONSE_READ_CHUNK_BYTES, RESPONSE_READ_BYTES - size))
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            size += len(chunk)
    except (urllib3.exceptions.HTTPError, requests.RequestException, http.client.HTTPException, OSError):
        pass
    try:
        text = b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
    except LookupError:
        text = b"".join(chunks).decode("utf-8", errors="replace")
    text = redact(text, fragments)
    if not complete and fragments:
        # A secret cut off at the end of what was read would not be redacted: drop that tail.
        text = text[: max(0, len(text) - max(len(fragment) for fragment in fragments))]
    return " ".join(text.split())[:RESPONSE_EXCERPT_CHARS]

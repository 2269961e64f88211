"""The one HTTP sender, :func:`post_with_retries`: connection errors, timeouts, 429 and 5xx retried
(tenacity), other 4xx and 3xx final. Errors name exception types and HTTP status, never the URL (requests
puts it in messages); body excerpts are redacted; the transport's DEBUG lines (a secret path) dropped."""

from __future__ import annotations

import http.client
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mlprod.exceptions import ConfigurationError

log = logging.getLogger(__name__)

RESPONSE_EXCERPT_CHARS = 200
RESPONSE_READ_BYTES = 8192
#: Shortest string treated as a secret fragment when redacting.
MIN_SECRET_FRAGMENT_CHARS = 6
#: How long past the delivery deadline an answer under way is waited for before it is abandoned.
DEADLINE_GRACE_SECONDS = 0.5
#: Loggers of the HTTP transport that write the request line (a webhook's path is its secret).
TRANSPORT_LOGGERS: tuple[str, ...] = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one delivery: ``timeout_seconds`` to connect and per read, ``max_attempts`` in
    all, retry *n* after a full-jitter wait of up to ``base_delay_seconds * 2 ** (n - 1)`` capped at
    ``max_delay_seconds`` (a ``Retry-After`` is not capped), all within ``total_seconds``. ``sleep``,
    ``rng`` and ``session`` (a ``requests.Session``, else ``requests.post``) can be injected."""

    timeout_seconds: float = 10.0
    max_attempts: int = 4
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    total_seconds: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    session: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        checks = {
            "timeout_seconds must be > 0": self.timeout_seconds > 0,
            "max_attempts must be an int >= 1": isinstance(self.max_attempts, int) and self.max_attempts >= 1,
            "delays must be >= 0": min(self.base_delay_seconds, self.max_delay_seconds) >= 0,
            "total_seconds must be a finite number > 0": 0 < self.total_seconds < math.inf,
        }
        if problem := next((problem for problem, ok in checks.items() if not ok), None):
            raise ConfigurationError(f"retry policy: {problem}, got {self!r}")


def require_http_url(url: object, kind: str, what: str = "webhook URL") -> None:
    """Raise :class:`ConfigurationError` unless ``url`` is an http(s) address; never shows it."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{kind} target: {what} is empty")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{kind} target: {what} must be an http:// or https:// address with a host")


@dataclass
class DeliveryResult:
    """The outcome of one alert on one channel (no URL, no secret): ``status`` is ``delivered``,
    ``failed`` or ``suppressed`` (``reason`` says why); ``transient``: the last failure may pass later."""

    channel: str
    kind: str
    status: str
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    waits: list[float] = field(default_factory=list)
    reason: str | None = None
    transient: bool = False

    delivered = property(lambda self: self.status == "delivered")
    failed = property(lambda self: self.status == "failed")

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "waits": list(self.waits), "delivered": self.delivered}


def secret_fragments(url: str, secrets: Iterable[str | None] = ()) -> list[str]:
    """The strings to redact for a target (URL, its path, query and parts, given secrets), longest first."""
    parts = urlsplit(url)
    fragments = {url, parts.path, parts.query, parts.path + ("?" + parts.query if parts.query else "")}
    fragments.update(parts.path.split("/"), parts.query.replace("&", "=").split("="))
    # and each word of a secret: a server may echo the token of "Authorization: Bearer <token>" alone
    fragments.update(part for secret in secrets if secret for part in (secret, *secret.split()))
    return sorted((f for f in fragments if len(f) >= MIN_SECRET_FRAGMENT_CHARS), key=len, reverse=True)


def redact(text: str, fragments: Iterable[str]) -> str:
    for fragment in fragments:
        text = text.replace(fragment, "***")
    return text


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` value (whole seconds or HTTP-date) in seconds; ``None`` if absent or unreadable."""
    header = (header or "").strip()
    if header.isascii() and header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@contextmanager
def transport_log_guarded(fragments: Iterable[str] = ()) -> Iterator[None]:
    """Drop the transport's DEBUG lines and redact ``fragments`` from its others while the block runs."""
    fragments = list(fragments)

    def guard(record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return False
        if (redacted := redact(message := record.getMessage(), fragments)) != message:
            record.msg, record.args = redacted, None
        return True

    loggers = [logging.getLogger(name) for name in TRANSPORT_LOGGERS]
    for logger in loggers:
        logger.addFilter(guard)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(guard)


def run_within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()`` in a daemon thread, waited for at most ``seconds``; :class:`TimeoutError` after that
    (the thread is left to end on its own). A socket timeout bounds each read, not a whole answer: a
    server that drips its headers, or a store connection that stalls, would otherwise hold on for ever."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="mlprod-bounded-call", daemon=True)
    worker.start()
    worker.join(min(max(seconds, 0.0), threading.TIMEOUT_MAX))  # a longer wait overflows
    if worker.is_alive():
        raise TimeoutError(f"no answer within {round(seconds, 2):g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def backoff_delay(retry_number: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` for retry ``n``."""
    high = min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** (retry_number - 1))
    return rng.uniform(0.0, high)


def post_with_retries(
    *,
    channel: str,
    kind: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]],
    secrets: Iterable[str | None] = (),
    policy: RetryPolicy | None = None,
) -> DeliveryResult:
    """POST ``body`` to ``url`` (a secret) under ``policy``; ``headers`` may be called per try (to sign)."""
    import requests
    from tenacity import Retrying, retry_if_result, stop_after_attempt, stop_before_delay

    policy = policy or RetryPolicy()
    rng = policy.rng or random.Random()
    post = policy.session.post if policy.session is not None else requests.post
    fragments, name = secret_fragments(url, secrets), f"alert channel {channel!r} ({kind})"
    deadline = time.monotonic() + policy.total_seconds
    result = DeliveryResult(channel=channel, kind=kind, status="failed")
    retry_after: list[float | None] = [None]

    def attempt() -> bool:
        """One request; returns whether another attempt may help."""
        retry_after[0] = None
        timeout = min(policy.timeout_seconds, deadline - time.monotonic(), threading.TIMEOUT_MAX)
        if timeout <= 0:  # only after a wait that overslept
            return False
        result.attempts += 1
        sent = dict(headers() if callable(headers) else headers)

        def send() -> Any:
            with transport_log_guarded(fragments):  # one timeout: for the connect and for each read
                return post(url, data=body, headers=sent, timeout=timeout, allow_redirects=False, stream=True)

        try:  # the whole answer within the deadline too (a server may drip its headers)
            response = run_within(deadline - time.monotonic() + DEADLINE_GRACE_SECONDS, send)
        except TimeoutError:
            result.status_code, result.transient = None, True
            result.error = f"no complete answer within the delivery deadline of {policy.total_seconds:g} s"
            return False
        except requests.RequestException as exc:
            result.transient = isinstance(exc, requests.Timeout | requests.ConnectionError)
            what = "connection failed" if result.transient else "request could not be sent"
            what = f"timed out after {round(timeout, 2):g} s" if isinstance(exc, requests.Timeout) else what
            result.status_code, result.error = None, f"{what} ({type(exc).__name__})"
            return result.transient
        with response:
            code = result.status_code = response.status_code
            if 200 <= code <= 299:  # accepted, even past the deadline; the body is never read
                result.status, result.error, result.transient = "delivered", None, False
                return False
            result.transient = code == 429 or 500 <= code <= 599
            reason = redact(printable(response.reason or ""), fragments)
            try:  # each read waits up to the timeout: a body dripping just inside it would overrun
                read = partial(_body_excerpt, response, fragments, deadline)
                excerpt = run_within(deadline - time.monotonic() + DEADLINE_GRACE_SECONDS, read)
            except TimeoutError:  # unblock the abandoned read, or closing the response waits for it
                excerpt = ""
                with suppress(AttributeError, ValueError, RuntimeError, OSError):
                    response.raw.shutdown()
            result.error = f"HTTP {code} {reason}".rstrip() + (f": {excerpt}" if excerpt else "")
            if code in (429, 503):
                retry_after[0] = retry_after_seconds(response.headers.get("Retry-After"))
            return result.transient

    def before_sleep(state: Any) -> None:
        failed = (name, state.attempt_number, policy.max_attempts, result.error, state.upcoming_sleep)
        log.warning("%s: attempt %d of %d failed: %s; retrying in %.2f s", *failed)
        result.waits.append(state.upcoming_sleep)

    Retrying(
        retry=retry_if_result(bool),
        # the server's Retry-After as given (bounded only by the deadline, see stop), else full jitter
        wait=lambda state: (
            retry_after[0] if retry_after[0] is not None else backoff_delay(state.attempt_number, policy, rng)
        ),
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.total_seconds),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        retry_error_callback=lambda state: False,
    )(attempt)
    if result.failed and result.attempts < policy.max_attempts and (result.transient or not result.attempts):
        deadline_text = f"the delivery deadline of {round(policy.total_seconds, 2):g} s would pass"
        error = f" (last error: {result.error})" if result.error else ""
        result.error = f"gave up after {result.attempts} attempt(s): {deadline_text}{error}"
    if result.delivered:
        log.info("%s: delivered, HTTP %s after %d attempt(s)", name, result.status_code, result.attempts)
    else:
        log.error("%s: not delivered after %d attempt(s): %s", name, result.attempts, result.error)
    return result


def _body_excerpt(response: Any, fragments: list[str], deadline: float) -> str:
    """The start of an error body, read one receive at a time until the deadline, redacted and cut."""
    import requests
    import urllib3

    read = getattr(response.raw, "read1", None) or response.raw.read
    chunks: list[bytes] = []
    complete = False
    try:
        while (size := sum(map(len, chunks))) < RESPONSE_READ_BYTES and time.monotonic() < deadline:
            if not (chunk := read(min(1024, RESPONSE_READ_BYTES - size))):
                complete = True
                break
            chunks.append(chunk)
    except (urllib3.exceptions.HTTPError, requests.RequestException, http.client.HTTPException, OSError):
        pass
    try:
        text = b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
    except LookupError:
        text = b"".join(chunks).decode("utf-8", errors="replace")
    text = redact(text, fragments)
    if not complete and fragments:  # a secret cut off at the end would not be redacted: drop that tail
        text = text[: max(0, len(text) - max(map(len, fragments)))]
    return " ".join(printable(text).split())[:RESPONSE_EXCERPT_CHARS]


def printable(text: str) -> str:
    """``text`` with control characters as spaces: a far end's NUL is refused by PostgreSQL text
    columns (the store would then be left alone for the rest of the alert), escapes garble logs."""
    return "".join(char if char.isprintable() else " " for char in text)

"""Generic JSON webhook channel: ``Alert.to_dict()`` as the body, optionally signed with HMAC-SHA256.

Request::

    POST <url>
    Content-Type: application/json
    X-Mlprod-Timestamp: <unix seconds, integer>                 (only when signing)
    X-Mlprod-Signature: sha256=<hex HMAC-SHA256>                (only when signing)
    Idempotency-Key: <hex digest of dedup key, action, severity and run id>
    <extra headers from the target>

    <body: the alert as compact JSON, keys sorted, UTF-8>

Signature: ``hex(HMAC_SHA256(key=signing_secret, msg=timestamp + "." + body))``, where ``timestamp``
is the ASCII value of ``X-Mlprod-Timestamp`` and ``body`` the exact bytes received. A receiver
recomputes it over the raw body (not a re-serialised parse), compares in constant time
(:func:`verify_signature` does both) and rejects timestamps older than a few minutes to stop
replays. Each attempt is signed afresh, so retries carry a current timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import require_http_url
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import ConfigurationError

KIND = "webhook"

SIGNATURE_HEADER = "X-Mlprod-Signature"
TIMESTAMP_HEADER = "X-Mlprod-Timestamp"
SIGNATURE_PREFIX = "sha256="
#: Same value on every attempt and task try of one alert (see ``Alert.idempotency_key``).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Headers the channel sets itself; extra headers may not override them.
RESERVED_HEADERS = frozenset(
    name.lower() for name in ("Content-Type", SIGNATURE_HEADER, TIMESTAMP_HEADER, IDEMPOTENCY_HEADER)
)

#: The generic body carries the alert's own severity unchanged.
SEVERITY_MAP: dict[str, str] = {"info": "info", "warning": "warning", "critical": "critical"}


@dataclass(frozen=True)
class JsonWebhookTarget:
    """A JSON webhook endpoint. ``repr`` shows none of URL, signing secret or headers (they may hold tokens).

    :param url: the endpoint.
    :param signing_secret: when set, every request carries the HMAC-SHA256 signature headers.
    :param headers: extra request headers (e.g. an ``Authorization`` token).
    """

    url: str = field(repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        require_http_url(self.url, KIND)
        if self.signing_secret is not None and not self.signing_secret:
            raise ConfigurationError(f"{KIND} target: signing_secret is empty; use None to send unsigned")
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ConfigurationError(f"{KIND} target: header names and values must be strings")
            if name.lower() in RESERVED_HEADERS:
                raise ConfigurationError(f"{KIND} target: header {name!r} is set by the channel itself")
            if not _is_header_text(name, "ascii") or not name.strip():
                raise ConfigurationError(f"{KIND} target: a header name is empty or not ASCII")
            # HTTP sends header values as latin-1; the value may be a token, so it is never quoted.
            if not _is_header_text(value, "latin-1"):
                raise ConfigurationError(
                    f"{KIND} target: the value of header {name!r} is not latin-1 text on one line"
                )


def _is_header_text(text: str, encoding: str) -> bool:
    """Whether ``text`` encodes as ``encoding`` and holds no line break (header injection)."""
    if "\r" in text or "\n" in text:
        return False
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def compute_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Return ``sha256=<hex>`` over ``timestamp + "." + body`` keyed with ``signing_secret``."""
    digest = hmac.new(signing_secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def verify_signature(signing_secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Check a received ``X-Mlprod-Signature`` value in constant time (the timestamp age is the caller's).

    A signature or timestamp that is not ASCII text (it came from a request header, so it may be
    anything) is a mismatch, not an error.
    """
    if not isinstance(signature, str) or not isinstance(timestamp, str):
        return False
    if not signature.isascii() or not timestamp.isascii():
        return False
    return hmac.compare_digest(compute_signature(signing_secret, timestamp, body), signature)


def build_webhook_payload(target: JsonWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """Return the JSON body as a dict (``Alert.to_dict()``; ``target`` is unused)."""
    return alert.to_dict()


def signed_headers(
    target: JsonWebhookTarget, body: bytes, clock: Callable[[], float] | None = None
) -> dict[str, str]:
    """Return the request headers for one attempt, with timestamp and signature when the target signs."""
    headers = {"Content-Type": "application/json; charset=utf-8", **target.headers}
    if target.signing_secret:
        timestamp = str(int((clock or time.time)()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = compute_signature(target.signing_secret, timestamp, body)
    return headers

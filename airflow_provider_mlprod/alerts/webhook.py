"""Generic JSON webhook: ``Alert.to_dict()`` as the body, an ``Idempotency-Key`` header, and optionally
an HMAC-SHA256 signature.

Signed requests carry ``X-Mlprod-Timestamp`` (unix seconds) and ``X-Mlprod-Signature:
sha256=hex(HMAC_SHA256(signing_secret, timestamp + "." + body))`` over the exact bytes sent; each
attempt is signed afresh. A receiver checks it with :func:`verify_signature` and rejects old
timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlprod.alerts.delivery import require_http_url
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.exceptions import ConfigurationError

KIND = "webhook"
SIGNATURE_HEADER = "X-Mlprod-Signature"
TIMESTAMP_HEADER = "X-Mlprod-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RESERVED_HEADERS = frozenset(
    h.lower() for h in ("Content-Type", SIGNATURE_HEADER, TIMESTAMP_HEADER, IDEMPOTENCY_HEADER)
)
SEVERITY_MAP: dict[str, str] = {"info": "info", "warning": "warning", "critical": "critical"}


@dataclass(frozen=True)
class JsonWebhookTarget:
    """A JSON endpoint; ``repr`` hides URL, signing secret and headers (they may hold tokens)."""

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
            if not name.strip() or not _is_header_text(name, "ascii"):
                raise ConfigurationError(f"{KIND} target: a header name is empty or not ASCII")
            if not _is_header_text(value, "latin-1"):  # the value may be a token: never quoted
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
    """``sha256=<hex>`` over ``timestamp + "." + body`` keyed with ``signing_secret``."""
    digest = hmac.new(signing_secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(signing_secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Check a received signature in constant time; non-ASCII input is a mismatch, not an error."""
    if not all(isinstance(text, str) and text.isascii() for text in (signature, timestamp)):
        return False
    return hmac.compare_digest(compute_signature(signing_secret, timestamp, body), signature)


def build_webhook_payload(target: JsonWebhookTarget | None, alert: Alert) -> dict[str, Any]:
    """The JSON body: ``Alert.to_dict()``."""
    return alert.to_dict()


def signed_headers(target: JsonWebhookTarget, body: bytes) -> dict[str, str]:
    """The headers of one attempt, with a fresh timestamp and signature when the target signs."""
    headers = {"Content-Type": "application/json; charset=utf-8", **target.headers}
    if target.signing_secret:
        timestamp = headers[TIMESTAMP_HEADER] = str(int(time.time()))
        headers[SIGNATURE_HEADER] = compute_signature(target.signing_secret, timestamp, body)
    return headers

"""The TLS settings of a model endpoint: which certificates to trust, which client certificate to show.

They come from an Airflow ``http`` connection's extra, under the keys HttpHook hands to ``requests``
as session options:

- ``verify`` (or ``verify_ssl`` when ``verify`` is absent): ``true`` (the default: the system's CAs,
  or ``SSL_CERT_FILE``; a ``requests`` call trusts what ``requests`` trusts, as under HttpHook),
  ``false`` (the server's certificate is not verified: allowed, and reported as ``tls_verified:
  false``), or the path of a CA bundle (a PEM file) or of a directory of CA files named by subject
  hash (``openssl rehash``), which are then the only CAs trusted, as with ``requests``. The strings
  ``"true"`` and ``"false"`` (any case) count as the booleans, as an extra given in a connection URI
  holds only strings.
- ``cert``: the path of a PEM file holding the client certificate and its private key, or a pair
  ``[certificate path, key path]``. An encrypted private key is refused: no passphrase can be given
  (nor can it to ``requests``).

:func:`tls_settings` reads and loads every file once, so a bad setting fails before any request,
with a :class:`ConnectionConfigError` naming the connection, the key and the problem (a missing or
unreadable file, a file that is not PEM, a key that does not belong to the certificate, a value of
the wrong type); paths are named, a file's content never. The result carries the ``ssl`` context
the load generator's client uses and the ``verify``/``cert`` arguments ``requests`` takes, so both
clients apply the same settings. Proxies are not among them: endpoints are called directly.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mlprod.exceptions import ConnectionConfigError

#: The spellings of the booleans an extra given as text (a connection URI) holds.
_BOOLEAN_TEXT = {"true": True, "false": False}
#: A CA file in a hashed directory, as ``openssl rehash`` names it: subject hash, dot, index.
_HASHED_CA = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----")
_ENCRYPTED_KEY = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED")


@dataclass(frozen=True)
class TlsSettings:
    """How to meet an https endpoint: verify its certificate (against ``ca_path`` or the system's
    CAs) or not, and the client certificate to present (``cert_path`` and ``key_path``: the same
    file when it holds both)."""

    verify: bool = True
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    context: ssl.SSLContext = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def verified_for(self, url: str) -> bool | None:
        """Whether a call to ``url`` verifies the server's certificate; None for a plain ``http`` URL."""
        return self.verify if urlsplit(url).scheme == "https" else None

    def warn_if_unverified(self, url: str, log: Any, endpoint: str) -> None:
        """Log a warning on ``log`` when a call to ``url`` (``endpoint`` names it) is not verified."""
        if self.verified_for(url) is False:
            log.warning(
                "The TLS certificate of %s is NOT verified (its connection sets verify false): anyone "
                "between the worker and the server could answer in its place",
                endpoint,
            )

    def describe(self) -> str:
        """What is trusted and shown, for a log line (paths only)."""
        if not self.verify:
            trust = "certificate NOT verified"
        elif self.ca_path is not None:
            trust = f"certificate verified against {self.ca_path}"
        else:
            trust = "certificate verified against the system's CAs"
        if self.cert_path is None:
            return trust
        if self.key_path == self.cert_path:
            return f"{trust}; client certificate {self.cert_path}"
        return f"{trust}; client certificate {self.cert_path} (key {self.key_path})"

    def requests_options(self) -> dict[str, Any]:
        """The ``verify`` and ``cert`` arguments of a ``requests`` call applying these settings (with
        ``verify`` true, ``requests`` trusts its own CA bundle or ``REQUESTS_CA_BUNDLE``, as it does
        under HttpHook)."""
        verify: bool | str = self.ca_path if self.verify and self.ca_path is not None else self.verify
        cert: str | tuple[str, str] | None = self.cert_path
        if self.cert_path is not None and self.key_path != self.cert_path:
            cert = (self.cert_path, str(self.key_path))
        return {"verify": verify, "cert": cert}


def default_tls() -> TlsSettings:
    """The settings of an endpoint given without any: the system's CAs, no client certificate."""
    return TlsSettings(context=ssl.create_default_context())


def tls_settings(extra: Mapping[str, Any], conn_id: str) -> TlsSettings:
    """The TLS settings in the extra of connection ``conn_id``, each file read and loaded.

    Raises ConnectionConfigError naming the connection, the key and the problem.
    """

    def fail(key: str, problem: str) -> ConnectionConfigError:
        return ConnectionConfigError(conn_id, f"extra {key!r} {problem}")

    key = "verify" if "verify" in extra else "verify_ssl"
    verify, ca_path = _verify_setting(extra.get(key), lambda problem: fail(key, problem))
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_path is None:
        context = ssl.create_default_context()
    else:
        directory = os.path.isdir(ca_path)
        if not directory:
            _pem_file(ca_path, "the CA bundle", _CERTIFICATE, lambda problem: fail(key, problem))
        try:
            context = ssl.create_default_context(
                cafile=None if directory else ca_path, capath=ca_path if directory else None
            )
        except (ssl.SSLError, OSError) as exc:
            problem = f"names the CA bundle file {ca_path!r}, which cannot be loaded ({_reason(exc)})"
            raise fail(key, problem) from None
    cert_path, key_path = _cert_setting(extra.get("cert"), lambda problem: fail("cert", problem))
    if cert_path is not None:
        _load_client_certificate(context, cert_path, key_path, lambda problem: fail("cert", problem))
    return TlsSettings(
        verify=verify, ca_path=ca_path, cert_path=cert_path, key_path=key_path, context=context
    )


def _verify_setting(value: Any, fail) -> tuple[bool, str | None]:
    """``(verify, CA path)`` from the value of ``verify``; a given path is checked to exist."""
    if value is None:
        return True, None
    if isinstance(value, bool):
        return value, None
    if not isinstance(value, str):
        raise fail(
            f"must be true, false or the path of a CA bundle file or directory; got {_json_type(value)}"
        )
    text = value.strip()
    if text.lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[text.lower()], None
    if not text:
        raise fail("is empty: give true, false or the path of a CA bundle file or directory")
    if not os.path.exists(value):
        raise fail(
            f"is {value!r}: neither true nor false, and no CA bundle file or directory exists at that path"
        )
    if os.path.isdir(value):
        try:
            names = os.listdir(value)
        except OSError as exc:
            raise fail(f"names the CA directory {value!r}, which cannot be read ({_reason(exc)})") from None
        if not any(_HASHED_CA.fullmatch(name) for name in names):
            raise fail(
                f"names the CA directory {value!r}, which holds no CA file named by subject hash "
                "(such as 1a2b3c4d.0: run `openssl rehash` on it), or give a CA bundle file"
            )
    elif not os.path.isfile(value):
        raise fail(f"names {value!r}, which is neither a file nor a directory")
    return True, value


def _cert_setting(value: Any, fail) -> tuple[str | None, str | None]:
    """``(certificate path, key path)`` from the value of ``cert``."""
    if value is None:
        return None, None
    if isinstance(value, str):
        if not value.strip():
            raise fail("is empty: give the path of a PEM file with the client certificate and its key")
        return value, value
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(part, str) and part.strip() for part in value):
            raise fail("as a list must be a pair of paths: [certificate file, private key file]")
        return value[0], value[1]
    raise fail(
        "must be the path of a PEM file with the client certificate and its key, or a pair of paths "
        f"[certificate file, private key file]; got {_json_type(value)}"
    )


def _load_client_certificate(context: ssl.SSLContext, cert_path: str, key_path: str, fail) -> None:
    """Load the client certificate and key into ``context``, refusing what cannot be used."""
    together = key_path == cert_path
    cert_role = "the client certificate and key" if together else "the client certificate"
    cert_data = _pem_file(cert_path, cert_role, _CERTIFICATE, fail)
    key_data = cert_data if together else _pem_file(key_path, "the private key", None, fail)
    if not _PRIVATE_KEY.search(key_data):
        where = f"the PEM file {cert_path!r}" if together else f"the private key file {key_path!r}"
        problem = "holds no private key (BEGIN ... PRIVATE KEY)"
        if together:
            problem += ": add the key to the file, or give a pair [certificate file, private key file]"
        raise fail(f"names {where}, which {problem}")
    if _ENCRYPTED_KEY.search(key_data):
        raise fail(
            f"names the private key file {key_path!r}, which is encrypted: no passphrase can be given, "
            "use an unencrypted key readable only by the workers"
        )

    def no_passphrase() -> bytes:
        raise _EncryptedKey

    try:
        context.load_cert_chain(cert_path, None if together else key_path, password=no_passphrase)
    except _EncryptedKey:
        raise fail(f"names the private key file {key_path!r}, which is encrypted") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise fail(
                f"names the private key file {key_path!r}, which does not belong to the client "
                f"certificate in {cert_path!r}"
            ) from None
        raise fail(
            f"names {cert_role} in {cert_path!r}"
            + ("" if together else f" and {key_path!r}")
            + f", which cannot be loaded as PEM ({_reason(exc)})"
        ) from None
    except OSError as exc:
        raise fail(f"names {cert_role} in {cert_path!r}, which cannot be read ({_reason(exc)})") from None


class _EncryptedKey(Exception):
    """The key asked for a passphrase."""


def _pem_file(path: str, role: str, marker: bytes | None, fail) -> bytes:
    """The bytes of the PEM file at ``path`` (``role`` names it in errors), holding ``marker``."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise fail(f"names {role} file {path!r}, which does not exist") from None
    except OSError as exc:
        raise fail(f"names {role} file {path!r}, which cannot be read ({_reason(exc)})") from None
    if b"-----BEGIN " not in data:
        raise fail(f"names {role} file {path!r}, which is not PEM (no -----BEGIN line)")
    if marker is not None and marker not in data:
        raise fail(f"names {role} file {path!r}, which holds no certificate (BEGIN CERTIFICATE)")
    return data


def _reason(exc: BaseException) -> str:
    """The kind of an OS or SSL error, without its message (which may quote what was read)."""
    if isinstance(exc, ssl.SSLError):  # OpenSSL's reason; without one it says "PEM lib"
        return exc.reason or "a PEM block is damaged or of a kind that cannot be used"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__}: {os.strerror(exc.errno)}"
    return type(exc).__name__


def _json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for a message that does not quote the value."""
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"

"""A lean HTTP/1.1 keep-alive client for the load generator, on asyncio protocols.

A load generator measures the server only as far as its own time per response is small: a
response that arrives while the client is busy with others waits, and that wait shows as latency.
This client therefore does the least per request:

- the request bytes are built once per body from a head prepared per endpoint (request line,
  ``Host``, ``Content-Type``, the endpoint's own headers such as its auth, ``Content-Length``);
- the reply is parsed by llhttp (Node's C parser, through ``httptools``: chunked bodies, keep-alive
  and ``Connection: close`` are its business), fed from the protocol's ``data_received``;
- the latency clock stops in that callback when the reply is complete, and the caller's completion
  callback runs right there, so a closed loop writes its next request without a coroutine hop.

Each endpoint has one :class:`EndpointClient`: a pool of keep-alive connections (one request in
flight on each; no pipelining), opened as needed, dropped when the server closes them, answers
``Connection: close``, or sends bytes beyond the reply (the first complete reply is the answer), and
not reused after :data:`MAX_IDLE_S` idle or when the server's close (or any byte) is already waiting
on it (checked with one ``poll`` before reuse, as urllib3 does), so a server's idle timeout rarely
meets a request on its way. A request is sent once: a connection lost before its reply is a
connection error, also on a reused connection (a POST is not idempotent, and a server that drops the
connection after reading a request must show as failing, as it does to ``requests`` and
``aiohttp``). Every request is bounded by the timeout in all, connecting included
(``loop.call_later``; the connection is aborted when it fires), however slowly the bytes come. A
reply head over :data:`MAX_HEAD_BYTES` or a body over :data:`MAX_REPLY_BYTES` (after inflating) ends
the request as ``reply_too_large`` and the connection is aborted, so memory stays bounded whatever
the server sends. Running out of file descriptors (or kernel memory) is the client's limit, not the
server's fault: it ends the request as ``client_limit``. (``EADDRNOTAVAIL`` is not counted so: it
also means an address this machine cannot reach, such as ``::1`` without IPv6.) ``https://``
endpoints use the ``ssl`` context of their :class:`~airflow_provider_mlprod.serving.tls.TlsSettings`
(from the connection's ``verify`` and ``cert``: a private CA bundle, no verification, a client
certificate), by default the system's CAs (or ``SSL_CERT_FILE``); SNI is sent for host names. A
certificate the client cannot verify, or a handshake the server refuses, ends the request as a
``connection_error`` named by the error's class (``SSLCertVerificationError``, ``SSLError``).
Proxies (``HTTP(S)_PROXY``) are not used: the endpoint is loaded directly, so the latencies are the
server's.

Redirects are not followed (a 3xx is an outcome of its own) and no cookies are kept; the client
asks for uncompressed replies and still inflates a gzip or deflate reply, so output checks see the
body a user would.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import re
import select
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote, unquote, urlsplit

import httptools

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.serving.tls import TlsSettings, default_tls

#: The failure kinds a request can end with (``None``: a reply arrived).
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
REPLY_TOO_LARGE = "reply_too_large"
CLIENT_LIMIT = "client_limit"

#: A reply's status line and headers may take this many bytes; a body this many (after inflating).
MAX_HEAD_BYTES = 1024 * 1024
MAX_REPLY_BYTES = 10 * 1024 * 1024
#: All the bytes of one reply (head, chunk framing, body, trailers): the bound of what a reply may hold
#: in memory, trailers included (llhttp hands them over only when each one ends).
_MAX_WIRE_BYTES = 2 * MAX_HEAD_BYTES + 2 * MAX_REPLY_BYTES
#: An idle connection older than this is closed rather than reused: below the common idle timeouts of
#: servers (5 s: uvicorn, Node; 60-75 s: load balancers, nginx, aiohttp), above the gap between requests
#: of any load worth the name, so a test rarely pays a new connection for it.
MAX_IDLE_S = 4.0
#: Errors of the client's own machine when it opens a connection (descriptors, kernel memory).
_LOCAL_LIMITS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: What ``poll`` reports on an idle connection that must not be reused: the peer's close, an error,
#: or bytes nobody asked for.
_POLL_STALE = (
    select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | getattr(select, "POLLRDHUP", 0)
    if hasattr(select, "poll")
    else 0
)

#: ``on_done(status, body, failure, error_name, end)``: called exactly once per request, with
#: ``failure`` None for a reply (then ``status`` and ``body`` are set), ``TIMEOUT``,
#: ``CONNECTION_ERROR``, ``REPLY_TOO_LARGE`` or ``CLIENT_LIMIT`` (then ``error_name`` names the
#: kind of error, for the last two the error's class and errno name); ``end`` is the
#: ``time.perf_counter()`` at which the reply completed or the request failed.
OnDone = Callable[[int, bytes, "str | None", "str | None", float], None]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class Target:
    """Where and how to send: the address, TLS settings and the prepared request head."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = field(repr=False)
    head: bytes = field(repr=False)

    def request(self, body: bytes) -> bytes:
        """The complete request carrying ``body``."""
        return b"%s%d\r\n\r\n%s" % (self.head, len(body), body)


def prepare_target(
    url: str, headers: Mapping[str, str], *, label: str, tls: TlsSettings | None = None
) -> Target:
    """The target of a POST of JSON bodies to ``url`` with ``headers`` (they override the defaults),
    over TLS as ``tls`` says for an ``https`` URL (default: the system's CAs, no client certificate).

    Raises SpecError naming ``label`` (and a header by name, never its value) for a URL that is not
    http(s) with a host, a header name or value that cannot be sent, or a framing header
    (``Content-Length``, ``Transfer-Encoding``: the client frames the body itself).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"endpoint {label}: the URL must be an http(s) URL with a host")
    try:
        port = parts.port
    except ValueError:
        raise SpecError(f"endpoint {label}: the URL's port is not a valid port number") from None
    default_port = 443 if parts.scheme == "https" else 80
    port = port or default_port
    host = parts.hostname
    host_header = f"[{host}]" if ":" in host else host
    if port != default_port:
        host_header += f":{port}"
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    fields: dict[str, tuple[str, str]] = {}

    def put(name: str, value: str) -> None:
        fields[name.lower()] = (name, value)

    put("Host", host_header)
    put("User-Agent", "airflow-provider-mlprod")
    put("Accept", "*/*")
    put("Accept-Encoding", "identity")
    put("Content-Type", "application/json")
    if parts.username is not None or parts.password is not None:
        user_info = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        put("Authorization", "Basic " + base64.b64encode(user_info.encode()).decode())
    for name, value in headers.items():
        name, value = str(name), str(value)
        if not _TOKEN.fullmatch(name):
            raise SpecError(f"endpoint {label}: header name {name!r} is not a valid HTTP header name")
        if any(c in value for c in "\r\n\0"):
            raise SpecError(f"endpoint {label}: the value of header {name!r} holds a line break or NUL")
        if name.lower() in _FRAMING_HEADERS:
            raise SpecError(f"endpoint {label}: header {name!r} cannot be set; the client frames the body")
        put(name, value.strip())
    lines = [f"POST {target} HTTP/1.1"] + [f"{name}: {value}" for name, value in fields.values()]
    head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("utf-8")
    context = (tls or default_tls()).context if parts.scheme == "https" else None
    return Target(host=host, port=port, ssl_context=context, head=head)


class _Exchange:
    """One request: its bytes, its completion callback, its timer and where it is being sent."""

    __slots__ = ("client", "connect_task", "connection", "done", "on_done", "request", "timer")

    def __init__(self, client: EndpointClient, request: bytes, on_done: OnDone) -> None:
        self.client = client
        self.request = request
        self.on_done = on_done
        self.timer: asyncio.TimerHandle | None = None
        self.connection: _Connection | None = None
        self.connect_task: asyncio.Task | None = None
        self.done = False

    def reply(self, status: int, body: bytes, end: float) -> None:
        if self.done:
            return
        self.done = True
        self.timer.cancel()
        self.on_done(status, body, None, None, end)

    def fail(self, failure: str, error_name: str | None, end: float) -> None:
        if self.done:
            return
        self.done = True
        self.timer.cancel()
        self.on_done(0, b"", failure, error_name, end)

    def time_out(self) -> None:
        if self.done:
            return
        end = time.perf_counter()
        if self.connection is not None:
            self.connection.abandon(self)
        if self.connect_task is not None:
            self.connect_task.cancel()
        self.done = True
        self.on_done(0, b"", TIMEOUT, None, end)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, its reply parsed by llhttp."""

    def __init__(self, client: EndpointClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.idle_since = 0.0  # when the connection was last released
        self.poller: select.poll | None = None  # polls the socket for a close waiting while idle
        self.received = 0  # bytes of the current exchange's reply so far
        self.in_message = False
        self.headers_done = False
        self.framed = False  # the reply has a Content-Length or chunked Transfer-Encoding
        self.encoding: bytes | None = None
        self.body_parts: list[bytes] = []
        self.body_size = 0
        self.too_large = False
        self.complete_at: float | None = None  # the first complete reply: when, its status and body
        self.status = 0
        self.body = b""
        self.keep_alive = False
        self.leftover = False  # bytes came after the reply: the connection is out of step

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if _POLL_STALE and sock is not None:
            self.poller = select.poll()
            self.poller.register(sock.fileno(), _POLL_STALE)

    def stale(self) -> bool:
        """The idle connection cannot carry a request: closed, idle too long, or the server's close
        (or stray bytes) already waiting on the socket."""
        if self.closed or self.transport.is_closing():
            return True
        if time.perf_counter() - self.idle_since > MAX_IDLE_S:
            return True
        return self.poller is not None and bool(self.poller.poll(0))

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: the connection is out of step
            self.drop()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if self.complete_at is None:
                self.exchange = None
                self.drop()
                exchange.fail(CONNECTION_ERROR, "InvalidHttpReply", time.perf_counter())
                return
            self.leftover = True  # garbage after a complete reply: the reply stands
        if self.received > MAX_HEAD_BYTES and (
            self.too_large or not self.headers_done or self.received > _MAX_WIRE_BYTES
        ):
            self.exchange = None
            self.abort()
            if self.too_large:
                error_name = "ReplyBodyTooLarge"
            elif not self.headers_done:
                error_name = "ReplyHeadTooLarge"
            else:  # trailers or chunk framing without end
                error_name = "ReplyTooLarge"
            exchange.fail(REPLY_TOO_LARGE, error_name, time.perf_counter())
            return
        if self.complete_at is None:
            return
        self.finish(exchange)

    def finish(self, exchange: _Exchange) -> None:
        """Hand the complete reply to ``exchange``; keep the connection only if it is in step."""
        end, self.complete_at = self.complete_at, None
        body = self.body
        self.body = b""
        self.exchange = None
        if self.encoding is not None:
            body = _inflate(body, self.encoding)
            if body is None:
                self.drop()
                exchange.fail(REPLY_TOO_LARGE, "ReplyBodyTooLarge", end)
                return
        if self.keep_alive and not self.in_message and not self.leftover and not self.closed:
            self.client.release(self)
        else:
            self.drop()
        exchange.reply(self.status, body, end)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost reports the loss

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.client.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is None:
            return
        end = time.perf_counter()
        if exc is None and self.headers_done and not self.framed and self.in_message:
            # A reply without Content-Length or chunked framing ends where the connection does
            # (cleanly: a reset cuts it short).
            self.complete_at = end
            self.status = self.parser.get_status_code()
            self.body = b"".join(self.body_parts)
            self.in_message = False
            self.finish(exchange)
        else:
            exchange.fail(CONNECTION_ERROR, type(exc).__name__ if exc else "ServerDisconnected", end)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete_at is not None:  # a second reply to one request: not this request's
            self.leftover = True
            return
        self.in_message = True
        self.headers_done = False
        self.framed = False
        self.encoding = None
        self.body_parts = []
        self.body_size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self.framed = True
        elif lowered == b"transfer-encoding":
            self.framed = self.framed or b"chunked" in value.lower()
        elif lowered == b"content-encoding" and not self.headers_done:  # not a trailer
            self.encoding = value.strip().lower()

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if self.complete_at is not None:  # the body of a reply after the reply: not kept
            return
        self.body_size += len(body)
        if self.body_size > MAX_REPLY_BYTES:
            self.too_large = True
            self.body_parts = []
        elif not self.too_large:
            self.body_parts.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        # An informational (1xx) reply precedes the real one; only the first real one counts.
        if self.parser.get_status_code() >= 200 and self.complete_at is None:
            self.complete_at = time.perf_counter()
            self.status = self.parser.get_status_code()
            parts = self.body_parts
            self.body = parts[0] if len(parts) == 1 else b"".join(parts)
            self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the message ends

    # used by the client and the exchange

    def start(self, exchange: _Exchange) -> None:
        self.exchange = exchange
        exchange.connection = self
        self.received = 0
        self.too_large = False
        self.transport.write(exchange.request)

    def abandon(self, exchange: _Exchange) -> None:
        """Give up ``exchange`` (it timed out): its reply may still come, so the connection goes."""
        if self.exchange is exchange:
            self.exchange = None
            self.abort()

    def abort(self) -> None:
        """Close at once, dropping whatever is still to come."""
        self.closed = True
        self.client.forget(self)
        if self.transport is not None:
            self.transport.abort()

    def drop(self) -> None:
        self.closed = True
        self.client.forget(self)
        if self.transport is not None:
            self.transport.close()


def _inflate(body: bytes, encoding: bytes | None) -> bytes | None:
    """The body decoded from gzip or deflate (None: over :data:`MAX_REPLY_BYTES` so decoded); as it
    came when not encoded or not decodable."""
    if encoding not in (b"gzip", b"x-gzip", b"deflate"):
        return body
    for wbits in (15, -15) if encoding == b"deflate" else (47, -15):  # -15: raw deflate, as some send
        inflater = zlib.decompressobj(wbits)
        try:
            decoded = inflater.decompress(body, MAX_REPLY_BYTES + 1)
        except zlib.error:
            continue
        if len(decoded) > MAX_REPLY_BYTES:
            return None
        if inflater.eof:
            return decoded
    return body


class EndpointClient:
    """The keep-alive connection pool of one endpoint; :meth:`send` one request at a time per connection.

    Must be created and used on the running event loop.
    """

    def __init__(self, target: Target, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.loop = asyncio.get_running_loop()
        self.idle: list[_Connection] = []
        self.connections: set[_Connection] = set()
        self.opened = 0  # connections opened so far

    def send(self, body: bytes, on_done: OnDone) -> None:
        """Send ``body``; ``on_done`` is called once, from the event loop, never before this returns."""
        exchange = _Exchange(self, self.target.request(body), on_done)
        exchange.timer = self.loop.call_later(self.timeout_s, exchange.time_out)
        idle = self.idle
        while idle:
            connection = idle.pop()
            if connection.stale():
                connection.drop()
                continue
            connection.start(exchange)
            return
        self.open(exchange)

    def open(self, exchange: _Exchange) -> None:
        """Send ``exchange`` on a new connection."""
        task = self.loop.create_task(self._connect())
        exchange.connect_task = task
        task.add_done_callback(partial(self._connected, exchange))

    async def _connect(self) -> _Connection:
        target = self.target
        _, connection = await self.loop.create_connection(
            partial(_Connection, self),
            target.host,
            target.port,
            ssl=target.ssl_context,
            server_hostname=target.host if target.ssl_context is not None else None,
        )
        return connection

    def _connected(self, exchange: _Exchange, task: asyncio.Task) -> None:
        exchange.connect_task = None
        if task.cancelled():  # the request timed out while connecting
            return
        error = task.exception()
        if error is not None:
            code = getattr(error, "errno", None)
            if code in _LOCAL_LIMITS:
                exchange.fail(
                    CLIENT_LIMIT, f"{type(error).__name__} {errno.errorcode[code]}", time.perf_counter()
                )
            else:
                exchange.fail(CONNECTION_ERROR, type(error).__name__, time.perf_counter())
            return
        connection: _Connection = task.result()
        self.opened += 1
        self.connections.add(connection)
        if exchange.done:
            self.release(connection)
        else:
            connection.start(exchange)

    def release(self, connection: _Connection) -> None:
        """``connection`` is free for the next request."""
        connection.idle_since = time.perf_counter()
        self.idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        """``connection`` is closed: never hand it out again."""
        self.connections.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)

    def close(self) -> None:
        """Close every connection (requests still in flight are abandoned)."""
        for connection in list(self.connections):
            connection.exchange = None
            connection.drop()
        self.idle.clear()

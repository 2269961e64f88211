"""The load generator's HTTP/1.1 client against scripted servers on real loopback sockets.

Each server is a thread accepting connections on 127.0.0.1 and answering every request read from a
connection with the bytes its script returns (or closing, resetting, hanging), so the client meets
what real servers do: keep-alive, ``Connection: close``, idle connections closed under it, chunked
and oversized replies, TLS, resets and replies that never come.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import io
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable

import pytest

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.serving.http_client import EndpointClient, prepare_target
from airflow_provider_mlprod.serving.loadgen import Endpoint, EndpointUnreachable, LoadPlan, run_load_test
from airflow_provider_mlprod.serving.request_sets import json_lines_request_set
from airflow_provider_mlprod.serving.response_checks import ResponseChecks

#: What a script returns for a request: bytes to send, then what to do with the connection.
KEEP, CLOSE, RESET, HANG = "keep", "close", "reset", "hang"
Script = Callable[[dict, int], tuple[bytes, str]]  # (request, its number on the connection) -> reply


def reply(body: bytes | str, *, status: int = 200, headers: dict[str, str] | None = None) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def ok(request: dict, _number: int) -> tuple[bytes, str]:
    return reply(json.dumps({"label": "stay", "echo": request["body"]})), KEEP


class ScriptedServer:
    """A threaded loopback server answering each request with ``script``; counts connections."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/predict?version=2"
        self.connections = 0
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sockets: list[socket.socket] = []

    def __enter__(self) -> ScriptedServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.listener.close()
        with self.lock:
            for conn in self.sockets:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            stream = conn.makefile("rb")
            number = 0
            while True:
                request = read_request(stream)
                if request is None:
                    return
                number += 1
                with self.lock:
                    self.requests.append(request)
                data, then = self.script(request, number)
                if then == HANG:
                    self.stopping.wait()
                    return
                if then == RESET:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                conn.sendall(data)
                if then == CLOSE:
                    conn.close()
                    return
        except (OSError, ssl.SSLError):
            return


def read_request(stream: io.BufferedReader) -> dict | None:
    """One request read off the connection (None at its end): line, headers and body."""
    line = stream.readline()
    if not line:
        return None
    headers = {}
    while True:
        header = stream.readline()
        if header in (b"\r\n", b""):
            break
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length", 0)))
    return {"line": line.decode().strip(), "headers": headers, "body": json.loads(body)}


def numbered(count: int, **extra) -> object:
    text = "\n".join(json.dumps({"i": i} | extra) for i in range(count))
    return json_lines_request_set("numbered", lambda: io.StringIO(text))


def load(url: str, requests: int, concurrency: int = 2, checks=None, headers=None, **plan):
    return run_load_test(
        [Endpoint("candidate", url, headers or {})],
        numbered(requests),
        LoadPlan(requests=requests, concurrency=concurrency, **plan),
        ResponseChecks.from_spec(checks),
    ).endpoints[0]


def fetch(url: str, body: bytes, timeout_s: float = 5.0) -> tuple:
    """One request through EndpointClient: (status, body, failure, error name)."""

    async def one() -> tuple:
        client = EndpointClient(prepare_target(url, {}, label="test"), timeout_s)
        done = asyncio.get_running_loop().create_future()
        client.send(body, lambda *outcome: done.set_result(outcome[:4]))
        try:
            return await done
        finally:
            client.close()

    return asyncio.run(one())


def test_keep_alive_connections_are_reused_and_the_request_is_well_formed():
    with ScriptedServer(ok) as server:
        result = load(server.url, 60, concurrency=3, headers={"Authorization": "Bearer t0k"})
    assert result.outcomes == {"2xx": 60}
    assert server.connections == 3
    first = server.requests[0]
    assert first["line"] == "POST /predict?version=2 HTTP/1.1"
    assert first["headers"]["host"] == f"127.0.0.1:{server.port}"
    assert first["headers"]["content-type"] == "application/json"
    assert first["headers"]["authorization"] == "Bearer t0k"
    assert sorted(r["body"]["i"] for r in server.requests) == list(range(60))


def test_a_server_closing_after_each_reply_gets_a_new_connection_per_request():
    def close_each(request: dict, _number: int) -> tuple[bytes, str]:
        return reply('{"label": "stay"}', headers={"Connection": "close"}), CLOSE

    with ScriptedServer(close_each) as server:
        result = load(server.url, 20)
    assert result.outcomes == {"2xx": 20}
    assert server.connections == 20


def test_a_connection_closed_under_the_next_request_counts_that_request_once_as_an_error():
    """The server closes after its third reply without saying so: the fourth request, written the
    moment the third reply arrived, meets a closed connection. A POST is not sent again (the server
    may have read it): it is one connection error, as ``aiohttp`` reports, and the next request
    goes on a new connection."""

    def three_per_connection(request: dict, number: int) -> tuple[bytes, str]:
        return reply('{"label": "stay"}'), CLOSE if number == 3 else KEEP

    with ScriptedServer(three_per_connection) as server:
        result = load(server.url, 30, concurrency=1)
    assert sum(result.outcomes.values()) == 30
    assert result.outcomes["2xx"] >= 22
    assert result.outcomes["2xx"] + result.outcomes.get("connection_error", 0) == 30
    bodies = [r["body"]["i"] for r in server.requests]
    assert len(bodies) == len(set(bodies)) == result.outcomes["2xx"]  # none sent twice
    assert server.connections >= 8


def test_a_chunked_reply_is_read_whole():
    def chunked(request: dict, _number: int) -> tuple[bytes, str]:
        text = json.dumps({"label": "stay", "echo": request["body"]}).encode()
        pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head + chunks, KEEP

    with ScriptedServer(chunked) as server:
        status, body, failure, _ = fetch(server.url, b'{"i": 41}')
        result = load(server.url, 20, checks=[{"check": "labels", "field": "label", "allowed": ["stay"]}])
    assert (status, failure) == (200, None)
    assert json.loads(body) == {"label": "stay", "echo": {"i": 41}}
    assert result.outcomes == {"2xx": 20}
    assert result.output_check_pass_rate == 1.0
    assert server.connections == 1 + 2  # chunked replies keep the connection alive


def test_a_reply_larger_than_one_read_arrives_intact():
    big = json.dumps({"label": "stay", "scores": list(range(300_000))}).encode()  # ~2 MB

    with ScriptedServer(lambda request, number: (reply(big), KEEP)) as server:
        status, body, failure, _ = fetch(server.url, b"{}")
        result = load(server.url, 6, checks=[{"check": "json"}])
    assert (status, failure) == (200, None)
    assert body == big
    assert result.output_check_pass_rate == 1.0


def test_a_reply_framed_by_the_end_of_the_connection_and_a_gzip_reply():
    def unframed(request: dict, _number: int) -> tuple[bytes, str]:
        return b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"label": "stay"}', CLOSE

    def gzipped(request: dict, _number: int) -> tuple[bytes, str]:
        return reply(gzip.compress(b'{"label": "stay"}'), headers={"Content-Encoding": "gzip"}), KEEP

    with ScriptedServer(unframed) as a, ScriptedServer(gzipped) as b:
        assert fetch(a.url, b"{}")[:3] == (200, b'{"label": "stay"}', None)
        assert fetch(b.url, b"{}")[:3] == (200, b'{"label": "stay"}', None)


def test_each_request_is_bounded_by_the_timeout_and_the_others_go_on():
    def every_fifth_hangs(request: dict, _number: int) -> tuple[bytes, str]:
        return (b"", HANG) if request["body"]["i"] % 5 == 0 else ok(request, _number)

    with ScriptedServer(every_fifth_hangs) as server:
        result = load(server.url, 25, timeout_s=0.3)
    assert result.outcomes == {"2xx": 20, "timeout": 5}
    assert result.timeout_rate == 0.2
    assert result.latency.count == 25  # a timeout counts as the time it waited
    assert 300 <= result.latency.max_ms < 1000
    assert result.latency.p50_ms < 300


def test_resets_and_truncated_or_malformed_replies_are_connection_errors():
    def some_fail(request: dict, _number: int) -> tuple[bytes, str]:
        kind = request["body"]["i"] % 6
        if kind == 1:
            return b"", RESET
        if kind == 2:
            return reply("x" * 50)[:-20], CLOSE  # the server dies mid-reply
        if kind == 3:
            return b"HTTP/1.1 2OO OK\r\n\r\n", KEEP  # not HTTP
        return ok(request, _number)

    with ScriptedServer(some_fail) as server:
        result = load(server.url, 36)
    assert result.outcomes == {"2xx": 18, "connection_error": 18}
    assert set(result.error_examples) == {
        "ConnectionResetError",
        "ServerDisconnected",
        "InvalidHttpReply",
    }


def test_a_server_that_resets_every_connection_is_unreachable():
    with (
        ScriptedServer(lambda request, number: (b"", RESET)) as server,
        pytest.raises(EndpointUnreachable, match=r"answered none of 4 requests \(ConnectionResetError\)"),
    ):
        load(server.url, 4)


def self_signed(tmp_path) -> tuple[str, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (written as PEM) and a server context holding it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlprod test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return str(cert_file), context


def test_https_endpoints_are_verified_against_the_trusted_certificates(tmp_path, monkeypatch):
    cert_file, server_context = self_signed(tmp_path)
    with ScriptedServer(ok, tls=server_context) as server:
        with pytest.raises(EndpointUnreachable, match="SSLCertVerificationError"):
            load(server.url, 3)
        refused = server.connections
        monkeypatch.setenv("SSL_CERT_FILE", cert_file)
        result = load(server.url, 20)
    assert result.outcomes == {"2xx": 20}
    assert server.connections - refused == 2  # kept alive once trusted


def test_open_loop_through_the_client_keeps_its_bound_on_requests_in_flight():
    with ScriptedServer(ok) as server:
        result = run_load_test(
            [Endpoint("candidate", server.url)],
            numbered(40),
            LoadPlan(mode="open", rate=400, requests=40, max_in_flight=3),
        )
    assert result.endpoints[0].outcomes == {"2xx": 40}
    assert server.connections <= 3


@pytest.mark.parametrize(
    ("url", "headers", "message"),
    [
        ("ftp://127.0.0.1/x", {}, "must be an http\\(s\\) URL with a host"),
        ("http://127.0.0.1:99999/x", {}, "port is not a valid port number"),
        ("http://127.0.0.1/x", {"X-Key": "a\r\nEvil: 1"}, "the value of header 'X-Key' holds a line break"),
        ("http://127.0.0.1/x", {"Bad Name": "v"}, "header name 'Bad Name' is not a valid"),
        ("http://127.0.0.1/x", {"Content-Length": "3"}, "header 'Content-Length' cannot be set"),
    ],
)
def test_unsendable_urls_and_headers_are_named_without_their_values(url, headers, message):
    with pytest.raises(SpecError, match=message) as caught:
        prepare_target(url, headers, label="candidate")
    assert "Evil" not in str(caught.value)

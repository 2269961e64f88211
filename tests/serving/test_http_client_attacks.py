"""The load generator's HTTP client against hostile servers that write raw bytes on loopback sockets.

Each server is a thread that reads one request at a time off a connection and lets a handler write
whatever bytes it likes (or close, reset, drip, flood), so the client meets framing errors, floods
and crashes byte for byte. Where ``requests`` or ``aiohttp`` would report otherwise, the tests say so.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import math
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable

import pytest

from airflow_provider_mlprod.exceptions import SpecError
from airflow_provider_mlprod.serving import http_client, loadgen
from airflow_provider_mlprod.serving.http_client import EndpointClient, prepare_target
from airflow_provider_mlprod.serving.loadgen import Endpoint, LoadPlan, run_load_test
from airflow_provider_mlprod.serving.request_sets import json_lines_request_set
from airflow_provider_mlprod.serving.response_checks import ResponseChecks

OK_HEAD = b"HTTP/1.1 200 OK\r\n"
#: handler(connection, request body, request number on the connection) -> "close" to close after.
Handler = Callable[[socket.socket, bytes, int], "str | None"]


class RawServer:
    """A loopback server handing each request to ``handler``, which writes the reply bytes itself."""

    def __init__(self, handler: Handler, family: int = socket.AF_INET) -> None:
        self.handler = handler
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.listener = socket.create_server((host, 0), family=family, backlog=256)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://{'[::1]' if family == socket.AF_INET6 else host}:{self.port}/predict?v=2&x=a%20b"
        self.connections = 0
        self.bodies: list[bytes] = []
        self.heads: list[list[bytes]] = []
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []

    def __enter__(self) -> RawServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        with self.lock:
            for conn in self.open:
                conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        stream = conn.makefile("rb")
        number = 0
        try:
            while True:
                line = stream.readline()
                if not line:
                    return
                head = [line]
                length = 0
                while (header := stream.readline()) not in (b"\r\n", b""):
                    head.append(header)
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = stream.read(length)
                number += 1
                with self.lock:
                    self.bodies.append(body)
                    self.heads.append(head)
                if self.handler(conn, body, number) == "close":
                    conn.close()
                    return
        except OSError:
            return


def send(data: bytes, then: str | None = None) -> Handler:
    def handler(conn: socket.socket, body: bytes, number: int) -> str | None:
        conn.sendall(data)
        return then

    return handler


def fetch_all(url: str, count: int = 1, timeout_s: float = 5.0, pause_s: float = 0.0) -> list[tuple]:
    """``count`` requests one after the other on one client: (status, body, failure, error, seconds)."""

    async def run() -> list[tuple]:
        client = EndpointClient(prepare_target(url, {}, label="test"), timeout_s)
        outcomes = []
        try:
            for i in range(count):
                if i and pause_s:
                    await asyncio.sleep(pause_s)
                done = asyncio.get_running_loop().create_future()
                started = time.perf_counter()
                client.send(b'{"i": %d}' % i, lambda *outcome, done=done: done.set_result(outcome))
                status, body, failure, error, end = await done
                outcomes.append((status, body, failure, error, end - started))
        finally:
            client.close()
            await asyncio.sleep(0)
        return outcomes

    return asyncio.run(run())


def numbered(count: int):
    text = "\n".join(json.dumps({"i": i}) for i in range(count))
    return json_lines_request_set("numbered", lambda: io.StringIO(text))


# -- memory stays bounded whatever the server sends --------------------------------------------


def flood_body(conn: socket.socket, body: bytes, number: int) -> str:
    """Announces 3 GB and streams until the client goes away."""
    conn.sendall(OK_HEAD + b"Content-Length: %d\r\n\r\n" % (3 * 1024**3))
    block = b"7" * (1024 * 1024)
    try:
        for _ in range(3 * 1024):
            conn.sendall(block)
    except OSError:
        pass
    return "close"


def test_a_gigabyte_body_ends_as_reply_too_large_and_memory_stays_bounded():
    tracemalloc.start()
    try:
        with RawServer(flood_body) as server:
            [(_, _, failure, error, seconds)] = fetch_all(server.url, timeout_s=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (failure, error) == ("reply_too_large", "ReplyBodyTooLarge")
    assert seconds < 20
    assert peak < 4 * http_client.MAX_REPLY_BYTES


def flood_head(conn: socket.socket, body: bytes, number: int) -> str:
    """A header line that never ends."""
    conn.sendall(OK_HEAD + b"X-Flood: ")
    block = b"h" * (1024 * 1024)
    try:
        for _ in range(1024):
            conn.sendall(block)
    except OSError:
        pass
    return "close"


def test_a_header_that_never_ends_is_cut_off_at_the_head_limit():
    with RawServer(flood_head) as server:
        [(_, _, failure, error, seconds)] = fetch_all(server.url, timeout_s=60)
    assert (failure, error) == ("reply_too_large", "ReplyHeadTooLarge")
    assert seconds < 20


def flood_trailer(conn: socket.socket, body: bytes, number: int) -> str:
    """A chunked body that ends, then a trailer field that never does."""
    conn.sendall(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Flood: ")
    block = b"t" * (1024 * 1024)
    try:
        for _ in range(1024):
            conn.sendall(block)
    except OSError:
        pass
    return "close"


def test_a_trailer_that_never_ends_is_cut_off_with_bounded_memory():
    tracemalloc.start()
    try:
        with RawServer(flood_trailer) as server:
            [(_, _, failure, error, seconds)] = fetch_all(server.url, timeout_s=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (failure, error) == ("reply_too_large", "ReplyTooLarge")
    assert seconds < 30
    assert peak < 6 * http_client.MAX_REPLY_BYTES


def test_a_gzip_bomb_is_not_inflated_past_the_body_limit():
    bomb = gzip.compress(b"\0" * (http_client.MAX_REPLY_BYTES * 4))  # ~40 KB on the wire
    head = OK_HEAD + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    small = gzip.compress(b'{"label": "stay"}')
    with (
        RawServer(send(head + bomb)) as bombing,
        RawServer(send(head.replace(b"%d" % len(bomb), b"%d" % len(small)) + small)) as fine,
    ):
        [(_, _, failure, error, _)] = fetch_all(bombing.url)
        [(status, body, ok_failure, _, _)] = fetch_all(fine.url)
    assert (failure, error) == ("reply_too_large", "ReplyBodyTooLarge")
    assert (status, body, ok_failure) == (200, b'{"label": "stay"}', None)


class RecordingChecks:
    """The default checks, recording the bytes of the replies each evaluation is handed."""

    def __init__(self) -> None:
        self.inner = ResponseChecks.from_spec(None)
        self.names = self.inner.names
        self.batches: list[int] = []

    def evaluate(self, replies):
        self.batches.append(sum(len(body) for _, body in replies))
        return self.inner.evaluate(replies)


def test_distinct_large_replies_are_checked_and_dropped_past_the_held_budget(monkeypatch):
    monkeypatch.setattr(loadgen, "HELD_REPLY_BYTES", 1024 * 1024)

    def distinct(conn: socket.socket, body: bytes, number: int) -> None:
        data = json.dumps({"echo": body.decode(), "pad": "p" * 300_000}).encode()
        conn.sendall(OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(data) + data)

    checks = RecordingChecks()
    with RawServer(distinct) as server:
        result = run_load_test(
            [Endpoint("candidate", server.url)], numbered(20), LoadPlan(requests=20, concurrency=2), checks
        ).endpoints[0]
    assert result.outcomes == {"2xx": 20}
    assert result.output_check_pass_rate == 1.0
    assert len(checks.batches) >= 4
    assert max(checks.batches) <= 1024 * 1024 + 400_000


# -- framing: what counts as the reply ---------------------------------------------------------


def test_a_second_reply_to_one_request_is_not_taken_for_it_and_the_connection_is_dropped():
    """``requests`` and ``aiohttp`` both report the first reply (200) here."""
    two = OK_HEAD + b"Content-Length: 3\r\n\r\nabcHTTP/1.1 503 X\r\nContent-Length: 3\r\n\r\nxyz"
    with RawServer(send(two)) as server:
        outcomes = fetch_all(server.url, 3)
    assert [outcome[:3] for outcome in outcomes] == [(200, b"abc", None)] * 3
    assert server.connections == 3


def test_a_reply_just_under_the_limit_stands_whatever_follows_it_in_the_same_read():
    size = http_client.MAX_REPLY_BYTES - 10
    first = OK_HEAD + b"Content-Length: %d\r\n\r\n" % size + b"b" * size
    stray = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"s" * 1000
    with RawServer(send(first + stray)) as server:
        outcomes = fetch_all(server.url, 2)
    assert [(status, len(body), failure) for status, body, failure, _, _ in outcomes] == [
        (200, size, None)
    ] * 2
    assert server.connections == 2


def test_a_body_longer_than_its_content_length_gives_the_announced_body_and_a_new_connection():
    """As ``requests`` reads it: the first two bytes are the reply, the rest is not trusted."""
    with RawServer(send(OK_HEAD + b"Content-Length: 2\r\n\r\nabcdef")) as server:
        outcomes = fetch_all(server.url, 2)
    assert [outcome[:3] for outcome in outcomes] == [(200, b"ab", None)] * 2
    assert server.connections == 2


def test_a_switching_protocols_reply_is_an_invalid_reply_without_a_fatal_loop_error(caplog):
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nabc"
    caplog.set_level(logging.DEBUG, logger="asyncio")  # the event loop logs its errors on "asyncio"
    with RawServer(send(upgrade)) as server:
        [outcome] = fetch_all(server.url)
    assert outcome[2:4] == ("connection_error", "InvalidHttpReply")
    assert "Using selector" in caplog.text  # the loop's own first line: the capture saw that logger
    assert "Fatal error" not in caplog.text


def test_informational_replies_and_chunk_extensions_and_trailers_are_read_as_a_user_would():
    replies = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        + OK_HEAD
        + b"Content-Length: 3\r\n\r\nabc",
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nContent-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n",
    ]
    for data, expected in zip(replies, [(200, b"abc"), (200, b"abc"), (204, b""), (304, b"")], strict=True):
        with RawServer(send(data)) as server:
            outcomes = fetch_all(server.url, 2)
        assert [outcome[:3] for outcome in outcomes] == [(*expected, None)] * 2
        assert server.connections == 1  # kept alive


@pytest.mark.parametrize(
    "data",
    [
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",  # a chunk size that is not hex
        OK_HEAD + b"Content-Length: -3\r\n\r\nabc",
        OK_HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        OK_HEAD
        + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",  # smuggling
        b"HTTP/1.1 20 X\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_malformed_framing_is_one_connection_error_per_request(data):
    with RawServer(send(data)) as server:
        outcomes = fetch_all(server.url, 2)
    assert [outcome[2:4] for outcome in outcomes] == [("connection_error", "InvalidHttpReply")] * 2
    assert len(server.bodies) == 2


def test_a_body_framed_by_the_connection_end_is_a_reply_only_when_the_end_is_clean():
    def cut_by_reset(conn: socket.socket, body: bytes, number: int) -> str:
        conn.sendall(OK_HEAD + b"Content-Type: application/json\r\n\r\n" + b'{"label": "st')
        time.sleep(0.2)  # the client has read these bytes before the reset comes
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return "close"

    transfer_coded = OK_HEAD + b"Transfer-Encoding: gzip\r\n\r\nraw"  # not chunked: ends with the connection
    with RawServer(cut_by_reset) as reset, RawServer(send(transfer_coded, "close")) as closed:
        [(_, _, failure, error, _)] = fetch_all(reset.url)
        [(status, body, clean_failure, _, _)] = fetch_all(closed.url)
    assert (failure, error) == ("connection_error", "ConnectionResetError")
    assert (status, body, clean_failure) == (200, b"raw", None)


# -- lost connections: counted once, never hidden, never sent twice ----------------------------


def test_a_server_dropping_a_request_on_a_reused_connection_shows_as_failing_and_is_not_resent():
    """Every second request on a connection is read and then the connection closed without a reply
    (a crashing worker): ``requests`` and ``aiohttp`` report each as an error; so must the load test."""

    def crash_on_second(conn: socket.socket, body: bytes, number: int) -> str | None:
        if number == 2:
            return "close"
        conn.sendall(OK_HEAD + b"Content-Length: 2\r\n\r\n{}")
        return None

    with RawServer(crash_on_second) as server:
        result = run_load_test(
            [Endpoint("candidate", server.url)], numbered(20), LoadPlan(requests=20, concurrency=1)
        ).endpoints[0]
    assert result.outcomes == {"2xx": 10, "connection_error": 10}
    assert result.error_rate == 0.5
    assert len(server.bodies) == 20  # each request sent once


def test_a_connection_idle_longer_than_the_bound_is_not_reused(monkeypatch):
    monkeypatch.setattr(http_client, "MAX_IDLE_S", 0.3)
    with (
        RawServer(send(OK_HEAD + b"Content-Length: 2\r\n\r\n{}")) as idle,
        RawServer(send(OK_HEAD + b"Content-Length: 2\r\n\r\n{}")) as busy,
    ):
        idle_outcomes = fetch_all(idle.url, 3, pause_s=0.5)
        busy_outcomes = fetch_all(busy.url, 3, pause_s=0.1)
    assert [outcome[:3] for outcome in idle_outcomes + busy_outcomes] == [(200, b"{}", None)] * 6
    assert (idle.connections, busy.connections) == (3, 1)


def test_a_reply_dripped_byte_by_byte_is_cut_off_by_the_timeout_in_all():
    def drip(conn: socket.socket, body: bytes, number: int) -> str:
        data = OK_HEAD + b"Content-Length: 40\r\n\r\n" + b"x" * 40
        try:
            for byte in data:
                conn.sendall(bytes([byte]))
                time.sleep(0.02)
        except OSError:
            pass
        return "close"

    with RawServer(drip) as server:
        [(_, _, failure, _, seconds)] = fetch_all(server.url, timeout_s=0.5)
    assert failure == "timeout"
    assert 0.45 < seconds < 1.0


# -- addresses, plans and the machine's own limits ---------------------------------------------


def test_an_ipv6_literal_with_a_port_and_a_query_is_addressed_as_written():
    try:
        server = RawServer(send(OK_HEAD + b"Content-Length: 2\r\n\r\n{}"), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server:
        [outcome] = fetch_all(server.url)
    assert outcome[:3] == (200, b"{}", None)
    assert server.heads[0][0] == b"POST /predict?v=2&x=a%20b HTTP/1.1\r\n"
    assert f"Host: [::1]:{server.port}\r\n".encode() in server.heads[0]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (LoadPlan(timeout_s=math.inf), "timeout_s must be positive and finite"),
        (LoadPlan(requests=None, duration_s=math.inf), "duration_s must be positive and finite"),
        (LoadPlan(mode="open", rate=math.inf), "positive target rate"),
        (LoadPlan(mode="open", rate=True), "positive target rate"),
    ],
)
def test_endless_plans_are_refused(plan, message):
    with pytest.raises(SpecError, match=message):
        plan.check()


def test_running_out_of_file_descriptors_fails_the_run_instead_of_blaming_the_server(tmp_path):
    """Concurrency beyond the open-files limit: the client cannot open its sockets (EMFILE). That is
    no verdict on the server: the run fails, naming the limit, instead of counting errors against it."""
    script = textwrap.dedent(
        """
        import io, json, resource, sys
        from airflow_provider_mlprod.serving.loadgen import Endpoint, LoadPlan, run_load_test
        from airflow_provider_mlprod.serving.request_sets import json_lines_request_set
        text = "\\n".join(json.dumps({"i": i}) for i in range(300))
        requests = json_lines_request_set("n", lambda: io.StringIO(text))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        try:
            result = run_load_test([Endpoint("candidate", sys.argv[1])], requests,
                                   LoadPlan(requests=300, concurrency=200, timeout_s=5))
        except Exception as exc:
            print(type(exc).__name__, exc)
        else:
            print("RESULT", result.endpoints[0].outcomes)
        """
    )
    with RawServer(send(OK_HEAD + b"Content-Length: 2\r\n\r\n{}")) as server:
        done = subprocess.run(
            [sys.executable, "-c", script, server.url], capture_output=True, text=True, timeout=120
        )
    assert done.stdout.startswith("LoadGeneratorLimit"), done.stdout + done.stderr
    assert "EMFILE" in done.stdout
    assert "ulimit -n" in done.stdout


def test_credentials_never_reach_results_or_errors(closed_port):
    from airflow_provider_mlprod.serving.loadgen import EndpointUnreachable

    secret_url = f"http://user:pa55word@127.0.0.1:{closed_port}/predict?api_key=k3y"
    with pytest.raises(EndpointUnreachable) as caught:
        run_load_test(
            [Endpoint("candidate", secret_url, {"Authorization": "Bearer t0ken"})],
            numbered(3),
            LoadPlan(requests=3, concurrency=1),
        )
    with RawServer(send(b"HTTP/1.1 401 No\r\nContent-Length: 2\r\n\r\n{}")) as server:
        url = server.url.replace("http://", "http://user:pa55word@") + "&api_key=k3y"
        result = run_load_test(
            [Endpoint("candidate", url, {"Authorization": "Bearer t0ken"})],
            numbered(3),
            LoadPlan(requests=3, concurrency=1),
        )
    shown = str(caught.value) + json.dumps(result.to_dict(with_distribution=True)) + repr(result)
    for secret in ("pa55word", "k3y", "t0ken", "dXNlcjpwYTU1d29yZA"):
        assert secret not in shown
    assert b"Authorization: Bearer t0ken\r\n" in server.heads[0]


def test_https_to_a_host_name_sends_sni_and_checks_the_name(tmp_path, monkeypatch):
    """The certificate names ``localhost``: reached by that name it is trusted (SNI sent); reached
    by its address, the name does not match and no request is answered."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
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
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    names_seen: list[str | None] = []
    server_context.sni_callback = lambda sock, server_name, context: names_seen.append(server_name)

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                tls = server_context.wrap_socket(conn, server_side=True)
                stream = tls.makefile("rb")
                while stream.readline() not in (b"\r\n", b""):
                    pass
                stream.read(len(b'{"i": 0}'))
                tls.sendall(OK_HEAD + b"Content-Length: 2\r\n\r\n{}")
                tls.close()
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    try:
        [by_name] = fetch_all(f"https://localhost:{port}/predict")
        [by_address] = fetch_all(f"https://127.0.0.1:{port}/predict")
    finally:
        listener.close()
    assert by_name[:3] == (200, b"{}", None)
    assert by_address[2:4] == ("connection_error", "SSLCertVerificationError")
    assert names_seen[0] == "localhost"
    assert names_seen[1:] == [None]  # no SNI for an address


def test_a_close_already_waiting_on_an_idle_connection_is_seen_before_the_next_request_goes_out():
    """The server closes with its third reply (data and FIN in one segment) without saying so. The
    closed loop writes its next request from the reply's callback, before the event loop has read
    the end of the connection: the close is seen before reuse, so no request meets it."""

    def three_then_close(conn: socket.socket, body: bytes, number: int) -> str | None:
        data = OK_HEAD + b"Content-Length: 2\r\n\r\n{}"
        if number < 3:
            conn.sendall(data)
            return None
        conn.send(data, socket.MSG_MORE)  # held back until the FIN, so both arrive together
        conn.shutdown(socket.SHUT_WR)
        return "close"

    with RawServer(three_then_close) as server:
        result = run_load_test(
            [Endpoint("candidate", server.url)], numbered(30), LoadPlan(requests=30, concurrency=1)
        ).endpoints[0]
    assert result.outcomes == {"2xx": 30}
    assert len(server.bodies) == 30
    assert server.connections == 10

"""Model endpoints behind a private CA and mutual TLS: the connection's ``verify`` and ``cert`` applied.

Real HTTPS servers on loopback with certificates of a private CA made by ``trustme``, called through
the operators: the load test (candidate and champion) and the golden-set gate.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_mlprod.hooks.store import MetricsStoreHook
from airflow_provider_mlprod.operators.serving import ServingLoadTestOperator
from airflow_provider_mlprod.serving.loadgen import EndpointUnreachable
from airflow_provider_mlprod.store.identity import RunIdentity

THRESHOLDS = {"error_rate": {"max": 0.0}, "output_check_pass_rate": {"min": 1.0}}
CHECKS = [{"check": "status"}, {"check": "json"}, {"check": "labels", "field": "label", "allowed": ["stay"]}]
REQUESTS, WARMUP = 12, 2


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: TlsServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests += 1
            server.client_certificates.append(bool(self.connection.getpeercert()))
        body = json.dumps({"churn_probability": 0.2, "label": "stay", "answer": "4"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TlsServer(ThreadingHTTPServer):
    """An HTTPS model server on loopback counting what reached it: TCP connections, failed handshakes,
    requests (and whether each came with a client certificate)."""

    daemon_threads = True

    def __init__(self, ca: trustme.CA, *, require_client_certificate: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.tls)
        if require_client_certificate:
            self.tls.verify_mode = ssl.CERT_REQUIRED
            ca.configure_trust(self.tls)
        self.lock = threading.Lock()
        self.connections = self.failed_handshakes = self.requests = 0
        self.client_certificates: list[bool] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def get_request(self):
        sock, address = self.socket.accept()
        with self.lock:
            self.connections += 1
        return sock, address

    def finish_request(self, request, client_address):
        try:
            tls = self.tls.wrap_socket(request, server_side=True)  # the handshake, in the request's thread
        except (ssl.SSLError, OSError):
            with self.lock:
                self.failed_handshakes += 1
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError):
            with self.lock:  # TLS 1.3: the server checks the client's certificate after the handshake
                self.failed_handshakes += 1
        finally:
            tls.close()

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The private CA, its bundle, a client certificate it issued (one file, and cert and key apart)."""
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    client = ca.issue_cert("loader@example.com")
    paths = {name: str(folder / f"{name}.pem") for name in ("ca", "client", "client_cert", "client_key")}
    ca.cert_pem.write_to_path(paths["ca"])
    client.private_key_and_cert_chain_pem.write_to_path(paths["client"])
    client.cert_chain_pems[0].write_to_path(paths["client_cert"])
    client.private_key_pem.write_to_path(paths["client_key"])
    # The key's base64 lines: none may appear in any output.
    key_lines = [line for line in client.private_key_pem.bytes().decode().splitlines() if "-----" not in line]
    return {"authority": ca, **paths, "key_lines": key_lines, "folder": folder}


def connection(monkeypatch, conn_id: str, url: str, **extra) -> str:
    host, port = url.removeprefix("https://").split(":")
    conn = {"conn_type": "http", "host": host, "port": int(port), "schema": "https"}
    if extra:
        conn["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


@pytest.fixture
def requests_file(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(json.dumps({"tenure_months": i, "plan": "basic"}) for i in range(10)) + "\n")
    return path


def load_test(requests_file, **overrides) -> ServingLoadTestOperator:
    arguments = {
        "task_id": "load_test",
        "model_name": "churn",
        "model_version": "v2",
        "http_conn_id": "candidate",
        "requests_path": str(requests_file),
        "requests": REQUESTS,
        "concurrency": 2,
        "warmup_requests": WARMUP,
        "timeout_s": 5.0,
        "output_checks": CHECKS,
        "thresholds": THRESHOLDS,
    } | overrides
    return ServingLoadTestOperator(**arguments)


def endpoints(summary) -> dict:
    return {e["name"]: e for e in summary["load_test"]["endpoints"]}


def task_log(capfd, caplog) -> str:
    """What the task logged: operators called outside a task runner log to stdout, stdlib loggers to
    caplog; stderr is read too, so nothing written there goes unsearched."""
    return "".join(capfd.readouterr()) + caplog.text


def unverified_warnings(log: str) -> list[str]:
    return [line for line in log.splitlines() if "warning" in line.lower() and "NOT verified" in line]


# -- the load test ---------------------------------------------------------------------------------


def test_a_private_ca_without_verify_fails_as_a_certificate_error(
    monkeypatch, pki, registered, requests_file, task_context
):
    """As before: every handshake fails the certificate check, so the endpoint answered nothing (no
    verdict, retryable: the CA may be on its way to the workers)."""
    with TlsServer(pki["authority"]) as server:
        connection(monkeypatch, "candidate", server.url)
        with pytest.raises(
            EndpointUnreachable, match=r"answered none of \d+ requests \(SSLCertVerificationError\)"
        ):
            load_test(requests_file).execute(task_context())
    assert server.connections > 0
    assert server.requests == 0
    assert registered.latest_blessing("churn", "v2") is None


@pytest.mark.parametrize("key", ["verify", "verify_ssl"])
def test_a_ca_bundle_in_verify_lets_the_load_test_pass(
    monkeypatch, pki, registered, requests_file, task_context, key
):
    with TlsServer(pki["authority"]) as server:
        connection(monkeypatch, "candidate", server.url, **{key: pki["ca"]})
        summary = load_test(requests_file).execute(task_context())
    assert summary["passed"] is True
    candidate = endpoints(summary)["candidate"]
    assert candidate["outcomes"] == {"2xx": REQUESTS}
    assert candidate["tls_verified"] is True
    assert server.requests == REQUESTS + WARMUP


def test_a_server_requiring_a_client_certificate_refuses_a_load_test_without_one(
    monkeypatch, pki, registered, requests_file, task_context
):
    with TlsServer(pki["authority"], require_client_certificate=True) as server:
        connection(monkeypatch, "candidate", server.url, verify=pki["ca"])
        with pytest.raises(EndpointUnreachable, match=r"answered none of \d+ requests") as caught:
            load_test(requests_file).execute(task_context())
    # The server's refusal arrives as its TLS alert, or as a reset when it closes on the unread request.
    kinds = re.search(r"requests \(([^)]*)\)", str(caught.value)).group(1).split(", ")
    assert set(kinds) <= {"SSLError", "ConnectionResetError", "BrokenPipeError"}, kinds
    assert server.failed_handshakes > 0
    assert server.requests == 0


@pytest.mark.parametrize("form", ["one file", "pair"])
def test_a_client_certificate_in_cert_passes_mutual_tls(
    monkeypatch, pki, registered, requests_file, task_context, capfd, caplog, form
):
    cert = pki["client"] if form == "one file" else [pki["client_cert"], pki["client_key"]]
    with TlsServer(pki["authority"], require_client_certificate=True) as server:
        connection(monkeypatch, "candidate", server.url, verify=pki["ca"], cert=cert)
        context = task_context()
        with caplog.at_level(logging.DEBUG):
            summary = load_test(requests_file).execute(context)
    assert summary["passed"] is True
    assert endpoints(summary)["candidate"]["outcomes"] == {"2xx": REQUESTS}
    assert server.requests == REQUESTS + WARMUP
    assert all(server.client_certificates)
    log = task_log(capfd, caplog)
    assert f"client certificate {pki['client_cert'] if form == 'pair' else pki['client']}" in log
    # The key file's content appears nowhere the run writes.
    blessing = registered.latest_blessing("churn", "v2")
    page = Path(summary["report_location"].removeprefix("file://")).read_text(encoding="utf-8")
    outputs = [
        json.dumps(summary),
        json.dumps(context["ti"].pushed),
        log,
        json.dumps(blessing.summary),
    ]
    for text in [*outputs, page]:
        for line in pki["key_lines"]:
            assert line not in text


def test_verify_false_passes_with_a_warning_and_the_flag_in_the_summary(
    monkeypatch, pki, registered, requests_file, task_context, capfd, caplog
):
    with TlsServer(pki["authority"]) as server:
        connection(monkeypatch, "candidate", server.url, verify="false")
        with caplog.at_level(logging.INFO):
            summary = load_test(requests_file).execute(task_context())
    assert summary["passed"] is True
    assert endpoints(summary)["candidate"]["tls_verified"] is False
    warnings = unverified_warnings(task_log(capfd, caplog))
    assert len(warnings) == 1
    assert "candidate at https://127.0.0.1:" in warnings[0]
    page = Path(summary["report_location"].removeprefix("file://")).read_text(encoding="utf-8")
    assert "TLS certificate not verified" in page
    assert (
        registered.latest_blessing("churn", "v2").summary["load_test"]["endpoints"][0]["tls_verified"]
        is False
    )


def test_candidate_and_champion_each_take_their_own_connection_s_tls(
    monkeypatch, pki, registered, requests_file, task_context
):
    champion_ca = trustme.CA()
    with (
        TlsServer(pki["authority"], require_client_certificate=True) as candidate,
        TlsServer(champion_ca) as champion,
    ):
        connection(monkeypatch, "candidate", candidate.url, verify=pki["ca"], cert=pki["client"])
        connection(monkeypatch, "champion", champion.url, verify=False)
        summary = load_test(requests_file, champion_http_conn_id="champion").execute(task_context())
    assert summary["passed"] is True
    flags = {name: e["tls_verified"] for name, e in endpoints(summary).items()}
    assert flags == {"candidate": True, "champion": False}
    assert candidate.requests == champion.requests == REQUESTS + WARMUP


def bad_extras(pki):
    folder = pki["folder"]
    (folder / "notes.txt").write_text("not PEM\n")
    other_key = folder / "other_key.pem"
    trustme.CA().issue_cert("x@example.com").private_key_pem.write_to_path(str(other_key))
    return [
        ({"verify": "maybe"}, "verify", "neither true nor false"),
        ({"verify": 0}, "verify", "got a number"),
        ({"verify": str(folder / "missing.pem")}, "verify", "no CA bundle file or directory exists"),
        ({"verify": str(folder / "notes.txt")}, "verify", "is not PEM"),
        ({"cert": str(folder / "missing.pem")}, "cert", "does not exist"),
        ({"cert": str(folder / "notes.txt")}, "cert", "is not PEM"),
        ({"cert": pki["client_cert"]}, "cert", "holds no private key"),
        ({"cert": [pki["client_cert"], str(other_key)]}, "cert", "does not belong to the client certificate"),
        ({"cert": {"file": pki["client"]}}, "cert", "got an object"),
    ]


def test_each_bad_tls_setting_fails_the_load_test_before_any_request(
    monkeypatch, pki, registered, requests_file, task_context, capfd, caplog
):
    with TlsServer(pki["authority"]) as server:
        for extra, key, problem in bad_extras(pki):
            connection(monkeypatch, "candidate", server.url, **extra)
            with caplog.at_level(logging.DEBUG), pytest.raises(AirflowFailException) as caught:
                load_test(requests_file).execute(task_context())
            message = str(caught.value)
            assert f"connection 'candidate': extra {key!r}" in message
            assert problem in message
            for line in pki["key_lines"]:
                assert line not in message
    assert server.connections == 0  # not even a TCP connection
    log = task_log(capfd, caplog)
    assert "cannot be called outside of the Task Runner" in log  # the capture saw the runs
    for line in pki["key_lines"]:
        assert line not in log
    assert registered.latest_blessing("churn", "v2") is None


def test_a_bad_champion_setting_fails_before_the_candidate_is_loaded(
    monkeypatch, pki, registered, requests_file, task_context
):
    with TlsServer(pki["authority"]) as candidate:
        connection(monkeypatch, "candidate", candidate.url, verify=pki["ca"])
        connection(monkeypatch, "champion", candidate.url, verify="/nowhere/ca.pem")
        with pytest.raises(AirflowFailException, match="connection 'champion': extra 'verify'"):
            load_test(requests_file, champion_http_conn_id="champion").execute(task_context())
    assert candidate.connections == 0


# -- the golden-set gate ---------------------------------------------------------------------------

GOLDEN = [{"id": "q1", "input": "2+2", "expected": 4, "match": "numeric"}]


def golden_gate(**kwargs):
    from airflow_provider_mlprod.operators.outputs import GoldenSetGateOperator

    return GoldenSetGateOperator(
        task_id="golden_gate",
        model_name="qa",
        candidate_version="v1",
        golden_set=GOLDEN,
        if_no_champion="pass",
        candidate_http_conn_id="candidate",
        endpoint="/predict",
        response_field="answer",
        **kwargs,
    )


@pytest.fixture
def qa_registered(isolated_store):
    MetricsStoreHook().registry().register(
        RunIdentity("train", "r1", "register", -1), name="qa", version="v1", artifact_uri="file:///qa"
    )


def test_the_golden_set_gate_applies_the_connection_s_tls(monkeypatch, pki, qa_registered, task_context):
    with TlsServer(pki["authority"], require_client_certificate=True) as server:
        connection(monkeypatch, "candidate", server.url)
        with pytest.raises(AirflowException, match=r"the call failed \(SSLError\)") as caught:
            golden_gate().execute(task_context())
        assert not isinstance(caught.value, AirflowFailException)  # retryable, as before
        connection(monkeypatch, "candidate", server.url, verify=pki["ca"])
        with pytest.raises(AirflowException, match=r"the call failed \((SSLError|ConnectionError)\)"):
            golden_gate().execute(task_context())  # no client certificate
        assert server.requests == 0
        connection(
            monkeypatch,
            "candidate",
            server.url,
            verify=pki["ca"],
            cert=[pki["client_cert"], pki["client_key"]],
        )
        result = golden_gate().execute(task_context())
    assert result["passed"] is True
    assert result["tls_verified"] == {"candidate": True}
    assert server.requests == 1
    assert server.client_certificates == [True]


def test_the_golden_set_gate_with_verify_false_warns_and_says_so(
    monkeypatch, pki, qa_registered, task_context, capfd, caplog
):
    with TlsServer(pki["authority"]) as candidate, TlsServer(trustme.CA()) as champion:
        connection(monkeypatch, "candidate", candidate.url, verify=pki["ca"])
        connection(monkeypatch, "champion", champion.url, verify=False)
        with caplog.at_level(logging.INFO):
            result = golden_gate(champion_http_conn_id="champion").execute(task_context())
    assert result["passed"] is True
    assert result["tls_verified"] == {"candidate": True, "champion": False}
    assert candidate.requests == champion.requests == 1
    warnings = unverified_warnings(task_log(capfd, caplog))
    assert len(warnings) == 1
    assert "champion endpoint of connection 'champion'" in warnings[0]


def test_a_bad_tls_setting_fails_the_golden_set_gate_before_any_call(
    monkeypatch, pki, qa_registered, task_context
):
    with TlsServer(pki["authority"]) as candidate, TlsServer(pki["authority"]) as champion:
        connection(monkeypatch, "candidate", candidate.url, verify=pki["ca"])
        connection(monkeypatch, "champion", champion.url, verify=pki["ca"], cert=pki["client_cert"])
        with pytest.raises(
            AirflowFailException, match=r"connection 'champion': extra 'cert' .* no private key"
        ):
            golden_gate(champion_http_conn_id="champion").execute(task_context())
    assert candidate.connections == champion.connections == 0


# -- redirects ----------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """A plain-http server answering every POST or GET with the right answer, keeping the headers."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        body = json.dumps({"answer": "4"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def plain_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class RedirectingTlsServer(TlsServer):
    """An HTTPS endpoint that answers every POST with a redirect to ``location``."""

    def __init__(self, ca, location: str, status: int = 307) -> None:
        super().__init__(ca)
        self.location, self.status = location, status

        class _Redirect(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(handler):
                handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                with self.lock:
                    self.requests += 1
                handler.send_response(self.status)
                handler.send_header("Location", self.location)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args):
                pass

        self.RequestHandlerClass = _Redirect


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_from_the_verified_endpoint_to_plain_http_is_not_followed(
    monkeypatch, pki, qa_registered, task_context, plain_server, status
):
    """The gate said tls_verified true while the answers came over plain http from another server,
    and the connection's API key went along."""
    elsewhere = f"http://127.0.0.1:{plain_server.server_address[1]}/predict"
    with RedirectingTlsServer(pki["authority"], elsewhere, status) as server:
        connection(monkeypatch, "candidate", server.url, verify=pki["ca"], headers={"X-Api-Key": "s3cr3t"})
        with pytest.raises(AirflowFailException) as caught:  # final: the connection names a wrong URL
            golden_gate().execute(task_context())
    assert server.requests == 1
    assert plain_server.seen == []  # neither the call nor its API key reached the plain-http server
    message = str(caught.value)
    assert f"connection 'candidate': '/predict' answered {status}" in message
    assert "redirect" in message
    assert "s3cr3t" not in message
    assert elsewhere not in message
    assert MetricsStoreHook().registry().latest_blessing("qa", "v1") is None

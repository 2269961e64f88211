"""One delivery per channel when many processes send the same alert at once, through a real store.

Mapped task instances failing together send the same alert from several OS processes (several
machines with PostgreSQL). A short claim per (stored dedup key, channel) taken by compare-and-set
decides who sends; the others report the channel suppressed. A claim of a sender that died expires,
a failed send releases it, and a store that never answers still lets the alert out.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_mlprod.alerts import routing
from airflow_provider_mlprod.alerts.channels import JsonWebhookTarget
from airflow_provider_mlprod.alerts.delivery import RetryPolicy
from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.alerts.routing import IN_PROGRESS, Channel, send_alert, stored_dedup_key
from airflow_provider_mlprod.store.engine import create_store_engine
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore

CHANNELS = ("slack", "hook")
# a generous deadline: a send timing out on a loaded machine (after it landed) would be re-sent
POLICY = RetryPolicy(timeout_seconds=30.0, max_attempts=1, total_seconds=30.0)


class LoopbackWebhook:
    """A threaded local HTTP server; every POST is read and answered, empty, with ``answer(path)``."""

    def __init__(self) -> None:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(webhook.answer(self.path))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> int:
        raise NotImplementedError

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CountingServer(LoopbackWebhook):
    """A local HTTP server that counts the requests per path; a path in ``failing`` answers 500,
    ``slow_seconds`` delays every answer (a send in flight while others decide)."""

    def __init__(self, slow_seconds: float = 0.2) -> None:
        self.arrivals: Counter[str] = Counter()
        self.failing: set[str] = set()
        self.lock = threading.Lock()
        self.slow_seconds = slow_seconds
        super().__init__()

    def answer(self, path: str) -> int:
        with self.lock:
            self.arrivals[path] += 1
        time.sleep(self.slow_seconds)
        return 500 if path in self.failing else 200

    def channels(self) -> list[Channel]:
        return [Channel(name, JsonWebhookTarget(self.url(f"/{name}")), POLICY) for name in CHANNELS]


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


def _alert(key: str) -> Alert:
    return Alert(title=f"Validation failed: {key}", severity="critical", dedup_key=key)


def _send_from_worker(url: str, key: str, channels: list[Channel], barrier, reports, index: int) -> None:
    try:
        store = MetricsStore(create_store_engine(url))
        barrier.wait(30)
        report = send_alert(_alert(key), channels, store=store, identity=RunIdentity("etl", "r1", "t", index))
        reports.put((index, report.delivered_channels, report.suppressed_channels, None))
    except BaseException as exc:  # reported to the parent, which fails the test
        reports.put((index, [], [], f"{type(exc).__name__}: {exc}"))


def _race(url: str, key: str, channels: list[Channel], processes: int) -> list[tuple]:
    context = multiprocessing.get_context("fork")
    barrier, reports = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_send_from_worker, args=(url, key, channels, barrier, reports, i))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    found = [reports.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert [w.exitcode for w in workers] == [0] * processes
    return found


def test_six_processes_sending_the_same_alert_deliver_it_once_per_channel(db_url, counting_server):
    MetricsStore(create_store_engine(db_url))  # the schema exists before the race: the race is the send
    for round_no in range(4):
        key = f"mlprod:race:{round_no}"
        counting_server.arrivals.clear()

        reports = _race(db_url, key, counting_server.channels(), 6)

        assert [error for *_, error in reports if error] == [], f"round {round_no}"
        assert counting_server.arrivals == {f"/{name}": 1 for name in CHANNELS}, f"round {round_no}"
        for name in CHANNELS:
            assert sum(name in delivered for _, delivered, _, _ in reports) == 1, f"round {round_no}"
            assert sum(name in suppressed for _, _, suppressed, _ in reports) == 5, f"round {round_no}"
        store = MetricsStore(create_store_engine(db_url))
        rows = store.alert_deliveries(stored_dedup_key(key, "trigger", "critical"))
        assert sorted(row["channel"] for row in rows if row["delivered"]) == sorted(CHANNELS)


class HangingFirstServer(LoopbackWebhook):
    """A local HTTP server whose first request hangs (until the test ends); later ones answer 200."""

    def __init__(self) -> None:
        self.hang_started, self.release = threading.Event(), threading.Event()
        self.arrivals: list[str] = []
        super().__init__()
        self.policy = RetryPolicy(timeout_seconds=2.0, max_attempts=1, total_seconds=2.0)
        self.channels = [Channel("hook", JsonWebhookTarget(self.url("/hook")), self.policy)]

    def answer(self, path: str) -> int:
        self.arrivals.append(path)
        if len(self.arrivals) == 1:
            self.hang_started.set()
            self.release.wait(30)
        return 200


@pytest.fixture
def hanging_first() -> Iterator[HangingFirstServer]:
    server = HangingFirstServer()
    yield server
    server.release.set()
    server.close()


def _send_and_hang(url: str, key: str, channels: list[Channel], identity: RunIdentity | None) -> None:
    send_alert(_alert(key), channels, store=MetricsStore(create_store_engine(url)), identity=identity)


def _killed_mid_send(url: str, key: str, server: HangingFirstServer, identity: RunIdentity | None) -> None:
    """A sender process that dies holding its claim, before recording anything."""
    args = (url, key, server.channels, identity)
    sender = multiprocessing.get_context("fork").Process(target=_send_and_hang, args=args)
    sender.start()
    assert server.hang_started.wait(30)
    os.kill(sender.pid, signal.SIGKILL)
    sender.join(10)


def test_a_claim_left_by_a_killed_sender_expires_and_the_retry_delivers(db_url, monkeypatch, hanging_first):
    """A sender killed mid-send leaves its claim; another sender is suppressed while the claim runs,
    and the task's retry delivers once it has expired (channel deadline plus the margin)."""
    monkeypatch.setattr(routing, "CLAIM_MARGIN_SECONDS", 1.0)  # inherited by the forked sender
    store, key = MetricsStore(create_store_engine(db_url)), "mlprod:killed:sender"
    _killed_mid_send(db_url, key, hanging_first, None)

    meanwhile = send_alert(_alert(key), hanging_first.channels, store=store)
    assert meanwhile.suppressed_channels == ["hook"]
    assert meanwhile.results[0].reason == IN_PROGRESS

    time.sleep(hanging_first.policy.total_seconds + routing.CLAIM_MARGIN_SECONDS + 0.5)
    retry = send_alert(_alert(key), hanging_first.channels, store=store)
    assert retry.delivered_channels == ["hook"]
    assert hanging_first.arrivals == ["/hook", "/hook"]


def test_a_retry_of_the_killed_task_takes_its_own_claim_back_at_once(db_url, hanging_first):
    store, key = MetricsStore(create_store_engine(db_url)), "mlprod:killed:same-task"
    task, other_task = RunIdentity("etl", "r1", "load", 0), RunIdentity("etl", "r1", "load", 1)
    _killed_mid_send(db_url, key, hanging_first, task)

    other = send_alert(_alert(key), hanging_first.channels, store=store, identity=other_task)
    retry = send_alert(_alert(key), hanging_first.channels, store=store, identity=task)

    assert other.suppressed_channels == ["hook"]
    assert retry.delivered_channels == ["hook"]
    assert hanging_first.arrivals == ["/hook", "/hook"]


def test_a_failed_send_releases_its_claim_so_the_retry_sends_at_once(db_url, counting_server):
    store = MetricsStore(create_store_engine(db_url))
    counting_server.failing.add("/hook")
    first = send_alert(_alert("mlprod:failed:once"), counting_server.channels(), store=store)
    assert (first.delivered_channels, first.failed_channels) == (["slack"], ["hook"])

    counting_server.failing.clear()
    retry = send_alert(_alert("mlprod:failed:once"), counting_server.channels(), store=store)

    assert (retry.delivered_channels, retry.suppressed_channels) == (["hook"], ["slack"])
    assert counting_server.arrivals == {"/slack": 1, "/hook": 2}


def test_a_sender_that_read_the_store_before_another_delivered_does_not_send_again(db_url, counting_server):
    """The claim also checks the deliveries: a sender whose reading is older than another's delivery
    (it stalled between reading and claiming) loses, even with no claim left to stop it."""
    store = MetricsStore(create_store_engine(db_url))
    key = stored_dedup_key("mlprod:stale", "trigger", "critical")
    store.record_alert_delivery(dedup_key=key, channel="hook", delivered=True, attempts=1)

    assert not store.claim_alert(key, "hook", owner="late", seconds=5, seen_last=None)
    seen = store.last_alert_deliveries([key], "hook")[key]
    assert store.claim_alert(key, "hook", owner="late", seconds=5, seen_last=seen)
    assert not store.claim_alert(key, "hook", owner="other", seconds=5, seen_last=seen)


@pytest.fixture
def silent_store_url() -> Iterator[str]:
    """A PostgreSQL URL whose host accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"postgresql+psycopg://postgres@127.0.0.1:{listener.getsockname()[1]}/never"
    listener.close()


def test_a_store_that_never_answers_still_sends(counting_server, silent_store_url, monkeypatch):
    monkeypatch.setattr(routing, "STORE_CALL_SECONDS", 1.0)
    engine = create_store_engine(silent_store_url, connect_timeout=1)
    store = MetricsStore.__new__(MetricsStore)  # the schema check would wait on the silent host too
    store.engine = engine
    started = time.monotonic()

    report = send_alert(_alert("mlprod:silent:store"), counting_server.channels(), store=store)

    assert report.delivered_channels == list(CHANNELS)
    assert counting_server.arrivals == {"/slack": 1, "/hook": 1}
    assert time.monotonic() - started < 5.0


def test_a_store_locked_for_writing_still_sends(tmp_path, counting_server):
    """Reads answer but the claim cannot be written (another process holds the write lock): the
    alert goes out, unclaimed, rather than being held back."""
    path = tmp_path / "locked.db"
    store = MetricsStore(create_store_engine(f"sqlite:///{path}", busy_timeout=0.5))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        report = send_alert(_alert("mlprod:locked:store"), counting_server.channels(), store=store)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert report.delivered_channels == list(CHANNELS)
    assert counting_server.arrivals == {"/slack": 1, "/hook": 1}


class DeliveredWhileDeciding(MetricsStore):
    """A store in which another sender records its delivery of the alert on a channel just before
    this sender reads that channel's deliveries: after this sender began, before it decided."""

    def __init__(self, engine, other_owner: str) -> None:
        super().__init__(engine)
        self.other_owner, self.delivered_meanwhile = other_owner, set()

    def last_alert_deliveries(self, dedup_keys, channel):
        if channel not in self.delivered_meanwhile:
            self.delivered_meanwhile.add(channel)
            key = stored_dedup_key("mlprod:meanwhile", "trigger", "critical")
            self.claim_alert(key, channel, owner=self.other_owner, seconds=60, seen_last=None)
            self.record_alert_delivery(
                dedup_key=key, channel=channel, delivered=True, attempts=1, owner=self.other_owner
            )
        return super().last_alert_deliveries(dedup_keys, channel)


def test_a_delivery_recorded_while_the_sender_was_deciding_is_not_sent_again(db_url, counting_server):
    """Senders racing on one alert: one records its delivery after another began but before that one
    read the channel. The later one read that delivery, so it counts it as sent instead of claiming
    past it (its claim only looks for deliveries newer than the one it read) and sending it again."""
    store = DeliveredWhileDeciding(create_store_engine(db_url), other_owner="the-first-sender")

    report = send_alert(_alert("mlprod:meanwhile"), counting_server.channels(), store=store)

    assert report.suppressed_channels == list(CHANNELS)
    assert counting_server.arrivals == {}

"""Alerts go out whatever the metrics store does: hung, locked, read-only, or healthy beside a hung one."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from airflow_provider_mlprod.alerts.message import Alert
from airflow_provider_mlprod.notifications.mlprod import (
    STORE_TIMEOUT_SECONDS,
    AlertSettings,
    send_alert_via_connections,
)

HOOK_PATH = "/hooks/store-fault-hook"
#: The store's own waits (connect, statement, SQLite lock) plus sending, with room for a busy machine.
BOUND_SECONDS = STORE_TIMEOUT_SECONDS + 4


@pytest.fixture
def hook(monkeypatch, httpserver: HTTPServer) -> str:
    httpserver.expect_request(HOOK_PATH).respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_FAULT_HOOK",
        json.dumps({"conn_type": "mlprod_webhook", "password": httpserver.url_for(HOOK_PATH)}),
    )
    return "fault_hook"


def _store_conn(monkeypatch, conn_id: str, url: str) -> str:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "mlprod_store", "extra": {"sqlalchemy_url": url}}),
    )
    return conn_id


@pytest.fixture
def silent_store() -> Iterator[socket.socket]:
    """A listening TCP socket that takes connections (the kernel completes the handshake) and never
    replies; it turns readable once a connection waits on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


def _silent_url(listener: socket.socket) -> str:
    return f"postgresql+psycopg2://postgres@127.0.0.1:{listener.getsockname()[1]}/test"


def _send(hook: str, store_conn_id: str, title: str = "Orders late") -> tuple[object, float]:
    started = time.monotonic()
    report = send_alert_via_connections(
        Alert(title=title, severity="critical"),
        AlertSettings(alert_conn_ids=[hook], store_conn_id=store_conn_id),
    )
    return report, time.monotonic() - started


def test_store_that_never_answers_delays_the_alert_by_its_timeout_only(
    monkeypatch, hook, silent_store, caplog
):
    pytest.importorskip("psycopg2")
    store = _store_conn(monkeypatch, "hung_store", _silent_url(silent_store))

    report, elapsed = _send(hook, store)

    assert report.delivered_channels == [hook]
    assert elapsed < BOUND_SECONDS
    assert "alert sent without dedup or history" in caplog.text


def test_a_hung_store_does_not_hold_up_alerts_on_a_healthy_one(monkeypatch, hook, silent_store, sqlite_url):
    pytest.importorskip("psycopg2")
    hung = _store_conn(monkeypatch, "hung_store2", _silent_url(silent_store))
    healthy = _store_conn(monkeypatch, "healthy_store", sqlite_url)
    _send(hook, healthy, "warm-up")  # the healthy store's schema exists before the race
    timings: dict[str, float] = {}

    def send_on(store: str) -> None:
        timings[store] = _send(hook, store, f"via {store}")[1]

    slow = threading.Thread(target=send_on, args=(hung,))
    slow.start()
    assert select.select([silent_store], [], [], 30)[0], "no connection to the hung store"
    send_on(healthy)  # while the hung store's connect waits out its timeout
    slow.join()

    # Held up behind the hung store, the healthy one would take about its whole timeout.
    assert timings[healthy] < STORE_TIMEOUT_SECONDS - 1
    assert timings[hung] > timings[healthy]


LOCK_HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize("existing", [True, False], ids=["existing-store", "new-file"])
def test_locked_sqlite_store_delays_the_alert_by_its_timeout_only(
    monkeypatch, hook, tmp_path: Path, caplog, existing
):
    path = tmp_path / "locked.db"
    if existing:
        _send(hook, _store_conn(monkeypatch, "warm_store", f"sqlite:///{path}"), "creates the store")
    store = _store_conn(monkeypatch, "locked_store", f"sqlite:///{path}")
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        report, elapsed = _send(hook, store)
    finally:
        holder.kill()
        holder.wait()

    assert report.delivered_channels == [hook]
    assert elapsed < BOUND_SECONDS
    # A new file cannot even be opened; an existing one (WAL) is read, and the claim of the send gives up.
    expected = "sending without dedup or history" if existing else "alert sent without dedup or history"
    assert expected in caplog.text


def test_read_only_store_url_sends_and_leaves_no_stray_folder(monkeypatch, hook, tmp_path: Path):
    path = tmp_path / "ro.db"
    writable = _store_conn(monkeypatch, "rw_store", f"sqlite:///{path}")
    _send(hook, writable, "creates the store")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    read_only = _store_conn(monkeypatch, "ro_store", f"sqlite:///file:{path}?mode=ro&uri=true")

    report, elapsed = _send(hook, read_only)

    assert report.delivered_channels == [hook]
    assert elapsed < BOUND_SECONDS
    assert list(workdir.iterdir()) == []  # no "file:" folder

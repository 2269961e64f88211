"""The flagship DAG on a real Airflow runtime through the REST API, and a deferrable sensor on the triggerer.

The test starts what ``airflow standalone`` starts (scheduler with the LocalExecutor, DAG processor,
triggerer and API server) as separate processes on a temporary AIRFLOW_HOME with a SQLite metadata
database, a copy of ``dags/`` and a SQLite warehouse. It logs in to the API with a user of the simple
auth manager, unpauses and triggers the flagship DAG and a small DAG whose DataFreshnessSensor defers,
waits for both runs, then checks the champion in the embedded metrics store, the reports, and the
sensor's task log (paused as deferred, its trigger fired in the triggerer, then resumed). Every process
is stopped at the end, and the test checks that none is left and the ports are closed.

Run it alone with ``pytest tests/test_airflow_runtime.py``; it takes about a minute.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlprod.store.engine import create_store_engine, embedded_store_url
from airflow_provider_mlprod.store.registry import ModelRegistry

pytestmark = pytest.mark.dagrun

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = Path(sys.executable).with_name("airflow")
FLAGSHIP_DAG_ID = "mlprod_ingest_to_deploy"
SENSOR_DAG_ID = "mlprod_e2e_deferrable_freshness"
SENSOR_TASK_ID = "wait_for_fresh_rows"
MODEL_NAME = "customer_churn"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
STARTUP_TIMEOUT_SECONDS = 120
RUN_TIMEOUT_SECONDS = 300
STOP_GRACE_SECONDS = 20

SENSOR_DAG_SOURCE = f'''"""A deferrable freshness sensor on a warehouse table that holds fresh rows."""

import pendulum
from airflow.sdk import dag

from airflow_provider_mlprod.sensors.freshness import DataFreshnessSensor


@dag(
    dag_id="{SENSOR_DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={{"retries": 0}},
)
def deferrable_freshness():
    DataFreshnessSensor(
        task_id="{SENSOR_TASK_ID}",
        sql_conn_id="mlprod_warehouse",
        table="sensor_events",
        timestamp_column="loaded_at",
        min_new_rows=1,
        deferrable=True,
        poke_interval=1,
        timeout=120,
    )


deferrable_freshness()
'''


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_open(port: int) -> bool:
    """Whether something accepts connections on the loopback ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def session_members(session_ids: set[int]) -> list[int]:
    """Process ids whose session is one of ``session_ids`` (the process trees this test started)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp session ...
        if fields[0] != "Z" and int(fields[3]) in session_ids:
            members.append(int(entry.name))
    return members


def first_event(events: list[str], matches: Any, after: int = -1) -> int:
    """Position of the first log event after ``after`` that ``matches``; fails with the log if none does."""
    positions = [position for position, event in enumerate(events) if position > after and matches(event)]
    assert positions, f"expected event not in the task log: {events}"
    return positions[0]


def run_id_as_version(run_id: str) -> str:
    """The model version the flagship DAG derives from a run id."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


class AirflowRuntime:
    """Airflow's components as subprocesses on one temporary AIRFLOW_HOME, each in its own session."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.api_port = free_port()
        self.log_server_ports = (free_port(), free_port())
        self.username = "mlprod_e2e"
        self.password = secrets.token_urlsafe(16)
        self.processes: dict[str, subprocess.Popen] = {}
        self.token: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.api_port, *self.log_server_ports)

    def environment(self) -> dict[str, str]:
        """The children's environment: nothing inherited from another Airflow setup."""
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_HOME"))
        }
        warehouse = {"conn_type": "sqlite", "host": str(self.home / "warehouse.db")}
        return {
            **inherited,
            "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
            "AIRFLOW_CONN_MLPROD_WAREHOUSE": json.dumps(warehouse),
        }

    def prepare(self) -> None:
        """Copy the example DAGs, add the sensor DAG, seed fresh rows and migrate the metadata DB."""
        shutil.copytree(REPO_ROOT / "dags", self.home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
        (self.home / "dags" / f"{SENSOR_DAG_ID}.py").write_text(SENSOR_DAG_SOURCE)
        (self.home / "passwords.json").write_text(json.dumps({self.username: self.password}))
        with sqlite3.connect(self.home / "warehouse.db") as warehouse:
            warehouse.execute("CREATE TABLE sensor_events (event_id INTEGER, loaded_at TEXT)")
            now = dt.datetime.now(dt.timezone.utc).isoformat()
            warehouse.executemany("INSERT INTO sensor_events VALUES (?, ?)", [(1, now), (2, now)])
        migrate = subprocess.run(
            [str(AIRFLOW), "db", "migrate"], env=self.environment(), capture_output=True, text=True
        )
        assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}"

    def start(self) -> None:
        """Start every component, each in a new session so its whole process tree can be stopped."""
        environment = self.environment()
        for component in COMPONENTS:
            arguments = [str(AIRFLOW), component]
            if component == "api-server":
                arguments += ["--workers", "1"]
            with open(self.home / f"{component}.log", "wb") as log:
                self.processes[component] = subprocess.Popen(
                    arguments,
                    env=environment,
                    cwd=self.home,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def stop(self) -> None:
        """Terminate each component's process group, wait, then kill whatever of its session is left."""
        sessions = {process.pid for process in self.processes.values()}
        for process in self.processes.values():
            self._signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while session_members(sessions) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in session_members(sessions):
            self._signal_group(pid, signal.SIGKILL)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    @staticmethod
    def _signal_group(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signum)

    def exited_components(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of each component's output, for failure messages."""
        parts = []
        for component in COMPONENTS:
            path = self.home / f"{component}.log"
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"--- {component} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(parts)

    def request(
        self, method: str, path: str, body: Any = None, authenticated: bool = True
    ) -> tuple[int, Any]:
        """Call the API server; return the status code and the decoded JSON body."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if authenticated:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload.decode(errors="replace")

    def api(self, method: str, path: str, body: Any = None, expected: int = 200) -> Any:
        status, payload = self.request(method, path, body)
        assert status == expected, f"{method} {path} answered {status}: {payload}"
        return payload

    def wait_until_healthy(self) -> None:
        """Wait until the API reports the database, scheduler, triggerer and DAG processor healthy."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last = None
        while time.monotonic() < deadline:
            assert not self.exited_components(), (
                f"components exited early: {self.exited_components()}\n{self.log_tails()}"
            )
            try:
                status, last = self.request("GET", "/api/v2/monitor/health", authenticated=False)
            except (OSError, urllib.error.URLError):
                status = None
            if status == 200 and all(part.get("status") == "healthy" for part in last.values()):
                return
            time.sleep(1)
        pytest.fail(f"Airflow not healthy after {STARTUP_TIMEOUT_SECONDS} s: {last}\n{self.log_tails()}")

    def log_in(self) -> None:
        """Get a JWT from the simple auth manager with the configured user's password."""
        status, payload = self.request(
            "POST", "/auth/token", {"username": self.username, "password": self.password}, authenticated=False
        )
        assert status == 201, f"POST /auth/token answered {status}: {payload}"
        self.token = payload["access_token"]

    def wait_for_dag(self, dag_id: str) -> None:
        """Wait until the DAG processor has stored ``dag_id``."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            status, _ = self.request("GET", f"/api/v2/dags/{dag_id}")
            if status == 200:
                return
            time.sleep(1)
        errors = self.api("GET", "/api/v2/importErrors")
        pytest.fail(f"DAG {dag_id} not parsed after {STARTUP_TIMEOUT_SECONDS} s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """Unpause ``dag_id`` and trigger a manual run; return its run id."""
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def run_path(self, dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        payload = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in payload["task_instances"]}

    def wait_for_runs(self, runs: dict[str, str]) -> None:
        """Wait until every ``dag_id -> run_id`` run succeeded; fail with task states and logs otherwise."""
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        pending = dict(runs)
        while pending and time.monotonic() < deadline:
            for dag_id, run_id in list(pending.items()):
                state = self.api("GET", self.run_path(dag_id, run_id))["state"]
                if state == "success":
                    del pending[dag_id]
                elif state == "failed":
                    pytest.fail(self._run_failure(dag_id, run_id, "failed"))
            assert not self.exited_components(), (
                f"components exited: {self.exited_components()}\n{self.log_tails()}"
            )
            time.sleep(2)
        for dag_id, run_id in pending.items():
            pytest.fail(self._run_failure(dag_id, run_id, f"not finished after {RUN_TIMEOUT_SECONDS} s"))

    def _run_failure(self, dag_id: str, run_id: str, what: str) -> str:
        states = self.task_states(dag_id, run_id)
        task_logs = []
        for task_id, state in states.items():
            if state in ("failed", "up_for_retry"):
                for path in sorted(self.home.glob(f"logs/dag_id={dag_id}/run_id=*/task_id={task_id}/*.log")):
                    tail = path.read_text(errors="replace").splitlines()[-30:]
                    task_logs.append(f"--- {path.name} of {task_id} ---\n" + "\n".join(tail))
        return (
            f"run {run_id} of {dag_id} {what}; task states: {states}\n"
            + "\n".join(task_logs)
            + "\n"
            + self.log_tails()
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
        """The structured log of one try of a task, as the UI shows it (worker and triggerer parts)."""
        path = f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        return self.api("GET", path)["content"]


@pytest.fixture
def airflow_runtime(tmp_path: Path):
    """A running Airflow on a temporary home; every process it started is stopped afterwards."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    runtime = AirflowRuntime(home)
    runtime.prepare()
    try:
        runtime.start()
        runtime.wait_until_healthy()
        runtime.log_in()
        yield runtime
    finally:
        runtime.stop()


def test_flagship_dag_and_deferrable_sensor_run_on_a_real_airflow(airflow_runtime: AirflowRuntime):
    runtime = airflow_runtime
    status, _ = runtime.request("GET", "/api/v2/dags", authenticated=False)
    assert status == 401, "the API must refuse requests without a token"
    for dag_id in (FLAGSHIP_DAG_ID, SENSOR_DAG_ID):
        runtime.wait_for_dag(dag_id)

    flagship_run = runtime.trigger(FLAGSHIP_DAG_ID, {"scenario": "good"})
    sensor_run = runtime.trigger(SENSOR_DAG_ID, {})
    runtime.wait_for_runs({FLAGSHIP_DAG_ID: flagship_run, SENSOR_DAG_ID: sensor_run})

    # The flagship promoted this run's model, served it, and wrote its reports under the home.
    states = runtime.task_states(FLAGSHIP_DAG_ID, flagship_run)
    assert set(states.values()) == {"success"}, states
    mlprod_home = runtime.home / "mlprod"
    engine = create_store_engine(embedded_store_url(mlprod_home / "metrics.db"))
    try:
        champion = ModelRegistry(engine).champion(MODEL_NAME)
    finally:
        engine.dispose()
    assert champion is not None, "no champion in the embedded metrics store"
    assert champion.version == run_id_as_version(flagship_run)
    assert (mlprod_home / "serving" / f"{MODEL_NAME}.pkl").is_file()
    reports = {path.name for path in (mlprod_home / "reports").rglob("*.html")}
    assert {"validate_batch.html", "check_drift.html"} <= reports, reports

    # The sensor deferred, its trigger ran in the triggerer and fired, and the task resumed in the same try.
    sensor_path = f"{runtime.run_path(SENSOR_DAG_ID, sensor_run)}/taskInstances/{SENSOR_TASK_ID}"
    sensor = runtime.api("GET", sensor_path)
    assert (sensor["state"], sensor["try_number"]) == ("success", 1), sensor
    log = runtime.task_log(SENSOR_DAG_ID, sensor_run, SENSOR_TASK_ID, try_number=1)
    events = [str(entry.get("event", "")) for entry in log]
    deferred = first_event(events, lambda event: event.startswith("Pausing task as DEFERRED"))
    fired = first_event(events, lambda event: event.startswith("Trigger fired event"))
    resumed = first_event(events, lambda event: event == "::group::Pre Execute", after=fired)
    assert deferred < fired < resumed, events
    # The trigger's part of the log is the file `<attempt>.log.trigger.<triggerer job id>.log`.
    triggerer_jobs = runtime.api("GET", "/api/v2/jobs?job_type=TriggererJob")["jobs"]
    trigger_log_names = {f".log.trigger.{job['id']}.log" for job in triggerer_jobs}
    trigger_logs = [event.strip() for event in events if event.strip().endswith(tuple(trigger_log_names))]
    assert trigger_logs, f"no part of the task log comes from the triggerer {trigger_log_names}: {events}"
    assert "'status': 'success'" in Path(trigger_logs[0]).read_text()
    observation = runtime.api("GET", f"{sensor_path}/xcomEntries/return_value?deserialize=true")["value"]
    assert (observation["satisfied"], observation["total"]) == (True, 2), observation

    # Stop everything now: no process of this runtime is left and no port stays open.
    sessions = {process.pid for process in runtime.processes.values()}
    runtime.stop()
    assert session_members(sessions) == []
    assert all(process.returncode is not None for process in runtime.processes.values())
    assert [port for port in runtime.ports if port_is_open(port)] == []

"""The flagship DAG on a real Airflow runtime through the REST API, and a deferrable sensor on the triggerer.

The test starts what ``airflow standalone`` starts (scheduler with the LocalExecutor, DAG processor,
triggerer and API server) as separate processes on a temporary AIRFLOW_HOME with a fresh PostgreSQL
metadata database (dropped at the end), a copy of ``dags/`` and a SQLite warehouse. It logs in to the
API with a user of the simple auth manager, unpauses and triggers the flagship DAG and a small DAG whose
DataFreshnessSensor defers, waits for both runs, then checks the champion in the embedded metrics
store, the reports, and the sensor's task log (paused as deferred, its trigger fired in the triggerer,
then resumed). Every process is stopped at the end, and the test checks that none is left and the ports
are closed.

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
import sqlalchemy

from airflow_provider_mlprod.plugin.health_data import HealthReader
from airflow_provider_mlprod.store.engine import create_store_engine, embedded_store_url
from airflow_provider_mlprod.store.identity import RunIdentity
from airflow_provider_mlprod.store.metrics_store import MetricsStore
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
HUMAN_RESPONSE_SECONDS = 1

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


POSTGRES_URL = os.environ.get("MLPROD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def metadata_database_url(database: str) -> str:
    """The URL of ``database`` on the test PostgreSQL server (Airflow's metadata database)."""
    return sqlalchemy.make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_admin():
    """An autocommit connection to the test PostgreSQL server, to create and drop databases."""
    engine = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def free_port() -> int:
    """A TCP port that nothing listens on right now, below Linux's ephemeral range (32768-60999), so
    that no outgoing connection or ``bind(0)`` takes it before the server that is given it binds it."""
    import random

    for port in random.sample(range(20000, 32768), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port in 20000-32767")


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
    """Airflow's components as subprocesses on one temporary AIRFLOW_HOME, each in its own session.

    Users: ``username`` (admin) and ``OUTSIDER`` (viewer, denied the flagship DAG by the test auth manager
    ``tests/plugin/restricted_auth_manager.py``: SimpleAuthManager cannot deny a single DAG).
    """

    OUTSIDER = "outsider"

    def __init__(self, home: Path, *, base_path: str = "", components: tuple[str, ...] = COMPONENTS) -> None:
        self.home = home
        self.base_path = base_path
        self.components = components
        self.api_port = free_port()
        self.log_server_ports = (free_port(), free_port())
        self.username = "mlprod_e2e"
        self.password = secrets.token_urlsafe(16)
        self.outsider_password = secrets.token_urlsafe(16)
        self.processes: dict[str, subprocess.Popen] = {}
        self.token: str | None = None
        # The metadata database is a fresh PostgreSQL database, as in production: with SQLite the
        # scheduler can read a task instance's state from a snapshot older than the API server's last
        # commit, and then fails a task that finished ("task state changed externally").
        self.metadata_database = f"mlprod_runtime_{secrets.token_hex(6)}"

    @property
    def base_url(self) -> str:
        """``[api] base_url``: the API server's address, with ``base_path`` for a subpath deployment."""
        return f"http://127.0.0.1:{self.api_port}{self.base_path}"

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
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_database_url(self.metadata_database),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin,{self.OUTSIDER}:viewer",
            "AIRFLOW__CORE__AUTH_MANAGER": "restricted_auth_manager.RestrictedDagAuthManager",
            "PYTHONPATH": str(REPO_ROOT / "tests" / "plugin"),
            "MLPROD_TEST_DENIED_DAGS": json.dumps({self.OUTSIDER: [FLAGSHIP_DAG_ID]}),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
            "AIRFLOW_CONN_MLPROD_WAREHOUSE": json.dumps(warehouse),
        }

    def prepare(self) -> None:
        """Copy the example DAGs, add the sensor DAG, seed fresh rows and migrate the metadata DB."""
        shutil.copytree(REPO_ROOT / "dags", self.home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
        (self.home / "dags" / f"{SENSOR_DAG_ID}.py").write_text(SENSOR_DAG_SOURCE)
        (self.home / "passwords.json").write_text(
            json.dumps({self.username: self.password, self.OUTSIDER: self.outsider_password})
        )
        with sqlite3.connect(self.home / "warehouse.db") as warehouse:
            warehouse.execute("CREATE TABLE sensor_events (event_id INTEGER, loaded_at TEXT)")
            now = dt.datetime.now(dt.timezone.utc).isoformat()
            warehouse.executemany("INSERT INTO sensor_events VALUES (?, ?)", [(1, now), (2, now)])
        with postgres_admin() as admin:
            admin.exec_driver_sql(f'CREATE DATABASE "{self.metadata_database}"')
        migrate = subprocess.run(
            [str(AIRFLOW), "db", "migrate"], env=self.environment(), capture_output=True, text=True
        )
        assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}"

    def start(self) -> None:
        """Start every component, each in a new session so its whole process tree can be stopped."""
        environment = self.environment()
        for component in self.components:
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
        with postgres_admin() as admin:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.metadata_database}" WITH (FORCE)')

    @staticmethod
    def _signal_group(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signum)

    def exited_components(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of each component's output, for failure messages."""
        parts = []
        for component in self.components:
            path = self.home / f"{component}.log"
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"--- {component} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(parts)

    def request(
        self, method: str, path: str, body: Any = None, authenticated: bool = True, token: str | None = None
    ) -> tuple[int, Any]:
        """Call the API server (as the admin, or with ``token``); return the status and the decoded body."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if authenticated:
            headers["Authorization"] = f"Bearer {token or self.token}"
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
            if status == 200 and all(
                part.get("status") == "healthy"
                for name, part in last.items()
                if name == "metadatabase" or name.replace("_", "-") in self.components
            ):
                return
            time.sleep(1)
        pytest.fail(f"Airflow not healthy after {STARTUP_TIMEOUT_SECONDS} s: {last}\n{self.log_tails()}")

    def log_in(self) -> None:
        """Get a JWT from the simple auth manager with the configured user's password."""
        self.token = self.token_of(self.username, self.password)

    def token_of(self, username: str, password: str) -> str:
        """A JWT of ``username`` from the auth manager's token endpoint."""
        status, payload = self.request(
            "POST", "/auth/token", {"username": username, "password": password}, authenticated=False
        )
        assert status == 201, f"POST /auth/token answered {status}: {payload}"
        return payload["access_token"]

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
        """Unpause ``dag_id`` and trigger a manual run with no logical date; return its run id."""
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        assert run["logical_date"] is None, run
        return run["dag_run_id"]

    def run_path(self, dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        payload = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in payload["task_instances"]}

    def wait_for_runs(
        self, runs: dict[str, str], allowed_failures: dict[str, set[str]] | None = None
    ) -> None:
        """Wait until every ``dag_id -> run_id`` run succeeded; fail with task states and logs otherwise.

        ``allowed_failures``: per DAG, tasks whose failure is a decision (a gate), not an error: a run
        that failed only there counts as finished.
        """
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        pending = dict(runs)
        while pending and time.monotonic() < deadline:
            for dag_id, run_id in list(pending.items()):
                state = self.api("GET", self.run_path(dag_id, run_id))["state"]
                if state == "success":
                    del pending[dag_id]
                elif state == "failed":
                    failed = {t for t, s in self.task_states(dag_id, run_id).items() if s == "failed"}
                    if failed and failed <= (allowed_failures or {}).get(dag_id, set()):
                        del pending[dag_id]
                        continue
                    pytest.fail(self._run_failure(dag_id, run_id, "failed"))
            assert not self.exited_components(), (
                f"components exited: {self.exited_components()}\n{self.log_tails()}"
            )
            time.sleep(2)
        for dag_id, run_id in pending.items():
            pytest.fail(self._run_failure(dag_id, run_id, f"not finished after {RUN_TIMEOUT_SECONDS} s"))

    def wait_for_required_action(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Wait until ``task_id`` waits for a human (``awaiting_input``, its HITL detail created)."""
        path = f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/-1/hitlDetails"
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if (
                self.task_states(dag_id, run_id).get(task_id) == "awaiting_input"
                and self.request("GET", path)[0] == 200
            ):
                return
            assert self.api("GET", self.run_path(dag_id, run_id))["state"] in ("queued", "running"), (
                self._run_failure(dag_id, run_id, "ended before asking for approval")
            )
            time.sleep(1)
        pytest.fail(self._run_failure(dag_id, run_id, f"{task_id} never asked for approval"))

    def wait_for_paused_try_to_end(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Wait until the scheduler has taken in the end of ``task_id``'s paused try (its executor event).

        Airflow 3.3 fails a resumed try when the executor's event for the paused process reaches the
        scheduler after the answer re-queued the task ("finished with state success, but the task
        instance's state attribute is queued"); under load that event comes seconds after the pause.
        A person answers later than that, so the test waits for the event as a person would.
        """
        event = (
            "Received executor event with state success for task instance TaskInstanceKey("
            f"dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', try_number=1"
        )
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if event in (self.home / "scheduler.log").read_text(errors="replace"):
                return
            time.sleep(0.5)
        pytest.fail(self._run_failure(dag_id, run_id, f"the paused try of {task_id} never ended"))

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
    assert states.pop("quarantine_drifted_rows") == "skipped"  # runs only after a failed drift check
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

    # Human approval through Airflow's HITL REST API: one run approved, then one rejected (one run at a time).
    runs_by_choice = {}
    for option in ("Approve", "Reject"):
        run_id = runtime.trigger(FLAGSHIP_DAG_ID, {"scenario": "good", "require_approval": True})
        hitl_path = f"{runtime.run_path(FLAGSHIP_DAG_ID, run_id)}/taskInstances/approve/-1/hitlDetails"
        runtime.wait_for_required_action(FLAGSHIP_DAG_ID, run_id, "approve")
        # A person answers after seconds, not milliseconds: an answer given before the scheduler has
        # seen the paused try end makes Airflow 3.3 fail the resumed try ("state changed externally").
        runtime.wait_for_paused_try_to_end(FLAGSHIP_DAG_ID, run_id, "approve")
        time.sleep(HUMAN_RESPONSE_SECONDS)
        detail = runtime.api("GET", hitl_path)
        assert "roc_auc" in detail["body"], detail  # the gate summary is the Markdown body
        response = runtime.api("PATCH", hitl_path, {"chosen_options": [option]})
        assert response["chosen_options"] == [option], response
        runtime.wait_for_runs({FLAGSHIP_DAG_ID: run_id})
        runs_by_choice[option] = run_id
    approved_run, rejected_run = runs_by_choice["Approve"], runs_by_choice["Reject"]
    assert runtime.task_states(FLAGSHIP_DAG_ID, rejected_run)["promote"] == "skipped"
    engine = create_store_engine(embedded_store_url(mlprod_home / "metrics.db"))
    try:
        champion = ModelRegistry(engine).champion(MODEL_NAME)
        last_change = HealthReader(engine).model_health(MODEL_NAME).timeline[-1]
    finally:
        engine.dispose()
    assert champion.version == run_id_as_version(approved_run)  # the rejected run left it alone
    assert (last_change.event, last_change.version) == ("promoted", champion.version)
    assert last_change.approved_by == runtime.username

    # Stop everything now: no process of this runtime is left and no port stays open.
    sessions = {process.pid for process in runtime.processes.values()}
    runtime.stop()
    assert session_members(sessions) == []
    assert all(process.returncode is not None for process in runtime.processes.values())
    assert [port for port in runtime.ports if port_is_open(port)] == []


EXAMPLE_DAG_IDS = sorted(path.stem for path in (REPO_ROOT / "dags").glob("mlprod_*.py"))
FAST_SENSORS = {"sensor_poke_seconds": 1}
UI_ARTIFACTS = REPO_ROOT / "test-artifacts" / "airflow-ui"
UI_TIMEOUT_SECONDS = 60

FILL_LOGIN_FORM = """((username, password) => {
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  for (const [name, value] of [['username', username], ['password', password]]) {
    const input = document.querySelector(`input[name="${name}"]`);
    setter.call(input, value);
    input.dispatchEvent(new Event('input', {bubbles: true}));
  }
  return true;
})(%s, %s)"""
EXTRA_LINK = """(() => {
  const link = Array.from(document.querySelectorAll('a')).find((a) => a.innerText.trim() === 'mlprod report');
  return link ? link.getAttribute('href') : null;
})()"""
PAGE_STATE = "({url: location.href, text: document.body.innerText.slice(0, 1500)})"
FRAMED_TEXT = """(() => {
  const frame = document.querySelector('iframe');
  const body = frame && frame.contentDocument && frame.contentDocument.body;
  return body && body.innerText.includes('Models') ? body.innerText : null;
})()"""
PAGE_TEXT = (
    "({title: document.title, h1: document.querySelector('h1')?.innerText, text: document.body.innerText})"
)


def load_browser_module() -> Any:
    """tests/test_reports_in_browser.py (its headless Chromium driver), loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "mlprod_browser", REPO_ROOT / "tests" / "test_reports_in_browser.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_until(browser: Any, expression: str, what: str) -> Any:
    """Evaluate ``expression`` in the page until it is truthy; return it (fails naming ``what``)."""
    deadline = time.monotonic() + UI_TIMEOUT_SECONDS
    value = None
    while time.monotonic() < deadline:
        try:
            value = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
            value = value.get("result", {}).get("value")
        except RuntimeError:  # the page is navigating
            value = None
        if value:
            return value
        time.sleep(0.5)
    page = browser.send("Runtime.evaluate", {"expression": PAGE_STATE, "returnByValue": True})
    keep_screenshot(browser, "failure")
    pytest.fail(f"{what}: not seen within {UI_TIMEOUT_SECONDS} s (last value {value!r}); page: {page}")


def raw_get(runtime: AirflowRuntime, path: str, token: str | None = None) -> tuple[int, str]:
    """GET ``path`` under the base path exactly as written (no client-side normalisation of ``..``)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", runtime.api_port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", runtime.base_path + path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def keep_screenshot(browser: Any, name: str) -> Path:
    UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = UI_ARTIFACTS / f"{name}.png"
    path.write_bytes(browser.screenshot())
    return path


def test_every_example_dag_runs_from_rest_and_the_ui_serves_reports_and_model_health(
    airflow_runtime: AirflowRuntime, tmp_path: Path
):
    runtime = airflow_runtime
    browser_module = load_browser_module()
    chromium = browser_module.chromium_executable()  # skips (or fails under CI) before any run starts
    for dag_id in EXAMPLE_DAG_IDS:
        runtime.wait_for_dag(dag_id)
        details = runtime.api("GET", f"/api/v2/dags/{dag_id}/details")
        assert details["doc_md"], f"{dag_id} has no doc_md"
        undescribed = [name for name, param in details["params"].items() if not param.get("description")]
        assert undescribed == [], f"{dag_id}: Params without a description: {undescribed}"

    # Every example DAG triggered through the REST API with no logical date (as `airflow dags trigger`).
    first = {
        FLAGSHIP_DAG_ID: {"scenario": "good"},
        "mlprod_warehouse_quality": {"scenario": "clean", **FAST_SENSORS},
        "mlprod_store_check": {},
        "mlprod_train_and_promote": {},
        "mlprod_output_checks": {"scenario": "clean"},
        "mlprod_deadline_alert": {"work_seconds": 0},
    }
    runs = {dag_id: runtime.trigger(dag_id, conf) for dag_id, conf in first.items()}
    runtime.wait_for_runs(runs)
    runs["mlprod_monitoring"] = runtime.trigger("mlprod_monitoring", {"scenario": "healthy", **FAST_SENSORS})
    runtime.wait_for_runs({"mlprod_monitoring": runs["mlprod_monitoring"]})
    # Retraining needs monitoring's tables; its gate may reject a model no better than a healthy champion.
    runs["mlprod_retrain_on_degradation"] = runtime.trigger("mlprod_retrain_on_degradation", {})
    runtime.wait_for_runs(
        {"mlprod_retrain_on_degradation": runs["mlprod_retrain_on_degradation"]},
        allowed_failures={"mlprod_retrain_on_degradation": {"gate"}},
    )
    # The canary release load-tests model servers on the worker and gates on their latency: it runs alone,
    # so the other runs' work does not count as the candidate's latency.
    runs["mlprod_canary_release"] = runtime.trigger("mlprod_canary_release", {"scenario": "healthy"})
    runtime.wait_for_runs({"mlprod_canary_release": runs["mlprod_canary_release"]})
    canary_states = runtime.task_states("mlprod_canary_release", runs["mlprod_canary_release"])
    assert (canary_states["load_test"], canary_states["promote"]) == ("success", "success"), canary_states
    assert set(runs) == set(EXAMPLE_DAG_IDS)
    retrain_states = runtime.task_states(
        "mlprod_retrain_on_degradation", runs["mlprod_retrain_on_degradation"]
    )
    assert (retrain_states["train"], retrain_states["register"]) == ("success", "success"), retrain_states

    flagship_run = runs[FLAGSHIP_DAG_ID]
    safe_run = "".join(c if c.isalnum() or c in "._-" else "_" for c in flagship_run).strip("_")
    report_path = f"/mlprod/reports/validation/{FLAGSHIP_DAG_ID}/{safe_run}/validate_batch.html"

    # The extra link is the plugin's same-origin address under [api] base_url.
    ti_path = f"{runtime.run_path(FLAGSHIP_DAG_ID, flagship_run)}/taskInstances/validate_batch"
    links = runtime.api("GET", f"{ti_path}/links")["extra_links"]
    assert links.get("mlprod report") == runtime.base_url + report_path, links

    # Anonymous, invalid and unauthorised requests get no report; an authorised one does.
    outsider = runtime.token_of(runtime.OUTSIDER, runtime.outsider_password)
    assert raw_get(runtime, report_path)[0] == 401
    assert raw_get(runtime, report_path, token="not-a-jwt")[0] == 403
    status, body = raw_get(runtime, report_path, token=outsider)
    assert (status, "validate_batch" in body) == (403, False), body[:200]
    assert raw_get(runtime, f"/mlprod/health/dags/{FLAGSHIP_DAG_ID}", token=outsider)[0] == 403
    status, body = raw_get(runtime, report_path, token=runtime.token)
    assert (status, "<html" in body.lower()) == (200, True), body[:200]
    # Traversal and unknown kinds are refused, never served.
    for path in (
        f"/mlprod/reports/validation/{FLAGSHIP_DAG_ID}/../../metrics.db",
        f"/mlprod/reports/validation/{FLAGSHIP_DAG_ID}/{safe_run}/..%2F..%2F..%2Fmetrics.db",
        f"/mlprod/reports/validation/{FLAGSHIP_DAG_ID}/..%2F{safe_run}/validate_batch.html",
        f"/mlprod/reports/validation/{FLAGSHIP_DAG_ID}/{safe_run}/.hidden.html",
        f"/mlprod/reports/secrets/{FLAGSHIP_DAG_ID}/{safe_run}/validate_batch.html",
    ):
        status, body = raw_get(runtime, path, token=runtime.token)
        assert status in (400, 404), (path, status, body[:200])
        assert "SQLite" not in body

    browser = browser_module.HeadlessChromium(chromium, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        # Log in through the UI's login form, landing on the task's page.
        task_page = f"/dags/{FLAGSHIP_DAG_ID}/runs/{urllib.parse.quote(flagship_run)}/tasks/validate_batch"
        login = f"{runtime.base_url}/auth/login?next={urllib.parse.quote(runtime.base_url + task_page)}"
        browser.open_page(login)
        wait_until(browser, "document.querySelector('input[name=\"password\"]') !== null", "login form")
        browser.evaluate(FILL_LOGIN_FORM % (json.dumps(runtime.username), json.dumps(runtime.password)))
        wait_until(browser, "!document.querySelector('button[type=\"submit\"]').disabled", "sign-in enabled")
        browser.evaluate("document.querySelector('button[type=\"submit\"]').click() ?? true")
        wait_until(browser, "document.cookie.includes('_token=')", "the session cookie after signing in")
        assert browser.evaluate("location.pathname").endswith("/tasks/validate_batch")  # back where it began
        # The task instance's Details tab lists its extra links.
        browser.open_page(runtime.base_url + task_page + "/details")
        href = wait_until(browser, EXTRA_LINK, "the task's 'mlprod report' extra link")
        keep_screenshot(browser, "task_extra_link")
        assert urllib.parse.urljoin(runtime.base_url + task_page, href) == runtime.base_url + report_path

        # The link opens the report, served by the plugin with the browser's session cookie.
        browser.events.clear()
        browser.open_page(runtime.base_url + report_path)
        report = browser.evaluate(PAGE_TEXT)
        verdict = browser.evaluate("document.querySelector('.verdict')?.innerText")
        keep_screenshot(browser, "validation_report_from_extra_link")
        assert browser.console_errors() == []
        assert browser.requests_off_the_page() == []
        assert verdict == "PASSED", report
        assert "customer" in report["text"].lower(), report["h1"]

        # The model-health view shows the flagship's promotion in the alias timeline.
        browser.events.clear()
        browser.open_page(f"{runtime.base_url}/mlprod/health/models/{MODEL_NAME}")
        page = browser.evaluate(PAGE_TEXT)
        plots = browser.evaluate("document.querySelectorAll('svg.plot').length")
        keep_screenshot(browser, "model_health")
        assert browser.console_errors() == []
        assert browser.requests_off_the_page() == []
        assert page["h1"] == f"Model {MODEL_NAME}"
        assert "Alias timeline" in page["text"]
        assert "promoted" in page["text"]
        assert run_id_as_version(flagship_run) in page["text"]
        assert plots >= 1

        # The view is a tab of the DAG's page and an entry of the navigation (external views, iframes).
        for route, name in (
            (f"/dags/{FLAGSHIP_DAG_ID}/plugin/mlprod-health-dag", "model_health_dag_tab"),
            ("/plugin/mlprod-health", "model_health_in_nav"),
        ):
            browser.events.clear()
            browser.open_page(runtime.base_url + route)
            framed = wait_until(browser, FRAMED_TEXT, f"the model-health view inside {route}")
            keep_screenshot(browser, name)
            assert MODEL_NAME in framed
            assert "customer_batch" in framed  # the dataset the flagship validated

        # The dataset page links each validation to its report through the plugin.
        browser.events.clear()
        browser.open_page(f"{runtime.base_url}/mlprod/health/datasets/customer_batch")
        dataset = browser.evaluate(PAGE_TEXT)
        report_links = browser.evaluate(
            "Array.from(document.querySelectorAll('a')).filter((a) => a.innerText === 'report')"
            ".map((a) => a.getAttribute('href'))"
        )
        keep_screenshot(browser, "dataset_health")
        assert "Validation history" in dataset["text"]
        assert runtime.base_url + report_path in report_links
        assert browser.console_errors() == []
    finally:
        browser.close()


def seed_subpath_store(home: Path) -> str:
    """A promoted model and a validation report where the embedded store and report folder live."""
    mlprod_home = home / "mlprod"
    report = mlprod_home / "reports" / "validation" / FLAGSHIP_DAG_ID / "manual__seed" / "validate_batch.html"
    report.parent.mkdir(parents=True)
    report.write_text("<!DOCTYPE html><html><body><h1>seeded report</h1></body></html>")
    engine = create_store_engine(embedded_store_url(mlprod_home / "metrics.db"))
    try:
        registry = ModelRegistry(engine)
        run = RunIdentity(FLAGSHIP_DAG_ID, "manual__seed", "register")
        registry.register(
            run, name=MODEL_NAME, version="v1", artifact_uri="file:///m/v1", metrics={"auc": 0.9}
        )
        registry.record_blessing(
            run, name=MODEL_NAME, version="v1", passed=True, baseline_version=None, summary={"passed": True}
        )
        registry.promote(run, name=MODEL_NAME, version="v1")
        MetricsStore(engine).record_validation(
            RunIdentity(FLAGSHIP_DAG_ID, "manual__seed", "validate_batch"),
            {
                "success": True,
                "counts": {"evaluated": 1, "passed": 1, "failed_critical": 0, "failed_warning": 0},
                "report_location": report.as_uri(),
            },
            suite="customers",
            dataset="customer_batch",
        )
    finally:
        engine.dispose()
    return "/mlprod/reports/validation/" + FLAGSHIP_DAG_ID + "/manual__seed/validate_batch.html"


def test_a_subpath_deployment_serves_the_plugin_and_links_under_its_base_url(tmp_path: Path):
    """[api] base_url with a path (behind a proxy at /airflow): every plugin link keeps the path."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    runtime = AirflowRuntime(home, base_path="/airflow", components=("api-server",))
    runtime.prepare()
    report_route = seed_subpath_store(home)
    try:
        runtime.start()
        runtime.wait_until_healthy()
        runtime.log_in()
        status, index = raw_get(runtime, "/mlprod/health/", token=runtime.token)
        assert status == 200, index[:300]
        assert f'href="{runtime.base_url}/mlprod/health/models/customer_churn"' in index
        status, model = raw_get(runtime, "/mlprod/health/models/customer_churn", token=runtime.token)
        assert (status, "promoted" in model) == (200, True), model[:300]
        status, dataset = raw_get(runtime, "/mlprod/health/datasets/customer_batch", token=runtime.token)
        assert f'href="{runtime.base_url}{report_route}"' in dataset, dataset[-1500:]
        status, report = raw_get(runtime, report_route, token=runtime.token)
        assert (status, "seeded report" in report) == (200, True), report[:300]
        assert raw_get(runtime, report_route)[0] == 401
        # Outside the base path nothing is served.
        root = f"http://127.0.0.1:{runtime.api_port}{report_route}"
        request = urllib.request.Request(root, headers={"Authorization": f"Bearer {runtime.token}"})
        with pytest.raises(urllib.error.HTTPError) as outside:
            urllib.request.urlopen(request, timeout=30)
        assert outside.value.code == 404
    finally:
        runtime.stop()
    assert session_members({p.pid for p in runtime.processes.values()}) == []

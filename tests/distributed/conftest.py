"""A distributed Airflow on one machine: Redis, PostgreSQL, the control plane and Celery workers.

``CeleryCluster`` starts, each in its own process session:

- its own ``redis-server`` on a free port (not a system one), the Celery broker, with an append-only
  file (``--appendonly yes --appendfsync everysec``) and no RDB snapshots (``--save ""``): a restarted
  broker still holds the messages it had accepted;
- the API server, scheduler, DAG processor and triggerer with the CeleryExecutor, on a fresh PostgreSQL
  metadata database (dropped at the end; it is also Celery's result backend);
- two Celery workers, ``worker-a`` and ``worker-b``, each with its own AIRFLOW_HOME (its own copy of
  the DAGs, its own logs) and host name (``[core] hostname_callable``), and with the store and warehouse
  connections in its environment (the misconfigured workers of ``MISCONFIGURED_WORKERS``, each on a
  queue of its own, lack one setting each: the store connection, the executor, a server store, the
  report folder).

The only folder they share is ``shared/``, standing in for object storage: reports
(``[mlprod] report_folder``), model artifacts, the landing and the serving locations. The metrics store
and the warehouse are two more fresh PostgreSQL databases. Each worker runs in a mount namespace of its
own in which the control plane's home and the other workers' homes are empty folders, and its TMPDIR is
in its home: a file that one worker writes outside ``shared/`` is not there for another, as on separate
machines. Workers import the provider from this checkout.

Failure detection is shortened for the tests: ``[scheduler] task_instance_heartbeat_timeout`` 20 s (a
task whose worker died is failed and retried after it) and ``task_queued_timeout`` 180 s (a task
queued in Celery that no worker started is re-queued). Celery acknowledges a message only when the task
ends (``task_acks_late``), one message per worker process at a time (``worker_prefetch_multiplier``
1); the broker's ``visibility_timeout`` (3600 s) is longer than any task, so a running task is never
handed to a second worker while the first still runs it: a dead worker's task is retried by Airflow.

Under CI=true a missing ``redis-server``, an unreachable PostgreSQL (``MLPROD_TEST_POSTGRES_URL``, else
the local server) or no ``unshare`` for the mount namespaces fails the tests; elsewhere they are skipped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

REPO_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
CONTROL_PLANE = ("api-server", "scheduler", "dag-processor", "triggerer")
WORKERS = ("worker-a", "worker-b")
WORKER_CONCURRENCY = 2
HEARTBEAT_TIMEOUT_SECONDS = 20
QUEUED_TIMEOUT_SECONDS = 180
VISIBILITY_TIMEOUT_SECONDS = 3600
PROBE_DAG_ID = "mlprod_dist_misconfigured_workers"

# Misconfigured workers, each on a queue of its own (its name), each with what is wrong with it. None of
# them may fall back to a store or a report folder of its own: each task must fail at once, naming the
# setting to fix.
MISCONFIGURED_WORKERS = {
    "worker-c": "no connection at all; the store connection is defined on the scheduler only",
    "worker-typo": "store connection and [core] executor in misspelt variables (so it reads LocalExecutor)",
    "worker-sqlite": "a store connection whose URL is a SQLite file in the worker's own home",
    "worker-noreports": "the store connection, but no [mlprod] report_folder",
}
PROBE_TASKS = {  # task id -> the worker (queue) that runs it
    "register_without_store": "worker-c",
    "register_with_misspelt_settings": "worker-typo",
    "register_on_a_sqlite_store": "worker-sqlite",
    "check_outputs_without_report_folder": "worker-noreports",
}

PROBE_DAG_SOURCE = '''"""Tasks for misconfigured workers: a registration and an output check with a report."""

import pendulum
from airflow.sdk import dag

from airflow_provider_mlprod.operators.outputs import PredictionOutputCheckOperator
from airflow_provider_mlprod.operators.registry import RegisterModelOperator

SHARED = "%(shared)s"


@dag(
    dag_id="%(dag_id)s",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2},
)
def misconfigured_workers():
    # A real artifact and a real file: with a silent local store or report folder these tasks succeed.
    for task_id, queue in %(registrations)r:
        RegisterModelOperator(
            task_id=task_id,
            queue=queue,
            model_name="probe_model",
            model_version=task_id,
            artifact_uri=f"file://{SHARED}/probe/model.bin",
        )
    PredictionOutputCheckOperator(
        task_id="check_outputs_without_report_folder",
        queue="worker-noreports",
        checks=[{"check": "not_empty", "column": "answer"}],
        file_path=f"{SHARED}/probe/answers.jsonl",
        dataset_name="probe_answers",
    )


misconfigured_workers()
'''


RELEASE_ALERT_DAG_ID = "mlprod_dist_release_with_alert"
RELEASE_ALERT_MODEL = "fault_model"
ALERT_CONN_ID = "mlprod_alert_hook"
DEPLOY_SECONDS = 12

RELEASE_ALERT_DAG_SOURCE = '''"""The release path with a slow deployment, then an alert announcing it."""

import time

import pendulum
from airflow.sdk import dag, task

from airflow_provider_mlprod.operators.alerts import SendAlertOperator
from airflow_provider_mlprod.operators.deployment import CopyArtifactDeployment
from airflow_provider_mlprod.operators.release import release_tasks

SHARED = "%(shared)s"
MODEL = "%(model)s"


class SlowCopyDeployment(CopyArtifactDeployment):
    """Copy the artifact after a pause, as a large artifact takes: the promoted alias moved already."""

    def deploy(self, model, context):
        time.sleep(%(deploy_seconds)d)
        return super().deploy(model, context)


@dag(
    dag_id="%(dag_id)s",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
)
def release_with_alert():
    @task
    def train(run_id=None):
        from airflow.sdk import ObjectStoragePath

        version = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
        artifact = ObjectStoragePath(f"file://{SHARED}/models") / f"{MODEL}-{version}.bin"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_bytes(version.encode())
        return {"version": version, "artifact_uri": str(artifact), "metrics": {"roc_auc": 0.9}}

    release = release_tasks(
        model_name=MODEL,
        model_version="{{ ti.xcom_pull(task_ids='train')['version'] }}",
        artifact_uri="{{ ti.xcom_pull(task_ids='train')['artifact_uri'] }}",
        metrics_task_id="train",
        metrics_key="metrics",
        thresholds={"roc_auc": {"min": 0.8}},
        if_no_baseline="pass",
        deployment=SlowCopyDeployment(f"file://{SHARED}/serving/{MODEL}.bin"),
    )
    announce = SendAlertOperator(
        task_id="announce",
        title="{{ ti.xcom_pull(task_ids='promote')['version'] }} promoted",
        severity="info",
        alert_conn_ids=["%(alert_conn_id)s"],
        dedup_key="promoted-{{ run_id }}",
    )
    train() >> release.group >> announce


release_with_alert()
'''


class AlertReceiver:
    """A local HTTP server standing in for an alert webhook: it keeps every JSON body it receives."""

    def __init__(self) -> None:
        import http.server
        import threading

        received = self.received = []
        self.hold_seconds = 0.0  # how long a request waits for its answer (a slow endpoint)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body or b"null"))
                time.sleep(receiver.hold_seconds)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _load_runtime_module() -> Any:
    """tests/test_airflow_runtime.py (its AirflowRuntime and process helpers), loaded by path."""
    spec = importlib.util.spec_from_file_location(
        "mlprod_airflow_runtime", REPO_ROOT / "tests" / "test_airflow_runtime.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runtime = _load_runtime_module()
free_port = runtime.free_port
port_is_open = runtime.port_is_open
session_members = runtime.session_members


postgres_admin = runtime.postgres_admin
POSTGRES = sqlalchemy.make_url(runtime.POSTGRES_URL)  # MLPROD_TEST_POSTGRES_URL, else the local server


# Each worker runs in a mount namespace of its own (as root, else in a user namespace mapped to root),
# where HIDE_FOLDERS mounts an empty tmpfs over each folder given before "--", then runs the worker.
ISOLATE = (
    ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() == 0
    else ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
)
HIDE_FOLDERS = (
    'while [ "$1" != -- ]; do mount -t tmpfs -o size=1m tmpfs "$1" || exit 97; shift; done; shift; exec "$@"'
)


def require_services() -> None:
    """Skip (fail under CI=true) when redis-server, PostgreSQL or mount namespaces are not there."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server is not installed (Debian package redis-server)")
    probe = subprocess.run([*ISOLATE, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        missing.append(
            f"cannot give a worker a private mount namespace ({' '.join(ISOLATE)}: {probe.stderr.strip()})"
        )
    try:
        with postgres_admin():
            pass
    except Exception as exc:
        missing.append(f"PostgreSQL at {POSTGRES.host}:{POSTGRES.port} unreachable ({type(exc).__name__})")
    if missing:
        message = "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


class CeleryCluster(runtime.AirflowRuntime):
    """Redis, the Airflow control plane and Celery workers, each process tree in its own session."""

    WORKERS = WORKERS
    MISCONFIGURED_WORKERS = MISCONFIGURED_WORKERS
    PROBE_DAG_ID = PROBE_DAG_ID
    PROBE_TASKS = PROBE_TASKS
    RELEASE_ALERT_DAG_ID = RELEASE_ALERT_DAG_ID
    RELEASE_ALERT_MODEL = RELEASE_ALERT_MODEL
    ALERT_CONN_ID = ALERT_CONN_ID

    def __init__(self, root: Path) -> None:
        super().__init__(root / "control")
        self.root = root
        self.shared = root / "shared"
        self.redis_port = free_port()
        self.worker_log_ports = {name: free_port() for name in (*WORKERS, *MISCONFIGURED_WORKERS)}
        suffix = uuid.uuid4().hex[:10]
        self.databases = {kind: f"mlprod_dist_{kind}_{suffix}" for kind in ("meta", "store", "warehouse")}
        self.jwt_secret = secrets.token_urlsafe(32)
        self.stopped: list[subprocess.Popen] = []  # killed or restarted processes, still checked at the end
        self.created_databases: list[str] = []
        self.alerts = AlertReceiver()

    # -- configuration ------------------------------------------------------------------------

    @property
    def ports(self) -> tuple[int, ...]:
        ports = (self.api_port, *self.log_server_ports, *self.worker_log_ports.values(), self.redis_port)
        return (*ports, self.alerts.port)

    def worker_home(self, name: str) -> Path:
        return self.root / name

    def database_url(self, kind: str) -> str:
        """The URL of the cluster's ``kind`` database (``meta``, ``store``, ``warehouse``)."""
        return runtime.metadata_database_url(self.databases[kind])

    def store_connection(self) -> str:
        return json.dumps(
            {"conn_type": "mlprodstore", "extra": {"sqlalchemy_url": self.database_url("store")}}
        )

    def warehouse_connection(self) -> str:
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": POSTGRES.host,
                "port": POSTGRES.port or 5432,
                "login": POSTGRES.username,
                "password": POSTGRES.password,
                "schema": self.databases["warehouse"],
            }
        )

    def environment(self, component: str = "api-server") -> dict[str, str]:
        """The environment of one process; every process shares the cluster settings."""
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_HOME", "MLPROD_"))
        }
        is_worker = component.startswith("worker-")
        home = self.worker_home(component) if is_worker else self.home
        environment = {
            **inherited,
            "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            # worker_identity.py, and the provider of this checkout (not another installed copy)
            "PYTHONPATH": os.pathsep.join((str(Path(__file__).parent), str(REPO_ROOT))),
            "MLPROD_TEST_HOSTNAME": component if is_worker else f"control-{component}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_identity.hostname",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "16",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "2",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url("meta"),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(QUEUED_TIMEOUT_SECONDS),
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(
                self.worker_log_ports.get(component, self.log_server_ports[0])
            ),
            "AIRFLOW__MLPROD__REPORT_FOLDER": str(self.shared / "reports"),
        }
        # The connections live in the environment of worker-a and worker-b (and of the scheduler, which
        # gives them to nobody). Workers look a connection up in their own environment first, then
        # through the API server's execution API, which answers from its environment and the metadata
        # DB: neither holds these, so worker-c has no store connection at all.
        if component in (*WORKERS, "scheduler", "worker-noreports"):
            environment["AIRFLOW_CONN_MLPROD_STORE_DEFAULT"] = self.store_connection()
        if component in WORKERS:
            environment["AIRFLOW_CONN_MLPROD_WAREHOUSE"] = self.warehouse_connection()
            environment[f"AIRFLOW_CONN_{ALERT_CONN_ID.upper()}"] = json.dumps(
                {"conn_type": "mlprod_webhook", "password": self.alerts.url}
            )
        if component == "worker-typo":  # a letter swapped in each name: neither setting takes effect
            environment["AIRFLOW_CONN_MLPROD_STORE_DEFUALT"] = self.store_connection()
            environment["AIRFLOW__CORE__EXECUTRO"] = environment.pop("AIRFLOW__CORE__EXECUTOR")
        if component == "worker-sqlite":
            sqlite_store = {"sqlalchemy_url": f"sqlite:///{self.worker_home(component)}/mlprod/store.db"}
            environment["AIRFLOW_CONN_MLPROD_STORE_DEFAULT"] = json.dumps(
                {"conn_type": "mlprodstore", "extra": sqlite_store}
            )
        if component == "worker-noreports":
            del environment["AIRFLOW__MLPROD__REPORT_FOLDER"]
        return environment

    def shared_uris(self, model_name: str) -> dict[str, str]:
        """The Params that put landing, artifacts and serving in the shared folder."""
        return {
            "landing_uri": f"file://{self.shared}/landing",
            "artifact_root": f"file://{self.shared}/models",
            "serving_uri": f"file://{self.shared}/serving/{model_name}.pkl",
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the databases and homes, copy the DAGs into every home, migrate the metadata DB."""
        with postgres_admin() as admin:
            for name in self.databases.values():
                admin.exec_driver_sql(f'CREATE DATABASE "{name}"')
                self.created_databases.append(name)
        registrations = [(task, queue) for task, queue in PROBE_TASKS.items() if task.startswith("register")]
        for home in (self.home, *(self.worker_home(name) for name in (*WORKERS, *MISCONFIGURED_WORKERS))):
            home.mkdir(parents=True)
            shutil.copytree(REPO_ROOT / "dags", home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
            probe = {"shared": self.shared, "dag_id": PROBE_DAG_ID, "registrations": registrations}
            (home / "dags" / f"{PROBE_DAG_ID}.py").write_text(PROBE_DAG_SOURCE % probe)
            (home / "dags" / f"{RELEASE_ALERT_DAG_ID}.py").write_text(
                RELEASE_ALERT_DAG_SOURCE
                % {
                    "shared": self.shared,
                    "model": RELEASE_ALERT_MODEL,
                    "dag_id": RELEASE_ALERT_DAG_ID,
                    "deploy_seconds": DEPLOY_SECONDS,
                    "alert_conn_id": ALERT_CONN_ID,
                }
            )
        self.shared.mkdir()
        (self.shared / "probe").mkdir()
        (self.shared / "probe" / "model.bin").write_bytes(b"probe model")
        (self.shared / "probe" / "answers.jsonl").write_text('{"answer": "yes"}\n{"answer": "no"}\n')
        (self.root / "redis").mkdir()
        (self.home / "passwords.json").write_text(json.dumps({self.username: self.password}))
        migrate = subprocess.run(
            [str(AIRFLOW), "db", "migrate"], env=self.environment(), capture_output=True, text=True
        )
        assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}"

    def _spawn(self, name: str, arguments: list[str], environment: dict[str, str], cwd: Path) -> None:
        with open(self.root / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                arguments,
                env=environment,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_redis(self) -> None:
        """Start the broker on its port; its append-only file keeps accepted messages across restarts."""
        arguments = [
            "redis-server",
            "--port", str(self.redis_port),
            "--bind", "127.0.0.1",
            "--dir", str(self.root / "redis"),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
        ]  # fmt: skip
        self._spawn("redis", arguments, dict(os.environ), self.root / "redis")
        deadline = time.monotonic() + 20
        while not port_is_open(self.redis_port):
            assert time.monotonic() < deadline, f"redis-server did not listen:\n{self.log_tail('redis')}"
            assert self.processes["redis"].poll() is None, f"redis-server exited:\n{self.log_tail('redis')}"
            time.sleep(0.1)

    def restart_redis(self) -> None:
        """Stop the broker (SIGTERM: it flushes its append-only file) and start it again on its port."""
        process = self.processes.pop("redis")
        process.terminate()
        process.wait(timeout=20)
        self.stopped.append(process)
        self.start_redis()

    def start_worker(self, name: str, queues: str = "default", concurrency: int = WORKER_CONCURRENCY) -> None:
        arguments = [
            str(AIRFLOW), "celery", "worker",
            "--concurrency", str(concurrency),
            "--celery-hostname", f"{name}@mlprod",
            "--queues", queues,
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        environment = self.environment(name)
        environment["TMPDIR"] = str(self.worker_home(name) / "tmp")
        (self.worker_home(name) / "tmp").mkdir(exist_ok=True)
        self._spawn(name, [*self.private_view(name), *arguments], environment, self.worker_home(name))

    def private_view(self, name: str) -> list[str]:
        """The command prefix that runs worker ``name`` in a mount namespace of its own, where the homes of
        the control plane and of every other worker are empty: like a separate machine, it sees only
        its own home, the shared folder and the installed software. A file one worker writes outside
        ``shared/`` and another reads then fails the test instead of passing on one disk."""
        hidden = [self.home, self.root / "redis"]
        hidden += [self.worker_home(other) for other in (*WORKERS, *MISCONFIGURED_WORKERS) if other != name]
        return [*ISOLATE, "sh", "-c", HIDE_FOLDERS, "hide", *map(str, hidden), "--"]

    def stop_worker(self, name: str) -> None:
        """SIGTERM the worker (Celery's warm shutdown: running tasks finish first) and wait for it."""
        process = self.processes.pop(name)
        self._signal_group(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        self.stopped.append(process)

    def queued_messages(self, queue: str = "default") -> int:
        """How many task messages wait in the broker's ``queue``."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=5)
        try:
            return int(client.llen(queue))
        finally:
            client.close()

    def kill_worker(self, name: str) -> None:
        """SIGKILL every process of the worker at once, as if its machine died."""
        process = self.processes.pop(name)
        for pid in session_members({process.pid}):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)
        self.stopped.append(process)

    def wait_for_workers(self, names: tuple[str, ...]) -> None:
        """Wait until each Celery worker answers a ping through the broker."""
        from celery import Celery

        app = Celery(broker=f"redis://127.0.0.1:{self.redis_port}/0")
        wanted = {f"{name}@mlprod" for name in names}
        deadline = time.monotonic() + runtime.STARTUP_TIMEOUT_SECONDS
        answered: set[str] = set()
        try:
            while time.monotonic() < deadline:
                assert not self.exited_components(), (
                    f"components exited early: {self.exited_components()}\n{self.log_tails()}"
                )
                try:
                    replies = app.control.ping(timeout=1.0) or []
                except Exception as exc:  # the broker just restarted: ask again
                    replies = [{f"(ping failed: {type(exc).__name__})": {}}]
                answered = {name for reply in replies for name in reply}
                if wanted <= answered:
                    return
                time.sleep(1)
        finally:
            app.close()
        pytest.fail(f"Celery workers {sorted(wanted - answered)} not ready\n{self.log_tails()}")

    def start(self) -> None:
        self.start_redis()
        for component in CONTROL_PLANE:
            arguments = [str(AIRFLOW), component]
            if component == "api-server":
                arguments += ["--workers", "1"]
            self._spawn(component, arguments, self.environment(component), self.home)
        for name in WORKERS:
            self.start_worker(name)

    def stop(self) -> None:
        """SIGTERM every process group (workers finish or give up their tasks), then SIGKILL what is left."""
        sessions = self.sessions()
        for process in self.processes.values():
            self._signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + runtime.STOP_GRACE_SECONDS
        while session_members(sessions) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in session_members(sessions):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def sessions(self) -> set[int]:
        return {process.pid for process in (*self.processes.values(), *self.stopped)}

    def drop_databases(self) -> None:
        with postgres_admin() as admin:
            for name in self.created_databases:
                admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- diagnostics --------------------------------------------------------------------------

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.root / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"--- {name} (last {lines} lines) ---\n" + "\n".join(text)

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(self.log_tail(name, lines) for name in ("redis", *CONTROL_PLANE, *WORKERS))

    def task_log_files(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        """The task's log files in every worker home (logs stay on the worker that ran the try)."""
        return sorted(
            path
            for name in (*WORKERS, *MISCONFIGURED_WORKERS)
            for path in self.worker_home(name).glob(
                f"logs/dag_id={dag_id}/run_id={run_id}/task_id={task_id}/*.log"
            )
        )

    def _run_failure(self, dag_id: str, run_id: str, what: str) -> str:
        states = self.task_states(dag_id, run_id)
        task_logs = []
        for task_id, state in states.items():
            if state in ("failed", "up_for_retry"):
                for path in self.task_log_files(dag_id, run_id, task_id):
                    tail = path.read_text(errors="replace").splitlines()[-30:]
                    task_logs.append(f"--- {path} ---\n" + "\n".join(tail))
        return (
            f"run {run_id} of {dag_id} {what}; task states: {states}\n"
            + "\n".join(task_logs)
            + "\n"
            + (self.log_tails())
        )

    # -- REST helpers -------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, authenticated: bool = True, token: str | None = None
    ) -> tuple[int, Any]:
        """As ``AirflowRuntime.request``; a GET that times out (a loaded machine) is asked once more."""
        import urllib.error

        try:
            return super().request(method, path, body, authenticated, token)
        except (TimeoutError, urllib.error.URLError):
            if method != "GET":
                raise
            return super().request(method, path, body, authenticated, token)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        payload = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances")
        return {ti["task_id"]: ti for ti in payload["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task (state, host name, try number), oldest first."""
        payload = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/tries")
        return sorted(payload["task_instances"], key=lambda ti: ti["try_number"])

    def hostnames(self, dag_id: str, run_id: str) -> dict[str, list[str | None]]:
        """Per task, the host name of each try, as the REST API reports it."""
        return {
            task_id: [ti["hostname"] for ti in self.tries(dag_id, run_id, task_id)]
            for task_id in self.task_instances(dag_id, run_id)
        }

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """The task's return value, or None when it pushed none."""
        path = f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/xcomEntries/return_value"
        status, payload = self.request("GET", path + "?deserialize=true")
        return payload["value"] if status == 200 else None

    def raw_get(self, path: str) -> tuple[int, str]:
        """GET ``path`` on the API server as the logged-in admin; the status and the body text."""
        return runtime.raw_get(self, path, token=self.token)

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", self.run_path(dag_id, run_id))["state"]

    def wait_until_ended(self, dag_id: str, run_ids: list[str], timeout: float) -> dict[str, str]:
        """Wait until every run is success or failed; return each run's final state."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {run_id: self.run_state(dag_id, run_id) for run_id in run_ids}
            if all(state in ("success", "failed") for state in states.values()):
                return states
            assert not self.exited_components(), (
                f"components exited: {self.exited_components()}\n{self.log_tails()}"
            )
            time.sleep(3)
        pytest.fail(f"runs of {dag_id} not ended after {timeout} s: {states}\n{self.log_tails()}")


@contextlib.contextmanager
def running_cluster(root: Path):
    """A started, healthy cluster with a logged-in admin; everything is stopped and dropped afterwards."""
    require_services()
    cluster = CeleryCluster(root)
    try:
        cluster.prepare()
        cluster.start()
        cluster.wait_until_healthy()
        cluster.wait_for_workers(WORKERS)
        cluster.log_in()
        yield cluster
    finally:
        sessions = cluster.sessions()
        cluster.stop()
        cluster.alerts.close()
        cluster.drop_databases()
    leftovers = session_members(sessions)
    open_ports = [port for port in cluster.ports if port_is_open(port)]
    assert (leftovers, open_ports) == ([], []), "processes or ports of the cluster left behind"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with running_cluster(tmp_path_factory.mktemp("celery-cluster")) as started:
        yield started

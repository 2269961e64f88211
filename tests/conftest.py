"""Test-wide setup: an isolated AIRFLOW_HOME and database fixtures for SQLite and PostgreSQL.

Every test that touches a database runs on both backends through the ``db_url`` fixture. PostgreSQL
is the server at 127.0.0.1:5432 (override with ``MLPROD_TEST_POSTGRES_URL``); each test gets its own
schema, dropped afterwards. Under ``CI=true`` an unreachable server fails the test instead of
skipping it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its environment at import time, so isolate it before any test module imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mlprod-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# dag.test() only runs DAGs that live in a DAG bundle, so the session's DAG folder holds links to the
# example DAGs plus any DAG file a test writes with the ``dag_file`` fixture.
_DAGS_FOLDER = _AIRFLOW_HOME / "dags"
_DAGS_FOLDER.mkdir()
for _example in sorted((REPO_ROOT / "dags").iterdir()):
    if _example.is_dir():  # copied, so that files a test adds there never land in the repository
        shutil.copytree(_example, _DAGS_FOLDER / _example.name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        (_DAGS_FOLDER / _example.name).symlink_to(_example)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS_FOLDER)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
for _name in list(os.environ):
    if _name.startswith(("AIRFLOW_CONN_", "AIRFLOW__MLPROD__", "AIRFLOW_VAR_")):
        del os.environ[_name]

POSTGRES_URL = os.environ.get("MLPROD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The AIRFLOW_HOME of this test session (a temporary folder)."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated Airflow metadata database in this session's AIRFLOW_HOME (for ``dag.test()``)."""
    import subprocess
    import sys

    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ)
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}")
    return airflow_home


@pytest.fixture
def dag_file(airflow_db: Path):
    """Write a DAG file into the session's DAG folder and return its DAG, ready for ``dag.test()``.

    Usage: ``dag = dag_file("my_dag_id", source_text)``; the file is removed after the test.
    """
    from airflow.models import DagBag

    written: list[Path] = []

    def write(dag_id: str, source: str):
        path = _DAGS_FOLDER / f"test_{dag_id}.py"
        path.write_text(source)
        written.append(path)
        bag = DagBag(dag_folder=str(path))
        assert bag.import_errors == {}, bag.import_errors
        return bag.dags[dag_id]

    yield write
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the PostgreSQL test server; skips when unreachable, except under CI=true."""
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL test server unreachable at {POSTGRES_URL}: {exc.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str):
    """A PostgreSQL URL whose search_path is a fresh schema of this test's own."""
    import sqlalchemy as sa

    schema = f"mlprod_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(postgres_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL on a fresh file in this test's temporary folder."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def airflow_sql_connection(monkeypatch: pytest.MonkeyPatch):
    """Define a test database as an Airflow SQL connection: ``schema = airflow_sql_connection(url, "wh")``.

    Returns the test's own schema on PostgreSQL, to qualify table names with (an Airflow ``postgres``
    connection ignores the URL's search_path option), and None on SQLite.
    """
    import json

    import sqlalchemy as sa

    def register(url: str, conn_id: str = "warehouse") -> str | None:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            fields, schema = {"conn_type": "sqlite", "host": parsed.database}, None
        else:
            fields = {
                "conn_type": "postgres",
                "host": parsed.host,
                "port": parsed.port,
                "login": parsed.username,
                "schema": parsed.database,
            }
            schema = parsed.query["options"].removeprefix("-csearch_path=")
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
        return schema

    return register


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="module")
def make_httpserver():
    """The server behind pytest-httpserver's ``httpserver`` fixture: one per test module on 127.0.0.1,
    instead of one for the whole session. A request, handler thread or forked process left over from
    another module's tests can then never answer for, or hide a request from, this module's server."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def closed_port():
    """A loopback TCP port that refuses connections for the whole test: bound, never listening. A
    port found free and let go could meanwhile be taken by a server another test or process starts,
    or be picked as a client's own source port (a connection to itself then succeeds)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]

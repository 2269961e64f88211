"""MetricsStoreHook: embedded default, mlprod_store and SQL connections, and clear errors."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from airflow_provider_mlprod.exceptions import ConnectionConfigError
from airflow_provider_mlprod.hooks.store import MetricsStoreHook

SECRET = "s3cr3t-pa55word-XYZ"


def set_connection(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_without_connection_uses_embedded_sqlite_under_airflow_home(airflow_home):
    hook = MetricsStoreHook()
    assert hook.url.get_backend_name() == "sqlite"
    assert hook.location == f"SQLite file {airflow_home / 'mlprod' / 'metrics.db'}"
    assert hook.test_connection() == (True, f"connected to the metrics store at {hook.location}")
    assert (airflow_home / "mlprod" / "metrics.db").exists()


def test_embedded_path_follows_config(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE_PATH", str(tmp_path / "nested" / "store.db"))
    hook = MetricsStoreHook()
    with hook.get_conn().connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "nested" / "store.db").exists()


def test_store_connection_with_url_and_password_field(monkeypatch, db_url):
    url = sa.make_url(db_url)
    set_connection(
        monkeypatch,
        "store_a",
        conn_type="mlprod_store",
        password=url.password,
        extra={"sqlalchemy_url": url.set(password=None).render_as_string(hide_password=False)},
    )
    hook = MetricsStoreHook(store_conn_id="store_a")
    assert hook.url.get_backend_name() == url.get_backend_name()
    ok, message = hook.test_connection()
    assert ok, message


def test_password_is_merged_but_never_shown(monkeypatch):
    set_connection(
        monkeypatch,
        "store_pw",
        conn_type="mlprod_store",
        password=SECRET,
        extra={"sqlalchemy_url": "postgresql+psycopg2://mlprod@127.0.0.1:1/mlprod"},
    )
    hook = MetricsStoreHook(store_conn_id="store_pw")
    assert hook.url.password == SECRET
    assert SECRET not in hook.location
    ok, message = hook.test_connection()
    assert not ok
    assert "cannot reach the metrics store" in message
    assert SECRET not in message


def test_configured_store_conn_id_is_used(monkeypatch, sqlite_url):
    monkeypatch.setenv("AIRFLOW__MLPROD__STORE_CONN_ID", "cfg_store")
    set_connection(monkeypatch, "cfg_store", conn_type="mlprod_store", extra={"sqlalchemy_url": sqlite_url})
    assert MetricsStoreHook().url == sa.make_url(sqlite_url)


def test_default_conn_id_is_used_when_it_exists(monkeypatch, sqlite_url):
    set_connection(
        monkeypatch, "mlprod_store_default", conn_type="mlprod_store", extra={"sqlalchemy_url": sqlite_url}
    )
    assert MetricsStoreHook().url == sa.make_url(sqlite_url)


def test_any_sql_connection_can_be_the_store(monkeypatch, postgres_server_url):
    url = sa.make_url(postgres_server_url)
    set_connection(
        monkeypatch,
        "pg_store",
        conn_type="postgres",
        host=url.host,
        port=url.port,
        login=url.username,
        schema=url.database,
    )
    hook = MetricsStoreHook(store_conn_id="pg_store")
    assert hook.url.get_backend_name() == "postgresql"
    assert hook.test_connection()[0]


def test_explicit_missing_connection_names_it():
    with pytest.raises(ConnectionConfigError, match="connection 'no_such_store': is not defined"):
        MetricsStoreHook(store_conn_id="no_such_store").url  # noqa: B018


def test_configured_missing_connection_names_it(monkeypatch):
    monkeypatch.setenv("AIRFLOW__MLPROD__STORE_CONN_ID", "gone_store")
    with pytest.raises(ConnectionConfigError, match="connection 'gone_store': is not defined"):
        MetricsStoreHook().url  # noqa: B018


def test_store_connection_without_url(monkeypatch):
    set_connection(monkeypatch, "store_nourl", conn_type="mlprod_store", password=SECRET)
    with pytest.raises(ConnectionConfigError, match="'store_nourl': has no SQLAlchemy URL") as info:
        MetricsStoreHook(store_conn_id="store_nourl").url  # noqa: B018
    assert SECRET not in str(info.value)


def test_unparsable_url_names_connection_and_hides_secret(monkeypatch):
    set_connection(
        monkeypatch,
        "store_bad",
        conn_type="mlprod_store",
        extra={"sqlalchemy_url": f"not a url {SECRET}"},
    )
    with pytest.raises(
        ConnectionConfigError, match="'store_bad': the SQLAlchemy URL cannot be parsed"
    ) as info:
        MetricsStoreHook(store_conn_id="store_bad").url  # noqa: B018
    assert SECRET not in str(info.value)


def test_unknown_dialect_names_connection(monkeypatch):
    set_connection(
        monkeypatch,
        "store_dialect",
        conn_type="mlprod_store",
        password=SECRET,
        extra={"sqlalchemy_url": "nosuchdb://u@h/d"},
    )
    with pytest.raises(ConnectionConfigError, match=r"'store_dialect': .*unknown dialect") as info:
        MetricsStoreHook(store_conn_id="store_dialect").get_conn()
    assert SECRET not in str(info.value)


def test_malformed_extra_json_is_an_error_not_an_empty_dict(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_STORE_JSON",
        json.dumps({"conn_type": "mlprod_store", "extra": '{"sqlalchemy_url": "sqlite://", ' + SECRET}),
    )
    with pytest.raises(
        ConnectionConfigError, match="'store_json': the extra field is not valid JSON"
    ) as info:
        MetricsStoreHook(store_conn_id="store_json").url  # noqa: B018
    assert SECRET not in str(info.value)


def test_non_sql_connection_is_rejected(monkeypatch):
    set_connection(monkeypatch, "store_fs", conn_type="fs", extra={"path": "/tmp"}, password=SECRET)
    with pytest.raises(ConnectionConfigError, match="'store_fs': type 'fs' is not a SQL connection") as info:
        MetricsStoreHook(store_conn_id="store_fs").url  # noqa: B018
    assert SECRET not in str(info.value)


# -- no silent store; one engine per store; timeouts from the connection ---------------------------


@pytest.mark.parametrize(
    "executor", ["CeleryExecutor", "airflow.providers.cncf.kubernetes.KubernetesExecutor"]
)
def test_a_missing_store_connection_fails_on_a_distributed_executor(monkeypatch, executor):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    with pytest.raises(
        ConnectionConfigError, match="connection 'mlprod_store_default': is not defined"
    ) as err:
        MetricsStoreHook().url  # noqa: B018
    assert "only used by the LocalExecutor" in str(err.value)


def test_the_tasks_own_executor_decides(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    assert MetricsStoreHook(executor="LocalExecutor").url.get_backend_name() == "sqlite"
    with pytest.raises(ConnectionConfigError, match="this task runs on CeleryExecutor"):
        MetricsStoreHook(executor="CeleryExecutor").url  # noqa: B018


def test_embedded_store_setting_overrides_the_executor_rule(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE", "true")
    assert MetricsStoreHook().url.get_backend_name() == "sqlite"
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    monkeypatch.setenv("AIRFLOW__MLPROD__EMBEDDED_STORE", "false")
    with pytest.raises(ConnectionConfigError, match="embedded_store = false") as err:
        MetricsStoreHook().url  # noqa: B018
    assert "create the store connection (an mlprodstore connection" in str(err.value)


def test_hooks_on_one_store_share_one_engine_and_report_its_id(monkeypatch, sqlite_url):
    set_connection(
        monkeypatch, "store_shared", conn_type="mlprod_store", extra={"sqlalchemy_url": sqlite_url}
    )
    first, second = MetricsStoreHook("store_shared"), MetricsStoreHook("store_shared")
    assert first.engine is second.engine
    described = first.describe()
    assert described == {"store_id": second.store_id, "store": first.location}
    assert len(described["store_id"]) == 32


def test_statement_timeout_comes_from_the_connection_extra(monkeypatch, postgres_url):
    set_connection(
        monkeypatch,
        "store_slow",
        conn_type="mlprod_store",
        extra={"sqlalchemy_url": postgres_url, "statement_timeout": 0.5, "connect_timeout": 3},
    )
    engine = MetricsStoreHook("store_slow").engine
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "500ms"
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            connection.exec_driver_sql("SELECT pg_sleep(5)")


def test_a_store_host_that_never_answers_times_out(monkeypatch):
    """A server that accepts TCP but never speaks: the connection attempt ends instead of hanging."""
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nothing ever answers them
    port = silent.getsockname()[1]
    set_connection(
        monkeypatch,
        "store_silent",
        conn_type="mlprod_store",
        extra={"sqlalchemy_url": f"postgresql+psycopg://u@127.0.0.1:{port}/db", "connect_timeout": 1},
    )
    engine = MetricsStoreHook("store_silent").engine
    outcome: list[BaseException] = []

    def connect():
        try:
            engine.connect().close()
        except BaseException as exc:
            outcome.append(exc)

    attempt = threading.Thread(target=connect, daemon=True)
    try:
        attempt.start()
        attempt.join(60)
        assert not attempt.is_alive(), "the connection attempt hung"
        assert outcome
        assert isinstance(outcome[0], sa.exc.OperationalError)
    finally:
        silent.close()


@pytest.mark.parametrize("bad", [0, -1, "soon", True])
def test_bad_timeouts_are_named(monkeypatch, bad):
    set_connection(
        monkeypatch,
        "store_badtimeout",
        conn_type="mlprod_store",
        extra={"sqlalchemy_url": "sqlite:////tmp/x.db", "statement_timeout": bad},
    )
    with pytest.raises(
        ConnectionConfigError, match="extra field 'statement_timeout' must be a positive number"
    ):
        MetricsStoreHook("store_badtimeout").url  # noqa: B018


def test_testing_a_missing_or_misconfigured_connection_fails_naming_it(monkeypatch):
    """Failed before the fix: test_connection raised ConnectionConfigError instead of reporting it."""
    assert MetricsStoreHook(store_conn_id="no_such_store").test_connection() == (
        False,
        "connection 'no_such_store': is not defined; create it in the UI (Admin > Connections), with "
        "`airflow connections add`, or as the environment variable AIRFLOW_CONN_NO_SUCH_STORE",
    )
    set_connection(
        monkeypatch,
        "store_badtimeout",
        conn_type="mlprodstore",
        extra={"sqlalchemy_url": f"postgresql+psycopg://mlprod:{SECRET}@db/mlprod", "connect_timeout": 0},
    )
    ok, message = MetricsStoreHook(store_conn_id="store_badtimeout").test_connection()
    assert not ok
    assert "'store_badtimeout': extra field 'connect_timeout' must be a positive number" in message
    assert SECRET not in message

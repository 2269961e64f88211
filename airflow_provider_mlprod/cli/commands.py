"""The ``airflow mlprod`` commands: each reads its arguments, calls the store or copies files, prints.

Output is a table by default and ``--output json|yaml|plain`` as in Airflow's own CLI. Errors exit with
a message naming the problem (``SystemExit``), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from airflow_provider_mlprod.exceptions import MlprodError

EXAMPLES_PACKAGE_DIR = "example_dags"
"""Where the wheel ships the example DAGs and suites inside the package (a copy of the checkout's dags/)."""

CLI_DAG_ID = "airflow-cli"
"""The ``dag_id`` that the store records for actions taken from the CLI (manual actions)."""


def examples_source() -> Path:
    """The folder of the shipped examples: inside the installed package, else a checkout's ``dags/``."""
    shipped = Path(str(files("airflow_provider_mlprod"))) / EXAMPLES_PACKAGE_DIR
    if shipped.is_dir():
        return shipped
    checkout = Path(__file__).resolve().parents[2] / "dags"
    if checkout.is_dir():
        return checkout
    raise SystemExit("the example DAGs are not installed with this package (no example_dags folder)")


def example_files(source: Path) -> Iterator[Path]:
    """The example files under ``source``, relative to it (DAG files and expectation suites)."""
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json", ".sql"):
            yield path.relative_to(source)


def copy_examples(directory: Path, *, force: bool = False) -> list[dict[str, str]]:
    """Copy the examples into ``directory``; copies nothing when a file exists there, unless ``force``.

    The files go to a staging folder next to ``directory`` first and are moved in once all are there,
    so a folder that cannot take them (not a folder, not writable, a file in the way) ends up unchanged.
    """
    source = examples_source()
    relative = list(example_files(source))
    existing = [str(path) for path in relative if (directory / path).exists()]
    if existing and not force:
        raise SystemExit(
            f"{len(existing)} file(s) exist already in {directory} (e.g. {existing[0]}); "
            "nothing copied: pass --force to overwrite"
        )
    try:
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"{directory} is not a folder")
        directory.mkdir(parents=True, exist_ok=True)
        for folder in {(directory / path).parent for path in relative}:
            if folder.exists() and not folder.is_dir():
                raise NotADirectoryError(f"{folder} is not a folder")
        with tempfile.TemporaryDirectory(prefix=".mlprod-examples-", dir=directory) as staging:
            for path in relative:
                staged = Path(staging) / path
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / path, staged)
            copied = []
            for path in relative:
                target = directory / path
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(Path(staging) / path, target)
                copied.append({"file": str(path), "to": str(target)})
    except OSError as exc:
        raise SystemExit(f"cannot copy the examples into {directory}: {exc.strerror or exc}") from None
    return copied


def _print(data: list[dict[str, Any]] | dict[str, Any], output: str) -> None:
    from airflow.cli.simple_table import AirflowConsole

    rows = data if isinstance(data, list) else [data]
    AirflowConsole().print_as(data=rows, output=output)


def _store():
    from airflow_provider_mlprod.hooks.store import MetricsStoreHook

    return MetricsStoreHook()


def _fail(exc: Exception) -> SystemExit:
    return SystemExit(f"{type(exc).__name__}: {exc}")


def _unreachable(hook: Any, exc: Exception) -> SystemExit:
    """A database error as one line naming the store (its location holds no password), not the driver's
    message (which may quote the connection string)."""
    return SystemExit(f"cannot use the metrics store at {hook.location}: {type(exc).__name__}")


def examples_copy(args: Any) -> None:
    copied = copy_examples(Path(args.directory), force=args.force)
    _print(copied, args.output)
    if args.output == "table":
        print(
            f"Copied {len(copied)} files. New DAGs are paused: unpause them in the UI or with "
            "`airflow dags unpause <dag_id>` (mlprod_retrain_on_degradation too, or the degraded Asset "
            "cannot schedule it)."
        )


def _models_overview(engine) -> list[dict[str, Any]]:
    from sqlalchemy import func, select

    from airflow_provider_mlprod.store import schema
    from airflow_provider_mlprod.store.migrations import ensure_schema

    ensure_schema(engine)
    m, a = schema.models, schema.aliases
    with engine.connect() as connection:
        counts = connection.execute(
            select(m.c.name, func.count(), func.max(m.c.created_at)).group_by(m.c.name).order_by(m.c.name)
        ).all()
        aliases: dict[str, list[str]] = {}
        for row in connection.execute(select(a.c.model_name, a.c.alias, a.c.version).order_by(a.c.alias)):
            aliases.setdefault(row.model_name, []).append(f"{row.alias}={row.version}")
    return [
        {
            "model": name,
            "versions": count,
            "aliases": ", ".join(aliases.get(name, [])),
            "latest_registered_at": str(latest),
        }
        for name, count, latest in counts
    ]


def models_list(args: Any) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    hook = _store()
    try:
        rows = _models_overview(hook.get_conn())
    except MlprodError as exc:
        raise _fail(exc) from None
    except SQLAlchemyError as exc:
        raise _unreachable(hook, exc) from None
    _print(rows, args.output)


def models_show(args: Any) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    hook = _store()
    try:
        registry = hook.registry()
        events = registry.events(args.name)
    except MlprodError as exc:
        raise _fail(exc) from None
    except SQLAlchemyError as exc:
        raise _unreachable(hook, exc) from None
    if not events:
        raise SystemExit(f"the metrics store knows no model {args.name!r}")
    rows = [
        {
            "at": event["at"].isoformat() if hasattr(event["at"], "isoformat") else str(event["at"]),
            "event": event["event"],
            "version": event["version"],
            "alias": event["alias"],
            "previous_version": event["previous_version"],
            "by": "/".join(str(event.get(k) or "") for k in ("dag_id", "run_id", "task_id")).strip("/"),
        }
        for event in events
    ]
    _print(rows, args.output)


def manual_identity(action: str):
    """The run identity the store records for a manual action from the CLI (who and when)."""
    from airflow_provider_mlprod.store.identity import RunIdentity

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return RunIdentity(dag_id=CLI_DAG_ID, run_id=f"manual__{now}__{getpass.getuser()}", task_id=action)


def rollback(args: Any) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    hook = _store()
    try:
        registry = hook.registry()
        target = registry.rollback_target(args.name, args.alias)
        if target is not None:
            _check_pinned_artifact(registry.get_version(args.name, target))
        promotion = registry.rollback(
            manual_identity("rollback"), name=args.name, alias=args.alias, to_version=target
        )
    except (MlprodError, OSError) as exc:  # OSError: the artifact to verify cannot be read from here
        raise _fail(exc) from None
    except SQLAlchemyError as exc:
        raise _unreachable(hook, exc) from None
    _print(promotion.to_dict(), args.output)


def _check_pinned_artifact(model: Any) -> None:
    """Refuse to point an alias at a version whose artifact no longer matches its pinned digest."""
    if not model.artifact_digest:
        return
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_mlprod.store.artifacts import check_artifact_digest

    check_artifact_digest(
        ObjectStoragePath(model.artifact_uri),
        model.artifact_digest,
        f"model {model.name!r} version {model.version!r}",
    )


def store_check(args: Any) -> None:
    from airflow_provider_mlprod.store.migrations import LATEST_VERSION, schema_version

    hook = _store()
    ok, message = hook.test_connection()
    if not ok:
        raise SystemExit(message)
    from sqlalchemy.exc import SQLAlchemyError

    try:
        version = schema_version(hook.get_conn())
    except MlprodError as exc:
        raise _fail(exc) from None
    except SQLAlchemyError as exc:
        raise _unreachable(hook, exc) from None
    _print(
        {
            "store": hook.location,
            "reachable": True,
            "schema_version": version,
            "supported_version": LATEST_VERSION,
            "up_to_date": version == LATEST_VERSION,
        },
        args.output,
    )
    if version > LATEST_VERSION:
        raise SystemExit(f"the store's schema version {version} is newer than this release supports")


def store_migrate(args: Any) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from airflow_provider_mlprod.store.migrations import ensure_schema, schema_version

    hook = _store()
    try:
        before = ensure_schema(hook.get_conn())
        after = schema_version(hook.get_conn())
    except MlprodError as exc:
        raise _fail(exc) from None
    except SQLAlchemyError as exc:
        raise _unreachable(hook, exc) from None
    _print({"store": hook.location, "schema_version_before": before, "schema_version": after}, args.output)

"""Atomic output folders: a try's files become visible all at once, or not at all, also on object storage.

Object stores cannot rename a folder, so a try never writes where a reader looks. Each try writes its
files into a folder of its own, ``<folder>/tries/<try id>/`` (the try id is the UTC time and a random
suffix), and only when every file is complete writes the small ``<folder>/manifest.json`` that points
at them. Writing one small object replaces it whole on every object store; on a local disk the
manifest is written to a temporary file and renamed over the old one. So:

- a reader that follows the manifest (:func:`read_output_manifest`, or the locations in the task's XCom
  summary, taken from the manifest) never sees a half-written try;
- a try that fails removes its own folder and leaves the manifest, hence the previous outputs, intact;
- after the manifest is written, the folders of older tries are removed (never those of newer tries: a
  stale try that finishes late leaves a later try's published files in place, and does not replace a
  manifest that points at a newer try: it discards its own folder and fails). Each try also copies its
  manifest into its own folder before publishing; a stale try that published in the same moment as a
  newer one finds the newer try's copy afterwards and publishes it again, so the last manifest written
  never points at an older try whose folder the newer one removed.

An output folder that is, or contains, an input of the task is refused before anything is written
(:func:`check_output_not_input`), so an output can never overwrite the data being read.

Errors name the file and the cause. Deterministic ones are final: a directory or a file in the way,
permission denied, a read-only file system, data the format cannot hold (an Arrow type error on a mixed
column) are ``ConfigurationError`` or ``InputDataError``. Transient ones (no space left, a reset or
refused connection, a timeout, an I/O error) are :class:`StorageUnavailableError`, which is retryable.

Locations are local paths (``str``/``os.PathLike``, ``file://`` URIs) or objects such as Airflow's
``ObjectStoragePath`` (anything with ``/``, ``open``, ``mkdir``, ``iterdir``, ``exists`` and an fsspec
``fs``).

Public API: :class:`OutputFolder`, :func:`read_output_manifest`, :func:`check_output_not_input`,
:func:`classify_storage_error`, :func:`is_transient_storage_error`, :class:`StorageUnavailableError`,
:data:`MANIFEST_NAME`.
"""

from __future__ import annotations

import datetime
import errno
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_mlprod.exceptions import ConfigurationError, InputDataError, MlprodError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
"""The manifest's name inside an output folder."""

TRIES_FOLDER = "tries"
"""The sub-folder holding one folder per try."""

MANIFEST_VERSION = 1

TRY_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
"""The shape of a generated try id; cleaning up removes only folders of this shape."""

TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ECONNRESET}
)
"""OS error numbers a retry may fix: no space left (space may be freed), quota, I/O, busy, timeouts."""

FINAL_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EINVAL})
"""OS error numbers no retry fixes: read-only file system, permission, a name too long, invalid."""


class StorageUnavailableError(MlprodError):
    """Reading or writing a file failed for a reason that may pass (no space, a lost connection);
    retryable."""


def is_transient_storage_error(exc: BaseException) -> bool:
    """Whether a retry may fix ``exc`` raised by a file system or object store."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return (
        isinstance(exc, OSError)
        and not isinstance(exc, (FileNotFoundError, PermissionError))
        and (exc.errno in TRANSIENT_ERRNOS)
    )


def classify_storage_error(exc: BaseException, name: str) -> MlprodError:
    """The provider error for a failure while writing ``name``: final when deterministic, else retryable."""
    if isinstance(exc, MlprodError):
        return exc
    kind = type(exc).__name__
    detail = (str(exc).strip().splitlines() or [kind])[0][:300]
    if isinstance(exc, IsADirectoryError):
        return ConfigurationError(f"output {name!r} cannot be written: a directory is in the way")
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return ConfigurationError(f"output {name!r} cannot be written: a file is in the way of its folder")
    if isinstance(exc, PermissionError):
        return ConfigurationError(f"output {name!r} cannot be written: permission denied")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return StorageUnavailableError(f"output {name!r}: storage unavailable, a retry may succeed ({kind})")
    if isinstance(exc, OSError):
        reason = exc.strerror or detail
        if exc.errno in FINAL_ERRNOS:
            return ConfigurationError(f"output {name!r} cannot be written: {reason}")
        if exc.errno in TRANSIENT_ERRNOS or exc.errno is None:
            return StorageUnavailableError(
                f"output {name!r} cannot be written now: {reason}; a retry may succeed"
            )
        return ConfigurationError(f"output {name!r} cannot be written: {reason}")
    if type(exc).__module__.startswith("pyarrow") or isinstance(exc, (TypeError, ValueError)):
        return InputDataError(f"output {name!r}: the data cannot be written in this format: {kind}: {detail}")
    return StorageUnavailableError(
        f"output {name!r} cannot be written: {kind}: {detail}; a retry may succeed"
    )


def describe(location: Any) -> str:
    """A location as text (a path or URI)."""
    return os.fspath(location) if isinstance(location, (str, os.PathLike)) else str(location)


def _local_path(location: Any) -> Path | None:
    """The local path of a location, or None for an object store."""
    if isinstance(location, Path):
        return location
    if isinstance(location, str):
        if location.startswith("file://"):
            return Path(location[len("file://") :])
        return None if "://" in location else Path(location)
    protocol = getattr(location, "protocol", None)
    if protocol in ("file", "local") and hasattr(location, "path"):
        return Path(str(location.path))
    return None


def _normalised(location: Any) -> str:
    local = _local_path(location)
    if local is not None:
        return str(local.expanduser().resolve())
    protocol = getattr(location, "protocol", None)
    path = getattr(location, "path", None)
    text = f"{protocol}://{str(path).lstrip('/')}" if protocol and path is not None else describe(location)
    return text.rstrip("/")


def check_output_not_input(output: Any, inputs: Iterable[Any], role: str = "output folder") -> None:
    """Refuse an output folder that is an input or contains one (it could overwrite the data being read).

    :raises ConfigurationError: naming the output and the input.
    """
    out = _normalised(output)
    for source in inputs:
        if source is None:
            continue
        given = _normalised(source)
        if given == out or given.startswith(out + "/"):
            raise ConfigurationError(
                f"{role} {describe(output)!r} is or contains the input {describe(source)!r}; write the "
                "outputs somewhere else (a sibling folder, for example), so they can never overwrite it"
            )


class OutputFolder:
    """One try's outputs in ``<folder>/tries/<try id>/``, published by ``<folder>/manifest.json``.

    Use as a context manager: files written inside become visible (through the manifest) only when the
    block ends without an error; an error removes the try's folder and is re-raised classified by
    :func:`classify_storage_error`::

        with OutputFolder(folder, inputs=[source]) as out:
            out.write("passing.csv", lambda handle: frame.to_csv(handle, index=False))
        out.locations["passing"]  # the published location, as written in the manifest

    :param folder: the output folder (local path or object such as ``ObjectStoragePath``).
    :param inputs: the task's inputs; the folder may not be or contain any of them.
    :param try_id: the try's folder name; default the UTC time and a random suffix.
    """

    def __init__(self, folder: Any, *, inputs: Iterable[Any] = (), try_id: str | None = None) -> None:
        if isinstance(folder, str) and "://" in folder and not folder.startswith("file://"):
            raise ConfigurationError(
                f"output folder {folder!r}: pass an ObjectStoragePath for an object store URI"
            )
        self.folder = _local_path(folder) if isinstance(folder, str) else folder
        check_output_not_input(self.folder, inputs)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.try_id = try_id or f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        self.try_folder = self.folder / TRIES_FOLDER / self.try_id
        self.files: dict[str, str] = {}
        self.locations: dict[str, str] = {}
        self.manifest_location = describe(self.folder / MANIFEST_NAME)
        self.extra: dict[str, Any] = {}

    def __enter__(self) -> OutputFolder:
        with self._classified(describe(self.try_folder)):
            self.try_folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        if exc is not None:
            self._remove(self.try_folder)
            if isinstance(exc, Exception):
                classified = classify_storage_error(exc, describe(self.try_folder))
                if classified is not exc:
                    raise classified from exc
            return
        published = self._published_try()
        if published is not None and TRY_ID.fullmatch(published) and published > self.try_id:
            # a stale try finishing late: a newer try already published; its manifest stays
            self._remove(self.try_folder)
            raise InputDataError(
                f"output folder {describe(self.folder)!r}: a newer try ({published}) already published its "
                f"outputs; this try's ({self.try_id}) were discarded"
            )
        payload = self._manifest_payload()
        try:
            own_copy = self.try_folder / MANIFEST_NAME  # marks this try complete
            with self._classified(describe(own_copy)), own_copy.open("wb") as handle:
                handle.write(payload)
            with self._classified(self.manifest_location):
                self._write_manifest(payload)
        except Exception:
            self._remove(self.try_folder)
            raise
        newer = self._newest_complete_try()
        if newer is not None:
            # a newer try published between the check above and this manifest (and its clean-up may have
            # removed this try's folder): publish the newer try again, so the manifest never points at
            # an older or a removed try; a newer try marks itself complete before it publishes, so one
            # of the two always sees the other
            newer_copy = self.folder / TRIES_FOLDER / newer / MANIFEST_NAME
            with self._classified(self.manifest_location), newer_copy.open("rb") as handle:
                self._write_manifest(handle.read())
            self._remove(self.try_folder)
            raise InputDataError(
                f"output folder {describe(self.folder)!r}: a newer try ({newer}) published its outputs "
                f"while this one ({self.try_id}) finished; this try's were discarded"
            )
        self._remove_older_tries()

    def _newest_complete_try(self) -> str | None:
        """The newest try after this one that marked itself complete, or None."""
        if not TRY_ID.fullmatch(self.try_id):
            return None
        try:
            children = list((self.folder / TRIES_FOLDER).iterdir())
        except Exception:
            return None
        newer = sorted(
            (name for name in map(_name_of, children) if TRY_ID.fullmatch(name) and name > self.try_id),
            reverse=True,
        )
        for name in newer:
            if (self.folder / TRIES_FOLDER / name / MANIFEST_NAME).exists():
                return name
        return None

    def _published_try(self) -> str | None:
        """The try id the current manifest points at, or None (no manifest, or one that cannot be read)."""
        try:
            with (self.folder / MANIFEST_NAME).open("rb") as handle:
                manifest = json.loads(handle.read().decode("utf-8"))
        except Exception:  # no manifest yet, or a broken one: this try replaces it
            return None
        published = manifest.get("try") if isinstance(manifest, Mapping) else None
        return published if isinstance(published, str) else None

    def write(self, key: str, name: str, writer: Any) -> str:
        """Write file ``name`` of this try with ``writer(binary handle)``; return its location.

        :param key: the file's key in the manifest (``"passing"``).
        :param name: the file name inside the try folder (``"passing.csv"``).
        """
        location = self.try_folder / name
        text = describe(location)
        with self._classified(text), location.open("wb") as handle:
            writer(handle)
        self.files[key] = f"{TRIES_FOLDER}/{self.try_id}/{name}"
        self.locations[key] = text
        return text

    def _manifest_payload(self) -> bytes:
        manifest = {
            "version": MANIFEST_VERSION,
            "try": self.try_id,
            "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "files": dict(self.files),
            **self.extra,
        }
        return json.dumps(manifest, sort_keys=True, indent=1).encode("utf-8")

    def _write_manifest(self, payload: bytes) -> None:
        target = self.folder / MANIFEST_NAME
        local = _local_path(self.folder)
        if local is not None:
            temporary = local / f".{MANIFEST_NAME}.{self.try_id}.tmp"
            try:
                with temporary.open("wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, local / MANIFEST_NAME)  # atomic on one file system
            finally:
                temporary.unlink(missing_ok=True)
        else:
            with target.open("wb") as handle:  # one small object, replaced whole by the store
                handle.write(payload)

    def _remove_older_tries(self) -> None:
        tries = self.folder / TRIES_FOLDER
        try:
            children = list(tries.iterdir())
        except Exception as exc:  # cleaning up is best effort: the published outputs are complete
            log.warning("Could not list older tries in %s: %s", describe(tries), type(exc).__name__)
            return
        current = describe(self.try_folder).rstrip("/")
        for child in children:
            name = _name_of(child)
            # Only older folders this class names: never the one just published, and never a newer try's
            # (a stale try of the same task that finishes late must not delete what a later try published;
            # try ids begin with their UTC start time, so they sort by age).
            if TRY_ID.fullmatch(name) and name < self.try_id and describe(child).rstrip("/") != current:
                self._remove(child)

    @staticmethod
    def _remove(location: Any) -> None:
        try:
            local = _local_path(location)
            if local is not None:
                shutil.rmtree(local, ignore_errors=True)
            elif location.exists():
                location.fs.rm(location.path, recursive=True)
        except Exception as exc:  # best effort: the manifest never points at a removed or partial try
            log.warning("Could not remove %s: %s", describe(location), type(exc).__name__)

    @staticmethod
    @contextmanager
    def _classified(name: str) -> Iterator[None]:
        try:
            yield
        except MlprodError:
            raise
        except Exception as exc:
            raise classify_storage_error(exc, name) from exc


def _name_of(location: Any) -> str:
    return getattr(location, "name", None) or describe(location).rstrip("/").rsplit("/", 1)[-1]


def read_output_manifest(folder: Any) -> dict[str, Any]:
    """The published outputs of ``folder``: the manifest, with ``locations`` (key to full location) added.

    :raises InputDataError: no manifest (nothing was published yet) or a malformed one.
    """
    folder = (_local_path(folder) or folder) if isinstance(folder, str) else folder
    location = folder / MANIFEST_NAME
    name = describe(location)
    try:
        with location.open("rb") as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise InputDataError(
            f"output folder {describe(folder)!r} has no {MANIFEST_NAME}: nothing was published there"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise InputDataError(f"manifest {name!r} is not valid JSON") from None
    files = manifest.get("files") if isinstance(manifest, Mapping) else None
    if not isinstance(files, Mapping):
        raise InputDataError(f"manifest {name!r} lists no files")
    manifest = dict(manifest)
    manifest["locations"] = {key: describe(folder / str(relative)) for key, relative in files.items()}
    return manifest

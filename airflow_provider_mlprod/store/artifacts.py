"""Content digests of model artifacts, pinned at registration and checked before every deployment.

A digest is ``sha256:<hex>``: for a file, the SHA-256 of its bytes, streamed; for a folder, the
SHA-256 of its files' relative paths and digests in sorted order, so renaming, adding, removing or
changing any file changes it. The path is anything with ``is_dir``, ``iterdir``, ``name`` and
``open("rb")``: a ``pathlib.Path`` or an Airflow ``ObjectStoragePath`` (``s3://``, ``gs://``, ...),
which streams the object.
"""

from __future__ import annotations

import hashlib
from typing import Any

from airflow_provider_mlprod.exceptions import InputDataError

_CHUNK = 1024 * 1024


def artifact_digest(path: Any) -> str:
    """The content digest of the file or folder at ``path``; InputDataError when it does not exist."""
    if not path.exists():
        raise InputDataError(f"artifact not found at {path}")
    return "sha256:" + _digest(path)


def check_artifact_digest(path: Any, expected: str, what: str, shown_as: str | None = None) -> str:
    """Recompute the digest of ``path`` and compare it with the pinned ``expected`` one.

    Raises InputDataError naming ``what`` (at ``shown_as``, default ``path``) when the artifact is
    gone or its content changed.
    """
    actual = artifact_digest(path)
    if actual != expected:
        raise InputDataError(
            f"the artifact of {what} at {shown_as or path} changed since it was registered (digest {actual}, "
            f"registered {expected}); refusing to deploy it: register and gate the new artifact as a new "
            "version"
        )
    return actual


def _digest(path: Any) -> str:
    hasher = hashlib.sha256()
    if path.is_dir():
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            hasher.update(f"{child.name}\0{'d' if child.is_dir() else 'f'}\0{_digest(child)}\n".encode())
        return hasher.hexdigest()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()

"""Versioned, atomic pushes to the serving root (the layout TF Serving's ``--model_base_path`` expects).

A served model lives in ``<serving_root>/<model_name>/<version>/`` where ``version`` is a positive
integer; a server serves the highest one (:mod:`components.serving_contract` lists them). A push never
modifies an existing version: it copies the SavedModel into a hidden staging directory inside
``<serving_root>/<model_name>/`` (a name with a leading dot, which no server takes for a version) and
then renames it to the next free integer.
The rename is atomic on one file system, so a server polling the directory sees either no new
version or a complete one. The staging name ends with its owner ``<pid>@<host>``; the next push
removes the staging directories of pushes whose process was killed (``components.owners``).

A push is idempotent for one model: the staging copy gets ``assets.extra/push_source.json`` (the
``source`` the caller names the model by, e.g. its train fingerprint; TF Serving ignores
``assets.extra``) before the rename, and a push whose source equals the highest version's reuses that
version instead of adding a copy. So a rerun after a crash between the push and the end of the export
stage (or a ``--force`` rerun) serves the same version. A model that is already served under an older
version, with a newer one above it, is pushed again: pushing it means "serve this one now".
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from components.owners import is_gone, owner_tag, tag_at_end
from components.serving_contract import latest_version_dir, served_versions

STAGING_PREFIX = ".push-"
# Attempts at claiming a version number when concurrent pushes race for the same one.
MAX_PUSH_ATTEMPTS = 5
# Inside a pushed version: which model it is (TF Serving loads nothing from assets.extra but warm-up data).
PUSH_SOURCE_FILE = Path("assets.extra") / "push_source.json"


@dataclass(frozen=True)
class PushResult:
    """Where a push went.

    Attributes:
        version: The integer version directory created, or reused.
        path: ``<serving_root>/<model_name>/<version>/``.
        reused: True when the highest version already held this model and nothing was copied.
    """

    version: int
    path: Path
    reused: bool = False


def read_push_source(version_dir: str | Path) -> dict | None:
    """The ``source`` a version was pushed with, or None (pushed without one, or unreadable)."""
    path = Path(version_dir) / PUSH_SOURCE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def remove_stale_staging(model_dir: Path) -> list[Path]:
    """Removes the staging directories of pushes whose process was killed (owner gone, this host).

    Args:
        model_dir: ``<serving_root>/<model_name>/``.

    Returns:
        The directories removed.
    """
    stale = [path for path in model_dir.glob(f"{STAGING_PREFIX}*") if is_gone(tag_at_end(path.name))]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def push_saved_model(
    saved_model_dir: str | Path, model_dir: str | Path, source: Mapping[str, object] | None = None
) -> PushResult:
    """Copies a SavedModel to ``<model_dir>/<max existing version + 1>/`` atomically.

    Args:
        saved_model_dir: The SavedModel directory to publish (left unchanged).
        model_dir: ``<serving_root>/<model_name>/``; created when missing.
        source: JSON-able identity of the model (e.g. ``{"train_fingerprint": ...}``), written to the
            version's ``assets.extra/push_source.json``. When the highest version has the same source,
            that version is returned (``reused``) and nothing is copied. None always pushes.

    Returns:
        The version and directory created (or reused).

    Raises:
        FileNotFoundError: If ``saved_model_dir`` has no ``saved_model.pb``.
        RuntimeError: If concurrent pushes kept claiming the same version number.
    """
    saved_model_dir, model_dir = Path(saved_model_dir), Path(model_dir)
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{saved_model_dir}: not a SavedModel (no saved_model.pb)")
    source = None if source is None else json.loads(json.dumps(dict(source)))  # as read back from disk
    latest = latest_version_dir(model_dir)
    if source is not None and latest is not None and read_push_source(latest) == source:
        return PushResult(version=int(latest.name), path=latest, reused=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(model_dir)
    staging = model_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}-{owner_tag()}"
    try:
        shutil.copytree(saved_model_dir, staging)
        if source is not None:
            (staging / PUSH_SOURCE_FILE).parent.mkdir(exist_ok=True)
            (staging / PUSH_SOURCE_FILE).write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")
        for _ in range(MAX_PUSH_ATTEMPTS):
            versions = served_versions(model_dir)
            version = (versions[-1] if versions else 0) + 1
            target = model_dir / str(version)
            try:
                # Fails (instead of merging) when another push created `target` meanwhile.
                os.rename(staging, target)
            except OSError:
                if target.exists():
                    continue
                raise
            return PushResult(version=version, path=target)
        raise RuntimeError(f"{model_dir}: could not claim a free version in {MAX_PUSH_ATTEMPTS} attempts")
    finally:
        if staging.exists():
            shutil.rmtree(staging)

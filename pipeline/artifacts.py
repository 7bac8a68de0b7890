"""The artifact store: ``<output_dir>/pipeline_root/<stage>/<fingerprint>/``.

A stage writes into a hidden temporary directory next to its final place and
the store renames it into place only when the stage has finished, so a crash
never leaves a complete-looking partial artifact. ``metadata.json`` lists every
file of the artifact with its size; an artifact counts as complete only while
all of them still exist.

What a killed run leaves behind is removed by the next run (:meth:`ArtifactStore.remove_stale`):
temporary (``.tmp-*``) and replaced (``.old-*``) directories carry their process's owner tag in
their name, work directories (``.work-<fingerprint>``) in an ``.owner`` file. Only those of a process
that has exited on this host are removed (``components.owners``); a work directory stays while its
fingerprint is incomplete (its checkpoints resume the stage) unless another run of the stage
completed after it was last used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from components.base import Artifact
from components.owners import is_gone, owner_tag, tag_at_end

PIPELINE_ROOT = "pipeline_root"
METADATA_FILE = "metadata.json"
STATUS_COMPLETED = "completed"
FINGERPRINT_LENGTH = 16
TEMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
WORK_PREFIX = ".work-"
WORK_OWNER_FILE = ".owner"


def fingerprint(stage: str, parameters: dict, input_fingerprints: dict[str, str], version: str) -> str:
    """Hash of the stage name, its parameters, its inputs' fingerprints and the package version.

    Returns:
        The first 16 hex digits of a SHA-256 over the canonical JSON of all four.
    """
    payload = json.dumps(
        {"stage": stage, "parameters": parameters, "inputs": input_fingerprints, "version": version},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def list_files(directory: Path) -> dict[str, int]:
    """Relative path -> size in bytes of every file below ``directory``."""
    return {
        str(path.relative_to(directory)): path.stat().st_size
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


class ArtifactStore:
    """Completed, in-progress and working directories of every stage under one pipeline root."""

    def __init__(self, output_dir: str | Path):
        self.root = Path(output_dir).resolve() / PIPELINE_ROOT

    def final_dir(self, stage: str, stage_fingerprint: str) -> Path:
        return self.root / stage / stage_fingerprint

    def work_dir(self, stage: str, stage_fingerprint: str) -> Path:
        """Survives crashes and reruns of the same fingerprint (checkpoints live here)."""
        return self.root / stage / f"{WORK_PREFIX}{stage_fingerprint}"

    def claim_work_dir(self, stage: str, stage_fingerprint: str) -> Path:
        """Creates (or reuses) the work directory and records this process as its user."""
        path = self.work_dir(stage, stage_fingerprint)
        path.mkdir(parents=True, exist_ok=True)
        (path / WORK_OWNER_FILE).write_text(owner_tag())
        return path

    def new_temp_dir(self, stage: str, stage_fingerprint: str) -> Path:
        path = self.root / stage / _owned_name(TEMP_PREFIX, stage_fingerprint)
        path.mkdir(parents=True)
        return path

    def load(self, stage: str, stage_fingerprint: str) -> Artifact | None:
        """The completed artifact with this fingerprint, or None when absent, unfinished or damaged."""
        path = self.final_dir(stage, stage_fingerprint)
        metadata_path = path / METADATA_FILE
        if not metadata_path.is_file():
            return None
        try:
            metadata = json.loads(metadata_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if metadata.get("status") != STATUS_COMPLETED:
            return None
        files = metadata.get("files", {})
        if not all((path / name).is_file() for name in files):
            return None
        return Artifact(stage=stage, fingerprint=stage_fingerprint, path=path, metadata=metadata)

    def latest(self, stage: str) -> Artifact | None:
        """The most recently completed artifact of ``stage``, or None."""
        stage_dir = self.root / stage
        if not stage_dir.is_dir():
            return None
        artifacts = [
            artifact
            for child in stage_dir.iterdir()
            if child.is_dir() and not child.name.startswith(".")
            for artifact in [self.load(stage, child.name)]
            if artifact is not None
        ]
        if not artifacts:
            return None
        return max(artifacts, key=lambda artifact: artifact.metadata.get("end_time", ""))

    def publish(self, temp_dir: Path, stage: str, stage_fingerprint: str, metadata: dict) -> Artifact:
        """Writes ``metadata.json`` into ``temp_dir`` and renames it to its final place.

        An existing artifact with the same fingerprint (a ``--force`` rerun) is
        moved aside first and deleted only after the new one is in place.
        """
        metadata = {**metadata, "status": STATUS_COMPLETED, "files": list_files(temp_dir)}
        (temp_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
        final = self.final_dir(stage, stage_fingerprint)
        replaced = None
        if final.exists():
            replaced = final.with_name(_owned_name(OLD_PREFIX, stage_fingerprint))
            os.rename(final, replaced)
        os.rename(temp_dir, final)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        return Artifact(stage=stage, fingerprint=stage_fingerprint, path=final, metadata=metadata)

    def remove_stale(self, started: float) -> list[Path]:
        """Removes what killed runs left in every stage directory (see the module docstring).

        Args:
            started: When this run started (``time.time()``); a directory without an owner (made by an
                older version) counts as stale only when it was last changed before then.

        Returns:
            The directories removed.
        """
        removed = []
        stage_dirs = sorted(self.root.iterdir()) if self.root.is_dir() else []
        for stage_dir in (path for path in stage_dirs if path.is_dir()):
            latest = self.latest(stage_dir.name)
            try:
                completed_at = (latest.path / METADATA_FILE).stat().st_mtime if latest else None
            except OSError:  # being replaced by a --force run
                completed_at = None
            for path in sorted(stage_dir.iterdir()):
                try:
                    stale = path.is_dir() and self._is_stale(stage_dir.name, path, started, completed_at)
                except OSError:  # removed meanwhile by another run's sweep
                    continue
                if stale:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        return removed

    def _is_stale(self, stage: str, path: Path, started: float, completed_at: float | None) -> bool:
        """Whether a hidden directory of ``stage`` belongs to an exited process and is not needed."""
        if path.name.startswith((TEMP_PREFIX, OLD_PREFIX)):
            return _owner_gone(tag_at_end(path.name), path, started)
        if not path.name.startswith(WORK_PREFIX):
            return False
        owner_file = path / WORK_OWNER_FILE
        owner = owner_file.read_text().strip() if owner_file.is_file() else None
        if not _owner_gone(owner, path, started):
            return False
        last_used = (owner_file if owner_file.is_file() else path).stat().st_mtime
        complete = self.load(stage, path.name.removeprefix(WORK_PREFIX)) is not None
        return complete or (completed_at is not None and last_used < completed_at)


def _owned_name(prefix: str, stage_fingerprint: str) -> str:
    """``<prefix><fingerprint>-<random>-<pid>@<host>``: unique, and tells whose it is."""
    return f"{prefix}{stage_fingerprint}-{uuid.uuid4().hex[:8]}-{owner_tag()}"


def _owner_gone(owner: str | None, path: Path, started: float) -> bool:
    """The owner process exited; an untagged directory counts when it predates this run."""
    if owner is None:
        return path.stat().st_mtime < started
    return is_gone(owner)

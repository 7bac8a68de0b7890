"""The artifact store: ``<output_dir>/pipeline_root/<stage>/<fingerprint>/``.

A stage writes into a hidden temporary directory next to its final place and
the store renames it into place only when the stage has finished, so a crash
never leaves a complete-looking partial artifact. ``metadata.json`` lists every
file of the artifact with its size; an artifact counts as complete only while
all of them still exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from components.base import Artifact

PIPELINE_ROOT = "pipeline_root"
METADATA_FILE = "metadata.json"
STATUS_COMPLETED = "completed"
FINGERPRINT_LENGTH = 16


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
        return self.root / stage / f".work-{stage_fingerprint}"

    def new_temp_dir(self, stage: str, stage_fingerprint: str) -> Path:
        path = self.root / stage / f".tmp-{stage_fingerprint}-{uuid.uuid4().hex[:8]}"
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
            replaced = final.with_name(f".old-{stage_fingerprint}-{uuid.uuid4().hex[:8]}")
            os.rename(final, replaced)
        os.rename(temp_dir, final)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        return Artifact(stage=stage, fingerprint=stage_fingerprint, path=final, metadata=metadata)

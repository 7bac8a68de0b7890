"""Cheap file manifests for ``DepthSource.manifest``: names, sizes and modification times, no content."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def file_state(path: Path) -> str:
    """``<size> <mtime ns>`` of the file ``path`` resolves to, or why it cannot be stat'ed."""
    try:
        info = os.stat(path)
    except OSError as err:
        return f"error {err.errno}"
    return f"{info.st_size} {info.st_mtime_ns}"


def files_manifest(paths: Iterable[Path], root: Path) -> dict:
    """``files`` (how many) and the ``sha256`` of their paths relative to ``root``, sizes and mtimes.

    Args:
        paths: The files a dataset's records are read from (missing ones included: their
            absence is part of the state).
        root: Paths are named relative to it, so moving the whole dataset keeps the manifest.
    """
    lines = sorted(f"{os.path.relpath(path, root)} {file_state(path)}\n" for path in paths)
    return {"files": len(lines), "sha256": hashlib.sha256("".join(lines).encode()).hexdigest()}

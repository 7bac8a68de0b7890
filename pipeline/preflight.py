"""Checks of what a run will write to and read from, made by the CLI before any stage runs.

The config's values are checked when it is loaded (``pipeline.config``); these check what it points
at: the output directory (and the serving root, when export runs) can be created and written, and a
``folder`` dataset's root exists (when ingest runs). A failure raises
:class:`~pipeline.config.ConfigError` naming the flag or key and where it was set. With
``mlflow.required`` an HTTP tracking server that does not answer raises
:class:`~pipeline.tracking.TrackingUnavailable` here already, within seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from components.serving_contract import resolve_serving_root
from pipeline.config import ConfigError, PipelineConfig, key_source
from pipeline.tracking import check_required_store

FOLDER_SOURCE = "folder"


def unwritable(directory: Path) -> str | None:
    """Why ``directory`` cannot be created or written (a probe file is created and removed), or None."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-"):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return None


def check_before_run(
    config: PipelineConfig,
    stages: Sequence[str],
    output_dir: Path,
    config_path: str | Path | None,
    overrides: list[str],
) -> None:
    """Raises when a directory the selected stages need, or a required tracking server, cannot be used.

    Args:
        config: The loaded config.
        stages: The stages selected on the command line.
        output_dir: ``--output-dir``.
        config_path: ``--config`` (None = the default preset), to name where a key was set.
        overrides: The ``--set`` strings, likewise.

    Raises:
        ConfigError: an output or serving directory cannot be written, a folder root is missing.
        TrackingUnavailable: ``mlflow.required`` and the HTTP tracking server does not answer.
    """
    reason = unwritable(Path(output_dir))
    if reason is not None:
        raise ConfigError(f"--output-dir {output_dir}: cannot create or write this directory ({reason})")
    if "export" in stages and config.export.serving_root:
        reason = unwritable(resolve_serving_root(config, output_dir))
        if reason is not None:
            where = key_source(["export.serving_root"], config_path, overrides)
            raise ConfigError(
                f"{where}: key 'export.serving_root' expects a writable directory, "
                f"got {config.export.serving_root!r} ({reason})"
            )
    if (
        "ingest" in stages
        and FOLDER_SOURCE in config.ingest.source_names()
        and not Path(config.ingest.folder.root).is_dir()
    ):
        where = key_source(["ingest.folder.root", "ingest.source", "ingest.sources"], config_path, overrides)
        raise ConfigError(
            f"{where}: key 'ingest.folder.root' expects an existing directory, got {config.ingest.folder.root!r}"
        )
    check_required_store(config, output_dir)

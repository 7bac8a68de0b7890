"""Checks of what a run will write to and read from, made by the CLI before any stage runs.

The config's values are checked when it is loaded (``pipeline.config``); these check what it points
at: the output directory (and the serving root, when export runs) can be created and written, and a
``folder`` dataset's root exists (when ingest runs), and so do the datasets of ``evaluate.extra_datasets``
(their preset, its folder root, or their ingest output, when evaluate runs). A failure raises
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
from pipeline.extra_datasets import entry_key, existing_artifact, extra_ingest_config
from pipeline.tracking import check_required_store

FOLDER_SOURCE = "folder"
# How to run without the extra datasets (the default preset's are the shared real samples).
WITHOUT_EXTRA_DATASETS = " (--set evaluate.extra_datasets=[] evaluates the test split alone)"


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
        ConfigError: an output or serving directory cannot be written, a folder root, an extra
            dataset's preset or its ingest output is missing.
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
    if "ingest" in stages and missing_folder_root(config):
        where = key_source(["ingest.folder.root", "ingest.source", "ingest.sources"], config_path, overrides)
        raise ConfigError(
            f"{where}: key 'ingest.folder.root' expects an existing directory, got {config.ingest.folder.root!r}"
        )
    if "evaluate" in stages:
        check_extra_datasets(config, config_path, overrides)
    check_required_store(config, output_dir)


def missing_folder_root(config: PipelineConfig) -> bool:
    """Whether the config ingests a ``folder`` source whose root is not a directory."""
    return FOLDER_SOURCE in config.ingest.source_names() and not Path(config.ingest.folder.root).is_dir()


def check_extra_datasets(
    config: PipelineConfig, config_path: str | Path | None, overrides: list[str]
) -> None:
    """Raises when an ``evaluate.extra_datasets`` entry cannot be read: its preset is missing or has no
    valid ingest section, its folder root is missing, or its ingest output has no test split.

    Raises:
        ConfigError: naming where the entry was set, the entry and the file or key.
    """
    for index, dataset in enumerate(config.evaluate.extra_datasets):
        where = key_source([entry_key(index)], config_path, overrides)
        try:
            if dataset.artifact:
                existing_artifact(index, dataset)
                continue
            extra = extra_ingest_config(config, index, dataset)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}{WITHOUT_EXTRA_DATASETS}") from None
        if missing_folder_root(extra):
            raise ConfigError(
                f"{where}: {entry_key(index)} ({dataset.name}), config {dataset.config}: key "
                f"'ingest.folder.root' expects an existing directory, got {extra.ingest.folder.root!r}"
                f"{WITHOUT_EXTRA_DATASETS}"
            )

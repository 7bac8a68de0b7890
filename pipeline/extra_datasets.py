"""The datasets the evaluate stage scores besides the test split (``evaluate.extra_datasets``).

Each entry's ingest artifact is an input of the evaluate stage, named ``dataset:<name>``
(``ExtraDatasetConfig.input_name``), so its fingerprint is part of evaluate's: adding a dataset, or
re-ingesting one, reruns evaluate and not train.

- ``config``: the entry's preset gives the ingest section (:func:`pipeline.config.with_preset_section`)
  of a config that is otherwise the run's. The ingest stage's own code ingests it, fingerprinted and
  reused like the main ingest, into ``pipeline_root/extra_ingest/<fingerprint>/``: a stage directory
  of its own (``EXTRA_INGEST_STAGE``), so that ``--stage train`` never takes it for the newest ingest.
- ``artifact``: an existing ingest output directory, used as it is. Its fingerprint is the one in
  its ``metadata.json`` (a pipeline artifact), else a hash of its files' names and sizes.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from components.base import Artifact
from components.evaluate.config import ExtraDatasetConfig
from keras_depth.data.layout import TEST, split_pattern
from pipeline.artifacts import FINGERPRINT_LENGTH, METADATA_FILE, list_files
from pipeline.config import ConfigError, PipelineConfig, with_preset_section

EXTRA_INGEST_STAGE = "extra_ingest"
INGEST_SECTION = "ingest"


@dataclass(frozen=True)
class ExtraIngest:
    """An extra dataset that the pipeline ingests.

    Attributes:
        input_name: Its key among the evaluate stage's inputs (``dataset:<name>``).
        config: The run's config with the dataset's ingest section, to run the ingest stage with.
    """

    input_name: str
    config: PipelineConfig


def entry_key(index: int) -> str:
    """``evaluate.extra_datasets[<index>]``, as errors name an entry."""
    return f"evaluate.extra_datasets[{index}]"


def extra_ingest_config(config: PipelineConfig, index: int, dataset: ExtraDatasetConfig) -> PipelineConfig:
    """``config`` with the ingest section of ``dataset.config`` (a ``config`` entry).

    Raises:
        ConfigError: naming the entry, its file and the key when the file is missing or its ingest
            section is not a valid one (or stores frames smaller than the network input).
    """
    try:
        return with_preset_section(config, dataset.config, INGEST_SECTION)
    except ConfigError as err:
        raise ConfigError(f"{entry_key(index)} ({dataset.name}), config: {err}") from None


def extra_ingests(config: PipelineConfig) -> list[ExtraIngest]:
    """The ``config`` entries of ``evaluate.extra_datasets``, in order, ready to ingest.

    Raises:
        ConfigError: see :func:`extra_ingest_config`.
    """
    return [
        ExtraIngest(dataset.input_name, extra_ingest_config(config, index, dataset))
        for index, dataset in enumerate(config.evaluate.extra_datasets)
        if dataset.config
    ]


def missing_test_split(directory: Path) -> str | None:
    """Why ``directory`` is not an ingest output with test shards, or None."""
    if not directory.is_dir():
        return "no such directory"
    pattern = split_pattern(directory, TEST)
    if not glob.glob(pattern):
        return f"no test shards {pattern}"
    return None


def existing_artifact(index: int, dataset: ExtraDatasetConfig) -> Artifact:
    """The ingest output directory of an ``artifact`` entry as an :class:`Artifact`.

    Raises:
        ConfigError: naming the entry when the directory does not exist or has no test shards.
    """
    path = Path(dataset.artifact).resolve()
    reason = missing_test_split(path)
    if reason is not None:
        raise ConfigError(
            f"{entry_key(index)}.artifact expects an ingest output directory with a test "
            f"split, got {dataset.artifact!r} ({reason})"
        )
    metadata_path = path / METADATA_FILE
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    fingerprint = metadata.get("fingerprint") or _files_fingerprint(path)
    return Artifact(
        stage=metadata.get("stage", INGEST_SECTION), fingerprint=fingerprint, path=path, metadata=metadata
    )


def existing_artifacts(config: PipelineConfig) -> dict[str, Artifact]:
    """The ``artifact`` entries of ``evaluate.extra_datasets`` by input name.

    Raises:
        ConfigError: see :func:`existing_artifact`.
    """
    return {
        dataset.input_name: existing_artifact(index, dataset)
        for index, dataset in enumerate(config.evaluate.extra_datasets)
        if dataset.artifact
    }


def _files_fingerprint(directory: Path) -> str:
    """A fingerprint of a directory not written by the pipeline: its files' relative paths and sizes."""
    payload = json.dumps(list_files(directory), sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]

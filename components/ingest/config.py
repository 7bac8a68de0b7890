"""Configuration of the ingest stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from keras_depth.config import FolderSourceConfig, SyntheticRoomsConfig

# IngestConfig fields that change how fast the records are produced, never which.
EXECUTION_FIELDS = ("direct_num_workers", "direct_running_mode", "beam_args")


@dataclass
class IngestConfig:
    """Ingest stage: sources -> validate -> resize/crop -> split -> TFRecords (Apache Beam).

    Attributes:
        source: ``synthetic_rooms`` (built-in renderer) or ``folder`` (RGB-D pairs).
        synthetic: Renderer settings for ``synthetic_rooms``.
        folder: Layout of a ``folder`` source.
        storage_height: Height (pixels) of the stored image and depth.
        storage_width: Width (pixels) of the stored image and depth.
        train_fraction: Fraction of keys hashed into ``train``.
        val_fraction: Fraction hashed into ``val``; the rest is ``test``.
        shards_per_split: Output shards per split (gzip TFRecord files).
        max_failed_fraction: The stage fails when more than this fraction of the
            records read is dead-lettered.
        direct_num_workers: DirectRunner workers (0 = number of CPU cores).
        direct_running_mode: DirectRunner mode (``multi_processing``,
            ``multi_threading`` or ``in_memory``).
        beam_args: Extra Beam pipeline options, e.g. ``--runner=FlinkRunner``.
    """

    source: str = "synthetic_rooms"
    synthetic: SyntheticRoomsConfig = field(default_factory=SyntheticRoomsConfig)
    folder: FolderSourceConfig = field(default_factory=FolderSourceConfig)
    storage_height: int = 240
    storage_width: int = 320
    train_fraction: float = 0.8
    val_fraction: float = 0.1
    shards_per_split: int = 2
    max_failed_fraction: float = 0.05
    direct_num_workers: int = 0
    direct_running_mode: str = "multi_processing"
    beam_args: list[str] = field(default_factory=list)


def output_parameters(config) -> dict:
    """The ingest settings that determine the output: ``config.ingest`` minus ``EXECUTION_FIELDS``.

    Args:
        config: The resolved ``PipelineConfig``.

    Returns:
        A plain dict (part of the stage fingerprint).
    """
    values = asdict(config.ingest)
    for name in EXECUTION_FIELDS:
        values.pop(name)
    return values

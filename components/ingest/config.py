"""Configuration of the ingest stage."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from keras_depth.config import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DiodeConfig,
    FolderSourceConfig,
    KittiDepthConfig,
    NyuLabeledConfig,
    SplitMapConfig,
    SyntheticRoomsConfig,
    TfdsSourceConfig,
)
from keras_depth.config_checks import ConfigValueError, check_at_least, check_fraction

# IngestConfig fields that change how fast the records are produced, never which.
EXECUTION_FIELDS = ("direct_num_workers", "direct_running_mode", "beam_args")
# Slack for float rounding in the check train_fraction + val_fraction <= 1.
FRACTION_TOLERANCE = 1e-9
# The names of keras_depth.sources.registry (a test keeps them equal; the registry imports TensorFlow).
SourceName = Literal["synthetic_rooms", "folder", "nyu_labeled", "kitti_depth", "diode", "tfds"]
SplitName = Literal["train", "val", "test"]
# keras_depth.data.layout.SPLITS, without importing keras_depth.data (which imports TensorFlow).
SPLITS = get_args(SplitName)


@dataclass
class SourceFeedConfig:
    """One source of a multi-source ingest (``ingest.sources``) and the splits it feeds.

    Attributes:
        source: The source's name; its settings stay in ``ingest.<name>`` (``synthetic`` for
            ``synthetic_rooms``).
        splits: The splits its records may go to. A record whose official split (the
            dataset's, or one of ``split_patterns``) is not among them is skipped and counted
            in ``stats.json``; a record without one hashes its group into these splits, with
            ``train_fraction``, ``val_fraction`` and the rest (test) renormalised over them.
        split_patterns: Per split, a regex searched (``re.search``) in each record's key,
            ``<source>/<id>`` (``folder/<path relative to folder.root>``); a match makes that
            split the record's official split, checked test, val, train in that order; ""
            = none. Lets a folder hold out a contiguous block of frames.
    """

    source: SourceName = "synthetic_rooms"
    splits: list[SplitName] = field(default_factory=lambda: list(SPLITS))
    split_patterns: SplitMapConfig = field(default_factory=SplitMapConfig)

    def validate(self) -> None:
        """Raises ``ConfigValueError`` for no or repeated splits or a pattern that is no regex."""
        if not self.splits or len(set(self.splits)) != len(self.splits):
            raise ConfigValueError("splits", f"distinct splits among {list(SPLITS)}", self.splits)
        for split in SPLITS:
            pattern = getattr(self.split_patterns, split)
            try:
                re.compile(pattern)
            except re.error as err:
                raise ConfigValueError(f"split_patterns.{split}", f"a regex ({err})", pattern) from None


@dataclass
class IngestConfig:
    """Ingest stage: sources -> validate -> resize/crop -> split -> TFRecords (Apache Beam).

    Attributes:
        source: ``synthetic_rooms`` (built-in renderer), ``folder`` (RGB-D pairs),
            ``nyu_labeled``, ``kitti_depth``, ``diode`` or ``tfds``; its settings are the
            section of the same name (``synthetic`` for ``synthetic_rooms``). Used when
            ``sources`` is empty.
        sources: Several sources in one ingest, each with the splits it feeds (e.g. NYU raw
            scenes for train and val, the labelled test frames for test); empty = ``source``
            alone, feeding every split. Groups are compared across sources after
            normalisation (``components.ingest.sources.normalize_group``): a record in train
            or val whose group holds a test record is skipped and counted in ``stats.json``.
        synthetic: Renderer settings for ``synthetic_rooms``.
        folder: Layout of a ``folder`` source.
        nyu_labeled: NYU Depth v2 labelled ``.mat`` file and official split.
        kitti_depth: KITTI annotated depth and raw roots, cameras, Eigen-format split lists.
        diode: DIODE root, scene types and official split.
        tfds: A prepared TensorFlow Datasets dataset and its split map.
        storage_height: Height (pixels) of the stored image and depth.
        storage_width: Width (pixels) of the stored image and depth.
        train_fraction: Fraction of groups (scene, drive, room; a record without a group
            is its own) hashed into ``train``, for records without an official split.
        val_fraction: Fraction hashed into ``val``; the rest is ``test``.
        val_from_train: Fraction of the groups of a dataset's official ``train`` split that
            go to ``val`` instead (hashed by group), for official splits without a val
            split (NYU labelled, DIODE); 0 keeps the official train split whole.
        shards_per_split: Output shards per split (gzip TFRecord files).
        max_failed_fraction: The stage fails when more than this fraction of the
            records read is dead-lettered.
        max_image_pixels: Images with more pixels (width x height, read from the file
            header) are dead-lettered without being decoded; the only size limit
            (Pillow's own decompression-bomb guard is bypassed).
        direct_num_workers: DirectRunner workers (0 = number of CPU cores).
        direct_running_mode: DirectRunner mode (``multi_processing``,
            ``multi_threading`` or ``in_memory``).
        beam_args: Extra Beam pipeline options, e.g. ``--runner=FlinkRunner``.
    """

    source: SourceName = "synthetic_rooms"
    sources: list[SourceFeedConfig] = field(default_factory=list)
    synthetic: SyntheticRoomsConfig = field(default_factory=SyntheticRoomsConfig)
    folder: FolderSourceConfig = field(default_factory=FolderSourceConfig)
    nyu_labeled: NyuLabeledConfig = field(default_factory=NyuLabeledConfig)
    kitti_depth: KittiDepthConfig = field(default_factory=KittiDepthConfig)
    diode: DiodeConfig = field(default_factory=DiodeConfig)
    tfds: TfdsSourceConfig = field(default_factory=TfdsSourceConfig)
    storage_height: int = 240
    storage_width: int = 320
    train_fraction: float = 0.8
    val_fraction: float = 0.1
    val_from_train: float = 0.0
    shards_per_split: int = 2
    max_failed_fraction: float = 0.05
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    direct_num_workers: int = 0
    direct_running_mode: Literal["multi_processing", "multi_threading", "in_memory"] = "multi_processing"
    beam_args: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_at_least(self, 1, "storage_height", "storage_width", "shards_per_split", "max_image_pixels")
        check_at_least(self, 0, "direct_num_workers")
        check_fraction(self, "train_fraction", "val_fraction", "val_from_train", "max_failed_fraction")
        if self.train_fraction + self.val_fraction > 1 + FRACTION_TOLERANCE:
            raise ConfigValueError(
                "val_fraction",
                f"a value <= 1 - train_fraction ({self.train_fraction!r})",
                self.val_fraction,
                ("train_fraction",),
            )
        self.check_sources()

    def check_sources(self) -> None:
        """Raises ``ConfigValueError`` naming the ``sources[i]`` entry that cannot work: a source
        listed twice, a bad entry, or several splits whose fractions are all 0; or ``source`` set
        (not the default) beside ``sources``, which would silently be ignored."""
        default_source = IngestConfig.source
        if self.sources and self.source != default_source:
            raise ConfigValueError(
                "source",
                f"the default {default_source!r} (unused) while ingest.sources lists the sources; "
                "set ingest.sources=[] to read ingest.source alone",
                self.source,
                ("sources",),
            )
        names = [feed.source for feed in self.sources]
        for index, feed in enumerate(self.sources):
            prefix = f"sources[{index}]"
            if feed.source in names[:index]:
                raise ConfigValueError(f"{prefix}.source", "a source not listed before it", feed.source)
            try:
                feed.validate()
            except ConfigValueError as err:
                raise ConfigValueError(f"{prefix}.{err.field}", err.expected, err.value) from None
            if len(feed.splits) > 1 and not sum(self.split_fractions()[split] for split in feed.splits):
                raise ConfigValueError(
                    f"{prefix}.splits",
                    "splits whose train_fraction / val_fraction / rest are not all 0",
                    feed.splits,
                    ("train_fraction", "val_fraction"),
                )

    def source_names(self) -> list[str]:
        """The sources this ingest reads, in order: those of ``sources``, else ``source``."""
        return [feed.source for feed in self.sources] or [self.source]

    def fed_splits(self) -> tuple[str, ...]:
        """The splits some source feeds, in ``SPLITS`` order (every split for ``source`` alone); an
        ingest that feeds only ``test`` is evaluation-only (``evaluate.extra_datasets``)."""
        fed = {split for feed in self.sources for split in feed.splits} if self.sources else set(SPLITS)
        return tuple(split for split in SPLITS if split in fed)

    def split_fractions(self) -> dict[str, float]:
        """Fraction of hashed groups per split: ``train_fraction``, ``val_fraction``, the rest test."""
        rest = max(0.0, 1.0 - self.train_fraction - self.val_fraction)
        return {"train": self.train_fraction, "val": self.val_fraction, "test": rest}


def output_parameters(config) -> dict:
    """What determines the ingest output: ``config.ingest`` minus ``EXECUTION_FIELDS``, plus
    ``manifest``, the source's summary of its files (``DepthSource.manifest``), so that files
    added to or changed in a dataset change the fingerprint and the stage reruns.

    Args:
        config: The resolved ``PipelineConfig``.

    Returns:
        A plain dict (part of the stage fingerprint).
    """
    from components.ingest.sources import make_ingest_source  # here: loading a config decodes nothing

    values = asdict(config.ingest)
    for name in EXECUTION_FIELDS:
        values.pop(name)
    values["manifest"] = make_ingest_source(config.ingest).manifest()
    return values

"""The ingest's source(s) and the splits each source's records feed.

``ingest.source`` names one source feeding every split; ``ingest.sources`` lists several,
each with the splits it feeds (:class:`~components.ingest.config.SourceFeedConfig`), as
Eigen et al. trained on the raw NYU scenes and tested on the 654 labelled frames:

- A record's *official* split is the first of its source's ``split_patterns`` (test, val,
  train) that its key matches, else the dataset's own (``RawRecord.official_split``). It
  is kept (``val_from_train`` applied, see ``components.ingest.split``) when the source
  feeds it, and skipped otherwise (the 795 labelled train frames of a source that feeds
  only test).
- A record without one hashes its group into the splits its source feeds, with
  ``train_fraction``, ``val_fraction`` and the rest (test) renormalised over them.
- Groups are compared across sources after :func:`normalize_group`, and a train or val
  record whose group holds a test record (of any source) is skipped: a raw NYU scene
  that a labelled test frame was taken in never feeds training.

Skipped records are counted by reason (``<source>: <why>``) in ``stats.json``
(``records_skipped``; ``records_skipped_after_read`` counts those among the records
read), never dropped silently. With ``ingest.source`` alone the same rules apply to one
source feeding every split.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import NamedTuple

import apache_beam as beam

from components.ingest.config import IngestConfig, SourceFeedConfig
from components.ingest.split import split_for_key, split_for_record
from keras_depth.data.layout import TEST, TRAIN, VAL
from keras_depth.sources.base import DepthSource, RawRecord
from keras_depth.sources.composite import CompositeSource, key_source_name
from keras_depth.sources.registry import make_source

SKIPPED_TAG = "skipped"
# Checked in this order, so a key matching several patterns is held out rather than trained on.
PATTERN_ORDER = (TEST, VAL, TRAIN)
# NYU scene names: "<room>_<number>", a part letter for scenes recorded in parts ("bedroom_0001a"),
# "_out" in the "sync" layout's folder names ("kitchen_0028b_out"); the labelled set names the scene.
_SCENE_PARTS = re.compile(r"^(.*?_\d+)[a-z]?(?:_out)?$")


def make_ingest_source(config: IngestConfig) -> DepthSource:
    """``ingest.source``, or a :class:`CompositeSource` of the ``ingest.sources``, each configured
    from its ``ingest.<name>`` section."""
    if not config.sources:
        return make_source(config.source, config)
    return CompositeSource([make_source(feed.source, config) for feed in config.sources])


def normalize_group(group: str) -> str:
    """The group name the split compares: lowercase, an NYU scene's part letter and ``_out`` removed.

    ``Kitchen_0028b_out`` (raw "sync" folder), ``kitchen_0028b`` (raw scene part) and ``kitchen_0028``
    (labelled ``scenes`` entry) all become ``kitchen_0028``; names not ending in ``_<digits>`` plus
    those suffixes (KITTI drives, 7-Scenes sequences) are only lowercased. Applying it twice changes
    nothing. The whole name is normalised, so compare scene names with scene names: a ``folder``
    source's ``group_pattern`` should capture the scene folder's name, not a longer path.
    """
    lowered = group.lower()
    match = _SCENE_PARTS.match(lowered)
    return match.group(1) if match else lowered


def split_group(record: RawRecord) -> str:
    """What the split keeps together and compares across sources: the normalised group, or the key."""
    return normalize_group(record.group) if record.group else record.key


def source_feed(key: str, config: IngestConfig) -> SourceFeedConfig:
    """The ``ingest.sources`` entry of the source that listed ``key`` (``ingest.source`` feeding
    every split when ``sources`` is empty).

    Raises:
        ValueError: when ``key`` starts with no listed source's name.
    """
    if not config.sources:
        return SourceFeedConfig(source=config.source)
    name = key_source_name(key)
    for feed in config.sources:
        if feed.source == name:
            return feed
    raise ValueError(f"{key!r}: no ingest.sources entry for source {name!r}")


def official_split(record: RawRecord, feed: SourceFeedConfig) -> str | None:
    """The split of the first of ``feed.split_patterns`` (test, val, train) the key matches, else
    the dataset's own official split (None = the split hashes the group)."""
    for split in PATTERN_ORDER:
        pattern = getattr(feed.split_patterns, split)
        if pattern and re.search(pattern, record.key):
            return split
    return record.official_split


def record_split(record: RawRecord, config: IngestConfig) -> str:
    """The split of ``record`` (see the module docstring), before checking its source feeds it.

    Args:
        record: Only ``key``, ``group`` and ``official_split`` are read.
        config: ``source``/``sources``, the fractions and ``val_from_train``.
    """
    feed = source_feed(record.key, config)
    group = split_group(record)
    official = official_split(record, feed)
    if official is not None:
        keyed = replace(record, group=group, official_split=official)
        return split_for_record(keyed, config.train_fraction, config.val_fraction, config.val_from_train)
    if len(feed.splits) == 1:
        return feed.splits[0]
    fractions = config.split_fractions()
    total = sum(fractions[split] for split in feed.splits)
    train, val = (fractions[split] / total if split in feed.splits else 0.0 for split in (TRAIN, VAL))
    return split_for_key(group, train, val)


def as_member(group: str) -> tuple[str, bool]:
    """``(group, True)``: a set element for a Beam ``AsDict`` side input."""
    return group, True


class Routed(NamedTuple):
    """Where :func:`route` sends a record.

    Attributes:
        record: The record, its group normalised; None when it is skipped.
        skipped: Why it is skipped (``<source>: <why>``); None when it is not.
        test_group: Its group (:func:`split_group`) when its split is test, else None. Train and
            val records of that group are dropped, even if this record fails a later check.
    """

    record: RawRecord | None
    skipped: str | None = None
    test_group: str | None = None


def route(record: RawRecord, config: IngestConfig) -> Routed:
    """Passes on a record whose split its source feeds, its group normalised; skips the others.

    Raises:
        ValueError: when the record's key names no ``ingest.sources`` entry.
    """
    feed = source_feed(record.key, config)
    split = record_split(record, config)
    if split not in feed.splits:
        fed = ", ".join(feed.splits)
        return Routed(None, skipped=f"{feed.source}: {split} split, not among its splits ({fed})")
    routed = replace(record, group=normalize_group(record.group)) if record.group else record
    return Routed(routed, test_group=split_group(record) if split == TEST else None)


class DropTestGroupsFn(beam.DoFn):
    """Passes on test records and the train/val records whose group holds no test record.

    ``process(element, test_groups)``: ``element`` has a ``key``, a ``split`` and a ``group`` (its
    :func:`split_group`); ``test_groups`` is a dict side input keyed by the groups of the test
    records. A dropped record's reason goes to ``SKIPPED_TAG``.
    """

    def process(self, element, test_groups: dict[str, bool]):
        if element.split != TEST and element.group in test_groups:
            source = key_source_name(element.key)
            yield beam.pvalue.TaggedOutput(
                SKIPPED_TAG, f"{source}: group holds a test record (would be {element.split})"
            )
        else:
            yield element

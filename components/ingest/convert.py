"""One key of an ingest, start to finish in a worker: load -> route -> validate -> resize and split ->
encode -> summarize (:func:`convert_key`).

Pure Python and numpy, no Beam step and no TensorFlow: the ingest graph
(:mod:`components.ingest.pipeline_beam`) runs it per key in its workers, and the benchmark's plain
single-process loop (``benchmarks/bench_ingest.py``) runs the very same function.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from components.failpoints import failpoint
from components.ingest.config import IngestConfig
from components.ingest.resize import fit_to_storage, stored_frame_box
from components.ingest.sources import record_split, route
from components.ingest.split import record_group
from components.ingest.stats import RecordSummary, summarize
from components.ingest.validate import validate_record
from keras_depth.data.layout import TEST
from keras_depth.data.schema import DepthExample, encode_example
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.composite import key_source_name


class StoredRecord(NamedTuple):
    """A record at the storage size with its split.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        record: The resized record (image uint8 (H, W, 3), depth float32 metres (H, W)).
        original_size: (height, width) in pixels before resizing.
        native_depth: Test records only (else None): the source's depth before resizing, float32
            metres (original_size), stored beside the resized one as the ground truth evaluation
            scores. Train and val records stay at the storage size only.
    """

    split: str
    record: RawRecord
    original_size: tuple[int, int]
    native_depth: np.ndarray | None = None


class Converted(NamedTuple):
    """A record ready for its shard.

    Attributes:
        key: The record's key.
        split: ``train``, ``val`` or ``test``.
        group: Its group as the split compares groups (``components.ingest.sources.split_group``).
        serialized: The ``tf.train.Example`` bytes.
        summary: What the statistics need of it.
    """

    key: str
    split: str
    group: str
    serialized: bytes
    summary: RecordSummary


class KeyResult(NamedTuple):
    """What became of one key: exactly one of ``converted``, ``dead_letter`` and ``skipped`` is set.

    Attributes:
        converted: The record to write.
        dead_letter: The dead-letter entry (``key``, ``source_path``, ``reason``) of a record that failed.
        skipped: Why the record is skipped on purpose (``<source>: <why>``).
        test_group: The record's group when it was routed to test (set even if it failed later: train
            and val records of that group are still dropped).
    """

    converted: Converted | None = None
    dead_letter: dict | None = None
    skipped: str | None = None
    test_group: str | None = None


def dead_letter_entry(key: str, source_path: str, reason: str) -> dict:
    """A dead-letter entry: ``key``, ``source_path``, ``reason``."""
    return {"key": key, "source_path": source_path, "reason": reason}


def failure_reason(error: Exception) -> str:
    """The dead-letter reason of ``error``: a :class:`RecordError`'s message, else type and message."""
    return str(error) if isinstance(error, RecordError) else f"{type(error).__name__}: {error}"


def to_stored(record: RawRecord, config: IngestConfig) -> StoredRecord:
    """Resizes a validated record to the storage size and assigns its split (by group or official
    split, among the splits its source feeds: ``components.ingest.sources.record_split``)."""
    stored = StoredRecord(
        split=record_split(record, config),
        record=fit_to_storage(record, config.storage_height, config.storage_width),
        original_size=tuple(record.depth.shape),
    )
    return keep_native_depth(stored, record.depth)


def keep_native_depth(stored: StoredRecord, source_depth: np.ndarray) -> StoredRecord:
    """A test record with the source's depth kept untouched; any other record unchanged."""
    if stored.split != TEST:
        return stored
    return stored._replace(native_depth=np.asarray(source_depth, dtype=np.float32))


def native_frame_box(stored: StoredRecord) -> tuple[float, float, float, float] | None:
    """Where the stored frame lies in ``stored.native_depth`` (see ``stored_frame_box``); None without it."""
    if stored.native_depth is None:
        return None
    return stored_frame_box(*stored.original_size, *stored.record.depth.shape)


def encode_stored(stored: StoredRecord, source_name: str) -> bytes:
    """Serialized ``tf.train.Example`` of a stored record (``keras_depth.data.schema``), from ``source_name``."""
    failpoint("ingest.encode")
    record = stored.record
    return encode_example(
        DepthExample(
            image=record.image,
            depth=record.depth,
            key=record.key,
            source=source_name,
            intrinsics=record.intrinsics,
            group=record.group,
            native_depth=stored.native_depth,
            native_frame_box=native_frame_box(stored),
        )
    )


def summarize_stored(stored: StoredRecord) -> RecordSummary:
    """The statistics summary of a stored record."""
    record = stored.record
    return summarize(
        stored.split, stored.original_size, record.depth, record.conversions, group=record_group(record)
    )


def convert_key(key: str, source: DepthSource, config: IngestConfig) -> KeyResult:
    """Loads, routes, validates, resizes, splits, encodes and summarizes the record of one key.

    Any failure of the record (a :class:`RecordError`, or any exception of a source or a file that
    is not as expected) makes it a dead letter, so one bad file never stops the others.

    Raises:
        ValueError: when the key names no ``ingest.sources`` entry (a configuration error).
    """
    try:
        record = source.load(key)
    except Exception as error:  # a failure of one record must not stop the others
        return KeyResult(dead_letter=dead_letter_entry(key, source.source_path(key), failure_reason(error)))
    routed = route(record, config)
    if routed.record is None:
        return KeyResult(skipped=routed.skipped)
    record = routed.record
    try:
        validate_record(record)
        stored = to_stored(record, config)
        converted = Converted(
            key,
            stored.split,
            record_group(record),
            encode_stored(stored, key_source_name(key)),
            summarize_stored(stored),
        )
    except Exception as error:  # as above
        return KeyResult(
            dead_letter=dead_letter_entry(key, record.source_path, failure_reason(error)),
            test_group=routed.test_group,
        )
    return KeyResult(converted=converted, test_group=routed.test_group)

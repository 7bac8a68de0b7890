"""The ingest Beam graph: source keys -> load -> validate -> resize -> split -> TFRecord shards.

Steps (Beam labels):

- ``CreateKeys`` -> ``Reshuffle`` (spreads the keys over the workers) -> ``Load``
  (``DepthSource.load``) -> ``Route`` (records of a split their source does not feed are
  skipped; ``components.ingest.sources``) -> ``Validate`` -> ``FitToStorageAndSplit`` ->
  ``DropTestGroups`` (train/val records whose group holds a test record are skipped) ->
  ``PartitionBySplit``;
- per split: ``Encode_<split>`` (``keras_depth.data.schema.encode_example``) ->
  ``Write_<split>``: ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz``; test records also carry the
  source's depth at native resolution (``depth_native/*``), which evaluation scores;
- records that fail ``Load`` or ``Validate`` leave on a dead-letter output ->
  ``dead_letter.jsonl`` (one JSON object per line, sorted by key);
- ``Summarize`` -> ``CombineStats`` (:class:`~components.ingest.stats.IngestStatsFn`)
  plus the read and failed totals and the skipped records (by the source when listing, by
  ``Route`` and ``DropTestGroups`` after reading) -> ``stats.json``;
- Beam counters ``ingest/records_read``, ``ingest/records_written_<split>``,
  ``ingest/records_failed``, ``ingest/records_skipped``;
- progress: ``CountRead`` (fused with ``Load``: each key is counted as it goes to ``Load``) counts
  the records read, and ``CountWritten_<split>``, ``CountFailed`` and ``CountSkippedRecords`` those
  finished, into a folder the stage polls
  (:mod:`components.ingest.progress`).

Everything shipped to workers (DoFns, the source, plain functions with their
arguments) is a top-level, picklable object, so the graph runs on the
DirectRunner's worker processes as well as on Flink, Spark or Dataflow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions

from components.failpoints import failpoint
from components.ingest.config import IngestConfig
from components.ingest.progress import FINISHED, READ, ProgressCounter
from components.ingest.resize import fit_to_storage, stored_frame_box
from components.ingest.sources import (
    SKIPPED_TAG,
    TEST_GROUP_TAG,
    DropTestGroupsFn,
    RouteFn,
    as_member,
    record_split,
)
from components.ingest.split import record_group
from components.ingest.stats import IngestStatsFn, RecordSummary, finalize_stats, summarize
from components.ingest.validate import validate_record
from keras_depth.data.layout import SHARD_PREFIX, SHARD_SUFFIX, SPLITS, STATS_FILE, TEST
from keras_depth.data.schema import DepthExample, encode_example
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.composite import key_source_name

METRICS_NAMESPACE = "ingest"
DEAD_LETTER_TAG = "dead_letter"
DEAD_LETTER_FILE = "dead_letter.jsonl"
# Loggers of a DirectRunner worker process (``sdk_worker_main`` runs as ``__main__``) -> level.
WORKER_LOG_LEVEL_OVERRIDES = {"__main__": "ERROR", "apache_beam.options.pipeline_options": "ERROR"}


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


def dead_letter(key: str, source_path: str, reason: str) -> beam.pvalue.TaggedOutput:
    """A dead-letter entry (``key``, ``source_path``, ``reason``) on the dead-letter output."""
    return beam.pvalue.TaggedOutput(
        DEAD_LETTER_TAG, {"key": key, "source_path": source_path, "reason": reason}
    )


class CountFn(beam.DoFn):
    """Passes elements through, counting them in the Beam metric ``ingest/<name>``.

    With a progress file, they are also counted into it (:mod:`components.ingest.progress`).
    """

    def __init__(self, name: str, progress_path: str | None = None):
        self._name = name
        self._progress_path = progress_path

    def setup(self):
        self._counter = beam.metrics.Metrics.counter(METRICS_NAMESPACE, self._name)
        self._progress = ProgressCounter(self._progress_path) if self._progress_path else None

    def process(self, element):
        self._counter.inc()
        if self._progress:
            self._progress.add()
        yield element

    def finish_bundle(self):
        if self._progress:
            self._progress.flush()


class LoadFn(beam.DoFn):
    """Loads the record of a key; any failure goes to the dead-letter output.

    A :class:`RecordError` contributes its message as the reason; any other
    exception (a bug in a source, an unexpected file) its type and message, so
    one bad file never stops the ingest of the others.
    """

    def __init__(self, source: DepthSource):
        self._source = source

    def process(self, key: str):
        try:
            yield self._source.load(key)
        except RecordError as error:
            yield dead_letter(key, self._source.source_path(key), str(error))
        except Exception as error:  # a failure of one record must not stop the others
            yield dead_letter(key, self._source.source_path(key), f"{type(error).__name__}: {error}")


class ValidateFn(beam.DoFn):
    """Passes storable records on; dead-letters the others with the failed check."""

    def process(self, record: RawRecord):
        try:
            validate_record(record)
        except RecordError as error:
            yield dead_letter(record.key, record.source_path, str(error))
        else:
            yield record


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


def split_index(stored: StoredRecord, num_partitions: int) -> int:
    """Partition function: the index of the record's split in ``SPLITS``."""
    return SPLITS.index(stored.split)


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


def encode_with_key_source(stored: StoredRecord) -> bytes:
    """:func:`encode_stored` naming the source that the record's key starts with (``<source>/<id>``)."""
    return encode_stored(stored, key_source_name(stored.record.key))


def summarize_stored(stored: StoredRecord) -> RecordSummary:
    """The statistics summary of a stored record."""
    record = stored.record
    return summarize(
        stored.split, stored.original_size, record.depth, record.conversions, group=record_group(record)
    )


def dead_letter_lines(entries: list[dict]) -> str:
    """JSON lines of the dead-letter entries, sorted by key (deterministic output)."""
    return "".join(
        json.dumps(entry, sort_keys=True) + "\n" for entry in sorted(entries, key=lambda e: e["key"])
    )


def stats_text(stats: dict) -> str:
    """``stats.json`` content."""
    return json.dumps(stats, indent=2) + "\n"


def write_single_file(texts: beam.PCollection, path: Path) -> beam.pvalue.PDone:
    """Writes the one string in ``texts`` to exactly ``path`` (no shard suffix)."""
    return texts | f"Write_{path.name}" >> beam.io.WriteToText(
        str(path), shard_name_template="", num_shards=1, append_trailing_newlines=False
    )


def pipeline_options(config: IngestConfig, extra_args: list[str]) -> PipelineOptions:
    """Beam options: DirectRunner defaults, then ``config.beam_args``, then ``extra_args``.

    Later flags win, so ``--runner=FlinkRunner`` (or any other option) in either
    list overrides the defaults.

    Args:
        config: Ingest settings (``direct_num_workers`` 0 = ``os.cpu_count()``).
        extra_args: Options from the command line (``--beam-arg``).
    """
    num_workers = config.direct_num_workers or os.cpu_count() or 1
    defaults = [
        "--runner=DirectRunner",
        f"--direct_num_workers={num_workers}",
        f"--direct_running_mode={config.direct_running_mode}",
        # Worker processes log every gRPC step at INFO; the stage logs its own progress.
        "--default_sdk_harness_log_level=WARNING",
        # Start-up warnings of every worker process about Beam itself, not this pipeline: no staged
        # main session, and the DirectRunner's own flags, which the worker does not parse.
        f"--sdk_harness_log_level_overrides={json.dumps(WORKER_LOG_LEVEL_OVERRIDES)}",
    ]
    return PipelineOptions(flags=defaults + list(config.beam_args) + list(extra_args))


def build_pipeline(
    pipeline: beam.Pipeline,
    source: DepthSource,
    keys: list[str],
    config: IngestConfig,
    output_dir: Path,
    progress_dir: str | None = None,
) -> None:
    """Adds the ingest graph to ``pipeline``.

    Args:
        pipeline: The pipeline to extend.
        source: Where records are loaded from (shipped to the workers).
        keys: The source's record keys.
        config: Ingest settings (storage size, split fractions, shards).
        output_dir: Receives ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz``,
            ``dead_letter.jsonl`` and ``stats.json``.
        progress_dir: Folder that ``CountRead`` and the final counts count records into, or None
            (:func:`components.ingest.progress.watch_ingest_progress`).
    """
    read_path, finished_path = (
        (os.path.join(progress_dir, READ), os.path.join(progress_dir, FINISHED))
        if progress_dir
        else (None, None)
    )
    keys_read = (
        pipeline
        | "CreateKeys" >> beam.Create(keys)
        | "Reshuffle" >> beam.Reshuffle()
        | "CountRead" >> beam.ParDo(CountFn("records_read", read_path))
    )
    loaded = keys_read | "Load" >> beam.ParDo(LoadFn(source)).with_outputs(DEAD_LETTER_TAG, main="records")
    routed = loaded.records | "Route" >> beam.ParDo(RouteFn(config)).with_outputs(
        SKIPPED_TAG, TEST_GROUP_TAG, main="records"
    )
    valid = routed.records | "Validate" >> beam.ParDo(ValidateFn()).with_outputs(
        DEAD_LETTER_TAG, main="records"
    )
    test_groups = (
        routed[TEST_GROUP_TAG] | "DistinctTestGroups" >> beam.Distinct() | "AsMembers" >> beam.Map(as_member)
    )
    kept = (
        valid.records
        | "FitToStorageAndSplit" >> beam.Map(to_stored, config)
        | "DropTestGroups"
        >> beam.ParDo(DropTestGroupsFn(), beam.pvalue.AsDict(test_groups)).with_outputs(
            SKIPPED_TAG, main="records"
        )
    )
    stored = kept.records
    skipped = (
        (routed[SKIPPED_TAG], kept[SKIPPED_TAG])
        | "FlattenSkipped" >> beam.Flatten()
        | "CountSkippedRecords" >> beam.ParDo(CountFn("records_skipped", finished_path))
        | "CountSkipped" >> beam.combiners.Count.PerElement()
        | "SkippedByReason" >> beam.combiners.ToDict()
    )

    partitions = stored | "PartitionBySplit" >> beam.Partition(split_index, len(SPLITS))
    for index, split in enumerate(SPLITS):
        (
            partitions[index]
            | f"Encode_{split}" >> beam.Map(encode_with_key_source)
            | f"CountWritten_{split}" >> beam.ParDo(CountFn(f"records_written_{split}", finished_path))
            | f"Write_{split}"
            >> beam.io.WriteToTFRecord(
                file_path_prefix=str(output_dir / split / SHARD_PREFIX),
                file_name_suffix=SHARD_SUFFIX,
                num_shards=config.shards_per_split,
                compression_type=CompressionTypes.GZIP,
                coder=beam.coders.BytesCoder(),
            )
        )

    failed = (
        (loaded[DEAD_LETTER_TAG], valid[DEAD_LETTER_TAG])
        | "FlattenDeadLetters" >> beam.Flatten()
        | "CountFailed" >> beam.ParDo(CountFn("records_failed", finished_path))
    )
    write_single_file(
        failed
        | "CollectDeadLetters" >> beam.combiners.ToList()
        | "FormatDeadLetters" >> beam.Map(dead_letter_lines),
        output_dir / DEAD_LETTER_FILE,
    )

    num_read = keys_read | "NumRead" >> beam.combiners.Count.Globally()
    num_failed = failed | "NumFailed" >> beam.combiners.Count.Globally()
    stats = (
        stored
        | "Summarize" >> beam.Map(summarize_stored)
        | "CombineStats" >> beam.CombineGlobally(IngestStatsFn())
        | "AddTotals"
        >> beam.Map(
            finalize_stats,
            records_read=beam.pvalue.AsSingleton(num_read),
            records_failed=beam.pvalue.AsSingleton(num_failed),
            records_skipped=source.skipped_records(),
            skipped_after_read=beam.pvalue.AsSingleton(skipped),
        )
        | "FormatStats" >> beam.Map(stats_text)
    )
    write_single_file(stats, output_dir / STATS_FILE)

"""The ingest Beam graph: source keys -> load -> validate -> resize -> split -> TFRecord shards.

Steps (Beam labels):

- ``CreateKeys`` -> ``Reshuffle`` (spreads the keys over the workers) -> ``Load``
  (``DepthSource.load``) -> ``Validate`` -> ``FitToStorageAndSplit`` -> ``PartitionBySplit``;
- per split: ``Encode_<split>`` (``keras_depth.data.schema.encode_example``) ->
  ``Write_<split>``: ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz``;
- records that fail ``Load`` or ``Validate`` leave on a dead-letter output ->
  ``dead_letter.jsonl`` (one JSON object per line, sorted by key);
- ``Summarize`` -> ``CombineStats`` (:class:`~components.ingest.stats.IngestStatsFn`)
  plus the read and failed totals -> ``stats.json``;
- Beam counters ``ingest/records_read``, ``ingest/records_written_<split>``,
  ``ingest/records_failed``.

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
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions

from components.failpoints import failpoint
from components.ingest.config import IngestConfig
from components.ingest.resize import fit_to_storage
from components.ingest.split import split_for_key
from components.ingest.stats import IngestStatsFn, RecordSummary, finalize_stats, summarize
from components.ingest.validate import validate_record
from keras_depth.data.layout import SHARD_PREFIX, SHARD_SUFFIX, SPLITS, STATS_FILE
from keras_depth.data.schema import DepthExample, encode_example
from keras_depth.sources.base import DepthSource, RawRecord, RecordError

METRICS_NAMESPACE = "ingest"
DEAD_LETTER_TAG = "dead_letter"
DEAD_LETTER_FILE = "dead_letter.jsonl"


class StoredRecord(NamedTuple):
    """A record at the storage size with its split.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        record: The resized record (image uint8 (H, W, 3), depth float32 metres (H, W)).
        original_size: (height, width) in pixels before resizing.
    """

    split: str
    record: RawRecord
    original_size: tuple[int, int]


def dead_letter(key: str, source_path: str, reason: str) -> beam.pvalue.TaggedOutput:
    """A dead-letter entry (``key``, ``source_path``, ``reason``) on the dead-letter output."""
    return beam.pvalue.TaggedOutput(
        DEAD_LETTER_TAG, {"key": key, "source_path": source_path, "reason": reason}
    )


class CountFn(beam.DoFn):
    """Passes elements through, counting them in the Beam metric ``ingest/<name>``."""

    def __init__(self, name: str):
        self._name = name

    def setup(self):
        self._counter = beam.metrics.Metrics.counter(METRICS_NAMESPACE, self._name)

    def process(self, element):
        self._counter.inc()
        yield element


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
    """Resizes a validated record to the storage size and assigns its split."""
    return StoredRecord(
        split=split_for_key(record.key, config.train_fraction, config.val_fraction),
        record=fit_to_storage(record, config.storage_height, config.storage_width),
        original_size=tuple(record.depth.shape),
    )


def split_index(stored: StoredRecord, num_partitions: int) -> int:
    """Partition function: the index of the record's split in ``SPLITS``."""
    return SPLITS.index(stored.split)


def encode_stored(stored: StoredRecord, source_name: str) -> bytes:
    """Serialized ``tf.train.Example`` of a stored record (``keras_depth.data.schema``)."""
    failpoint("ingest.encode")
    record = stored.record
    return encode_example(
        DepthExample(
            image=record.image,
            depth=record.depth,
            key=record.key,
            source=source_name,
            intrinsics=record.intrinsics,
        )
    )


def summarize_stored(stored: StoredRecord) -> RecordSummary:
    """The statistics summary of a stored record."""
    return summarize(stored.split, stored.original_size, stored.record.depth)


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
    ]
    return PipelineOptions(flags=defaults + list(config.beam_args) + list(extra_args))


def build_pipeline(
    pipeline: beam.Pipeline, source: DepthSource, keys: list[str], config: IngestConfig, output_dir: Path
) -> None:
    """Adds the ingest graph to ``pipeline``.

    Args:
        pipeline: The pipeline to extend.
        source: Where records are loaded from (shipped to the workers).
        keys: The source's record keys.
        config: Ingest settings (storage size, split fractions, shards).
        output_dir: Receives ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz``,
            ``dead_letter.jsonl`` and ``stats.json``.
    """
    keys_read = (
        pipeline
        | "CreateKeys" >> beam.Create(keys)
        | "Reshuffle" >> beam.Reshuffle()
        | "CountRead" >> beam.ParDo(CountFn("records_read"))
    )
    loaded = keys_read | "Load" >> beam.ParDo(LoadFn(source)).with_outputs(DEAD_LETTER_TAG, main="records")
    valid = loaded.records | "Validate" >> beam.ParDo(ValidateFn()).with_outputs(
        DEAD_LETTER_TAG, main="records"
    )
    stored = valid.records | "FitToStorageAndSplit" >> beam.Map(to_stored, config)

    partitions = stored | "PartitionBySplit" >> beam.Partition(split_index, len(SPLITS))
    for index, split in enumerate(SPLITS):
        (
            partitions[index]
            | f"Encode_{split}" >> beam.Map(encode_stored, source.name)
            | f"CountWritten_{split}" >> beam.ParDo(CountFn(f"records_written_{split}"))
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
        | "CountFailed" >> beam.ParDo(CountFn("records_failed"))
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
        )
        | "FormatStats" >> beam.Map(stats_text)
    )
    write_single_file(stats, output_dir / STATS_FILE)

"""The ingest Beam graph: chunks of keys -> records compressed by the workers -> committed TFRecord shards.

Design: the workers do all the per-record work and write the compressed records themselves, so no
image travels through the runner (no shuffle of image bytes), no worker imports TensorFlow (the
examples are encoded by :mod:`keras_depth.data.tfrecord_format`), and the shards are the same
bytes for any worker count or runner (:mod:`components.ingest.shards`).

Steps (Beam labels):

- ``PlanChunks`` (each shard's sorted keys cut into chunks:
  :func:`components.ingest.shards.plan_chunks`) -> ``Reshuffle`` (spreads the chunks over the
  workers) -> ``IngestChunk`` (:class:`IngestChunkFn`): per key, in key order,
  :func:`components.ingest.convert.convert_key` (load -> route: records of a split their source
  does not feed are skipped -> validate -> resize to the storage size and split -> encode ->
  summarize for the statistics), then the record is framed and compressed into the chunk's segment
  of its split, a file under ``<output>/beam-temp-ingest-<id>/``. Only keys, groups, statistics
  summaries and the segments' descriptions leave a worker;
- ``AsMembers`` (the test records' groups, a dict side input) -> ``DropTestGroups`` (train/val
  records whose group holds a test record are skipped);
- ``KeyKeptByShard`` + ``KeyFilesByShard`` + ``AllShards`` -> ``GroupByShard`` (one element per
  split and shard) -> ``CommitShards`` (:func:`components.ingest.shards.commit_shard`):
  ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz``, records sorted by key; test records also carry the
  source's depth at native resolution (``depth_native/*``), which evaluation scores;
- records that fail to load, validate or encode leave on a dead-letter output; every record read
  ends as one outcome (written, failed or skipped: ``AsWritten``, ``AsFailed``, ``AsSkipped`` and
  ``AsDropped``) -> ``FlattenOutcomes`` -> ``Tally``
  (:class:`~components.ingest.stats.IngestTallyFn`: statistics, dead letters, skips by reason)
  -> ``Finish`` (:func:`finish_ingest`, once every shard is committed): ``stats.json`` (with the
  files the source skipped when listing), ``dead_letter.jsonl`` (one JSON object per line, sorted
  by key), the temporary folder deleted;
- Beam counters ``ingest/records_read``, ``ingest/records_written_<split>``,
  ``ingest/records_failed``, ``ingest/records_skipped``;
- progress: ``IngestChunk`` counts the records read (as each key goes to load), and
  ``CommitShards``, ``CountFailed``, ``CountSkippedRecords`` and ``CountDroppedRecords`` those
  finished, into a folder the stage polls (:mod:`components.ingest.progress`).

Everything shipped to workers (DoFns, the source, plain functions with their arguments) is a
top-level, picklable object and every file goes through Beam's ``FileSystems``, so the graph runs on
the DirectRunner's worker processes as well as on Flink, Spark or Dataflow (``--runner``).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from components.ingest.config import IngestConfig
from components.ingest.convert import convert_key
from components.ingest.progress import FINISHED, READ, ProgressCounter
from components.ingest.shards import (
    Chunk,
    ChunkFile,
    SegmentWriter,
    commit_shard,
    plan_chunks,
    records_per_chunk,
    segment_path,
    shard_path,
)
from components.ingest.sources import SKIPPED_TAG, DropTestGroupsFn, as_member
from components.ingest.stats import FAILED, SKIPPED, WRITTEN, IngestTally, IngestTallyFn, RecordSummary
from keras_depth.data.layout import SPLITS, STATS_FILE
from keras_depth.sources.base import DepthSource

METRICS_NAMESPACE = "ingest"
DEAD_LETTER_TAG = "dead_letter"
DEAD_LETTER_FILE = "dead_letter.jsonl"
CHUNK_FILE_TAG = "chunk_file"
TEST_GROUP_TAG = "test_group"
# Under the output folder; ``components.ingest.verify.remove_beam_temp_dirs`` removes any left behind.
TEMP_DIR_PREFIX = "beam-temp-ingest-"
# Inputs of GroupByShard: the kept records' keys, the segments, every shard (so empty ones are written).
KEPT, FILES, SHARDS = "kept", "files", "shards"
# Loggers of a DirectRunner worker process (``sdk_worker_main`` runs as ``__main__``) -> level.
WORKER_LOG_LEVEL_OVERRIDES = {"__main__": "ERROR", "apache_beam.options.pipeline_options": "ERROR"}


class WrittenRecord(NamedTuple):
    """What leaves a worker for a record written into a segment (no image).

    Attributes:
        key: The record's key.
        split: Its split.
        group: Its group as the split compares groups.
        shard: Its shard index in the split.
        summary: What the statistics need of it.
    """

    key: str
    split: str
    group: str
    shard: int
    summary: RecordSummary


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


class IngestChunkFn(beam.DoFn):
    """Ingests a :class:`~components.ingest.shards.Chunk`: ``convert_key`` per key, in key order,
    each record written into the chunk's segment of its split.

    Outputs: a :class:`WrittenRecord` per record written (main); the
    :class:`~components.ingest.shards.ChunkFile` of each segment on ``CHUNK_FILE_TAG``; dead-letter
    entries on ``DEAD_LETTER_TAG``; skip reasons on ``SKIPPED_TAG``; test groups on ``TEST_GROUP_TAG``.

    Args:
        source: Where records are loaded from.
        config: Ingest settings.
        temp_dir: Folder of the segments.
        progress_path: File the records read are counted into, or None.
    """

    def __init__(
        self, source: DepthSource, config: IngestConfig, temp_dir: str, progress_path: str | None = None
    ):
        self._source = source
        self._config = config
        self._temp_dir = temp_dir
        self._progress_path = progress_path

    def setup(self):
        self._read = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "records_read")
        self._progress = ProgressCounter(self._progress_path) if self._progress_path else None

    def process(self, chunk: Chunk):
        writers: dict[str, SegmentWriter] = {}
        for key in chunk.keys:
            self._read.inc()
            if self._progress:
                self._progress.add()
            result = convert_key(key, self._source, self._config)
            if result.test_group is not None:
                yield beam.pvalue.TaggedOutput(TEST_GROUP_TAG, result.test_group)
            if result.dead_letter is not None:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, result.dead_letter)
            elif result.skipped is not None:
                yield beam.pvalue.TaggedOutput(SKIPPED_TAG, result.skipped)
            else:
                converted = result.converted
                split = converted.split
                if split not in writers:
                    path = segment_path(self._temp_dir, split, chunk.shard, chunk.index)
                    writers[split] = SegmentWriter(split, chunk, path)
                writers[split].add(key, converted.serialized)
                yield WrittenRecord(key, split, converted.group, chunk.shard, converted.summary)
        for split in sorted(writers):
            yield beam.pvalue.TaggedOutput(CHUNK_FILE_TAG, writers[split].close())

    def finish_bundle(self):
        if self._progress:
            self._progress.flush()


class CommitShardFn(beam.DoFn):
    """Writes one shard from its segments and the keys kept (:func:`~components.ingest.shards.commit_shard`).

    ``process(((split, shard), {KEPT: keys, FILES: chunk files, SHARDS: ...}))`` yields the shard's
    path, counting its records in ``ingest/records_written_<split>`` and in the progress file.

    Args:
        output_dir: The ingest output folder.
        num_shards: Shards per split.
        progress_path: File the records written are counted into, or None.
    """

    def __init__(self, output_dir: str, num_shards: int, progress_path: str | None = None):
        self._output_dir = output_dir
        self._num_shards = num_shards
        self._progress_path = progress_path

    def setup(self):
        self._progress = ProgressCounter(self._progress_path) if self._progress_path else None

    def process(self, element):
        (split, shard), grouped = element
        path = shard_path(self._output_dir, split, shard, self._num_shards)
        written = commit_shard(path, list(grouped[FILES]), set(grouped[KEPT]))
        beam.metrics.Metrics.counter(METRICS_NAMESPACE, f"records_written_{split}").inc(written)
        if self._progress:
            self._progress.add(written)
        yield path

    def finish_bundle(self):
        if self._progress:
            self._progress.flush()


def kept_by_shard(record: WrittenRecord) -> tuple[tuple[str, int], str]:
    """``((split, shard), key)`` of a record to write."""
    return (record.split, record.shard), record.key


def file_by_shard(chunk_file: ChunkFile) -> tuple[tuple[str, int], ChunkFile]:
    """``((split, shard), chunk_file)`` of a segment."""
    return (chunk_file.split, chunk_file.shard), chunk_file


def as_outcome(value, kind: str) -> tuple[str, object]:
    """``(kind, value)``: a record's outcome for :class:`~components.ingest.stats.IngestTallyFn`."""
    return kind, value


def written_outcome(record: WrittenRecord) -> tuple[str, RecordSummary]:
    """``(WRITTEN, summary)`` of a record written."""
    return WRITTEN, record.summary


def dead_letter_lines(entries: list[dict]) -> str:
    """JSON lines of the dead-letter entries, sorted by key (deterministic output)."""
    return "".join(
        json.dumps(entry, sort_keys=True) + "\n" for entry in sorted(entries, key=lambda e: e["key"])
    )


def write_text(path: str, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` whole (a retry writes it again)."""
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as file:
        file.write(text.encode("utf-8"))


def finish_ingest(
    tally: IngestTally,
    output_dir: str,
    temp_dir: str,
    records_skipped: dict[str, int],
    committed: list[str],
) -> None:
    """The last step, once every shard is committed: writes ``stats.json`` and ``dead_letter.jsonl``
    and deletes the segments' temporary folder.

    Args:
        tally: What became of every record read.
        output_dir: The ingest output folder.
        temp_dir: The segments' folder.
        records_skipped: Files the source passed over when listing, by reason.
        committed: The shard files written (a side input: makes this step wait for them).
    """
    write_text(
        FileSystems.join(output_dir, STATS_FILE), json.dumps(tally.report(records_skipped), indent=2) + "\n"
    )
    write_text(FileSystems.join(output_dir, DEAD_LETTER_FILE), dead_letter_lines(tally.dead_letters))
    if FileSystems.exists(temp_dir):
        FileSystems.delete([temp_dir])


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
        progress_dir: Folder that ``IngestChunk`` and the final counts count records into, or None
            (:func:`components.ingest.progress.watch_ingest_progress`).
    """
    read_path, finished_path = (
        (os.path.join(progress_dir, READ), os.path.join(progress_dir, FINISHED))
        if progress_dir
        else (None, None)
    )
    output = str(output_dir)
    temp_dir = FileSystems.join(output, f"{TEMP_DIR_PREFIX}{uuid.uuid4().hex}")
    num_shards = config.shards_per_split
    chunks = plan_chunks(keys, num_shards, records_per_chunk(len(keys)))
    ingested = (
        pipeline
        | "PlanChunks" >> beam.Create(chunks, reshuffle=False)
        | "Reshuffle" >> beam.Reshuffle()
        | "IngestChunk"
        >> beam.ParDo(IngestChunkFn(source, config, temp_dir, read_path)).with_outputs(
            CHUNK_FILE_TAG, DEAD_LETTER_TAG, SKIPPED_TAG, TEST_GROUP_TAG, main="records"
        )
    )
    test_groups = ingested[TEST_GROUP_TAG] | "AsMembers" >> beam.Map(as_member)  # repeats are harmless
    kept = ingested.records | "DropTestGroups" >> beam.ParDo(
        DropTestGroupsFn(), beam.pvalue.AsDict(test_groups)
    ).with_outputs(SKIPPED_TAG, main="records")

    shards = [((split, shard), None) for split in SPLITS for shard in range(num_shards)]
    committed = (
        {
            KEPT: kept.records | "KeyKeptByShard" >> beam.Map(kept_by_shard),
            FILES: ingested[CHUNK_FILE_TAG] | "KeyFilesByShard" >> beam.Map(file_by_shard),
            SHARDS: pipeline | "AllShards" >> beam.Create(shards, reshuffle=False),
        }
        | "GroupByShard" >> beam.CoGroupByKey()
        | "CommitShards" >> beam.ParDo(CommitShardFn(output, num_shards, finished_path))
    )

    failed = (
        ingested[DEAD_LETTER_TAG]
        | "CountFailed" >> beam.ParDo(CountFn("records_failed", finished_path))
        | "AsFailed" >> beam.Map(as_outcome, FAILED)
    )
    # Each branch counted where it is produced (no Flatten of its own: one stage fewer).
    skipped = ingested[SKIPPED_TAG] | "CountSkippedRecords" >> beam.ParDo(
        CountFn("records_skipped", finished_path)
    )
    dropped = kept[SKIPPED_TAG] | "CountDroppedRecords" >> beam.ParDo(
        CountFn("records_skipped", finished_path)
    )
    written = kept.records | "AsWritten" >> beam.Map(written_outcome)
    (
        (
            written,
            failed,
            skipped | "AsSkipped" >> beam.Map(as_outcome, SKIPPED),
            dropped | "AsDropped" >> beam.Map(as_outcome, SKIPPED),
        )
        | "FlattenOutcomes" >> beam.Flatten()
        | "Tally" >> beam.CombineGlobally(IngestTallyFn())
        | "Finish"
        >> beam.Map(
            finish_ingest,
            output,
            temp_dir,
            records_skipped=source.skipped_records(),
            committed=beam.pvalue.AsList(committed),
        )
    )

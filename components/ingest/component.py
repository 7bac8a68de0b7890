"""The ingest stage: run the Beam pipeline, verify what it wrote, report.

``run`` lists the source's keys, runs :func:`~components.ingest.pipeline_beam.build_pipeline`
(DirectRunner by default, any Beam runner through ``beam_args``) into the
stage's output directory, logging its progress on the DirectRunner
(:mod:`components.ingest.progress`), then checks the artifact (every record written or
dead-lettered, ``stats.json`` agreeing with the shards, the failed fraction
under ``ingest.max_failed_fraction``) before saving a contact sheet.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import apache_beam as beam
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter

from components.base import StageContext
from components.ingest.config import IngestConfig
from components.ingest.pipeline_beam import (
    DEAD_LETTER_FILE,
    METRICS_NAMESPACE,
    build_pipeline,
    pipeline_options,
)
from components.ingest.progress import watch_ingest_progress
from components.ingest.sources import make_ingest_source
from components.ingest.split import check_fractions, check_split_sizes
from components.ingest.verify import (
    check_consistency,
    check_failed_fraction,
    count_split_records,
    read_dead_letters,
    remove_beam_temp_dirs,
    split_shards,
)
from components.tracking import best_effort
from keras_depth.data.layout import SPLITS, STATS_FILE, TRAIN
from keras_depth.data.reader import COMPRESSION
from keras_depth.data.schema import decode_example
from keras_depth.sources.base import RawRecord
from keras_depth.sources.contact_sheet import save_contact_sheet

CONTACT_SHEET_FILE = "contact_sheet.png"
CONTACT_SHEET_RECORDS = 8
CONTACT_SHEET_RECORDS_PER_ROW = 2
TRACKING_PREFIX = "ingest"


def check_config(config: IngestConfig) -> None:
    """Raises ValueError naming the ``ingest.*`` field that cannot work."""
    check_fractions(config.train_fraction, config.val_fraction, config.val_from_train)
    for name in ("storage_height", "storage_width", "shards_per_split", "max_image_pixels"):
        if getattr(config, name) < 1:
            raise ValueError(f"ingest.{name} must be at least 1, got {getattr(config, name)}")
    if not 0.0 <= config.max_failed_fraction <= 1.0:
        raise ValueError(f"ingest.max_failed_fraction must be in [0, 1], got {config.max_failed_fraction}")
    try:
        config.check_sources()
    except ValueError as err:
        raise ValueError(f"ingest.{err}") from None


def metric_counters(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """The ``ingest`` Beam counters by name (committed values; empty if the runner reports none)."""
    counters: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + int(value or 0)
    return counters


def save_ingest_contact_sheet(output_dir: Path, split_counts: dict[str, int], num_shards: int) -> Path:
    """Saves ``contact_sheet.png``: the first records of ``train`` (or of the first non-empty split).

    Args:
        output_dir: The ingest output (with at least one record written).
        split_counts: Records per split.
        num_shards: Shards per split.

    Returns:
        The PNG's path.
    """
    split = TRAIN if split_counts[TRAIN] else next(name for name in SPLITS if split_counts[name])
    shards = [str(path) for path in split_shards(output_dir, split, num_shards)]
    serialized = tf.data.TFRecordDataset(shards, compression_type=COMPRESSION).take(CONTACT_SHEET_RECORDS)
    examples = map(decode_example, serialized.as_numpy_iterator())
    records = [RawRecord(e.key, e.key, e.image, e.depth, e.intrinsics) for e in examples]
    return save_contact_sheet(
        records,
        output_dir / CONTACT_SHEET_FILE,
        records_per_row=CONTACT_SHEET_RECORDS_PER_ROW,
        title=f"ingest: first {len(records)} {split} records (RGB | depth)",
    )


@best_effort
def log_to_mlflow(counts: dict[str, int], output_dir: Path) -> None:
    """Logs the counts as ``ingest/<name>`` metrics and stats + contact sheet as artifacts."""
    import mlflow

    for name, value in counts.items():
        mlflow.log_metric(f"{TRACKING_PREFIX}/{name}", value)
    for name in (STATS_FILE, CONTACT_SHEET_FILE):
        mlflow.log_artifact(str(output_dir / name), artifact_path=TRACKING_PREFIX)


def run(ctx: StageContext) -> dict:
    """Ingests the configured source into gzip TFRecord shards in ``ctx.output_dir``.

    Writes ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz`` for train, val and test,
    ``stats.json``, ``dead_letter.jsonl`` and ``contact_sheet.png``.

    Returns:
        ``records_read``, ``records_failed`` and the record count of each split.

    Raises:
        ValueError: when the ingest config is unusable or the source lists no
            record or a key twice.
        RuntimeError: when the written artifact is inconsistent, or more than
            ``ingest.max_failed_fraction`` of the records failed (the dead-letter
            file is then kept in ``ctx.work_dir``).
    """
    config = ctx.config.ingest
    check_config(config)
    source = make_ingest_source(config)
    keys = source.list_keys()
    if not keys:
        raise ValueError(f"ingest source '{source.name}' lists no records; check its ingest.* settings")
    if len(set(keys)) != len(keys):
        duplicates = sorted(key for key, count in Counter(keys).items() if count > 1)
        raise ValueError(f"ingest source '{source.name}' lists duplicate keys: {duplicates[:5]}")
    options = pipeline_options(config, ctx.beam_args)
    ctx.log.info(
        "ingest: %d records to process from '%s' -> %dx%d, %d shards per split",
        len(keys),
        source.name,
        config.storage_height,
        config.storage_width,
        config.shards_per_split,
    )
    started = time.monotonic()
    with watch_ingest_progress(options, len(keys), ctx.log) as progress_path:
        pipeline = beam.Pipeline(options=options)
        build_pipeline(pipeline, source, keys, config, ctx.output_dir, progress_path)
        result = pipeline.run()
        result.wait_until_finish()
    seconds = time.monotonic() - started

    for leftover in remove_beam_temp_dirs(ctx.output_dir):
        ctx.log.info("ingest: removed Beam temporary output %s", leftover)
    split_counts = count_split_records(ctx.output_dir, config.shards_per_split)
    dead_letters = read_dead_letters(ctx.output_dir)
    stats = json.loads((ctx.output_dir / STATS_FILE).read_text())
    check_consistency(len(keys), split_counts, len(dead_letters), stats, metric_counters(result))
    kept_dead_letters = ctx.work_dir / DEAD_LETTER_FILE
    try:
        check_failed_fraction(dead_letters, len(keys), config.max_failed_fraction, kept_dead_letters)
    except RuntimeError:
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.output_dir / DEAD_LETTER_FILE, kept_dead_letters)
        raise
    check_split_sizes(stats, ctx.log, config.fed_splits())
    if stats["records_skipped"]:
        ctx.log.info(
            "ingest: records skipped on purpose (stats.json records_skipped): %s", stats["records_skipped"]
        )

    save_ingest_contact_sheet(ctx.output_dir, split_counts, config.shards_per_split)
    counts = {"records_read": len(keys), "records_failed": len(dead_letters), **split_counts}
    ctx.log.info(
        "ingest: read %d, written %s, failed %d in %.1f s (%.1f records/s)",
        len(keys),
        " ".join(f"{split}={split_counts[split]}" for split in SPLITS),
        len(dead_letters),
        seconds,
        len(keys) / seconds,
    )
    if stats["conversions"]:
        ctx.log.info(
            "ingest: records converted to be stored (stats.json conversions): %s",
            ", ".join(f"{name}={count}" for name, count in stats["conversions"].items()),
        )
    if ctx.tracking:
        log_to_mlflow(counts, ctx.output_dir)
    return counts

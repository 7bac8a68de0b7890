"""End-to-end tests of the ingest stage on synthetic scenes (real Beam DirectRunner).

The 12-scene ingest runs once per module, in one in-process worker with MLflow
tracking on (``tests/components/ingest/test_worker_equality.py`` compares in-process, one
and two worker processes).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from components.ingest import STAGE
from components.ingest.pipeline_beam import pipeline_options
from components.ingest.split import split_for_key
from keras_depth.config import ModelConfig
from keras_depth.data.layout import SPLITS
from keras_depth.data.reader import count_records, list_shards, make_dataset
from keras_depth.data.schema import decode_example
from keras_depth.sources.registry import make_source
from pipeline.tracking import pipeline_run

NUM_SCENES = 12
STORAGE_SIZE = (48, 64)
SHARD_NAMES = ["data-00000-of-00002.tfrecord.gz", "data-00001-of-00002.tfrecord.gz"]
OUTPUT_NAMES = {"train", "val", "test", "stats.json", "dead_letter.jsonl", "contact_sheet.png"}


class ListHandler(logging.Handler):
    """Keeps the formatted log lines."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def read_split(output_dir: Path, split: str) -> list:
    """The decoded examples of one split."""
    shards = list_shards(str(output_dir / split / "*.tfrecord.gz"))
    records = tf.data.TFRecordDataset(shards, compression_type="GZIP")
    return [decode_example(serialized) for serialized in records.as_numpy_iterator()]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory, small_config, make_context):
    """One tracked ingest of 12 synthetic scenes: (context, returned counts, log lines, MLflow run id)."""
    root = tmp_path_factory.mktemp("synthetic")
    context = make_context(root, small_config(), tracking=True)
    handler = ListHandler()
    context.log.addHandler(handler)
    context.log.setLevel(logging.INFO)
    context.config.mlflow.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    try:
        with pipeline_run(context.config, root, ["ingest"]) as run_id:
            counts = STAGE.run(context)
    finally:
        context.log.removeHandler(handler)
    return context, counts, handler.lines, run_id, root


def test_writes_every_scene_into_named_shards(synthetic_run):
    context, counts, _, _, _ = synthetic_run
    output_dir = context.output_dir
    assert {path.name for path in output_dir.iterdir()} == OUTPUT_NAMES
    for split in SPLITS:
        assert sorted(path.name for path in (output_dir / split).iterdir()) == SHARD_NAMES
    assert not list(output_dir.rglob("beam-temp-*"))
    assert counts["records_read"] == NUM_SCENES and counts["records_failed"] == 0
    assert sum(counts[split] for split in SPLITS) == NUM_SCENES
    assert (output_dir / "dead_letter.jsonl").read_text() == ""
    assert (output_dir / "contact_sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_records_follow_the_schema_and_the_hash_split(synthetic_run):
    context, counts, _, _, _ = synthetic_run
    keys = make_source("synthetic_rooms", context.config.ingest).list_keys()
    seen = []
    for split in SPLITS:
        examples = read_split(context.output_dir, split)
        assert len(examples) == counts[split]
        for example in examples:
            assert split_for_key(example.key, 0.8, 0.1) == split
            assert example.image.shape == (*STORAGE_SIZE, 3) and example.image.dtype == np.uint8
            assert example.depth.shape == STORAGE_SIZE and (example.depth > 0).any()
            assert example.source == "synthetic_rooms" and example.intrinsics is not None
            seen.append(example.key)
    assert sorted(seen) == sorted(keys)


def test_stats_match_the_shards(synthetic_run):
    context, counts, _, _, _ = synthetic_run
    stats = json.loads((context.output_dir / "stats.json").read_text())
    for split in SPLITS:
        shards = str(context.output_dir / split / "*.tfrecord.gz")
        assert stats["counts"][split] == count_records(shards) == counts[split]
    assert (stats["records_read"], stats["records_written"], stats["records_failed"]) == (
        NUM_SCENES,
        NUM_SCENES,
        0,
    )
    assert stats["image_sizes"] == {"48x64": NUM_SCENES}
    depths = [example.depth for split in SPLITS for example in read_split(context.output_dir, split)]
    valid_fractions = [float((depth > 0).mean()) for depth in depths]
    assert stats["valid_fraction_mean"] == pytest.approx(np.mean(valid_fractions))
    histogram = stats["depth_histogram"]
    assert histogram["range_m"] == [0.0, 10.0] and len(histogram["bin_edges_m"]) == 101
    assert sum(histogram["counts"]) == sum(int((depth > 0).sum()) for depth in depths)


def test_make_dataset_reads_a_batch(synthetic_run):
    context, _, _, _, _ = synthetic_run
    config = context.config
    config.model = ModelConfig(input_height=40, input_width=56, output_height=10, output_width=14)
    pattern = str(context.output_dir / "*" / "*.tfrecord.gz")
    image, depth = next(iter(make_dataset(pattern, config, training=False, batch_size=2)))
    assert image.shape == (2, 40, 56, 3) and depth.shape == (2, 10, 14, 1)


def test_logs_progress_and_summary(synthetic_run):
    _, counts, lines, _, _ = synthetic_run
    assert any(f"{NUM_SCENES} records to process" in line for line in lines)
    written = " ".join(f"{split}={counts[split]}" for split in SPLITS)
    assert any(f"read {NUM_SCENES}, written {written}, failed 0 in" in line for line in lines)


def test_tracking_logs_metrics_and_artifacts(synthetic_run):
    _, counts, _, run_id, root = synthetic_run
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    metrics = client.get_run(run_id).data.metrics
    assert metrics == {f"ingest/{name}": float(value) for name, value in counts.items()}
    artifacts = {artifact.path for artifact in client.list_artifacts(run_id, "ingest")}
    assert artifacts == {"ingest/stats.json", "ingest/contact_sheet.png"}


def test_parameters_leave_out_execution_fields(small_config):
    parameters = STAGE.parameters(small_config())
    assert not {"direct_num_workers", "direct_running_mode", "beam_args"} & set(parameters)
    assert parameters["storage_height"] == 48 and parameters["synthetic"]["num_scenes"] == NUM_SCENES
    faster = small_config(direct_num_workers=8, direct_running_mode="multi_threading", beam_args=["--a=b"])
    assert STAGE.parameters(faster) == parameters
    assert STAGE.parameters(small_config(storage_height=24)) != parameters


def test_beam_options_default_to_direct_runner_and_can_be_overridden(small_config):
    config = small_config(direct_num_workers=0, direct_running_mode="multi_processing")
    options = pipeline_options(config.ingest, [])
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert options.view_as(DirectOptions).direct_num_workers == os.cpu_count()
    assert options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    config.ingest.beam_args = ["--direct_num_workers=3", "--runner=SparkRunner"]
    options = pipeline_options(config.ingest, ["--runner=FlinkRunner"])
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    assert options.view_as(DirectOptions).direct_num_workers == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_fraction": 0.9, "val_fraction": 0.2}, "must be at most 1"),
        ({"shards_per_split": 0}, "ingest.shards_per_split must be at least 1"),
        ({"max_image_pixels": 0}, "ingest.max_image_pixels must be at least 1"),
        ({"max_failed_fraction": 1.5}, r"ingest.max_failed_fraction must be in \[0, 1\]"),
    ],
)
def test_unusable_config_is_rejected_before_running(small_config, make_context, tmp_path, overrides, message):
    context = make_context(tmp_path, small_config(**overrides))
    with pytest.raises(ValueError, match=message):
        STAGE.run(context)
    assert not any(context.output_dir.iterdir())

"""Tiny train-stage set-up: a small ingest artifact written with the real schema, a small config, contexts.

The networks are the real ones at a tiny size: 64x80 input (the coarse network needs at least 63x63),
14x18 output (the fine1 map size, so no crop or pad), width multiplier 0.125, 16 fc units.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.base import Artifact, StageContext
from components.train.config import TrainConfig
from keras_depth.config import DataConfig, ModelConfig
from keras_depth.data.schema import DepthExample, encode_example
from pipeline.config import PipelineConfig

STORAGE_HEIGHT, STORAGE_WIDTH = 72, 96
SPLIT_SIZES = {"train": 24, "val": 8, "test": 4}
SHARDS_PER_SPLIT = 2
INGEST_FINGERPRINT = "0123456789abcdef"
INVALID_FRACTION = 0.05
BATCH_SIZE = 4
COARSE_SAMPLES = 24  # 6 steps of 4: epochs of 4 + 2 steps
FINE_SAMPLES = 20  # 5 steps of 4: epochs of 4 + 1 steps
STEPS_PER_EPOCH = 4
GZIP = tf.io.TFRecordOptions(compression_type="GZIP")


def synthetic_example(rng: np.random.Generator, key: str) -> DepthExample:
    """A learnable pair: a tilted plane in depth (1..6 m) whose brightness falls with distance, 5% holes."""
    rows = np.linspace(0.0, 1.0, STORAGE_HEIGHT)[:, np.newaxis]
    cols = np.linspace(0.0, 1.0, STORAGE_WIDTH)[np.newaxis, :]
    near, slope = rng.uniform(1.0, 3.0), rng.uniform(0.5, 3.0)
    depth = (near + slope * (0.7 * rows + 0.3 * cols)).astype(np.float32)
    depth[rng.random(depth.shape) < INVALID_FRACTION] = 0.0
    brightness = 255.0 * (1.0 - np.clip(depth, 0.0, 6.0) / 6.5)
    image = brightness[..., np.newaxis] * rng.uniform(0.6, 1.0, size=3) + rng.normal(
        0.0, 8.0, (*depth.shape, 3)
    )
    return DepthExample(image=np.clip(image, 0, 255).astype(np.uint8), depth=depth, key=key, source="test")


def write_ingest_artifact(root: Path, sizes: dict[str, int] = SPLIT_SIZES) -> Path:
    """Writes ``root/<split>/data-SSSSS-of-NNNNN.tfrecord.gz`` shards and ``root/stats.json``.

    Returns:
        ``root``.
    """
    rng = np.random.default_rng(0)
    for split, size in sizes.items():
        split_dir = root / split
        split_dir.mkdir(parents=True)
        for shard in range(SHARDS_PER_SPLIT):
            path = split_dir / f"data-{shard:05d}-of-{SHARDS_PER_SPLIT:05d}.tfrecord.gz"
            with tf.io.TFRecordWriter(str(path), options=GZIP) as writer:
                for index in range(shard, size, SHARDS_PER_SPLIT):
                    writer.write(encode_example(synthetic_example(rng, f"{split}/{index}")))
    (root / "stats.json").write_text(json.dumps({"counts": sizes}))
    return root


def tiny_config(**train_overrides) -> PipelineConfig:
    """A pipeline config that trains the tiny networks for a handful of steps (``train`` overridable)."""
    train = dataclasses.replace(
        TrainConfig(
            strategy="default",
            coarse_samples=COARSE_SAMPLES,
            fine_samples=FINE_SAMPLES,
            steps_per_epoch=STEPS_PER_EPOCH,
            checkpoint_every_steps=2,
        ),
        **train_overrides,
    )
    return PipelineConfig(
        preset="test_tiny",
        model=ModelConfig(
            input_height=64,
            input_width=80,
            output_height=14,
            output_width=18,
            width_multiplier=0.125,
            fc_units=16,
        ),
        data=DataConfig(batch_size=BATCH_SIZE, shuffle_buffer=16, num_parallel_reads=2, deterministic=True),
        train=train,
    )


def make_context(
    config: PipelineConfig, ingest_dir: Path, output_dir: Path, work_dir: Path, tracking: bool = False
) -> StageContext:
    """A stage context reading ``ingest_dir``, writing into ``output_dir`` and backing up into ``work_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    artifact = Artifact(stage="ingest", fingerprint=INGEST_FINGERPRINT, path=ingest_dir, metadata={})
    return StageContext(
        config=config,
        output_dir=output_dir,
        work_dir=work_dir,
        inputs={"ingest": artifact},
        run_root=output_dir.parent,
        fingerprint="train-test",
        tracking=tracking,
        log=logging.getLogger("keras_depth.train.test"),
    )


class CrashAfter(keras.callbacks.Callback):
    """Raises :class:`CrashAfter.Crash` after ``batches`` training batches (test-only failure injection).

    Args:
        batches: Training batches (optimizer steps) before the crash, counted over ``fit`` calls.
    """

    class Crash(RuntimeError):
        """The injected failure."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.batches = batches
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.batches:
            raise CrashAfter.Crash(f"crash after {self.seen} batches")


@pytest.fixture(scope="session")
def ingest_dir(tmp_path_factory) -> Path:
    """A small ingest artifact shared by the tests (read-only)."""
    return write_ingest_artifact(tmp_path_factory.mktemp("ingest"))


# The helpers as fixtures: test modules cannot import this conftest (pytest's importlib mode).
@pytest.fixture
def tiny():
    """:func:`tiny_config`."""
    return tiny_config


@pytest.fixture
def context():
    """:func:`make_context`."""
    return make_context


@pytest.fixture
def crash_after():
    """:class:`CrashAfter`."""
    return CrashAfter


@pytest.fixture
def write_ingest():
    """:func:`write_ingest_artifact`."""
    return write_ingest_artifact

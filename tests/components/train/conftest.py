"""Tiny train-stage set-up: a small ingest artifact written with the real schema, a small config, contexts.

The networks are the shared tiny model of ``tests/conftest.py`` (64x80 input, 14x18 output, 16 fc
units) at twice its width (multiplier 0.125); shards and contexts come from its helpers too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from components.base import Artifact, StageContext
from components.train.config import TrainConfig
from keras_depth.config import DataConfig, ModelConfig
from keras_depth.data.schema import DepthExample
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
WIDTH_MULTIPLIER = 0.125


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


def write_ingest_artifact(write_records, root: Path, sizes: dict[str, int] = SPLIT_SIZES) -> Path:
    """Writes ``root/<split>/data-SSSSS-of-NNNNN.tfrecord.gz`` shards (``write_records``) and ``root/stats.json``.

    Returns:
        ``root``.
    """
    rng = np.random.default_rng(0)
    for split, size in sizes.items():
        examples = [synthetic_example(rng, f"{split}/{index}") for index in range(size)]
        write_records(root / split, examples, SHARDS_PER_SPLIT)
    (root / "stats.json").write_text(json.dumps({"counts": sizes}))
    return root


def tiny_config(model: ModelConfig, **train_overrides) -> PipelineConfig:
    """A pipeline config that trains ``model`` for a handful of steps (``train`` overridable)."""
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
        model=model,
        data=DataConfig(batch_size=BATCH_SIZE, shuffle_buffer=16, num_parallel_reads=2, deterministic=True),
        train=train,
    )


def make_context(
    stage_context,
    config: PipelineConfig,
    ingest_dir: Path,
    output_dir: Path,
    work_dir: Path,
    tracking: bool = False,
) -> StageContext:
    """A stage context reading ``ingest_dir``, writing into ``output_dir`` and backing up into ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    artifact = Artifact(stage="ingest", fingerprint=INGEST_FINGERPRINT, path=ingest_dir, metadata={})
    return stage_context(
        config,
        output_dir,
        inputs={"ingest": artifact},
        work_dir=work_dir,
        fingerprint="train-test",
        tracking=tracking,
        logger="keras_depth.train.test",
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
def ingest_dir(tmp_path_factory, write_records) -> Path:
    """A small ingest artifact shared by the tests (read-only)."""
    return write_ingest_artifact(write_records, tmp_path_factory.mktemp("ingest"))


# The helpers as fixtures: test modules cannot import this conftest (pytest's importlib mode).
@pytest.fixture
def tiny(tiny_model):
    """:func:`tiny_config` of the shared tiny model at ``WIDTH_MULTIPLIER``."""
    return functools.partial(tiny_config, dataclasses.replace(tiny_model, width_multiplier=WIDTH_MULTIPLIER))


@pytest.fixture
def context(stage_context):
    """:func:`make_context`."""
    return functools.partial(make_context, stage_context)


@pytest.fixture
def crash_after():
    """:class:`CrashAfter`."""
    return CrashAfter


@pytest.fixture
def write_ingest(write_records):
    """:func:`write_ingest_artifact`."""
    return functools.partial(write_ingest_artifact, write_records)

"""Training steps/s of the coarse network, fed by the TFRecord reader or from tensors in memory.

The pieces ``bench_training`` and ``gpu`` share:

- :func:`write_synthetic_shards`: synthetic scenes through the real ingest stage (Beam), at a
  preset's storage size, so the reader sees shards exactly like a pipeline run's;
- :func:`compiled_coarse_model`: the coarse network compiled as the train stage compiles it (loss,
  metrics, per-layer SGD, ``train.xla``);
- :func:`steps_per_second`: ``Model.fit`` for warm-up plus timed steps, timed between the ends of
  the last warm-up step and the last step. Every step end waits for the step: a callback that is not
  ``async_safe`` makes Keras fetch the step's logs before calling it.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from components.base import StageContext
from components.ingest import component as ingest
from components.ingest.config import IngestConfig
from components.train.phases import compile_model
from keras_depth.config import SyntheticRoomsConfig
from keras_depth.data.layout import TRAIN, split_pattern
from keras_depth.models import build_coarse_model
from keras_depth.optimizers import coarse_optimizer

INGEST_DIR = "ingest"


class StepEndTimes(keras.callbacks.Callback):
    """``time.perf_counter()`` at the end of every training step of a ``fit`` call."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter())


def write_synthetic_shards(config: Any, root: Path, num_scenes: int, log: logging.Logger) -> str:
    """Ingests ``num_scenes`` synthetic scenes at ``config``'s storage size into ``<root>/ingest``.

    The scenes are rendered at the storage size (``ingest.storage_height x storage_width``) and all go
    to the train split, in ``min(ingest.shards_per_split, num_scenes)`` shards; Beam runs in this
    process (``in_memory``).

    Args:
        config: The preset's ``PipelineConfig`` (not modified).
        root: An empty working directory.
        num_scenes: Scenes to render.
        log: Logger for the ingest stage's progress lines.

    Returns:
        The glob of the train split's shards.
    """
    config = copy.deepcopy(config)
    height, width = config.ingest.storage_height, config.ingest.storage_width
    config.ingest = IngestConfig(
        synthetic=SyntheticRoomsConfig(num_scenes=num_scenes, height=height, width=width),
        storage_height=height,
        storage_width=width,
        train_fraction=1.0,
        val_fraction=0.0,
        shards_per_split=min(config.ingest.shards_per_split, num_scenes),
        direct_num_workers=1,
        direct_running_mode="in_memory",
    )
    output_dir = Path(root) / INGEST_DIR
    output_dir.mkdir(parents=True)
    context = StageContext(
        config=config,
        output_dir=output_dir,
        work_dir=Path(root) / "ingest_work",
        inputs={},
        run_root=Path(root),
        fingerprint="bench",
        log=log,
    )
    ingest.run(context)
    return split_pattern(output_dir, TRAIN)


def compiled_coarse_model(config: Any) -> keras.Model:
    """The coarse network of ``config.model``, seeded and compiled as the train stage compiles it.

    Build it inside the strategy's scope (and the precision policy) it is to train under.
    """
    keras.utils.set_random_seed(config.train.seed)
    model = build_coarse_model(config.model)
    compile_model(model, coarse_optimizer(config.optimizer), config)
    return model


def in_memory_batches(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The first batch of ``dataset``, held in memory and repeated forever (no reading or augmenting)."""
    return tf.data.Dataset.from_tensors(next(iter(dataset))).repeat()


def steps_per_second(model: keras.Model, dataset: tf.data.Dataset, warmup_steps: int, steps: int) -> float:
    """Training steps/s of ``model`` (compiled) on ``dataset`` (infinite batches), after warm-up.

    One ``fit`` call runs ``warmup_steps + steps`` steps; the rate is ``steps`` over the time from the
    end of the last warm-up step to the end of the last step, so tracing, compilation and filling the
    reader's buffers fall in the warm-up.

    Raises:
        ValueError: when ``warmup_steps`` or ``steps`` is below 1.
    """
    if warmup_steps < 1 or steps < 1:
        raise ValueError(f"warmup_steps and steps must be >= 1, got {warmup_steps} and {steps}")
    timer = StepEndTimes()
    model.fit(
        dataset,
        epochs=1,
        steps_per_epoch=warmup_steps + steps,
        callbacks=[timer],
        shuffle=False,  # the reader shuffles
        verbose=0,
    )
    return steps / (timer.times[-1] - timer.times[warmup_steps - 1])


def reader_batches_per_second(dataset: tf.data.Dataset, warmup_batches: int, batches: int) -> float:
    """Batches/s the reader delivers alone (no training), after ``warmup_batches``."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - started)

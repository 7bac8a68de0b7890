"""The measurements of ``make bench-gpu`` (:mod:`benchmarks.gpu`), on every visible GPU.

- :func:`measure_variant`: the coarse network of the preset, trained under ``MirroredStrategy`` for
  warm-up plus timed steps with one precision/XLA setting, fed by the reader and from memory; the
  peak memory TensorFlow allocated on each GPU meanwhile;
- :func:`measure_saved_model`: the exported serving SavedModel timed on the GPU, beside the same fine
  network called directly in Keras.

On Ampere and newer GPUs TensorFlow runs float32 matmuls and convolutions in TF32 by default, so the
"fp32" variant and its reference matmul both compute in TF32.

Imported only once :mod:`benchmarks.gpu` knows there is a device to measure (this module imports
TensorFlow, Keras, Beam and the project's components).
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from benchmarks.exported_model import call_latencies_ms, export_untrained, latencies_ms, untrained_fine_model
from benchmarks.flops import dense_matmul_flops_per_second, training_flops
from benchmarks.training_speed import compiled_coarse_model, steps_per_second
from components.train.strategy import precision_policy
from serving.contract import IMAGES_INPUT, SERVING_DEFAULT
from serving.servable import Servable

MIXED_POLICY = "mixed_float16"
GIB = 2**30


def gpu_device_names() -> list[str]:
    """``GPU:0``, ``GPU:1``, ... for TensorFlow's logical GPUs (the names its memory statistics take)."""
    return [f"GPU:{index}" for index in range(len(tf.config.list_logical_devices("GPU")))]


def reset_peak_memory(devices: list[str]) -> None:
    """Restarts the peak-memory count of each GPU in ``devices``."""
    for device in devices:
        tf.config.experimental.reset_memory_stats(device)


def peak_memory_gib(devices: list[str]) -> list[float]:
    """GiB TensorFlow allocated at most on each GPU since :func:`reset_peak_memory`."""
    return [tf.config.experimental.get_memory_info(device)["peak"] / GIB for device in devices]


def measure_variant(
    config: Any,
    mixed_precision: bool,
    xla: bool,
    strategy: tf.distribute.Strategy,
    reader: tf.data.Dataset,
    in_memory: tf.data.Dataset,
    warmup_steps: int,
    steps: int,
    log: logging.Logger,
) -> dict:
    """Trains the coarse network with one precision and XLA setting; returns its rates and memory.

    Args:
        config: The preset's ``PipelineConfig`` (``train.mixed_precision`` and ``train.xla`` are
            replaced).
        mixed_precision: ``train.mixed_precision`` (``mixed_float16`` when a GPU is visible).
        xla: ``train.xla`` (the train step compiled with XLA, ``jit_compile``).
        strategy: The ``MirroredStrategy`` to train under.
        reader: ``make_dataset`` of the synthetic shards, global batches.
        in_memory: One of its batches, repeated.
        warmup_steps: Untimed steps of each feed (tracing, XLA compilation, filling buffers).
        steps: Timed steps of each feed.
        log: Logger (the CPU warning of ``precision_policy``).

    Returns:
        ``policy`` (the one in effect), ``images_per_s_reader``, ``images_per_s_in_memory``,
        ``train_gflop_per_image`` and ``peak_memory_gib`` (one per GPU; empty without a GPU).
    """
    config = copy.deepcopy(config)
    config.train.mixed_precision, config.train.xla = mixed_precision, xla
    devices = gpu_device_names()
    global_batch = config.data.batch_size * strategy.num_replicas_in_sync
    reset_peak_memory(devices)
    with precision_policy(mixed_precision, log) as policy:
        with strategy.scope():
            model = compiled_coarse_model(config)
        fed = steps_per_second(model, reader, warmup_steps, steps)
        from_memory = steps_per_second(model, in_memory, warmup_steps, steps)
    return {
        "policy": policy,
        "xla": xla,
        "images_per_s_reader": fed * global_batch,
        "images_per_s_in_memory": from_memory * global_batch,
        "train_gflop_per_image": training_flops(model) / 1e9,
        "peak_memory_gib": peak_memory_gib(devices),
    }


def matmul_gflop_per_second(policy: str, size: int) -> float:
    """GFLOP/s of ``size``-square matmuls in the dtype ``policy`` computes in (float16 when mixed)."""
    dtype = "float16" if policy == MIXED_POLICY else "float32"
    return dense_matmul_flops_per_second(size, repeats=10, dtype=dtype) / 1e9


def measure_saved_model(config: Any, batch_size: int, calls: int, warmup: int) -> dict:
    """Times the exported serving SavedModel and the same fine network called in Keras.

    Exports the untrained fine network of ``config`` as the export stage does, loads it as the server
    does and calls ``serving_default`` (the default outputs) on the first device TensorFlow places it
    on (GPU:0 when there is one): one image, and ``batch_size`` images, of the stored frame size.
    The Keras baseline calls the network in a ``tf.function`` on network-size input.

    Returns:
        Median milliseconds of each call and the images/s they give.
    """
    frame = (config.ingest.storage_height, config.ingest.storage_width, 3)
    network_input = (config.model.input_height, config.model.input_width, 3)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench_gpu_export_") as workdir:
        servable = Servable("depth", 1, export_untrained(config, Path(workdir) / "1"))
        batches = {size: rng.uniform(0, 255, (size, *frame)).astype(np.float32) for size in (1, batch_size)}
        saved_ms = {
            size: float(
                np.median(call_latencies_ms(servable, SERVING_DEFAULT, {IMAGES_INPUT: batch}, calls, warmup))
            )
            for size, batch in batches.items()
        }
    fine = untrained_fine_model(config)
    forward = tf.function(lambda images: fine(images, training=False))
    images = tf.constant(rng.uniform(0, 255, (batch_size, *network_input)).astype(np.float32))
    keras_ms = float(np.median(latencies_ms(lambda: forward(images).numpy(), calls, warmup)))
    return {
        "batch_size": batch_size,
        "saved_model_ms_batch_1": saved_ms[1],
        "saved_model_ms": saved_ms[batch_size],
        "saved_model_images_per_s": batch_size / saved_ms[batch_size] * 1e3,
        "keras_forward_ms": keras_ms,
        "keras_forward_images_per_s": batch_size / keras_ms * 1e3,
    }

"""Where training runs: the ``tf.distribute`` strategy and the numeric precision, from ``TrainConfig``.

The per-replica batch is ``DataConfig.batch_size``; one optimizer step consumes
``batch_size x num_replicas_in_sync`` images (the global batch), split evenly across the replicas.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import keras
import tensorflow as tf

from components.train.config import TrainConfig

STRATEGIES = ("auto", "mirrored", "multi_worker", "default")
MIXED_PRECISION_POLICY = "mixed_float16"
MULTI_WORKER_UNSUPPORTED = (
    "train.strategy=multi_worker is not available: Keras 3.15's Model.fit fails under "
    "tf.distribute.MultiWorkerMirroredStrategy (it reduces the first PerReplica batch eagerly, then "
    "mis-shapes metric reductions; upstream keras-team/keras#20585), and this stage trains with fit. "
    "Use 'mirrored' or 'auto' on one machine with several GPUs."
)


def make_strategy(cfg: TrainConfig) -> tf.distribute.Strategy:
    """The distribution strategy named by ``cfg.strategy``.

    - ``auto``: ``MirroredStrategy`` over every visible GPU when there is one, else the default
      (single-device) strategy;
    - ``mirrored``: ``MirroredStrategy`` over ``cfg.devices`` (all visible GPUs, or the CPU, when empty);
    - ``multi_worker``: refused with :data:`MULTI_WORKER_UNSUPPORTED` (Keras 3.15's ``fit`` cannot
      train under ``MultiWorkerMirroredStrategy``);
    - ``default``: ``tf.distribute.get_strategy()``.

    Args:
        cfg: The ``train`` config section.

    Returns:
        The strategy; build and compile models inside its ``scope()``.

    Raises:
        ValueError: naming ``train.strategy`` when it is not one of ``STRATEGIES``.
        NotImplementedError: for ``multi_worker`` (see :data:`MULTI_WORKER_UNSUPPORTED`).
    """
    if cfg.strategy == "auto":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if cfg.strategy == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(cfg.devices) or None)
    if cfg.strategy == "multi_worker":
        raise NotImplementedError(MULTI_WORKER_UNSUPPORTED)
    if cfg.strategy == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"train.strategy must be one of {', '.join(STRATEGIES)}; got {cfg.strategy!r}")


@contextlib.contextmanager
def precision_policy(mixed_precision: bool, log: logging.Logger) -> Iterator[str]:
    """Sets Keras' global dtype policy for the models built inside, and restores it on exit.

    Mixed precision (``mixed_float16``: float16 compute, float32 weights, dynamic loss scaling added
    by ``compile``) is used only when a GPU is visible; on CPU it would be slower, so the request is
    logged as a warning and ignored.

    Args:
        mixed_precision: ``TrainConfig.mixed_precision``.
        log: Logger for the CPU warning.

    Yields:
        The name of the policy in effect (``mixed_float16`` or the previous global policy).
    """
    previous = keras.mixed_precision.global_policy()
    use_mixed = mixed_precision and bool(tf.config.list_logical_devices("GPU"))
    if mixed_precision and not use_mixed:
        log.warning("train.mixed_precision is set but no GPU is visible: training in %s", previous.name)
    if use_mixed:
        keras.mixed_precision.set_global_policy(MIXED_PRECISION_POLICY)
    try:
        yield keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy(previous)

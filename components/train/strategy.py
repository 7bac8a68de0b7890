"""Where training runs: the ``tf.distribute`` strategy and the numeric precision, from ``TrainConfig``.

The per-replica batch is ``DataConfig.batch_size``; one optimizer step consumes
``batch_size x num_replicas_in_sync`` images (the global batch), split evenly across the replicas.

Under ``MultiWorkerMirroredStrategy`` every worker runs the stage; only the chief (task 0) keeps what it
writes, the others write into temporary directories (:func:`worker_dir`) that are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import keras
import tensorflow as tf

from components.train.config import TrainConfig

STRATEGIES = ("auto", "mirrored", "multi_worker", "default")
MIXED_PRECISION_POLICY = "mixed_float16"
CHIEF_TASK_TYPES = ("chief", "master")


def make_strategy(cfg: TrainConfig) -> tf.distribute.Strategy:
    """The distribution strategy named by ``cfg.strategy``.

    - ``auto``: ``MirroredStrategy`` over every visible GPU when there is one, else the default
      (single-device) strategy;
    - ``mirrored``: ``MirroredStrategy`` over ``cfg.devices`` (all visible GPUs, or the CPU, when empty);
    - ``multi_worker``: ``MultiWorkerMirroredStrategy`` over the cluster of ``TF_CONFIG`` (one local
      worker without it); the phases then train with a custom loop
      (:mod:`components.train.distributed_loop`), since Keras 3.15's ``fit`` cannot;
    - ``default``: ``tf.distribute.get_strategy()``.

    Args:
        cfg: The ``train`` config section.

    Returns:
        The strategy; build and compile models inside its ``scope()``.

    Raises:
        ValueError: naming ``train.strategy`` when it is not one of ``STRATEGIES``.
    """
    if cfg.strategy == "auto":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if cfg.strategy == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(cfg.devices) or None)
    if cfg.strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cfg.strategy == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"train.strategy must be one of {', '.join(STRATEGIES)}; got {cfg.strategy!r}")


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` (trained with the custom loop)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process keeps the stage's files: always, except on non-chief multi-worker tasks.

    The chief is the ``chief`` task, or ``worker`` 0 in a cluster without one (also a local,
    ``TF_CONFIG``-less multi-worker strategy).
    """
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type in CHIEF_TASK_TYPES or not resolver.task_type:
        return True
    has_chief = any(job in resolver.cluster_spec().jobs for job in CHIEF_TASK_TYPES)
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


@contextlib.contextmanager
def worker_dir(strategy: tf.distribute.Strategy, directory: Path) -> Iterator[Path]:
    """Where this process writes what belongs in ``directory``.

    Every multi-worker task must take part in the collective ops of saving, so every task writes;
    only the chief writes into ``directory``.

    Args:
        strategy: The stage's strategy.
        directory: The stage's directory (work or output).

    Yields:
        ``directory`` on the chief; on other tasks a temporary directory, deleted on exit.
    """
    if is_chief(strategy):
        yield Path(directory)
        return
    temp = Path(tempfile.mkdtemp(prefix="keras-depth-worker-"))
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


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

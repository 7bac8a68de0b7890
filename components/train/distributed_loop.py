"""A phase's training under ``MultiWorkerMirroredStrategy``: a custom loop instead of ``Model.fit``.

Keras 3.15's ``fit`` cannot train under ``MultiWorkerMirroredStrategy`` (it reduces the first PerReplica
batch eagerly, keras-team/keras#20585, then mis-shapes metric reductions), so
:class:`DistributedPhaseLoop` trains the compiled model itself with the same semantics:

- one optimizer step per global batch (``batch_size x num_replicas_in_sync`` images), the phase's
  optimizer (``model.optimizer``) applying the all-reduced gradients of the trainable variables (the
  frozen coarse network has none in the fine phase);
- the replica loss is the sum of the per-image :class:`~keras_depth.losses.ScaleInvariantLoss` values
  divided by the global batch (``fit``'s per-replica mean divided by the replica count);
- an epoch ends at step ``min((e + 1) * steps_per_epoch, total_steps)``; then the val split is scored
  and the epoch record gets the keys of ``fit``'s: ``loss`` and the metrics over the epoch's training
  batches, ``val_loss`` and ``val_<metric>`` over the val batches, and the :func:`epoch_stats` keys.
  Losses and metrics are exact image / pixel averages: replicas return sums, which are all-reduced.

The datasets are distributed with ``AutoShardPolicy.DATA`` (every worker reads every shard and keeps
its part of each global batch; shards may be fewer than workers). With ``data.deterministic`` all
workers shuffle alike, so each global batch holds distinct images.

Checkpoints (``tf.train.CheckpointManager`` of the model and optimizer variables, ``optimizer.iterations``
included) and the records (``history.json``) go to ``<work_dir>/<phase>/`` at every epoch end and every
``checkpoint_every_steps`` steps; every worker saves (saving may run collective ops), non-chief ones into
their temporary directory. A rerun restores the chief's newest checkpoint, which all workers must be able
to read (a shared file system), and resumes at its exact step. As in the ``fit`` path, the position in
the training data is not restored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from components.train.callbacks import epoch_stats
from components.train.checkpointing import HISTORY_FILE, load_records, mid_epoch_backup_due, write_json_atomic
from keras_depth.losses import ScaleInvariantLoss

if TYPE_CHECKING:
    from components.train.phases import PhaseSpec

CHECKPOINTS_KEPT = 2  # the newest and the one before it
LOSS, IMAGES = "loss", "images"


def distribute(
    strategy: tf.distribute.Strategy, dataset: tf.data.Dataset
) -> tf.distribute.DistributedDataset:
    """``dataset`` (of global batches) split across the workers' replicas, sharded by data.

    Args:
        strategy: The multi-worker strategy.
        dataset: ``(image, depth)`` batches of the global batch size.

    Returns:
        The distributed dataset of per-replica batches.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


@dataclass
class PhaseCheckpoint:
    """The phase's checkpoints and per-epoch records: read from ``read_dir``, written to ``write_dir``.

    Attributes:
        read_dir: The chief's ``<work_dir>/<phase>`` (restored from).
        write_dir: This worker's ``<phase>`` directory (the same on the chief, temporary elsewhere).
        model: The phase's compiled model (its optimizer is built before restoring).
    """

    read_dir: Path
    write_dir: Path
    model: keras.Model

    def __post_init__(self) -> None:
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.write_dir), max_to_keep=CHECKPOINTS_KEPT
        )

    def restore(self) -> tuple[int, list[dict]]:
        """Loads the newest checkpoint of ``read_dir``, if any (call in the strategy scope).

        Returns:
            ``(step, records)``: the restored global optimizer step (0 without a checkpoint) and the
            records of the epochs it has completed.
        """
        self.model.optimizer.build(self.model.trainable_variables)
        latest = tf.train.latest_checkpoint(str(self.read_dir))
        if latest:
            self.checkpoint.restore(latest).expect_partial()
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        return step, load_records(Path(self.read_dir) / HISTORY_FILE, step)

    def save(self, step: int, records: list[dict]) -> None:
        """Writes the records, then a checkpoint numbered ``step`` (every worker must call it)."""
        Path(self.write_dir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(self.write_dir) / HISTORY_FILE, records)
        self.manager.save(checkpoint_number=step)


@dataclass
class DistributedPhaseLoop:
    """Trains one phase's compiled model under a multi-worker strategy.

    Attributes:
        strategy: The ``MultiWorkerMirroredStrategy`` the model was built in.
        model: The phase's model, compiled with its ``LayerwiseSGD`` and ``ScaleInvariantLoss``.
        loss: The loss with per-image values (``reduction=None``).
        metrics: Fresh depth metrics (only their stateless functions are used).
        global_batch: Images per optimizer step over all replicas.
        xla: Compile the forward and backward pass with XLA.
    """

    strategy: tf.distribute.Strategy
    model: keras.Model
    loss: ScaleInvariantLoss
    metrics: Sequence[keras.metrics.Metric]
    global_batch: int
    xla: bool = False

    def __post_init__(self) -> None:
        self._gradients = tf.function(self._replica_gradients, jit_compile=self.xla)
        self._train_step = tf.function(self._train_step_fn)
        self._val_step = tf.function(self._val_step_fn)

    def _sums(self, depth: tf.Tensor, log_pred: tf.Tensor) -> dict[str, tf.Tensor]:
        """Sums of one replica batch: loss over images, image count, each metric's pixel sums.

        Args:
            depth: float32 [b, h, w, 1] target depth in metres (b may be 0 at the end of the val split).
            log_pred: float32 [b, h, w, 1] predicted log depth.

        Returns:
            ``loss`` (scalar float32, sum of per-image losses), ``images`` (scalar float32) and, per
            metric name, its float64 sufficient statistics.
        """
        per_image = self.loss(depth, log_pred)
        sums = {LOSS: tf.reduce_sum(per_image), IMAGES: tf.cast(tf.size(per_image), tf.float32)}
        for metric in self.metrics:
            zeros = [tf.zeros(v.shape, v.dtype) for v in metric.variables]
            (sums[metric.name],) = metric.stateless_update_state(zeros, depth, log_pred)
        return sums

    def _replica_gradients(self, images: tf.Tensor, depth: tf.Tensor) -> tuple:
        """Gradients of the replica's share of the global-batch loss, and the batch's sums."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            log_pred = self.model(images, training=True)
            sums = self._sums(depth, log_pred)
            loss = sums[LOSS] / self.global_batch
            if self.model.losses:
                loss += tf.add_n(self.model.losses) / self.strategy.num_replicas_in_sync
            scaled = self.model.optimizer.scale_loss(loss)
        return tape.gradient(scaled, variables), sums

    def _replica_train(self, images: tf.Tensor, depth: tf.Tensor) -> dict[str, tf.Tensor]:
        gradients, sums = self._gradients(images, depth)
        self.model.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=True))
        return sums

    def _reduce(self, per_replica: dict) -> dict[str, tf.Tensor]:
        return {
            key: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for key, value in per_replica.items()
        }

    def _train_step_fn(self, iterator) -> dict[str, tf.Tensor]:
        return self._reduce(self.strategy.run(self._replica_train, args=next(iterator)))

    def _val_step_fn(self, batch: tuple) -> dict[str, tf.Tensor]:
        def replica_val(images, depth):
            return self._sums(depth, self.model(images, training=False))

        return self._reduce(self.strategy.run(replica_val, args=batch))

    def results(self, totals: dict[str, tf.Tensor], prefix: str = "") -> dict[str, float]:
        """Epoch logs from summed batch statistics: the mean loss per image and each metric's value."""
        logs = {f"{prefix}{LOSS}": float(totals[LOSS]) / max(float(totals[IMAGES]), 1.0)}
        for metric in self.metrics:
            value = metric.stateless_result([totals[metric.name]])
            logs[f"{prefix}{metric.name}"] = float(np.asarray(value))
        return logs

    def validate(self, val_data: tf.distribute.DistributedDataset) -> dict[str, float]:
        """``val_loss`` and ``val_<metric>`` over one pass of the distributed val dataset."""
        totals = None
        for batch in val_data:
            totals = add(totals, self._val_step(batch))
        return self.results(totals, prefix="val_")

    def run(
        self,
        spec: PhaseSpec,
        train_data: tf.distribute.DistributedDataset,
        val_data: tf.distribute.DistributedDataset,
        checkpoint: PhaseCheckpoint,
        checkpoint_every_steps: int,
        callbacks: Sequence[keras.callbacks.Callback],
        log: logging.Logger,
    ) -> tuple[list[dict], int]:
        """Trains the steps of ``spec`` left after the newest checkpoint.

        Args:
            spec: The phase's plan.
            train_data: Infinite distributed training batches.
            val_data: Finite distributed val batches (one pass per epoch).
            checkpoint: The phase's checkpoints.
            checkpoint_every_steps: Extra checkpoint every N global steps (0 = at epoch ends only).
            callbacks: Keras callbacks (epoch begin/end with the epoch logs, train batch end).
            log: Logger of the progress lines.

        Returns:
            ``(records, start_step)``: the per-epoch records of the whole phase and the step this run
            started from.
        """
        with self.strategy.scope():
            start_step, records = checkpoint.restore()
        if start_step:
            log.info("%s: resuming at step %d of %d", spec.name, start_step, spec.total_steps)
        hooks = keras.callbacks.CallbackList(list(callbacks), model=self.model)
        hooks.on_train_begin()
        iterator, step = iter(train_data), start_step
        while step < spec.total_steps:
            epoch, first_step = step // spec.steps_per_epoch, step
            end_step = min((epoch + 1) * spec.steps_per_epoch, spec.total_steps)
            hooks.on_epoch_begin(epoch)
            started, totals = time.perf_counter(), None
            while step < end_step:
                totals = add(totals, self._train_step(iterator))
                step += 1
                if mid_epoch_backup_due(step, spec.steps_per_epoch, spec.total_steps, checkpoint_every_steps):
                    checkpoint.save(step, records)
                hooks.on_train_batch_end(step - 1 - epoch * spec.steps_per_epoch)
            logs = self.results(totals)
            seconds = time.perf_counter() - started
            logs.update(self.validate(val_data))
            logs.update(
                epoch_stats(
                    spec.name,
                    epoch,
                    step - first_step,
                    seconds,
                    step,
                    self.global_batch,
                    self.model.optimizer,
                    log,
                    spec.total_steps,
                    logs,
                )
            )
            records.append({"epoch": epoch, **logs})
            checkpoint.save(step, records)
            hooks.on_epoch_end(epoch, logs)
        hooks.on_train_end()
        return records, start_step


def add(totals: dict[str, tf.Tensor] | None, sums: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """``totals + sums`` key by key (``sums`` when ``totals`` is None)."""
    if totals is None:
        return dict(sums)
    return {key: totals[key] + value for key, value in sums.items()}

"""The two training phases of Eigen et al. (2014): the coarse network, then the fine one around it.

Phase 1 trains the coarse network alone. Phase 2 embeds the trained coarse network, frozen (no gradient
reaches it and the optimizer holds none of its weights), in the fine network and trains fine1/fine3/fine4.
Each phase runs ``ceil(samples / global_batch)`` optimizer steps (``TrainConfig.coarse_samples`` and
``fine_samples``), in epochs of ``steps_per_epoch`` steps (the last one possibly shorter), validating on
the val split after each epoch.

Fault tolerance (see :mod:`components.train.checkpointing`): both phases back up to the work directory
at every epoch end (and every ``checkpoint_every_steps`` steps); a finished coarse phase leaves a marker
(``coarse_done.keras``) and is not rerun. Running the stage again after a crash anywhere resumes at the
last backed-up step and ends with exactly the step counts of an uninterrupted run.

Under ``MultiWorkerMirroredStrategy`` a phase trains with the custom loop of
:mod:`components.train.distributed_loop` (same steps, losses, records and resume), everywhere else with
``Model.fit``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from components.train.callbacks import EpochStats, StepCounter, StopAtStep
from components.train.checkpointing import (
    PhaseBackup,
    load_marker_history,
    marker_path,
    remove_backup,
    save_phase_marker,
)
from components.train.distributed_loop import DistributedPhaseLoop, PhaseCheckpoint, distribute
from components.train.strategy import is_multi_worker
from keras_depth.losses import ScaleInvariantLoss
from keras_depth.metrics import RMSE, AbsRel, Delta1, SILog
from keras_depth.models import build_coarse_model, build_fine_model
from keras_depth.optimizers import coarse_optimizer, fine_optimizer
from keras_depth.saving import load_depth_model

COARSE, FINE = "coarse", "fine"
PHASES = (COARSE, FINE)
PROGRESS_VERBOSITY = 0  # no Keras progress on stdout: EpochStats logs one line per epoch
TRAIN_METRICS = (Delta1, AbsRel, RMSE, SILog)


@dataclass(frozen=True)
class PhaseSpec:
    """How long one phase trains.

    Attributes:
        name: ``coarse`` or ``fine``.
        total_steps: Optimizer steps of the phase, ``ceil(samples / global_batch)``.
        steps_per_epoch: Steps between validations, epoch backups and logged metrics.
        epoch_offset: Number of epochs of the phases before this one (the global index of its first
            epoch, the MLflow step of its metrics).
    """

    name: str
    total_steps: int
    steps_per_epoch: int
    epoch_offset: int = 0

    @property
    def num_epochs(self) -> int:
        """Epochs of the phase; the last one has ``total_steps - (num_epochs - 1) * steps_per_epoch`` steps."""
        return math.ceil(self.total_steps / self.steps_per_epoch)


@dataclass
class PhaseResult:
    """A finished phase.

    Attributes:
        spec: The phase's plan.
        model: The trained model (for the coarse phase: reloaded from its marker, uncompiled).
        history: Per-epoch records (the epoch logs plus ``epoch``) of every epoch of the phase, also the
            epochs run before a crash.
        start_step: The optimizer step this run started from (0 = fresh; ``total_steps`` = nothing left).
        seconds: Wall time of the phase in this run (seconds).
    """

    spec: PhaseSpec
    model: keras.Model
    history: list[dict] = field(default_factory=list)
    start_step: int = 0
    seconds: float = 0.0


def plan_phases(coarse_samples: int, fine_samples: int, steps_per_epoch: int, global_batch: int) -> tuple:
    """The coarse and fine :class:`PhaseSpec` for a global batch.

    Args:
        coarse_samples: Training images shown to the coarse network.
        fine_samples: Training images shown to the fine network.
        steps_per_epoch: ``TrainConfig.steps_per_epoch``.
        global_batch: Images per optimizer step over all replicas.

    Returns:
        ``(coarse, fine)`` specs with ``ceil(samples / global_batch)`` steps each.

    Raises:
        ValueError: naming the field when a count is not positive.
    """
    for name, value in (
        ("train.coarse_samples", coarse_samples),
        ("train.fine_samples", fine_samples),
        ("train.steps_per_epoch", steps_per_epoch),
    ):
        if value <= 0:
            raise ValueError(f"{name} must be > 0; got {value}")
    coarse = PhaseSpec(COARSE, math.ceil(coarse_samples / global_batch), steps_per_epoch)
    fine = PhaseSpec(FINE, math.ceil(fine_samples / global_batch), steps_per_epoch, coarse.num_epochs)
    return coarse, fine


def depth_metrics(loss_cfg: Any) -> list[keras.metrics.Metric]:
    """Fresh :data:`TRAIN_METRICS` over the loss config's valid depth range (metres)."""
    return [metric(min_depth=loss_cfg.min_depth, max_depth=loss_cfg.max_depth) for metric in TRAIN_METRICS]


def compile_model(model: keras.Model, optimizer: keras.optimizers.Optimizer, cfg: Any) -> None:
    """Compiles a phase's model: scale-invariant loss, depth metrics, optional XLA.

    Args:
        model: Coarse or fine model (built inside the strategy scope).
        optimizer: The phase's ``LayerwiseSGD`` (or, fine phase, ``LayerwiseAdam``).
        cfg: Pipeline config (``loss`` for the loss and the metrics' valid depth range, ``train.xla``).
    """
    loss_cfg = cfg.loss
    model.compile(
        optimizer=optimizer,
        loss=ScaleInvariantLoss.from_config_section(loss_cfg),
        metrics=depth_metrics(loss_cfg),
        jit_compile=bool(cfg.train.xla),
    )


@dataclass
class PhaseRunner:
    """Runs phases on one strategy and dataset pair, backing up into ``work_dir``.

    Attributes:
        cfg: Pipeline config.
        strategy: The ``tf.distribute`` strategy (models are built and restored in its scope).
        train_data: Infinite training dataset of global batches ``(image, depth)``.
        val_data: Finite validation dataset (one pass per epoch).
        global_batch: Images per optimizer step over all replicas.
        work_dir: The stage's work directory (backups and markers are read from it).
        log: Logger of progress lines.
        write_dir: Where this process writes backups and markers (default ``work_dir``; a temporary
            directory on a non-chief multi-worker task, see :func:`~components.train.strategy.worker_dir`).
    """

    cfg: Any
    strategy: tf.distribute.Strategy
    train_data: tf.data.Dataset
    val_data: tf.data.Dataset
    global_batch: int
    work_dir: Path
    log: logging.Logger
    write_dir: Path | None = None

    def __post_init__(self) -> None:
        self.write_dir = Path(self.write_dir or self.work_dir)

    def marker(self, phase: str) -> Path:
        """A finished phase's marker: the one this process wrote, else the chief's in ``work_dir``."""
        written = marker_path(self.write_dir, phase)
        return written if written.is_file() else marker_path(self.work_dir, phase)

    def fit_phase(
        self, spec: PhaseSpec, model: keras.Model, callbacks: Sequence[keras.callbacks.Callback] = ()
    ) -> PhaseResult:
        """Trains ``model`` (compiled) for the steps of ``spec`` left after the newest backup.

        Args:
            spec: The phase's plan.
            model: The phase's compiled model, built in the strategy scope.
            callbacks: Extra callbacks (MLflow logging; a test may inject a failure), called after the
                phase's own, so they see the complete epoch logs.

        Returns:
            The phase's result with ``model`` trained to ``spec.total_steps`` steps.

        Raises:
            RuntimeError: when a ``fit`` call makes no progress (the training data ran out).
        """
        started = time.monotonic()
        if is_multi_worker(self.strategy):
            records, start_step = self._distributed_loop(spec, model, callbacks)
            return PhaseResult(spec, model, records, start_step, time.monotonic() - started)
        counter = StepCounter()
        backup = PhaseBackup(
            self.work_dir / spec.name,
            counter,
            spec.steps_per_epoch,
            spec.total_steps,
            self.cfg.train.checkpoint_every_steps,
        )
        with self.strategy.scope():
            counter.step = start_step = backup.restore(model)
        if start_step:
            self.log.info("%s: resuming at step %d of %d", spec.name, start_step, spec.total_steps)
        stop = StopAtStep(counter)
        stats = EpochStats(counter, self.global_batch, spec.name, self.log, spec.total_steps)
        all_callbacks = [counter, stats, backup, stop, *callbacks]
        while counter.step < spec.total_steps:
            epoch, into_epoch = divmod(counter.step, spec.steps_per_epoch)
            # A partial epoch (resumed mid-epoch) is finished by a fit call of its own.
            end_epoch = spec.num_epochs if into_epoch == 0 else epoch + 1
            stop.stop_step = min(end_epoch * spec.steps_per_epoch, spec.total_steps)
            before = counter.step
            model.fit(
                self.train_data,
                epochs=end_epoch,
                initial_epoch=epoch,
                steps_per_epoch=spec.steps_per_epoch,
                validation_data=self.val_data,
                shuffle=False,  # the tf.data pipeline shuffles
                callbacks=all_callbacks,
                verbose=PROGRESS_VERBOSITY,
            )
            if counter.step == before:
                raise RuntimeError(
                    f"{spec.name}: training made no progress at step {before}; no training data?"
                )
        return PhaseResult(spec, model, backup.records, start_step, time.monotonic() - started)

    def _distributed_loop(
        self, spec: PhaseSpec, model: keras.Model, callbacks: Sequence[keras.callbacks.Callback]
    ) -> tuple[list[dict], int]:
        """Trains like :meth:`fit_phase` with the multi-worker custom loop; returns (records, start step)."""
        loop = DistributedPhaseLoop(
            self.strategy,
            model,
            ScaleInvariantLoss.from_config_section(self.cfg.loss, reduction=None),
            depth_metrics(self.cfg.loss),
            self.global_batch,
            bool(self.cfg.train.xla),
        )
        checkpoint = PhaseCheckpoint(self.work_dir / spec.name, self.write_dir / spec.name, model)
        return loop.run(
            spec,
            distribute(self.strategy, self.train_data),
            distribute(self.strategy, self.val_data),
            checkpoint,
            self.cfg.train.checkpoint_every_steps,
            callbacks,
            self.log,
        )

    def coarse(self, spec: PhaseSpec, callbacks: Sequence[keras.callbacks.Callback] = ()) -> PhaseResult:
        """Phase 1: trains the coarse network, or reuses it when its marker exists.

        Returns:
            The result; ``model`` is the coarse network loaded (uncompiled) from ``coarse_done.keras``
            in the strategy scope, whether it was trained now or in an earlier run.
        """
        history = load_marker_history(self.work_dir, COARSE)
        if history is None:
            # Seeded here, so the initial weights do not depend on what ran before in the process.
            keras.utils.set_random_seed(self.cfg.train.seed)
            with self.strategy.scope():
                model = build_coarse_model(self.cfg.model)
                compile_model(model, coarse_optimizer(self.cfg.optimizer), self.cfg)
            trained = self.fit_phase(spec, model, callbacks)
            save_phase_marker(self.write_dir, COARSE, model, trained.history)
            remove_backup(self.write_dir, COARSE)
            history, start_step, seconds = trained.history, trained.start_step, trained.seconds
        else:
            self.log.info(
                "coarse: finished in an earlier run, reusing %s", marker_path(self.work_dir, COARSE)
            )
            start_step, seconds = spec.total_steps, 0.0
        with self.strategy.scope():
            model = load_depth_model(self.marker(COARSE), compile=False)
        return PhaseResult(spec, model, history, start_step, seconds)

    def fine(
        self, spec: PhaseSpec, coarse_model: keras.Model, callbacks: Sequence[keras.callbacks.Callback] = ()
    ) -> PhaseResult:
        """Phase 2: trains the fine network around ``coarse_model``, which it freezes.

        Args:
            spec: The phase's plan.
            coarse_model: The trained coarse network (from :meth:`coarse`).
            callbacks: Extra callbacks, as for :meth:`fit_phase`.

        Returns:
            The result with the trained, compiled fine model.
        """
        keras.utils.set_random_seed(self.cfg.train.seed)
        with self.strategy.scope():
            model = build_fine_model(self.cfg.model, coarse_model)
            compile_model(model, fine_optimizer(self.cfg.optimizer, spec.total_steps), self.cfg)
        return self.fit_phase(spec, model, callbacks)

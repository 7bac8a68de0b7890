"""Keras callbacks of the phase runner: step counting, exact step limits and per-epoch statistics.

A phase's epochs are defined by optimizer steps, not by ``fit`` calls: epoch ``e`` ends at step
``min((e + 1) * steps_per_epoch, total_steps)``. A run resumed mid-epoch therefore needs ``fit`` to stop
at a step that is not a multiple of its ``steps_per_epoch``; :class:`StopAtStep` does that, counting steps
with a :class:`StepCounter` (no device synchronisation per step, unlike reading
``optimizer.iterations``).
"""

from __future__ import annotations

import logging
import math
import time

import keras

from components.progress import FIELDS, format_duration, format_rate

TRAIN_STAGE = "train"


class StepCounter(keras.callbacks.Callback):
    """The phase's global optimizer step, carried across ``fit`` calls (one step per train batch).

    Put it first in the callback list, so that later callbacks see the updated count.

    Args:
        start: The step the phase (re)starts from (the restored ``optimizer.iterations``).
    """

    def __init__(self, start: int = 0) -> None:
        super().__init__()
        self.step = start

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1


class StopAtStep(keras.callbacks.Callback):
    """Ends ``fit`` (after that epoch's validation) once the global step reaches ``stop_step``.

    Args:
        counter: The phase's :class:`StepCounter`, placed before this callback.
        stop_step: Global step at which to stop; set it before each ``fit`` call.
    """

    def __init__(self, counter: StepCounter, stop_step: int = 0) -> None:
        super().__init__()
        self.counter = counter
        self.stop_step = stop_step

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.counter.step >= self.stop_step:
            self.model.stop_training = True


class EpochStats(keras.callbacks.Callback):
    """Adds the epoch's step, throughput and learning rate to the epoch logs and logs the epoch's line.

    Keys added to the ``logs`` of ``on_epoch_end`` (seen by every later callback, ``History`` included):
    ``step`` (global optimizer step at the end of the epoch), ``train_seconds`` (training time of the
    epoch, validation excluded; the first epoch includes graph tracing), ``images_per_sec`` (training
    images per second) and ``learning_rate`` (the optimizer's base rate, which multiplies every layer's
    rate).

    Args:
        counter: The phase's :class:`StepCounter`, placed before this callback.
        global_batch: Images per optimizer step over all replicas.
        phase: Phase name for the log line.
        log: Logger of the epoch line.
        total_steps: Optimizer steps of the whole phase (for the line's progress and ETA).
    """

    def __init__(
        self, counter: StepCounter, global_batch: int, phase: str, log: logging.Logger, total_steps: int
    ) -> None:
        super().__init__()
        self.counter = counter
        self.global_batch = global_batch
        self.phase = phase
        self.log = log
        self.total_steps = total_steps
        self._epoch_start = 0.0
        self._epoch_start_step = 0
        self._train_end: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_start_step = self.counter.step
        self._train_end = None

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        train_end = self._train_end if self._train_end is not None else time.perf_counter()
        stats = epoch_stats(
            self.phase,
            epoch,
            self.counter.step - self._epoch_start_step,
            train_end - self._epoch_start,
            self.counter.step,
            self.global_batch,
            self.model.optimizer,
            self.log,
            self.total_steps,
            logs or {},
        )
        if logs is not None:
            logs.update(stats)


def epoch_line(
    phase: str,
    epoch: int,
    step: int,
    total_steps: int,
    steps_per_sec: float,
    images_per_sec: float,
    logs: dict,
) -> tuple[str, dict]:
    """The epoch's progress line and its structured fields (:mod:`components.progress`).

    Args:
        phase: Phase name.
        epoch: Index of the epoch in its phase.
        step: Global optimizer step at the end of the epoch.
        total_steps: Optimizer steps of the whole phase.
        steps_per_sec: Training speed of the epoch (validation excluded).
        images_per_sec: The same in images.
        logs: The epoch's Keras logs (``loss`` and ``val_loss`` are shown when present).

    Returns:
        ``("<phase> epoch <n>: step <step>/<total> (<percent>%), loss <l>, val_loss <v>, <r> img/s,
        ETA <duration>", fields)``; the ETA counts training steps at the epoch's speed.
    """
    eta = (total_steps - step) / steps_per_sec if steps_per_sec > 0 else math.inf
    losses = {name: float(logs[name]) for name in ("loss", "val_loss") if name in logs}
    line = (
        f"{phase} epoch {epoch + 1}: step {step}/{total_steps} ({100 * step // max(total_steps, 1)}%), "
        + "".join(f"{name} {value:.4f}, " for name, value in losses.items())
        + f"{format_rate(images_per_sec)} img/s, ETA {format_duration(eta)}"
    )
    fields = {
        "stage": TRAIN_STAGE,
        "phase": phase,
        "epoch": epoch + 1,
        "done": step,
        "total": total_steps,
        "unit": "steps",
        "rate": steps_per_sec,
        "eta_s": eta if math.isfinite(eta) else None,
        "images_per_sec": images_per_sec,
        **losses,
    }
    return line, fields


def epoch_stats(
    phase: str,
    epoch: int,
    steps: int,
    seconds: float,
    step: int,
    global_batch: int,
    optimizer: keras.optimizers.Optimizer,
    log: logging.Logger,
    total_steps: int,
    logs: dict,
) -> dict:
    """The per-epoch statistics of :class:`EpochStats` (shared by the custom loop); logs the epoch line.

    Args:
        phase: Phase name for the log line.
        epoch: Index of the epoch in its phase.
        steps: Optimizer steps trained in the epoch by this run.
        seconds: Training time of those steps (seconds, validation excluded).
        step: Global optimizer step at the end of the epoch.
        global_batch: Images per optimizer step over all replicas.
        optimizer: The phase's optimizer (its base ``learning_rate`` is reported).
        log: Logger of the epoch line (:func:`epoch_line`).
        total_steps: Optimizer steps of the whole phase.
        logs: The epoch's logs so far (loss and validation metrics).

    Returns:
        ``step``, ``train_seconds``, ``images_per_sec`` and ``learning_rate``.
    """
    seconds = max(seconds, 1e-9)
    images_per_sec = steps * global_batch / seconds
    line, fields = epoch_line(phase, epoch, step, total_steps, steps / seconds, images_per_sec, logs)
    log.info("%s", line, extra={FIELDS: fields})
    return {
        "step": step,
        "train_seconds": seconds,
        "images_per_sec": images_per_sec,
        "learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
    }

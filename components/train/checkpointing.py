"""Crash-safe training state in the stage's work directory (``StageContext.work_dir``).

Layout of ``work_dir`` (it survives a crash and a rerun of the same fingerprint; the runner deletes it
after a successful publish):

- ``<phase>/``: the phase's :class:`PhaseBackup` (Keras ``BackupAndRestore``): ``latest.weights.h5``
  (model weights and optimizer state, ``optimizer.iterations`` included), the previous state
  ``latest.weights.h5.bkp`` (``double_checkpoint``), Keras' ``training_metadata.json`` and
  ``history.json``, the per-epoch records of the completed epochs; under ``MultiWorkerMirroredStrategy``
  the custom loop's ``tf.train`` checkpoints (``ckpt-<step>.*``, ``checkpoint``) instead of the ``.h5``
  files (:mod:`components.train.distributed_loop`);
- ``<phase>_done.keras`` and ``<phase>_history.json``: the phase marker, written when a phase has
  finished (only the coarse phase uses it: the fine phase's result goes straight into the artifact).

Resuming is step-exact: the restored ``optimizer.iterations`` says where the phase stands, and the phase
runner (:mod:`components.train.phases`) trains exactly the remaining steps, finishing a partial epoch first.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras

from components.failpoints import failpoint
from components.train.callbacks import StepCounter

HISTORY_FILE = "history.json"
MARKER_SUFFIX = "_done.keras"
MARKER_HISTORY_SUFFIX = "_history.json"


def write_json_atomic(path: Path, value: object) -> None:
    """Writes ``value`` as JSON to ``path`` through a temporary file and a rename (never half-written)."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(value, indent=2))
    os.replace(temp, path)


def load_records(path: Path, step: int) -> list[dict]:
    """The per-epoch records saved at ``path`` that end at or before ``step`` ([] without a file).

    Args:
        path: A phase's ``history.json``.
        step: The restored global optimizer step.

    Returns:
        The records of the epochs the restored state has completed.
    """
    if not path.is_file():
        return []
    return [record for record in json.loads(path.read_text()) if record["step"] <= step]


def mid_epoch_backup_due(step: int, steps_per_epoch: int, total_steps: int, every: int) -> bool:
    """Whether global step ``step`` gets an extra (``checkpoint_every_steps``) backup inside an epoch.

    Args:
        step: Global optimizer steps done.
        steps_per_epoch: Optimizer steps per epoch.
        total_steps: Optimizer steps of the phase.
        every: ``checkpoint_every_steps`` (0 = epoch-end backups only).

    Returns:
        True when ``every > 0`` divides ``step`` and ``step`` does not end an epoch (which backs up anyway).
    """
    epoch_end = step % steps_per_epoch == 0 or step >= total_steps
    return every > 0 and step % every == 0 and not epoch_end


class PhaseBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` keyed on the global optimizer step, keeping the epoch history with the weights.

    Differences from the Keras callback, whose restore resumes only at an epoch boundary (it rewinds a
    mid-epoch backup to the start of its epoch, which would train extra steps):

    - restoring is explicit (:meth:`restore`, before the first ``fit`` call of a run) and reports the
      restored optimizer step; the phase runner derives the epoch and the steps left from it;
    - a backup is written at the end of every epoch and, when ``checkpoint_every_steps > 0``, whenever
      the global step is a multiple of it (not only every N batches of one ``fit`` call);
    - the per-epoch records (the epoch logs) are saved next to the weights, before them, and truncated
      on restore to the epochs the restored weights have completed.

    Saving keeps Keras' ``double_checkpoint`` (the previous state is copied aside first and restored
    when the latest file cannot be read).

    Args:
        backup_dir: Directory of this phase's backup (``work_dir/<phase>``).
        counter: The phase's :class:`StepCounter`, placed before this callback.
        steps_per_epoch: Optimizer steps per epoch.
        total_steps: Optimizer steps of the whole phase.
        checkpoint_every_steps: Extra backup every N global steps (0 = at epoch ends only).
    """

    def __init__(
        self,
        backup_dir: Path,
        counter: StepCounter,
        steps_per_epoch: int,
        total_steps: int,
        checkpoint_every_steps: int = 0,
    ) -> None:
        super().__init__(
            backup_dir=str(backup_dir),
            save_freq=checkpoint_every_steps if checkpoint_every_steps > 0 else "epoch",
            double_checkpoint=True,
            delete_checkpoint=False,
        )
        self.counter = counter
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.checkpoint_every_steps = checkpoint_every_steps
        self.records: list[dict] = []
        self._history_path = Path(backup_dir) / HISTORY_FILE

    def restore(self, model: keras.Model) -> int:
        """Loads the newest readable backup into ``model`` (compiled, built).

        Args:
            model: The phase's compiled model.

        Returns:
            The restored global optimizer step (0 when there is no backup); ``records`` then holds the
            epochs completed up to that step.
        """
        self.set_model(model)
        super().on_train_begin()
        # The epoch comes from the optimizer step instead (see the class docstring).
        model._initial_epoch = None
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        self.records = load_records(self._history_path, step)
        return step

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Does nothing: :meth:`restore` has loaded the state before the first ``fit`` call."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if mid_epoch_backup_due(
            self.counter.step, self.steps_per_epoch, self.total_steps, self.checkpoint_every_steps
        ):
            self._save_model()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.records.append({"epoch": epoch, **(logs or {})})
        self._current_epoch = epoch + 1
        self._save_model()

    def _save_model(self) -> None:
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._history_path, self.records)
        super()._save_model()
        failpoint(f"train.{Path(self.backup_dir).name}.checkpoint_saved")


def marker_path(work_dir: Path, phase: str) -> Path:
    """The finished-phase model ``work_dir/<phase>_done.keras``."""
    return Path(work_dir) / f"{phase}{MARKER_SUFFIX}"


def save_phase_marker(work_dir: Path, phase: str, model: keras.Model, records: list[dict]) -> Path:
    """Marks a phase finished: saves its history, then its model (the marker) atomically.

    Args:
        work_dir: The stage's work directory.
        phase: Phase name.
        model: The trained, compiled model (saved with its optimizer state).
        records: The phase's per-epoch records.

    Returns:
        The marker path.
    """
    work_dir = Path(work_dir)
    write_json_atomic(work_dir / f"{phase}{MARKER_HISTORY_SUFFIX}", records)
    final = marker_path(work_dir, phase)
    temp = final.with_name(f".partial-{final.name}")
    model.save(temp)
    os.replace(temp, final)
    return final


def load_marker_history(work_dir: Path, phase: str) -> list[dict] | None:
    """The per-epoch records of a finished phase, or None when its marker does not exist."""
    if not marker_path(work_dir, phase).is_file():
        return None
    return json.loads((Path(work_dir) / f"{phase}{MARKER_HISTORY_SUFFIX}").read_text())


def remove_backup(work_dir: Path, phase: str) -> None:
    """Deletes a phase's backup directory (once its marker is written)."""
    shutil.rmtree(Path(work_dir) / phase, ignore_errors=True)

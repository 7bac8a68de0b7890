"""What the train stage reports: output files, prediction grids, per-phase summaries, progress lines.

:class:`TrainReport` writes the artifact's reporting files (``history.json``, ``summary.json``,
``training_curves.png``, ``val_predictions_<phase>.png``) and mirrors them to MLflow when tracking.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from components.train import tracking
from components.train.checkpointing import write_json_atomic
from components.train.phases import COARSE, FINE, PhaseResult
from keras_depth.config import LossConfig
from keras_depth.losses import valid_depth_mask
from keras_depth.visualize import depth_color_range, save_depth_grid, save_training_curves

HISTORY_FILE = "history.json"
SUMMARY_FILE = "summary.json"
CURVES_FILE = "training_curves.png"
GRID_FILES = {COARSE: "val_predictions_coarse.png", FINE: "val_predictions_fine.png"}
GROUND_TRUTH = "ground truth"
# Epoch-log keys copied into a phase's final metrics (train loss and the val metrics).
FINAL_KEYS = ("loss", "val_loss", "val_delta1", "val_abs_rel", "val_rmse", "val_si_log")


def save_prediction_grid(
    path: Path,
    images: np.ndarray,
    depth: np.ndarray,
    models: Mapping[str, keras.Model],
    min_depth: float,
    max_depth: float,
) -> Path:
    """Saves RGB | ground truth | one column per model, with the colour range of the ground truth.

    Args:
        path: Output PNG.
        images: float32 [N, H, W, 3] RGB in 0..255 (network input size).
        depth: float32 [N, h, w, 1] ground-truth depth in metres (network output size, 0 = invalid).
        models: Column name -> model predicting log depth [N, h, w, 1] from ``images``.
        min_depth: Smallest valid depth in metres; ground truth outside the range is drawn black.
        max_depth: Largest valid depth in metres.

    Returns:
        ``path``.
    """
    truth = np.where(valid_depth_mask(depth, min_depth, max_depth), depth, 0.0)
    columns = {GROUND_TRUTH: truth}
    for name, model in models.items():
        columns[name] = np.exp(model.predict(images, verbose=0))
    vmin, vmax = depth_color_range([truth])
    return save_depth_grid(path, columns, images=images, vmin=vmin, vmax=vmax)


def throughput(history: Sequence[Mapping]) -> float:
    """Training images per second over the epochs of ``history`` (validation time excluded).

    Args:
        history: Per-epoch records with ``images_per_sec`` and ``train_seconds``.

    Returns:
        Images trained / seconds spent training, over every epoch (0.0 for an empty history).
    """
    seconds = sum(record["train_seconds"] for record in history)
    images = sum(record["images_per_sec"] * record["train_seconds"] for record in history)
    return images / seconds if seconds > 0 else 0.0


def phase_summary(result: PhaseResult, global_batch: int) -> dict:
    """The summary of one phase for ``summary.json``.

    Args:
        result: The finished phase.
        global_batch: Images per optimizer step.

    Returns:
        ``steps``, ``epochs``, ``start_step`` (where this run started it), ``samples`` (images shown),
        ``seconds`` (wall time in this run), ``images_per_sec`` (:func:`throughput` over every epoch of
        the phase, earlier runs included) and ``final`` (the last epoch's train loss and val metrics).
    """
    return {
        "steps": result.spec.total_steps,
        "epochs": result.spec.num_epochs,
        "start_step": result.start_step,
        "samples": result.spec.total_steps * global_batch,
        "seconds": round(result.seconds, 3),
        "images_per_sec": throughput(result.history),
        "final": {key: result.history[-1][key] for key in FINAL_KEYS if key in result.history[-1]},
    }


def phase_line(name: str, summary: Mapping) -> str:
    """One progress line: ``coarse: N steps, loss x, val delta1 y, abs_rel z, rmse w, T s, I img/s``."""
    final = summary["final"]
    return (
        f"{name}: {summary['steps']} steps, loss {final.get('loss', float('nan')):.4f}, "
        f"val delta1 {final.get('val_delta1', float('nan')):.3f}, "
        f"abs_rel {final.get('val_abs_rel', float('nan')):.3f}, "
        f"rmse {final.get('val_rmse', float('nan')):.3f}, "
        f"{summary['seconds']:.1f} s, {summary['images_per_sec']:.1f} img/s"
    )


@dataclass
class TrainReport:
    """Collects the phases' results and writes the reporting files into the stage's output directory.

    Attributes:
        output_dir: The stage's output directory.
        global_batch: Images per optimizer step.
        loss_cfg: The ``loss`` config (valid depth range of the grids' ground truth).
        images: float32 [N, H, W, 3] val images (RGB 0..255) of the prediction grids.
        depth: float32 [N, h, w, 1] their ground-truth depth in metres.
        log: Logger of the per-phase summary lines.
        tracking: Also log to the active MLflow run.
        phases: Phase name -> :func:`phase_summary`, filled by :meth:`phase_done`.
        history: Phase name -> per-epoch records, filled by :meth:`phase_done`.
    """

    output_dir: Path
    global_batch: int
    loss_cfg: LossConfig
    images: np.ndarray
    depth: np.ndarray
    log: logging.Logger
    tracking: bool = False
    phases: dict[str, dict] = field(default_factory=dict)
    history: dict[str, list[dict]] = field(default_factory=dict)

    def phase_done(self, result: PhaseResult, models: Mapping[str, keras.Model]) -> None:
        """Summarises a finished phase, logs its line and saves its prediction grid.

        Args:
            result: The finished phase.
            models: Column name -> model of the phase's grid (e.g. coarse and fine after phase 2).
        """
        name = result.spec.name
        self.phases[name] = phase_summary(result, self.global_batch)
        self.history[name] = result.history
        self.log.info(phase_line(name, self.phases[name]))
        grid = save_prediction_grid(
            self.output_dir / GRID_FILES[name],
            self.images,
            self.depth,
            models,
            self.loss_cfg.min_depth,
            self.loss_cfg.max_depth,
        )
        if self.tracking:
            # Epochs trained by an earlier, interrupted run: this run's metrics get the whole curve.
            for record in result.history:
                if record["step"] <= result.start_step:
                    tracking.log_epoch(name, result.spec.epoch_offset + record["epoch"], record)
            tracking.log_files([grid])

    def finish(self, summary: Mapping[str, object]) -> dict:
        """Writes ``history.json``, ``training_curves.png`` and ``summary.json``.

        Args:
            summary: Run-level fields of ``summary.json``; ``phases`` and ``images_per_sec`` are added.

        Returns:
            The complete summary.
        """
        write_json_atomic(self.output_dir / HISTORY_FILE, self.history)
        save_training_curves(self.output_dir / CURVES_FILE, self.history)
        all_epochs = [record for records in self.history.values() for record in records]
        summary = {**summary, "phases": self.phases, "images_per_sec": throughput(all_epochs)}
        write_json_atomic(self.output_dir / SUMMARY_FILE, summary)
        if self.tracking:
            tracking.log_files([self.output_dir / CURVES_FILE, self.output_dir / SUMMARY_FILE])
        return summary

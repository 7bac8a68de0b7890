"""MLflow logging of the train stage, into the pipeline's active run (started by the runner).

Keys are stage-prefixed: params ``train.<name>``; per-epoch metrics ``train/<phase>/<log key>`` (for example
``train/coarse/loss``, ``train/fine/val_delta1``, ``train/fine/images_per_sec``) at step = the global
epoch index (coarse epochs first, then fine epochs); the val baseline as ``train/val_baseline_<metric>``;
artifacts under ``train/`` and the models under ``train/models/``. Nothing here starts or ends a run, and
nothing here fails the stage: a tracking failure warns (``components.tracking.best_effort``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import keras
import mlflow

from components.tracking import best_effort

KEY_PREFIX = "train"
ARTIFACT_DIR = "train"
MODELS_ARTIFACT_DIR = "train/models"


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs every numeric epoch log of a phase as ``train/<phase>/<key>`` at the global epoch index.

    Args:
        phase: ``coarse`` or ``fine``.
        epoch_offset: Global index of the phase's first epoch (the epochs of the phases before it).
    """

    def __init__(self, phase: str, epoch_offset: int) -> None:
        super().__init__()
        self.phase = phase
        self.epoch_offset = epoch_offset

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        log_epoch(self.phase, self.epoch_offset + epoch, logs or {})


@best_effort
def log_epoch(phase: str, global_epoch: int, logs: Mapping[str, object]) -> None:
    """Logs the numeric entries of one epoch's logs as ``train/<phase>/<key>`` at step ``global_epoch``."""
    metrics = {
        f"{KEY_PREFIX}/{phase}/{key}": float(value)
        for key, value in logs.items()
        if isinstance(value, int | float) and key != "epoch"
    }
    mlflow.log_metrics(metrics, step=global_epoch)


@best_effort
def log_params(params: Mapping[str, object]) -> None:
    """Logs ``train.<name>`` params (values as strings)."""
    mlflow.log_params({f"{KEY_PREFIX}.{name}": str(value) for name, value in params.items()})


@best_effort
def log_baseline(metrics: Mapping[str, float]) -> None:
    """Logs the val baseline as ``train/val_baseline_<name>`` metrics."""
    mlflow.log_metrics({f"{KEY_PREFIX}/val_baseline_{name}": float(value) for name, value in metrics.items()})


@best_effort
def log_files(paths: Iterable[Path], artifact_dir: str = ARTIFACT_DIR) -> None:
    """Uploads files to the run's artifacts under ``artifact_dir``."""
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=artifact_dir)

"""The per-epoch line of training: progress through the phase, losses, speed and ETA."""

from __future__ import annotations

import math

from components.train.callbacks import epoch_line


def test_epoch_line_shows_the_phase_progress_losses_speed_and_eta():
    line, fields = epoch_line(
        "coarse", 2, 750, 2500, 12.5, 400.0, {"loss": 0.15523, "val_loss": 0.2, "rmse": 1.0}
    )
    assert (
        line == "coarse epoch 3: step 750/2500 (30%), loss 0.1552, val_loss 0.2000, 400.0 img/s, ETA 2m 20s"
    )
    assert fields == {
        "stage": "train",
        "phase": "coarse",
        "epoch": 3,
        "done": 750,
        "total": 2500,
        "unit": "steps",
        "rate": 12.5,
        "eta_s": 140.0,
        "images_per_sec": 400.0,
        "loss": 0.15523,
        "val_loss": 0.2,
    }


def test_epoch_line_without_validation_or_speed():
    line, fields = epoch_line("fine", 0, 2, 4, 0.0, 0.0, {"loss": 0.5})
    assert line == "fine epoch 1: step 2/4 (50%), loss 0.5000, 0 img/s, ETA unknown"
    assert fields["eta_s"] is None and "val_loss" not in fields
    assert math.isclose(fields["loss"], 0.5)

"""End-to-end tests of the train stage on tiny networks and TFRecords: outputs, freezing, crash and resume."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from components.train.checkpointing import marker_path
from components.train.component import run, train
from keras_depth.models import COARSE_MODEL_NAME

BATCH, COARSE_SAMPLES, FINE_SAMPLES, STEPS_PER_EPOCH = 4, 24, 20, 4
COARSE_STEPS = math.ceil(COARSE_SAMPLES / BATCH)  # 6: epochs of 4 + 2 steps
FINE_STEPS = math.ceil(FINE_SAMPLES / BATCH)  # 5: epochs of 4 + 1 steps
OUTPUT_FILES = {
    "coarse.keras",
    "fine.keras",
    "history.json",
    "summary.json",
    "training_curves.png",
    "val_predictions_coarse.png",
    "val_predictions_fine.png",
}

pytestmark = pytest.mark.e2e


class WeightSnapshots(keras.callbacks.Callback):
    """Copies the weights of the model (or of one of its layers) when ``fit`` begins and ends."""

    def __init__(self, layer: str | None = None) -> None:
        super().__init__()
        self.layer = layer
        self.begin: list[np.ndarray] = []
        self.end: list[np.ndarray] = []

    def _weights(self) -> list[np.ndarray]:
        source = self.model.get_layer(self.layer) if self.layer else self.model
        return [np.array(w) for w in source.get_weights()]

    def on_train_begin(self, logs=None):
        self.begin = self._weights()

    def on_train_end(self, logs=None):
        self.end = self._weights()


def _steps(model_path) -> int:
    return int(keras.saving.load_model(model_path).optimizer.iterations.numpy())


def _assert_step_counts(output_dir) -> dict:
    summary = json.loads((output_dir / "summary.json").read_text())
    history = json.loads((output_dir / "history.json").read_text())
    assert summary["phases"]["coarse"]["steps"] == COARSE_STEPS
    assert summary["phases"]["fine"]["steps"] == FINE_STEPS
    assert _steps(output_dir / "coarse.keras") == COARSE_STEPS
    assert _steps(output_dir / "fine.keras") == FINE_STEPS
    assert [(r["epoch"], r["step"]) for r in history["coarse"]] == [(0, 4), (1, 6)]
    assert [(r["epoch"], r["step"]) for r in history["fine"]] == [(0, 4), (1, 5)]
    return summary


def test_two_phases_write_every_output_and_keep_the_coarse_net_frozen(tiny, context, ingest_dir, tmp_path):
    ctx = context(tiny(), ingest_dir, tmp_path / "out", tmp_path / "work")
    coarse_phase = WeightSnapshots()
    fine_phase_coarse, fine_phase_fine = WeightSnapshots(COARSE_MODEL_NAME), WeightSnapshots("fine3")

    counts = train(
        ctx, extra_callbacks={"coarse": [coarse_phase], "fine": [fine_phase_coarse, fine_phase_fine]}
    )

    out = tmp_path / "out"
    assert {path.name for path in out.iterdir()} == OUTPUT_FILES
    assert counts == {"coarse_steps": 6, "fine_steps": 5, "replicas": 1, "global_batch_size": BATCH}
    summary = _assert_step_counts(out)
    assert summary["replicas"] == 1 and summary["global_batch_size"] == BATCH
    assert summary["phases"]["coarse"]["start_step"] == 0
    for phase in ("coarse", "fine"):
        final = summary["phases"][phase]["final"]
        assert set(final) == {"loss", "val_loss", "val_delta1", "val_abs_rel", "val_rmse", "val_si_log"}
        assert all(np.isfinite(value) for value in final.values())
    assert 0.0 < summary["val_baseline"]["delta1"] <= 1.0

    # Frozen: phase 2 changes fine3 but not the coarse net, whose weights stay those after phase 1
    # (also inside fine.keras).
    coarse = keras.saving.load_model(out / "coarse.keras")
    fine = keras.saving.load_model(out / "fine.keras")
    embedded = fine.get_layer(COARSE_MODEL_NAME)
    assert not embedded.trainable
    assert not {id(w) for w in embedded.weights} & {id(w) for w in fine.trainable_weights}
    assert not np.array_equal(fine_phase_fine.begin[0], fine_phase_fine.end[0])
    for after_phase1, saved, fine_begin, fine_end, inside_fine in zip(
        coarse_phase.end,
        coarse.get_weights(),
        fine_phase_coarse.begin,
        fine_phase_coarse.end,
        embedded.get_weights(),
        strict=True,
    ):
        for weights in (saved, fine_begin, fine_end, inside_fine):
            np.testing.assert_array_equal(weights, after_phase1)
    assert not np.array_equal(coarse_phase.begin[0], coarse_phase.end[0])


def test_rerun_after_a_crash_mid_fine_resumes_and_ends_with_the_uninterrupted_step_counts(
    tiny, context, crash_after, ingest_dir, tmp_path
):
    # Crash in fine step 3 (epoch 1 of 2), after the step-2 backup (checkpoint_every_steps=2).
    config = tiny(checkpoint_every_steps=2)
    crashed = context(config, ingest_dir, tmp_path / "out-crashed", tmp_path / "work")
    with pytest.raises(crash_after.Crash):
        train(crashed, extra_callbacks={"fine": [crash_after(3)]})
    assert marker_path(tmp_path / "work", "coarse").is_file()
    assert (tmp_path / "work" / "fine" / "latest.weights.h5").is_file()

    rerun = context(config, ingest_dir, tmp_path / "out", tmp_path / "work")
    run(rerun)

    summary = _assert_step_counts(tmp_path / "out")
    assert summary["phases"]["coarse"]["start_step"] == COARSE_STEPS  # reused, not retrained
    assert summary["phases"]["fine"]["start_step"] == 2

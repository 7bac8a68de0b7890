"""Unit tests of the phase plan, the step-exact resume and the stage's parameters and inputs.

The resume tests run :meth:`PhaseRunner.fit_phase` on a tiny dense model (fast), crashing after every
possible number of batches, and check where the next run resumes and where it ends.
"""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.train import STAGE
from components.train.checkpointing import HISTORY_FILE
from components.train.component import read_split_counts
from components.train.phases import PhaseRunner, PhaseSpec, plan_phases
from components.train.strategy import make_strategy
from keras_depth.config import OptimizerConfig
from keras_depth.optimizers import fine_optimizer

TOTAL_STEPS, STEPS_PER_EPOCH, CHECKPOINT_EVERY = 7, 3, 2
# Backups: every 2 steps and at epoch ends (steps 3, 6); a crash in a batch keeps the backups of the
# batches before it, and the one of the crashing batch itself unless that batch ends an epoch (the
# epoch-end backup comes after validation).
EXPECTED_RESUME_STEP = {1: 0, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4}


def _dense_model() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "mse")
    return model


def _runner(tiny, work_dir) -> PhaseRunner:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    return PhaseRunner(
        cfg=tiny(checkpoint_every_steps=CHECKPOINT_EVERY),
        strategy=tf.distribute.get_strategy(),
        train_data=data.repeat(),
        val_data=data,
        global_batch=2,
        work_dir=work_dir,
        log=logging.getLogger("test"),
    )


SPEC = PhaseSpec("coarse", TOTAL_STEPS, STEPS_PER_EPOCH)


def _assert_complete(result) -> None:
    assert int(result.model.optimizer.iterations.numpy()) == TOTAL_STEPS
    assert [record["epoch"] for record in result.history] == [0, 1, 2]
    assert [record["step"] for record in result.history] == [3, 6, 7]
    assert all("val_loss" in record and record["images_per_sec"] > 0 for record in result.history)


def test_uninterrupted_phase_runs_exactly_its_steps_in_epochs(tiny, tmp_path):
    result = _runner(tiny, tmp_path).fit_phase(SPEC, _dense_model())

    assert result.start_step == 0
    _assert_complete(result)


@pytest.mark.parametrize("batches", sorted(EXPECTED_RESUME_STEP))
def test_resume_after_a_crash_ends_at_the_same_step(tiny, tmp_path, crash_after, batches):
    with pytest.raises(crash_after.Crash):
        _runner(tiny, tmp_path).fit_phase(SPEC, _dense_model(), [crash_after(batches)])

    # A new model, as in a new process: everything comes from the backup.
    result = _runner(tiny, tmp_path).fit_phase(SPEC, _dense_model())

    assert result.start_step == EXPECTED_RESUME_STEP[batches]
    _assert_complete(result)


def test_resume_falls_back_to_the_previous_backup_and_drops_its_later_epochs(tiny, tmp_path, crash_after):
    with pytest.raises(crash_after.Crash):
        _runner(tiny, tmp_path).fit_phase(SPEC, _dense_model(), [crash_after(5)])
    backup_dir = tmp_path / SPEC.name
    assert [r["step"] for r in json.loads((backup_dir / HISTORY_FILE).read_text())] == [3]
    (backup_dir / "latest.weights.h5").write_bytes(b"not an HDF5 file")  # latest (step 4) lost

    result = _runner(tiny, tmp_path).fit_phase(SPEC, _dense_model())

    assert result.start_step == 3  # the previous backup (double_checkpoint)
    _assert_complete(result)


class _StateAtFirstBatch(keras.callbacks.Callback):
    """Keeps the optimizer's variables as the first batch of ``fit`` starts (after any restore)."""

    def __init__(self) -> None:
        super().__init__()
        self.variables: list[np.ndarray] | None = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.variables is None:
            self.variables = [variable.numpy().copy() for variable in self.model.optimizer.variables]


def _adam_cosine_model() -> keras.Model:
    """A dense layer named as the fine output layer, with the fine phase's Adam and cosine schedule."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="fine4")])
    opt_cfg = OptimizerConfig(fine_algorithm="adam", fine_schedule="cosine", lr_fine_out=0.01)
    model.compile(fine_optimizer(opt_cfg, TOTAL_STEPS), "mse")
    return model


def test_resume_restores_adam_moments_and_the_cosine_step(tiny, tmp_path, crash_after):
    crashed = _adam_cosine_model()
    with pytest.raises(crash_after.Crash):
        _runner(tiny, tmp_path).fit_phase(SPEC, crashed, [crash_after(4)])  # backed up at step 4
    state = _StateAtFirstBatch()

    result = _runner(tiny, tmp_path).fit_phase(SPEC, _adam_cosine_model(), [state])

    assert result.start_step == 4
    saved = [variable.numpy() for variable in crashed.optimizer.variables]
    assert len(state.variables) == len(saved) > 1  # the step count and Adam's moments
    for restored, expected in zip(state.variables, saved, strict=True):
        np.testing.assert_array_equal(restored, expected)
    _assert_complete(result)
    assert float(result.model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)  # cosine's end


def test_rerun_of_a_finished_phase_trains_nothing(tiny, tmp_path):
    _runner(tiny, tmp_path).fit_phase(SPEC, _dense_model())  # e.g. crashed afterwards, before its marker

    result = _runner(tiny, tmp_path).fit_phase(SPEC, _dense_model())

    assert result.start_step == TOTAL_STEPS
    _assert_complete(result)


def test_phase_plan_counts_steps_from_samples_and_global_batch():
    coarse, fine = plan_phases(coarse_samples=100, fine_samples=64, steps_per_epoch=5, global_batch=32)

    assert (coarse.total_steps, coarse.num_epochs, coarse.epoch_offset) == (4, 1, 0)
    assert (fine.total_steps, fine.num_epochs, fine.epoch_offset) == (2, 1, 1)
    assert PhaseSpec("fine", 11, 4).num_epochs == 3
    with pytest.raises(ValueError, match="train.fine_samples"):
        plan_phases(coarse_samples=10, fine_samples=0, steps_per_epoch=5, global_batch=2)


def test_parameters_are_the_result_defining_sections(tiny):
    base = STAGE.parameters(tiny())

    assert set(base) == {"model", "optimizer", "loss", "augment", "data", "train"}
    assert "checkpoint_every_steps" not in base["train"]
    assert STAGE.parameters(tiny(checkpoint_every_steps=7)) == base
    assert STAGE.parameters(tiny(coarse_samples=99)) != base
    assert STAGE.inputs == ("ingest",)


def test_unknown_strategy_is_named(tiny):
    with pytest.raises(ValueError, match="train.strategy"):
        make_strategy(tiny(strategy="tpu").train)
    assert make_strategy(tiny(strategy="auto").train).num_replicas_in_sync == 1  # no GPU in tests


def test_split_counts_require_train_and_val_examples(tmp_path):
    with pytest.raises(FileNotFoundError, match="stats.json"):
        read_split_counts(tmp_path)
    (tmp_path / "stats.json").write_text(json.dumps({"counts": {"train": 5, "val": 0, "test": 1}}))
    with pytest.raises(ValueError, match="val split is empty"):
        read_split_counts(tmp_path)

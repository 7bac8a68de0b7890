"""Tests of the coarse and fine networks: sizes, initial predictions, freezing and serialisation."""

from __future__ import annotations

import math
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_depth.config import ModelConfig, OptimizerConfig
from keras_depth.models import (
    COARSE_MODEL_NAME,
    build_coarse_model,
    build_fine_model,
    freeze_coarse,
)
from keras_depth.models.coarse import coarse5_feature_size
from keras_depth.optimizers import fine_optimizer

# Smallest practical network: 96x72 input, 22x16 log-depth output (the natural fine1 size).
TINY = ModelConfig(
    input_height=72, input_width=96, output_height=16, output_width=22, width_multiplier=0.1, fc_units=8
)
PAPER_FC_UNITS_FOR_SHAPES = 16  # the shapes do not depend on fc_units; 4096 would only cost memory
KITTI = ModelConfig(
    input_height=172, input_width=576, output_height=27, output_width=142, fc_units=PAPER_FC_UNITS_FOR_SHAPES
)


def _images(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> np.ndarray:
    """Random [batch, H, W, 3] float32 RGB in 0..255."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 255.0, (batch, cfg.input_height, cfg.input_width, 3)).astype("float32")


def _hw(model: keras.Model, layer: str) -> tuple[int, int]:
    return tuple(model.get_layer(layer).output.shape[1:3])


@pytest.mark.parametrize(
    ("cfg", "coarse_sizes", "fine_fit_layer"),
    [
        # NYU 304x228: the paper's table, (H, W) after coarse1, coarse2 and coarse5 pooling.
        (ModelConfig(fc_units=PAPER_FC_UNITS_FOR_SHAPES), [(27, 37), (13, 18), (6, 8)], None),
        # KITTI 576x172: fine1's conv map 284x82 is pooled 3x2 straight to 142x27 (no crop).
        (KITTI, [(20, 71), (9, 35), (4, 17)], None),
        # Small CPU preset 152x114 -> 37x27: fine1 gives 36x26, zero-padded to 37x27.
        (
            ModelConfig(
                input_height=114,
                input_width=152,
                output_height=27,
                output_width=37,
                fc_units=PAPER_FC_UNITS_FOR_SHAPES,
            ),
            [(13, 18), (6, 8), (2, 3)],
            "fine1_pad",
        ),
    ],
    ids=["nyu_eigen2014", "kitti_eigen2014", "cpu_152x114"],
)
def test_preset_sizes(cfg, coarse_sizes, fine_fit_layer):
    coarse = build_coarse_model(cfg)
    fine = build_fine_model(cfg, coarse)
    assert [_hw(coarse, f"{name}_pool") for name in ("coarse1", "coarse2", "coarse5")] == coarse_sizes
    assert coarse5_feature_size(cfg.input_height, cfg.input_width) == coarse_sizes[-1]
    assert coarse.get_layer("coarse1").output.shape[-1] == 96
    assert fine.get_layer("fine1").output.shape[-1] == 63
    assert fine.get_layer("fine3").output.shape[-1] == 64
    fine_layers = {layer.name for layer in fine.layers}
    assert {"fine1_crop", "fine1_pad"} & fine_layers == ({fine_fit_layer} if fine_fit_layer else set())

    out_shape = (1, cfg.output_height, cfg.output_width, 1)
    images = _images(cfg, batch=1)
    assert tuple(coarse(images).shape) == out_shape
    assert tuple(fine(images).shape) == out_shape
    assert fine.get_layer("fine2").output.shape[-1] == 64


def test_kitti_fine_path_sees_every_input_row_near_the_output_row_it_refines():
    """Output row r of the fine1 path sees the input rows that output row r covers, and no row is unseen."""
    cfg = replace(KITTI, width_multiplier=0.125)
    fine = build_fine_model(cfg, build_coarse_model(cfg))
    fine1 = keras.Model(fine.input, fine.get_layer("fine2").input[0])
    images = tf.Variable(_images(cfg, batch=1))
    rows_per_output_row = cfg.input_height / cfg.output_height
    for row in (0, cfg.output_height // 2, cfg.output_height - 1):
        with tf.GradientTape() as tape:
            response = tf.reduce_sum(fine1(images)[:, row])
        seen_rows = np.flatnonzero(np.abs(tape.gradient(response, images).numpy()).sum(axis=(0, 2, 3)))
        # Within about one output row of the rows it covers, as the paper's own 2x2 pool on NYU (before:
        # 28 input rows, more than four output rows, off).
        centre = (row + 0.5) * rows_per_output_row
        assert abs((seen_rows.min() + seen_rows.max()) / 2 - centre) < 1.5 * rows_per_output_row
    with tf.GradientTape() as tape:
        response = tf.reduce_sum(fine1(images))
    seen_rows = np.flatnonzero(np.abs(tape.gradient(response, images).numpy()).sum(axis=(0, 2, 3)))
    # The valid conv and pool leave out at most a few trailing rows (here 3; NYU's 2x2 pool: 1), not 28 at
    # each end.
    assert seen_rows.min() == 0 and seen_rows.max() >= cfg.input_height - 4


def test_compiled_coarse_model_does_not_shadow_the_fine_models_loss():
    coarse = build_coarse_model(TINY)
    coarse.compile(optimizer="sgd", loss="mse")
    images = _images(TINY, batch=2)
    targets = np.full((2, TINY.output_height, TINY.output_width, 1), 5.0, dtype="float32")
    coarse.fit(images, targets, epochs=1, verbose=0)
    fine = build_fine_model(TINY, coarse)
    fine.compile(optimizer="sgd", loss="mse")
    history = fine.fit(images, targets, epochs=1, verbose=0).history
    assert [metric.name for metric in fine.metrics] == ["loss"]
    assert history["loss"][0] > 1.0  # log-depth ~1 against 5: an MSE far from the shadowing tracker's 0


def test_untrained_outputs_are_finite_log_depth_near_initial_depth():
    cfg = replace(TINY, initial_depth=3.0)
    coarse = build_coarse_model(cfg)
    fine = build_fine_model(cfg, coarse)
    for model in (coarse, fine):
        log_depth = model(_images(cfg)).numpy()
        assert log_depth.dtype == np.float32
        assert np.isfinite(log_depth).all()
        np.testing.assert_allclose(log_depth, math.log(3.0), atol=0.1)
        assert log_depth.std() > 0  # not a constant: the kernels are small, not zero


def test_width_multiplier_scales_channels_to_at_least_one():
    cfg = replace(TINY, width_multiplier=0.001)
    fine = build_fine_model(cfg, build_coarse_model(cfg))
    coarse = fine.get_layer(COARSE_MODEL_NAME).model
    assert [coarse.get_layer(f"coarse{i}").output.shape[-1] for i in range(1, 6)] == [1] * 5
    assert fine.get_layer("fine1").output.shape[-1] == 1
    assert fine.get_layer("fine3").output.shape[-1] == 1
    assert fine.output_shape == (None, 16, 22, 1)


def test_too_small_input_names_the_fields():
    build_coarse_model(replace(TINY, input_height=63, input_width=63))
    with pytest.raises(ValueError, match="input_height x input_width = 62x63"):
        build_coarse_model(replace(TINY, input_height=62, input_width=63))


def test_fine_rejects_coarse_of_other_size():
    other = replace(TINY, output_height=15)
    with pytest.raises(ValueError, match="coarse_model maps"):
        build_fine_model(TINY, build_coarse_model(other))


def test_coarse_is_frozen_and_in_inference_mode_inside_fine():
    coarse = build_coarse_model(TINY)
    fine = build_fine_model(TINY, coarse)
    coarse_ids = {id(v) for v in coarse.weights}
    assert coarse_ids and not coarse_ids & {id(v) for v in fine.trainable_weights}
    assert {v.path.split("/")[0] for v in fine.trainable_weights} == {"fine1", "fine3", "fine4"}

    # The coarse channel of fine2 is coarse's inference output even in training mode (dropout off).
    images = _images(TINY)
    probe = keras.Model(fine.input, fine.get_layer("fine2").output)
    expected = coarse(images, training=False).numpy()[..., 0]
    np.testing.assert_array_equal(probe(images, training=True).numpy()[..., -1], expected)
    assert not np.array_equal(coarse(images, training=True).numpy()[..., 0], expected)  # dropout is real


def test_fine_training_step_changes_fine_weights_only():
    coarse = build_coarse_model(TINY)
    fine = build_fine_model(TINY, coarse)
    opt_cfg = OptimizerConfig(lr_fine_conv=1.0, lr_fine_out=1.0, momentum=0.0)
    fine.compile(optimizer=fine_optimizer(opt_cfg, total_steps=1), loss="mse")
    coarse_before = [w.copy() for w in coarse.get_weights()]
    fine_before = [v.numpy().copy() for v in fine.trainable_weights]

    images = _images(TINY)
    target_log_depth = np.random.default_rng(1).normal(1.0, 0.5, (2, 16, 22, 1)).astype("float32")
    fine.fit(images, target_log_depth, batch_size=2, epochs=1, verbose=0)

    for before, after in zip(coarse_before, coarse.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    for before, variable in zip(fine_before, fine.trainable_weights, strict=True):
        assert not np.array_equal(before, variable.numpy()), variable.path


def test_freeze_coarse_refreezes():
    fine = build_fine_model(TINY, build_coarse_model(TINY))
    frozen_count = len(fine.trainable_weights)
    fine.get_layer(COARSE_MODEL_NAME).trainable = True
    assert len(fine.trainable_weights) > frozen_count
    assert len(freeze_coarse(fine).trainable_weights) == frozen_count


def test_keras_round_trip_of_both_models(tmp_path):
    coarse = build_coarse_model(TINY)
    fine = build_fine_model(TINY, coarse)
    images = _images(TINY)

    coarse.save(tmp_path / "coarse.keras")
    fine.save(tmp_path / "fine.keras")
    coarse2 = keras.models.load_model(tmp_path / "coarse.keras")
    fine2 = keras.models.load_model(tmp_path / "fine.keras")

    np.testing.assert_array_equal(coarse2.predict(images, verbose=0), coarse.predict(images, verbose=0))
    np.testing.assert_array_equal(fine2.predict(images, verbose=0), fine.predict(images, verbose=0))
    inner = fine2.get_layer(COARSE_MODEL_NAME)
    assert not inner.trainable and not inner.model.trainable
    for before, after in zip(coarse.get_weights(), inner.model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert [v.path for v in fine2.trainable_weights] == [v.path for v in fine.trainable_weights]
    probe = keras.Model(fine2.input, fine2.get_layer("fine2").output)
    np.testing.assert_array_equal(
        probe(images, training=True).numpy()[..., -1], coarse(images, training=False).numpy()[..., 0]
    )


def test_outputs_stay_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        coarse = build_coarse_model(TINY)
        fine = build_fine_model(TINY, coarse)
        assert coarse.get_layer("coarse1").compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert coarse.output.dtype == "float32"
    assert fine.output.dtype == "float32"


PASSTHROUGH = replace(TINY, fine_init="coarse_passthrough")


def _coarse_of_both_signs(cfg: ModelConfig) -> keras.Model:
    """A coarse model whose log depth spans both signs (depths below and above 1 m): coarse7's bias ~N(0, 1)."""
    coarse = build_coarse_model(cfg)
    coarse7 = coarse.get_layer("coarse7")
    bias = np.random.default_rng(2).normal(0.0, 1.0, coarse7.bias.shape).astype("float32")
    coarse7.set_weights([coarse7.kernel.numpy(), bias])
    return coarse


def test_coarse_passthrough_fine_outputs_its_coarse_map_at_initialisation():
    coarse = _coarse_of_both_signs(PASSTHROUGH)
    fine = build_fine_model(PASSTHROUGH, coarse)
    images = _images(PASSTHROUGH)
    coarse_log_depth = coarse(images).numpy()
    assert (coarse_log_depth < -0.5).any() and (coarse_log_depth > 0.5).any()  # depths < 1 m and > 1 m
    np.testing.assert_allclose(fine(images).numpy(), coarse_log_depth, rtol=0, atol=1e-5)
    # The paper's init starts from a constant instead, far from this coarse map.
    paper = build_fine_model(TINY, coarse)
    assert np.abs(paper(images).numpy() - coarse_log_depth).max() > 0.5


def test_coarse_passthrough_trains_every_fine_weight():
    """The residual starts at exactly 0 but not stuck: after two SGD steps every fine weight has moved."""
    fine = build_fine_model(PASSTHROUGH, _coarse_of_both_signs(PASSTHROUGH))
    fine.compile(
        optimizer=fine_optimizer(OptimizerConfig(lr_fine_conv=0.1, lr_fine_out=0.1), total_steps=1),
        loss="mse",
    )
    before = [v.numpy().copy() for v in fine.trainable_weights]
    images = _images(PASSTHROUGH)
    target = np.random.default_rng(3).normal(0.0, 0.5, (2, 16, 22, 1)).astype("float32")
    fine.fit(images, target, batch_size=2, epochs=2, verbose=0)
    for initial, variable in zip(before, fine.trainable_weights, strict=True):
        assert not np.array_equal(initial, variable.numpy()), variable.path


def test_fine_init_is_checked():
    with pytest.raises(ValueError, match="fine3 units"):
        narrow = replace(PASSTHROUGH, width_multiplier=0.001)  # fine3 has 1 unit: it cannot carry +x and -x
        build_fine_model(narrow, build_coarse_model(narrow))
    with pytest.raises(ValueError, match="fine_init"):
        build_fine_model(replace(TINY, fine_init="identity"), build_coarse_model(TINY))

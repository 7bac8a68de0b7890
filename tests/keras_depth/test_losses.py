"""Tests of the scale-invariant loss against a direct NumPy evaluation of the paper's formula."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_depth.config import LossConfig
from keras_depth.losses import ScaleInvariantLoss, scale_invariant_loss, valid_depth_mask

MIN_DEPTH = 0.1
MAX_DEPTH = 10.0
HOLE_VALUES = (0.0, np.nan, np.inf, -np.inf, -1.0, 0.05, 20.0)  # every kind of invalid target


def _depth_with_holes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random valid depths in metres with about a third of the pixels replaced by invalid values."""
    depth = rng.uniform(0.5, 8.0, size=shape)
    holes = rng.uniform(size=shape) < 0.35
    depth[holes] = rng.choice(HOLE_VALUES, size=int(holes.sum()))
    return depth.astype(np.float32)


def _reference_loss(depth: np.ndarray, log_pred: np.ndarray, lam: float) -> np.ndarray:
    """The paper's formula, image by image, in float64: sum(d^2)/n - lam (sum d)^2 / n^2."""
    losses = []
    for image_depth, image_log_pred in zip(
        depth.astype(np.float64), log_pred.astype(np.float64), strict=True
    ):
        valid = np.isfinite(image_depth) & (image_depth > 0) & (image_depth >= MIN_DEPTH)
        valid &= image_depth <= MAX_DEPTH
        d = image_log_pred[valid] - np.log(image_depth[valid])
        n = d.size
        losses.append(np.sum(d**2) / n - lam * np.sum(d) ** 2 / n**2 if n else 0.0)
    return np.array(losses)


def _loss_and_gradient(
    depth: np.ndarray, log_pred: np.ndarray, **kwargs: float
) -> tuple[np.ndarray, np.ndarray]:
    log_pred = tf.constant(log_pred)
    with tf.GradientTape() as tape:
        tape.watch(log_pred)
        loss = scale_invariant_loss(
            tf.constant(depth), log_pred, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, **kwargs
        )
        total = tf.reduce_sum(loss)
    return loss.numpy(), tape.gradient(total, log_pred).numpy()


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_matches_direct_numpy_formula_on_targets_with_holes(lam: float) -> None:
    rng = np.random.default_rng(0)
    depth = _depth_with_holes(rng, (4, 6, 7, 1))
    log_pred = rng.normal(0.5, 1.0, size=depth.shape).astype(np.float32)

    loss = scale_invariant_loss(depth, log_pred, lam=lam, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH)

    assert loss.shape == (4,)
    np.testing.assert_allclose(loss.numpy(), _reference_loss(depth, log_pred, lam), rtol=1e-5, atol=1e-6)


def test_gradient_matches_analytic_derivative() -> None:
    # dL/dp_i = 2 d_i / n - 2 lam (sum d) / n^2 on valid pixels, 0 elsewhere.
    rng = np.random.default_rng(1)
    lam = 0.5
    depth = _depth_with_holes(rng, (3, 5, 5, 1))
    log_pred = rng.normal(size=depth.shape).astype(np.float32)

    _, gradient = _loss_and_gradient(depth, log_pred, lam=lam)

    expected = np.zeros(depth.shape)
    for i in range(depth.shape[0]):
        valid = np.isfinite(depth[i]) & (depth[i] >= MIN_DEPTH) & (depth[i] <= MAX_DEPTH)
        d = log_pred[i][valid] - np.log(depth[i][valid].astype(np.float64))
        expected[i][valid] = 2 * d / d.size - 2 * lam * d.sum() / d.size**2
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-7)


def test_lambda_one_is_invariant_to_scaling_the_prediction() -> None:
    rng = np.random.default_rng(2)
    depth = _depth_with_holes(rng, (2, 5, 6, 1))
    log_pred = rng.normal(size=depth.shape).astype(np.float32)
    log_scale = np.float32(math.log(3.7))  # predicting 3.7 times the depth

    def loss(lam: float, offset: np.float32) -> np.ndarray:
        return scale_invariant_loss(depth, log_pred + offset, lam, MIN_DEPTH, MAX_DEPTH).numpy()

    np.testing.assert_allclose(loss(1.0, log_scale), loss(1.0, np.float32(0.0)), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(loss(0.5, log_scale) - loss(0.5, np.float32(0.0))) > 0.1)  # lam < 1 sees scale


def test_divides_by_the_valid_pixel_count() -> None:
    # Two valid pixels of four, with d = 1 and d = 3: lam = 0 gives (1 + 9) / 2 = 5 (not 10 / 4).
    depth = np.array([[[1.0, 0.0], [math.e, np.nan]]], dtype=np.float32)
    log_pred = np.array([[[1.0, 7.0], [4.0, -2.0]]], dtype=np.float32)

    np.testing.assert_allclose(scale_invariant_loss(depth, log_pred, lam=0.0).numpy(), [5.0], rtol=1e-6)
    # lam = 1: the variance of {1, 3} is 1.
    np.testing.assert_allclose(scale_invariant_loss(depth, log_pred, lam=1.0).numpy(), [1.0], rtol=1e-6)


def test_all_invalid_image_gives_zero_and_finite_gradients() -> None:
    rng = np.random.default_rng(3)
    depth = _depth_with_holes(rng, (3, 4, 4, 1))
    depth[1] = 0.0
    depth[2] = np.nan
    log_pred = rng.normal(size=depth.shape).astype(np.float32)

    loss, gradient = _loss_and_gradient(depth, log_pred, lam=0.5)

    assert loss[1] == 0.0 and loss[2] == 0.0
    assert loss[0] > 0.0
    assert np.all(np.isfinite(gradient))
    assert np.all(gradient[1:] == 0.0)


def test_non_finite_predictions_on_invalid_pixels_do_not_leak() -> None:
    depth = np.array([[[2.0, 0.0], [3.0, np.inf]]], dtype=np.float32)
    log_pred = np.array([[[0.5, np.nan], [1.0, -np.inf]]], dtype=np.float32)

    loss, gradient = _loss_and_gradient(depth, log_pred, lam=0.5)

    np.testing.assert_allclose(loss, _reference_loss(depth, log_pred, 0.5), rtol=1e-5)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("log_depth", [1e4, -1e4])
def test_extreme_predictions_give_finite_loss_and_gradients(log_depth: float) -> None:
    rng = np.random.default_rng(4)
    depth = _depth_with_holes(rng, (2, 6, 6, 1))
    log_pred = np.full(depth.shape, log_depth, dtype=np.float32)

    loss, gradient = _loss_and_gradient(depth, log_pred, lam=0.5, mask_image_extremes=True)

    assert np.all(np.isfinite(loss)) and np.all(loss > 1e7)
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0.0)


def test_mask_image_extremes_ignores_each_image_min_and_max() -> None:
    # Valid depths 1, 2, 3, 4 (and an invalid 0 and 20, which must not count as extremes); the minimum 1
    # appears twice. Only the pixels at 2 and 3 remain, with d = 1 and 3.
    depth = np.array([[[1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 20.0, 4.0]]], dtype=np.float32)
    offsets = np.array([[[10.0, 1.0, 3.0, -10.0], [10.0, 5.0, 5.0, -10.0]]], dtype=np.float32)
    log_pred = np.log(np.where(depth > 0, depth, 1.0)) + offsets

    masked = scale_invariant_loss(depth, log_pred, lam=0.0, max_depth=10.0, mask_image_extremes=True)
    unmasked = scale_invariant_loss(depth, log_pred, lam=0.0, max_depth=10.0)

    np.testing.assert_allclose(masked.numpy(), [5.0], rtol=1e-5)
    np.testing.assert_allclose(unmasked.numpy(), [(4 * 100.0 + 1.0 + 9.0) / 6], rtol=1e-5)


def test_image_with_a_single_depth_value_is_empty_after_masking_extremes() -> None:
    depth = np.full((1, 3, 3, 1), 2.0, dtype=np.float32)
    loss, gradient = _loss_and_gradient(depth, np.zeros_like(depth), mask_image_extremes=True)
    assert loss[0] == 0.0 and np.all(gradient == 0.0)


def test_valid_depth_mask_on_arrays_and_tensors() -> None:
    depth = np.array([0.0, np.nan, np.inf, -np.inf, -1.0, 0.05, 0.1, 5.0, 10.0, 10.5], dtype=np.float32)
    expected = np.array([False] * 6 + [True] * 3 + [False])

    np.testing.assert_array_equal(valid_depth_mask(depth, MIN_DEPTH, MAX_DEPTH), expected)
    np.testing.assert_array_equal(
        valid_depth_mask(tf.constant(depth), MIN_DEPTH, MAX_DEPTH).numpy(), expected
    )


def test_keras_loss_accepts_hw_targets_and_reduces_to_the_batch_mean() -> None:
    rng = np.random.default_rng(5)
    depth = _depth_with_holes(rng, (3, 4, 5, 1))
    log_pred = rng.normal(size=depth.shape).astype(np.float32)
    loss_fn = ScaleInvariantLoss(lam=0.5, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH)

    per_sample = loss_fn.call(tf.constant(depth[..., 0]), tf.constant(log_pred))
    reduced = loss_fn(depth[..., 0], log_pred)

    assert per_sample.shape == (3,)
    np.testing.assert_allclose(float(reduced), _reference_loss(depth, log_pred, 0.5).mean(), rtol=1e-5)


def test_rejects_invalid_depth_range() -> None:
    with pytest.raises(ValueError, match="min_depth"):
        ScaleInvariantLoss(min_depth=5.0, max_depth=1.0)
    with pytest.raises(ValueError, match="max_depth"):
        ScaleInvariantLoss(max_depth=math.inf)


def test_config_round_trip_and_config_section() -> None:
    section = LossConfig(lam=1.0, min_depth=0.5, max_depth=80.0, mask_image_extremes=True)
    loss_fn = ScaleInvariantLoss.from_config_section(section, reduction="sum")

    config = loss_fn.get_config()
    restored = ScaleInvariantLoss.from_config(config)
    deserialized = keras.losses.deserialize(keras.losses.serialize(loss_fn))

    assert config == {
        "name": "scale_invariant_loss",
        "reduction": "sum",
        "lam": 1.0,
        "min_depth": 0.5,
        "max_depth": 80.0,
        "mask_image_extremes": True,
    }
    assert restored.get_config() == config
    assert isinstance(deserialized, ScaleInvariantLoss) and deserialized.get_config() == config


def test_keras_save_and_load_of_a_model_compiled_with_the_loss(tmp_path) -> None:
    rng = np.random.default_rng(6)
    images = rng.uniform(size=(4, 6, 6, 3)).astype(np.float32)
    depth = _depth_with_holes(rng, (4, 6, 6, 1))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(1, 3, padding="same")])
    model.compile(
        optimizer="sgd", loss=ScaleInvariantLoss(lam=0.25, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH)
    )
    path = tmp_path / "tiny.keras"

    model.save(path)
    loaded = keras.models.load_model(path)

    assert isinstance(loaded.loss, ScaleInvariantLoss)
    assert loaded.loss.get_config() == model.loss.get_config()
    expected = _reference_loss(depth, model.predict(images, verbose=0), 0.25).mean()
    np.testing.assert_allclose(loaded.evaluate(images, depth, verbose=0), expected, rtol=1e-5)

"""Tests of keras_depth.augment: geometry shared by image and depth, depth units, holes, colour, batches."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_depth.augment import (
    MAX_INTENSITY,
    _crop_transforms,
    _sample_depth,
    _warp_and_recolour,
    augment_batch,
    center_crop_pair,
    center_crop_targets,
    resize_depth_nearest,
)
from keras_depth.config import AugmentConfig

HEIGHT, WIDTH = 24, 32
CROP_H, CROP_W = 16, 24
CROP = (CROP_H, CROP_W)
OUTPUT = (5, 7)  # a depth target smaller than the crop, as the networks' output
SEEDS = range(8)

# A bright square on a dark background, with its own depth, centred so every crop shows part of it.
DARK, BRIGHT = 40.0, 220.0
BACKGROUND_DEPTH, SQUARE_DEPTH = 2.0, 5.0
SQUARE_ROWS, SQUARE_COLS = slice(6, 18), slice(8, 24)

NO_COLOR_NO_FLIP = {"color_min": 1.0, "color_max": 1.0, "flip_probability": 0.0}


def _seed(value: int) -> tf.Tensor:
    return tf.constant([value, 7], tf.int64)


def _square_pair() -> tuple[np.ndarray, np.ndarray]:
    image = np.full((HEIGHT, WIDTH, 3), DARK, np.float32)
    depth = np.full((HEIGHT, WIDTH, 1), BACKGROUND_DEPTH, np.float32)
    image[SQUARE_ROWS, SQUARE_COLS] = BRIGHT
    depth[SQUARE_ROWS, SQUARE_COLS] = SQUARE_DEPTH
    return image, depth


def _dilate(mask: np.ndarray) -> np.ndarray:
    """Pixels within one pixel (8-neighbourhood) of ``mask``."""
    padded = np.pad(mask, 1)
    rows, cols = mask.shape
    return np.any([padded[dy : dy + rows, dx : dx + cols] for dy in range(3) for dx in range(3)], axis=0)


def _augment(image, depth, seed, **overrides):
    """One example augmented as a batch of one, its depth kept at the crop size."""
    cfg = AugmentConfig(**overrides)
    out_image, out_depth = augment_batch(
        image[np.newaxis], depth[np.newaxis], cfg, CROP, CROP, seed=_seed(seed)
    )
    return out_image.numpy()[0], out_depth.numpy()[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_square_stays_aligned_between_image_and_depth(seed):
    image, depth = _square_pair()
    out_image, out_depth = _augment(image, depth, seed)  # default: scale, rotation, flip, colour

    out_depth = out_depth[..., 0]
    square_depth = out_depth == out_depth.max()
    background = (out_depth > 0) & ~square_depth
    assert square_depth.any() and background.any()
    # Both depths are divided by the same scale, so their ratio is kept.
    ratio = out_depth.max() / out_depth[background].max()
    assert ratio == pytest.approx(SQUARE_DEPTH / BACKGROUND_DEPTH, rel=1e-6)

    bright = out_image.mean(axis=-1) > (DARK + BRIGHT) / 2
    mismatch = bright != square_depth
    border = _dilate(square_depth) & _dilate(~square_depth)
    assert not (mismatch & ~border).any(), f"seed {seed}: image and depth squares differ off the border"


@pytest.mark.parametrize("seed", SEEDS)
def test_holes_stay_holes_and_depths_are_never_interpolated(seed):
    scale = 1.25
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 9.5, (HEIGHT, WIDTH, 1)).astype(np.float32)
    depth[rng.random((HEIGHT, WIDTH, 1)) < 0.3] = 0.0
    image = rng.uniform(0, 255, (HEIGHT, WIDTH, 3)).astype(np.float32)

    _, out_depth = _augment(image, depth, seed, scale_min=scale, scale_max=scale, rotation_degrees=5.0)

    allowed = np.unique(depth[depth > 0] / np.float32(scale))
    valid = out_depth[out_depth != 0]
    assert valid.size > 0
    assert np.isin(valid, allowed).all(), "an output depth is not a stored depth divided by the scale"
    assert (out_depth == 0).any()  # the 30 % holes survive (nearest sampling does not fill them)


@pytest.mark.parametrize("seed", SEEDS)
def test_depth_is_divided_by_the_image_magnification(seed):
    gradient = 4.0  # intensity per input pixel, left to right
    image = np.broadcast_to(gradient * np.arange(WIDTH, dtype=np.float32)[None, :, None], (HEIGHT, WIDTH, 3))
    depth = np.full((HEIGHT, WIDTH, 1), 3.0, np.float32)

    out_image, out_depth = _augment(image, depth, seed, rotation_degrees=0.0, **NO_COLOR_NO_FLIP)

    magnification = gradient / np.diff(out_image[..., 0], axis=1).mean()
    assert 1.0 <= magnification <= 1.5
    np.testing.assert_allclose(out_depth, 3.0 / magnification, rtol=1e-4)


def test_without_scale_or_rotation_a_random_crop_is_exact():
    image = np.random.default_rng(0).uniform(0, 255, (HEIGHT, WIDTH, 3)).astype(np.float32)
    depth = (1.0 + np.arange(HEIGHT * WIDTH, dtype=np.float32)).reshape(HEIGHT, WIDTH, 1)

    out_image, out_depth = _augment(
        image, depth, 3, scale_min=1.0, scale_max=1.0, rotation_degrees=0.0, **NO_COLOR_NO_FLIP
    )

    top, left = divmod(int(out_depth[0, 0, 0]) - 1, WIDTH)
    np.testing.assert_array_equal(out_depth, depth[top : top + CROP_H, left : left + CROP_W])
    np.testing.assert_array_equal(out_image, image[top : top + CROP_H, left : left + CROP_W])


def test_flip_mirrors_image_and_depth_together():
    image = np.random.default_rng(1).uniform(0, 255, (HEIGHT, WIDTH, 3)).astype(np.float32)
    depth = (1.0 + np.arange(HEIGHT * WIDTH, dtype=np.float32)).reshape(HEIGHT, WIDTH, 1)
    exact = {"scale_min": 1.0, "scale_max": 1.0, "rotation_degrees": 0.0, "color_min": 1.0, "color_max": 1.0}

    plain_image, plain_depth = _augment(image, depth, 5, flip_probability=0.0, **exact)
    flipped_image, flipped_depth = _augment(image, depth, 5, flip_probability=1.0, **exact)

    np.testing.assert_array_equal(flipped_depth, plain_depth[:, ::-1])
    np.testing.assert_array_equal(flipped_image, plain_image[:, ::-1])


@pytest.mark.parametrize("seed", SEEDS)
def test_colour_gain_is_per_channel_and_clipped(seed):
    image = np.full((HEIGHT, WIDTH, 3), 100.0, np.float32)
    depth = np.ones((HEIGHT, WIDTH, 1), np.float32)
    out_image, _ = _augment(image, depth, seed, rotation_degrees=0.0)
    gains = out_image.reshape(-1, 3) / 100.0
    np.testing.assert_allclose(gains, gains[:1].repeat(len(gains), axis=0), rtol=1e-5)  # one gain per channel
    assert ((gains >= 0.8 - 1e-5) & (gains <= 1.2 + 1e-5)).all()

    bright = np.full((HEIGHT, WIDTH, 3), 250.0, np.float32)
    out_bright, _ = _augment(bright, depth, seed, color_min=1.1, color_max=1.2)
    assert out_bright.min() >= 0.0
    assert out_bright.max() == MAX_INTENSITY


def test_same_seed_same_output_and_other_seed_differs():
    image, depth = _square_pair()
    first = _augment(image, depth, 11)
    again = _augment(image, depth, 11)
    other = _augment(image, depth, 12)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_unseeded_augmentation_runs_inside_tf_data():
    image, depth = _square_pair()
    dataset = tf.data.Dataset.from_tensors((image.astype(np.uint8), depth)).repeat(4).batch(2)
    dataset = dataset.map(lambda i, d: augment_batch(i, d, AugmentConfig(), CROP, OUTPUT))
    for out_image, out_depth in dataset:
        assert out_image.shape == (2, CROP_H, CROP_W, 3) and out_image.dtype == tf.float32
        assert out_depth.shape == (2, *OUTPUT, 1) and out_depth.dtype == tf.float32


def test_disabled_augmentation_is_the_centre_crop():
    image, depth = _square_pair()
    images, depths = np.stack([image, image + 1.0]), np.stack([depth, depth * 2.0])
    out = augment_batch(images, depths, AugmentConfig(enabled=False), CROP, OUTPUT, seed=_seed(0))
    expected = center_crop_targets(images, depths, CROP, OUTPUT)
    for a, b in zip(out, expected, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    crop_image, crop_depth = center_crop_pair(image, depth, CROP_H, CROP_W)
    np.testing.assert_array_equal(out[0][0].numpy(), crop_image.numpy())
    np.testing.assert_array_equal(out[1][0].numpy(), resize_depth_nearest(crop_depth, *OUTPUT).numpy())


def test_centre_crop_is_exact():
    image = np.arange(HEIGHT * WIDTH * 3, dtype=np.float32).reshape(HEIGHT, WIDTH, 3)
    depth = np.arange(HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH, 1)
    out_image, out_depth = center_crop_pair(image, depth, 15, 20)
    np.testing.assert_array_equal(out_image.numpy(), image[4:19, 6:26])
    np.testing.assert_array_equal(out_depth.numpy(), depth[4:19, 6:26])
    batch_image, batch_depth = center_crop_pair(np.stack([image, -image]), np.stack([depth, -depth]), 15, 20)
    np.testing.assert_array_equal(batch_image.numpy(), np.stack([image, -image])[:, 4:19, 6:26])
    np.testing.assert_array_equal(batch_depth.numpy(), np.stack([depth, -depth])[:, 4:19, 6:26])


@pytest.mark.parametrize(
    "crop", [lambda i, d: center_crop_pair(i, d, HEIGHT + 1, WIDTH), lambda i, d: _augment(i, d, 0)]
)
def test_image_smaller_than_the_crop_is_an_error(crop):
    image, depth = _square_pair()
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than"):
        crop(image[: CROP_H - 1], depth[: CROP_H - 1])


def test_resize_depth_nearest_never_blends_holes():
    checkerboard = (np.indices((HEIGHT, WIDTH)).sum(axis=0) % 2 * 5.0).astype(np.float32)
    batch = np.stack([checkerboard[..., None]] * 2)
    resized = resize_depth_nearest(batch, 7, 9).numpy()
    assert resized.shape == (2, 7, 9, 1)
    assert set(np.unique(resized)) == {0.0, 5.0}
    assert resize_depth_nearest(batch[0], 7, 9).shape == (7, 9, 1)


def _random_batch(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and float32 depths with 30 % holes, [batch, HEIGHT, WIDTH, C]."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, HEIGHT, WIDTH, 3), dtype=np.uint8)
    depths = rng.uniform(0.5, 9.5, (batch, HEIGHT, WIDTH, 1)).astype(np.float32)
    depths[rng.random(depths.shape) < 0.3] = 0.0
    return images, depths


def test_batch_warp_matches_image_projective_transform_per_example():
    """The batch kernels against TF's warp op run per example: image bilinear, depth nearest."""
    batch = 6
    images, depths = _random_batch(batch, 0)
    rng = np.random.default_rng(1)
    scale = rng.uniform(1.0, 1.5, batch).astype(np.float32)
    transforms = _crop_transforms(
        scale,
        np.radians(rng.uniform(-5.0, 5.0, batch)).astype(np.float32),
        np.array([0, 1, 0, 1, 1, 0], np.float32),
        np.floor(rng.uniform(0, 1, batch) * ((HEIGHT - 1) * scale - (CROP_H - 1))),
        np.floor(rng.uniform(0, 1, batch) * ((WIDTH - 1) * scale - (CROP_W - 1))),
        CROP_H,
        CROP_W,
    )
    gains = np.ones((batch, 3), np.float32)
    warped = _warp_and_recolour(images, transforms, gains, CROP_H, CROP_W).numpy()
    targets = _sample_depth(depths, transforms, CROP, OUTPUT).numpy()
    for index in range(batch):

        def reference(stored, interpolation, example=index):
            return tf.raw_ops.ImageProjectiveTransformV3(
                images=tf.cast(stored[example : example + 1], tf.float32),
                transforms=transforms[example : example + 1],
                output_shape=tf.constant(CROP, tf.int32),
                fill_value=0.0,
                interpolation=interpolation,
                fill_mode="CONSTANT",
            )[0]

        # XLA fuses multiply-adds, so the bilinear values may differ in the last float bits.
        np.testing.assert_allclose(warped[index], reference(images, "BILINEAR").numpy(), atol=0.02)
        expected_depth = resize_depth_nearest(reference(depths, "NEAREST"), *OUTPUT)
        np.testing.assert_array_equal(targets[index], expected_depth.numpy())


@pytest.mark.parametrize("seed", SEEDS)
def test_depth_target_is_the_nearest_downsampled_augmented_crop(seed):
    images, depths = _random_batch(3, seed)
    cfg = AugmentConfig()
    crop_images, crop_depths = augment_batch(images, depths, cfg, CROP, CROP, seed=_seed(seed))
    out_images, out_depths = augment_batch(images, depths, cfg, CROP, OUTPUT, seed=_seed(seed))
    np.testing.assert_array_equal(out_images.numpy(), crop_images.numpy())
    np.testing.assert_array_equal(out_depths.numpy(), resize_depth_nearest(crop_depths, *OUTPUT).numpy())


def test_examples_of_a_batch_are_augmented_independently():
    images, depths = _random_batch(4, 2)
    cfg = AugmentConfig()
    first = augment_batch(images, depths, cfg, CROP, OUTPUT, seed=_seed(3))
    # Other companions in the batch, and a batch of one: the first example comes out the same.
    others, other_depths = _random_batch(4, 9)
    others[0], other_depths[0] = images[0], depths[0]
    for companions in (
        augment_batch(others, other_depths, cfg, CROP, OUTPUT, seed=_seed(3)),
        augment_batch(images[:1], depths[:1], cfg, CROP, OUTPUT, seed=_seed(3)),
    ):
        np.testing.assert_allclose(companions[0][0].numpy(), first[0][0].numpy(), atol=1e-3)
        np.testing.assert_array_equal(companions[1][0].numpy(), first[1][0].numpy())

    # The same pair four times in one batch: four different draws.
    same = augment_batch(
        np.repeat(images[:1], 4, 0), np.repeat(depths[:1], 4, 0), cfg, CROP, OUTPUT, _seed(3)
    )
    views = {view.tobytes() for view in same[0].numpy()}
    assert len(views) == 4

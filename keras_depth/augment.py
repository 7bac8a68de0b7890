"""Online augmentation of (image, depth) pairs, following Eigen et al. (2014), section 3.3.

Every function works on one example and is graph-safe, so it runs inside
``tf.data.Dataset.map``. Images are float32 RGB ``[H, W, 3]`` in 0..255; depths
are float32 ``[H, W, 1]`` in metres, where 0 marks an invalid pixel.

Training augmentation (``augment_pair``) draws, per example:

- a scale ``s ~ U[scale_min, scale_max]``: the image is magnified by ``s`` and the
  depth divided by ``s`` (a magnified image looks like the scene moved ``s`` times
  closer);
- a rotation ``r ~ U[-rotation_degrees, rotation_degrees]``;
- a crop of the network input size at a random integer offset in the scaled image;
- a horizontal flip with probability ``flip_probability``;
- a colour gain ``c ~ U[color_min, color_max]`` per RGB channel (image only).

Scale, rotation, crop and flip are all one affine map from output pixel to input
pixel, applied in a single ``ImageProjectiveTransformV3`` warp: bilinear for the
image, nearest for the depth. Warping once (rather than resize, then rotate, then
crop) interpolates the image only once and never materialises the magnified full
frame. Nearest sampling copies stored depths, so a hole (0) is never blended into
its valid neighbours and every output depth is an input depth divided by ``s``.
The rotation turns the crop window about its own centre; window corners that leave
the stored frame are filled with 0, which makes those depths invalid.
"""

from __future__ import annotations

import math

import tensorflow as tf

from keras_depth.config import AugmentConfig

# Positions in the vector of U[0, 1) draws that ``augment_pair`` takes per example.
_DRAW_SCALE = 0
_DRAW_ROTATION = 1
_DRAW_OFFSET_Y = 2
_DRAW_OFFSET_X = 3
_DRAW_FLIP = 4
_DRAW_COLOR = slice(5, 8)  # one gain per RGB channel
_NUM_DRAWS = 8

MAX_INTENSITY = 255.0  # images are float32 in 0..MAX_INTENSITY
_FILL_VALUE = 0.0  # written where the warp samples outside the stored frame (depth 0 = invalid)


def _uniform_draws(seed: tf.Tensor | None) -> tf.Tensor:
    """``_NUM_DRAWS`` float32 values in [0, 1): stateless from ``seed`` ([2] int), else from tf.random."""
    if seed is None:
        return tf.random.uniform([_NUM_DRAWS])
    return tf.random.stateless_uniform([_NUM_DRAWS], seed=seed)


def _lerp(low: float, high: float, fraction: tf.Tensor) -> tf.Tensor:
    """``low + (high - low) * fraction``: maps a U[0, 1) draw to U[low, high)."""
    return low + (high - low) * fraction


def _random_offset(room: tf.Tensor, fraction: tf.Tensor) -> tf.Tensor:
    """Integer offset uniform in {0, ..., floor(room)} from a U[0, 1) draw (float32)."""
    last = tf.floor(room)
    # The minimum guards against float32 rounding fraction * (last + 1) up to last + 1.
    return tf.minimum(tf.floor(fraction * (last + 1.0)), last)


def _warp(images: tf.Tensor, transform: tf.Tensor, out_height: int, out_width: int, interpolation: str):
    """Samples ``images`` [1, H, W, C] at input pixel ``A @ (x, y, 1)`` for each output pixel (x, y).

    Args:
        images: float32 [1, H, W, C].
        transform: float32 [1, 8], the projective transform ``a0..a7`` of
            ``tf.raw_ops.ImageProjectiveTransformV3`` (output pixel -> input pixel,
            integer coordinates at pixel centres).
        out_height: Output height in pixels.
        out_width: Output width in pixels.
        interpolation: ``"BILINEAR"`` or ``"NEAREST"``.

    Returns:
        float32 [1, out_height, out_width, C]; samples outside the frame are ``_FILL_VALUE``.
    """
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transform,
        output_shape=tf.constant([out_height, out_width], tf.int32),
        fill_value=tf.constant(_FILL_VALUE, tf.float32),
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )
    return tf.ensure_shape(warped, [1, out_height, out_width, images.shape[-1]])


def _crop_transform(
    scale: tf.Tensor,
    angle: tf.Tensor,
    flip: tf.Tensor,
    offset_y: tf.Tensor,
    offset_x: tf.Tensor,
    out_height: int,
    out_width: int,
) -> tf.Tensor:
    """The affine map from a crop pixel to the stored-image pixel it shows.

    The scaled image has pixel centres ``1 / scale`` apart in input pixels, so its
    pixel ``(u, v)`` lies at input ``(u, v) / scale``. The crop's top-left pixel is
    scaled pixel ``(offset_x, offset_y)``; the crop is rotated by ``angle`` about its
    centre and, when ``flip`` is 1, mirrored about its vertical centre line.

    Args:
        scale: float32 scalar, magnification ``s``.
        angle: float32 scalar, rotation in radians.
        flip: float32 scalar, 1 to mirror horizontally, 0 not to.
        offset_y: float32 scalar, crop top in scaled pixels.
        offset_x: float32 scalar, crop left in scaled pixels.
        out_height: Crop height in pixels.
        out_width: Crop width in pixels.

    Returns:
        float32 [1, 8] transform for ``_warp``.
    """
    half_h = (out_height - 1) / 2.0
    half_w = (out_width - 1) / 2.0
    centre_y = offset_y + half_h
    centre_x = offset_x + half_w
    mirror = 1.0 - 2.0 * flip
    cos, sin = tf.cos(angle), tf.sin(angle)
    # input = (centre + R(angle) @ (mirror * (x - half_w), y - half_h)) / scale
    a0 = mirror * cos / scale
    a1 = -sin / scale
    a2 = (centre_x - mirror * cos * half_w + sin * half_h) / scale
    a3 = mirror * sin / scale
    a4 = cos / scale
    a5 = (centre_y - mirror * sin * half_w - cos * half_h) / scale
    zero = tf.zeros_like(a0)
    return tf.reshape(tf.stack([a0, a1, a2, a3, a4, a5, zero, zero]), [1, 8])


def augment_pair(
    image: tf.Tensor,
    depth: tf.Tensor,
    aug_cfg: AugmentConfig,
    out_height: int,
    out_width: int,
    seed: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Randomly scales, rotates, crops, flips and recolours one training pair.

    With ``aug_cfg.enabled`` False this is :func:`center_crop_pair`.

    Args:
        image: float32 [H, W, 3], RGB in 0..255.
        depth: float32 [H, W, 1], metres, 0 = invalid.
        aug_cfg: Ranges of the random scale, rotation (degrees; 0 disables it),
            colour gain and flip probability.
        out_height: Crop height in pixels (the network input height).
        out_width: Crop width in pixels (the network input width).
        seed: int32/int64 [2] seed of a stateless draw (same seed, same output), or
            None to draw from ``tf.random``.

    Returns:
        ``(image, depth)``: float32 [out_height, out_width, 3] in 0..255 and
        float32 [out_height, out_width, 1] metres (depth divided by the scale;
        0 = invalid, including pixels rotated in from outside the frame).

    Raises:
        ValueError: if ``aug_cfg.scale_min`` is not positive.
        tf.errors.InvalidArgumentError: when run on an image that, scaled by
            ``scale_min``, is smaller than the crop.
    """
    if not aug_cfg.enabled:
        return center_crop_pair(image, depth, out_height, out_width)
    if aug_cfg.scale_min <= 0:
        raise ValueError(f"AugmentConfig.scale_min must be > 0, got {aug_cfg.scale_min}")

    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    # The crop's pixel centres must fit between the first and last scaled pixel centre.
    room_y = (height - 1.0) * aug_cfg.scale_min - (out_height - 1)
    room_x = (width - 1.0) * aug_cfg.scale_min - (out_width - 1)
    fits = tf.debugging.assert_non_negative(
        tf.minimum(room_y, room_x),
        message=(
            f"image scaled by scale_min={aug_cfg.scale_min} is smaller than the {out_height}x{out_width} crop"
        ),
    )

    draws = _uniform_draws(seed)
    scale = _lerp(aug_cfg.scale_min, aug_cfg.scale_max, draws[_DRAW_SCALE])
    max_angle = math.radians(aug_cfg.rotation_degrees)
    angle = _lerp(-max_angle, max_angle, draws[_DRAW_ROTATION])
    flip = tf.cast(draws[_DRAW_FLIP] < aug_cfg.flip_probability, tf.float32)
    with tf.control_dependencies([fits]):
        offset_y = _random_offset((height - 1.0) * scale - (out_height - 1), draws[_DRAW_OFFSET_Y])
        offset_x = _random_offset((width - 1.0) * scale - (out_width - 1), draws[_DRAW_OFFSET_X])
    transform = _crop_transform(scale, angle, flip, offset_y, offset_x, out_height, out_width)

    image = _warp(image[tf.newaxis], transform, out_height, out_width, "BILINEAR")[0]
    depth = _warp(depth[tf.newaxis], transform, out_height, out_width, "NEAREST")[0] / scale
    gains = _lerp(aug_cfg.color_min, aug_cfg.color_max, draws[_DRAW_COLOR])
    image = tf.clip_by_value(image * gains, 0.0, MAX_INTENSITY)
    return image, depth


def center_crop_pair(
    image: tf.Tensor, depth: tf.Tensor, out_height: int, out_width: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The evaluation view: one crop at scale 1 from the centre of the stored frame.

    Args:
        image: [H, W, 3], any dtype (float32 RGB 0..255 in the reader).
        depth: [H, W, 1], metres, 0 = invalid.
        out_height: Crop height in pixels, at most H.
        out_width: Crop width in pixels, at most W.

    Returns:
        ``(image, depth)`` of shapes [out_height, out_width, 3] and
        [out_height, out_width, 1], values copied unchanged. When H - out_height is
        odd the extra row is dropped at the bottom (likewise the column on the right).

    Raises:
        tf.errors.InvalidArgumentError: when run on an image smaller than the crop.
    """
    shape = tf.shape(image)
    fits = tf.debugging.assert_greater_equal(
        shape[:2],
        tf.constant([out_height, out_width]),
        message=f"image is smaller than the {out_height}x{out_width} centre crop",
    )
    with tf.control_dependencies([fits]):
        top = (shape[0] - out_height) // 2
        left = (shape[1] - out_width) // 2
    image = image[top : top + out_height, left : left + out_width]
    depth = depth[top : top + out_height, left : left + out_width]
    return (
        tf.ensure_shape(image, [out_height, out_width, 3]),
        tf.ensure_shape(depth, [out_height, out_width, 1]),
    )


def resize_depth_nearest(depth: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Brings a depth map to the model's output resolution by nearest-neighbour sampling.

    The loss target is this nearest-downsampled depth: each target pixel is one
    stored depth sample (not an average), so an invalid 0 is never interpolated
    with its valid neighbours into a plausible-looking but wrong depth.

    Args:
        depth: float32 [H, W, 1] or [B, H, W, 1], metres, 0 = invalid.
        height: Output height in pixels (the model's output height).
        width: Output width in pixels (the model's output width).

    Returns:
        float32 [height, width, 1] or [B, height, width, 1], metres, 0 = invalid.
    """
    return tf.image.resize(depth, [height, width], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)

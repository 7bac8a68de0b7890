"""Online augmentation of (image, depth) batches, following Eigen et al. (2014), section 3.3.

Every function works on a whole batch and is graph-safe, so the reader augments a batch in one
``tf.data.Dataset.map`` call. Images are RGB ``[B, H, W, 3]`` in 0..255 (uint8 as stored, or
float32); depths are float32 ``[B, H, W, 1]`` in metres, where 0 marks an invalid pixel. The examples
of a batch share one stored size (ingest stores a split at one size).

Training augmentation (:func:`augment_batch`) draws, per example:

- a scale ``s ~ U[scale_min, scale_max]``: the image is magnified by ``s`` and the
  depth divided by ``s`` (a magnified image looks like the scene moved ``s`` times
  closer);
- a rotation ``r ~ U[-rotation_degrees, rotation_degrees]``;
- a crop of the network input size at a random integer offset in the scaled image;
- a horizontal flip with probability ``flip_probability``;
- a colour gain ``c ~ U[color_min, color_max]`` per RGB channel (image only).

Scale, rotation, crop and flip are one affine map per example from crop pixel to stored pixel.
Warping once (rather than resize, then rotate, then crop) interpolates the image only once and never
materialises the magnified full frame. The rotation turns the crop window about its own centre;
window corners that leave the stored frame are filled with 0, which makes those depths invalid.

- The image is sampled bilinearly at the mapped points and recoloured in one XLA-compiled function:
  the arithmetic of ``tf.raw_ops.ImageProjectiveTransformV3`` (``BILINEAR``, ``CONSTANT`` fill 0),
  equal to it up to float rounding (XLA fuses multiply-adds; differences stay below 0.01 of 255),
  at a fifth of its CPU time (3.4 instead of 17 ms for 32 crops of 114x152 on one core).
- The depth target is sampled by nearest neighbour only at the crop pixels that
  :func:`resize_depth_nearest` keeps at the model's output resolution: the values of warping the
  whole crop with ``ImageProjectiveTransformV3`` (``NEAREST``) and then downsampling it, without
  warping the pixels the downsampling drops. Nearest sampling copies stored depths, so a hole (0) is
  never blended into its valid neighbours and every output depth is an input depth divided by ``s``.
"""

from __future__ import annotations

import math

import tensorflow as tf

from keras_depth.config import AugmentConfig

# Positions in the row of U[0, 1) draws that ``augment_batch`` takes per example.
_DRAW_SCALE = 0
_DRAW_ROTATION = 1
_DRAW_OFFSET_Y = 2
_DRAW_OFFSET_X = 3
_DRAW_FLIP = 4
_DRAW_COLOR = slice(5, 8)  # one gain per RGB channel
_NUM_DRAWS = 8

MAX_INTENSITY = 255.0  # images are 0..MAX_INTENSITY


def _uniform_draws(batch_size: tf.Tensor, seed: tf.Tensor | None) -> tf.Tensor:
    """float32 [batch_size, _NUM_DRAWS] in [0, 1): stateless from ``seed`` ([2] int), else from tf.random.

    Row 0 of a stateless draw is the draw of a batch of one with the same seed.
    """
    shape = tf.stack([batch_size, _NUM_DRAWS])
    if seed is None:
        return tf.random.uniform(shape)
    return tf.random.stateless_uniform(shape, seed=seed)


def _lerp(low: float, high: float, fraction: tf.Tensor) -> tf.Tensor:
    """``low + (high - low) * fraction``: maps a U[0, 1) draw to U[low, high)."""
    return low + (high - low) * fraction


def _random_offset(room: tf.Tensor, fraction: tf.Tensor) -> tf.Tensor:
    """Integer offset uniform in {0, ..., floor(room)} from a U[0, 1) draw (float32, any shape)."""
    last = tf.floor(room)
    # The minimum guards against float32 rounding fraction * (last + 1) up to last + 1.
    return tf.minimum(tf.floor(fraction * (last + 1.0)), last)


def _crop_transforms(
    scale: tf.Tensor,
    angle: tf.Tensor,
    flip: tf.Tensor,
    offset_y: tf.Tensor,
    offset_x: tf.Tensor,
    out_height: int,
    out_width: int,
) -> tf.Tensor:
    """The affine maps from a crop pixel to the stored-image pixel it shows, one per example.

    The scaled image has pixel centres ``1 / scale`` apart in input pixels, so its
    pixel ``(u, v)`` lies at input ``(u, v) / scale``. The crop's top-left pixel is
    scaled pixel ``(offset_x, offset_y)``; the crop is rotated by ``angle`` about its
    centre and, when ``flip`` is 1, mirrored about its vertical centre line.

    Args:
        scale: float32 [B], magnification ``s``.
        angle: float32 [B], rotation in radians.
        flip: float32 [B], 1 to mirror horizontally, 0 not to.
        offset_y: float32 [B], crop top in scaled pixels.
        offset_x: float32 [B], crop left in scaled pixels.
        out_height: Crop height in pixels.
        out_width: Crop width in pixels.

    Returns:
        float32 [B, 8]: per example the projective transform ``a0..a7`` of
        ``tf.raw_ops.ImageProjectiveTransformV3`` (crop pixel ``(x, y)`` -> stored pixel
        ``(a0 x + a1 y + a2, a3 x + a4 y + a5)``, integer coordinates at pixel centres).
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
    return tf.stack([a0, a1, a2, a3, a4, a5, zero, zero], axis=-1)


def _mapped_coordinates(transforms: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor):
    """Stored-image coordinates ``(y, x)``, float32 [B, len(rows), len(cols)], of crop pixels.

    Evaluated as ``ImageProjectiveTransformV3`` evaluates them, so that the same float32 operations
    in the same order give the same coordinates (bit for bit outside XLA, which fuses multiply-adds).

    Args:
        transforms: float32 [B, 8] (:func:`_crop_transforms`).
        rows: float32 [h], crop rows.
        cols: float32 [w], crop columns.
    """
    # [B, 8, 1, 1], then one coefficient per example: [B, 1, 1]. Not transforms[:, i, newaxis, newaxis]:
    # on a tf.stack result, Grappler's arithmetic optimizer drops those new axes in a graph (TF 2.21).
    coefficients = tf.reshape(transforms, [-1, 8, 1, 1])
    a0, a1, a2, a3, a4, a5 = (coefficients[:, index] for index in range(6))
    y, x = rows[:, tf.newaxis], cols[tf.newaxis, :]
    return a3 * x + a4 * y + a5, a0 * x + a1 * y + a2


def _read_or_zero(flat: tf.Tensor, y: tf.Tensor, x: tf.Tensor, height: tf.Tensor, width: tf.Tensor):
    """Pixels at integer-valued coordinates, 0 outside the frame (the warp's fill; depth 0 = invalid).

    Outside pixels are multiplied by 0 rather than replaced (``tf.where``), which keeps XLA's gather
    fused with the arithmetic around it (3x faster); stored values are finite, so both give 0.

    Args:
        flat: [B * height * width, C], the batch with its pixels as rows, finite values.
        y: float32 [B, h, w], whole-number rows (any value; outside [0, height) reads 0).
        x: float32 [B, h, w], whole-number columns.
        height: int32 scalar, stored height.
        width: int32 scalar, stored width.

    Returns:
        float32 [B, h, w, C].
    """
    row, col = tf.cast(y, tf.int32), tf.cast(x, tf.int32)
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    image_start = tf.range(tf.shape(y)[0])[:, tf.newaxis, tf.newaxis] * (height * width)
    index = image_start + tf.clip_by_value(row, 0, height - 1) * width + tf.clip_by_value(col, 0, width - 1)
    values = tf.cast(tf.gather(flat, index), tf.float32)
    return values * tf.cast(inside, tf.float32)[..., tf.newaxis]


@tf.function(jit_compile=True)
def _warp_and_recolour(images: tf.Tensor, transforms: tf.Tensor, gains: tf.Tensor, out_height, out_width):
    """Bilinear samples of ``images`` at the crop pixels, times per-channel gains, clipped to 0..255.

    ``ImageProjectiveTransformV3``'s bilinear interpolation (each of the four neighbours outside the
    frame reads 0), then ``clip(value * gain, 0, 255)``, in one fused XLA kernel.

    Args:
        images: uint8 or float32 [B, H, W, 3], RGB 0..255.
        transforms: float32 [B, 8] (:func:`_crop_transforms`).
        gains: float32 [B, 3], colour gain per example and channel.
        out_height: Crop height in pixels (a Python int: one compilation per crop size).
        out_width: Crop width in pixels.

    Returns:
        float32 [B, out_height, out_width, 3], RGB 0..255.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    flat = tf.reshape(images, [-1, shape[3]])
    rows = tf.range(out_height, dtype=tf.float32)
    cols = tf.range(out_width, dtype=tf.float32)
    y, x = _mapped_coordinates(transforms, rows, cols)
    y_floor, x_floor = tf.floor(y), tf.floor(x)
    y_ceil, x_ceil = y_floor + 1.0, x_floor + 1.0

    def weight(value: tf.Tensor) -> tf.Tensor:
        return value[..., tf.newaxis]

    def row_blend(row: tf.Tensor) -> tf.Tensor:
        left = _read_or_zero(flat, row, x_floor, height, width)
        right = _read_or_zero(flat, row, x_ceil, height, width)
        return weight(x_ceil - x) * left + weight(x - x_floor) * right

    blended = weight(y_ceil - y) * row_blend(y_floor) + weight(y - y_floor) * row_blend(y_ceil)
    return tf.clip_by_value(blended * gains[:, tf.newaxis, tf.newaxis, :], 0.0, MAX_INTENSITY)


def _round_half_away_from_zero(value: tf.Tensor) -> tf.Tensor:
    """``std::round`` (ties away from zero, as ``ImageProjectiveTransformV3``'s nearest), exact in float32.

    ``tf.round`` rounds ties to even; ``floor(v + 0.5)`` can round ``v + 0.5`` up before flooring.
    """
    magnitude = tf.abs(value)
    whole = tf.floor(magnitude)
    return tf.sign(value) * (whole + tf.cast(magnitude - whole >= 0.5, tf.float32))


def _resize_source_indices(size: int, target: int) -> tf.Tensor:
    """float32 [target]: the indices of the ``size`` pixels a nearest resize to ``target`` keeps.

    Found by resizing the indices themselves with :func:`resize_depth_nearest`, so they are its
    sampling whatever its rounding rule.
    """
    indices = tf.range(size, dtype=tf.float32)[:, tf.newaxis, tf.newaxis]
    return resize_depth_nearest(indices, target, 1)[:, 0, 0]


@tf.function(jit_compile=True)
def _nearest_or_zero(images: tf.Tensor, y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """The pixels nearest to ``(y, x)`` (rounded as ``std::round``), 0 outside the frame.

    Compiled with XLA only to save the per-op overhead: rounding, comparisons and gathers are exact,
    so the result is the same as without XLA.

    Args:
        images: [B, H, W, C], finite values.
        y: float32 [B, h, w], rows in stored pixels.
        x: float32 [B, h, w], columns in stored pixels.

    Returns:
        float32 [B, h, w, C].
    """
    shape = tf.shape(images)
    flat = tf.reshape(images, [-1, shape[3]])
    row, col = _round_half_away_from_zero(y), _round_half_away_from_zero(x)
    return _read_or_zero(flat, row, col, shape[1], shape[2])


def _sample_depth(
    depths: tf.Tensor, transforms: tf.Tensor, crop_size: tuple[int, int], output_size: tuple[int, int]
) -> tf.Tensor:
    """The nearest-downsampled depth of each warped crop, sampling only the crop pixels it keeps.

    Equal to ``resize_depth_nearest`` of ``ImageProjectiveTransformV3`` (``NEAREST``, fill 0) at the
    crop size: the same coordinates (:func:`_mapped_coordinates`, outside XLA so bit for bit) and
    rounding.

    Args:
        depths: float32 [B, H, W, 1], metres, 0 = invalid.
        transforms: float32 [B, 8] (:func:`_crop_transforms`).
        crop_size: ``(height, width)`` of the crop in pixels (the network input).
        output_size: ``(height, width)`` of the depth target in pixels (the network output).

    Returns:
        float32 [B, output_height, output_width, 1], metres, 0 = invalid (holes and pixels from
        outside the stored frame).
    """
    rows = _resize_source_indices(crop_size[0], output_size[0])
    cols = _resize_source_indices(crop_size[1], output_size[1])
    y, x = _mapped_coordinates(transforms, rows, cols)
    return _nearest_or_zero(depths, y, x)


def augment_batch(
    images: tf.Tensor,
    depths: tf.Tensor,
    aug_cfg: AugmentConfig,
    input_size: tuple[int, int],
    output_size: tuple[int, int],
    seed: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Randomly scales, rotates, crops, flips and recolours a batch of training pairs.

    Every example gets its own draws; with ``aug_cfg.enabled`` False this is
    :func:`center_crop_targets`.

    Args:
        images: uint8 or float32 [B, H, W, 3], RGB 0..255.
        depths: float32 [B, H, W, 1], metres, 0 = invalid.
        aug_cfg: Ranges of the random scale, rotation (degrees; 0 disables it),
            colour gain and flip probability.
        input_size: ``(height, width)`` of the crop in pixels (the network input).
        output_size: ``(height, width)`` of the depth target in pixels (the network output); the
            crop's depth is nearest-downsampled to it (:func:`resize_depth_nearest`).
        seed: int32/int64 [2] seed of a stateless draw (same seed, same output; the first example
            of a batch draws as a batch of one does), or None to draw from ``tf.random``.

    Returns:
        ``(images, depths)``: float32 [B, input_height, input_width, 3] in 0..255 and
        float32 [B, output_height, output_width, 1] metres (depth divided by the scale;
        0 = invalid, including pixels rotated in from outside the frame).

    Raises:
        ValueError: if ``aug_cfg.scale_min`` is not positive.
        tf.errors.InvalidArgumentError: when run on images that, scaled by
            ``scale_min``, are smaller than the crop.
    """
    if not aug_cfg.enabled:
        return center_crop_targets(images, depths, input_size, output_size)
    if aug_cfg.scale_min <= 0:
        raise ValueError(f"AugmentConfig.scale_min must be > 0, got {aug_cfg.scale_min}")

    out_height, out_width = input_size
    shape = tf.shape(images)
    height = tf.cast(shape[1], tf.float32)
    width = tf.cast(shape[2], tf.float32)
    # The crop's pixel centres must fit between the first and last scaled pixel centre.
    room_y = (height - 1.0) * aug_cfg.scale_min - (out_height - 1)
    room_x = (width - 1.0) * aug_cfg.scale_min - (out_width - 1)
    fits = tf.debugging.assert_non_negative(
        tf.minimum(room_y, room_x),
        message=(
            f"image scaled by scale_min={aug_cfg.scale_min} is smaller than the {out_height}x{out_width} crop"
        ),
    )

    draws = _uniform_draws(shape[0], seed)
    scale = _lerp(aug_cfg.scale_min, aug_cfg.scale_max, draws[:, _DRAW_SCALE])
    max_angle = math.radians(aug_cfg.rotation_degrees)
    angle = _lerp(-max_angle, max_angle, draws[:, _DRAW_ROTATION])
    flip = tf.cast(draws[:, _DRAW_FLIP] < aug_cfg.flip_probability, tf.float32)
    with tf.control_dependencies([fits]):
        offset_y = _random_offset((height - 1.0) * scale - (out_height - 1), draws[:, _DRAW_OFFSET_Y])
        offset_x = _random_offset((width - 1.0) * scale - (out_width - 1), draws[:, _DRAW_OFFSET_X])
    transforms = _crop_transforms(scale, angle, flip, offset_y, offset_x, out_height, out_width)
    gains = _lerp(aug_cfg.color_min, aug_cfg.color_max, draws[:, _DRAW_COLOR])

    images = _warp_and_recolour(images, transforms, gains, out_height, out_width)
    depths = (
        _sample_depth(depths, transforms, input_size, output_size)
        / scale[:, tf.newaxis, tf.newaxis, tf.newaxis]
    )
    return images, depths


def center_crop_pair(
    image: tf.Tensor, depth: tf.Tensor, out_height: int, out_width: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The evaluation view: one crop at scale 1 from the centre of the stored frame.

    Args:
        image: [H, W, 3] or a batch [B, H, W, 3], any dtype (uint8 RGB 0..255 in the reader).
        depth: [H, W, 1] or [B, H, W, 1], metres, 0 = invalid.
        out_height: Crop height in pixels, at most H.
        out_width: Crop width in pixels, at most W.

    Returns:
        ``(image, depth)`` of shapes [..., out_height, out_width, 3] and
        [..., out_height, out_width, 1], values copied unchanged. When H - out_height is
        odd the extra row is dropped at the bottom (likewise the column on the right).

    Raises:
        tf.errors.InvalidArgumentError: when run on an image smaller than the crop.
    """
    image, depth = tf.convert_to_tensor(image), tf.convert_to_tensor(depth)
    shape = tf.shape(image)
    fits = tf.debugging.assert_greater_equal(
        shape[-3:-1],
        tf.constant([out_height, out_width]),
        message=f"image is smaller than the {out_height}x{out_width} centre crop",
    )
    with tf.control_dependencies([fits]):
        top = (shape[-3] - out_height) // 2
        left = (shape[-2] - out_width) // 2
    image = image[..., top : top + out_height, left : left + out_width, :]
    depth = depth[..., top : top + out_height, left : left + out_width, :]
    return (
        tf.ensure_shape(image, image.shape[:-3].concatenate([out_height, out_width, 3])),
        tf.ensure_shape(depth, depth.shape[:-3].concatenate([out_height, out_width, 1])),
    )


def center_crop_targets(
    images: tf.Tensor, depths: tf.Tensor, input_size: tuple[int, int], output_size: tuple[int, int]
) -> tuple[tf.Tensor, tf.Tensor]:
    """A batch's network inputs and loss targets seen at scale 1: the centre crop, no randomness.

    Args:
        images: uint8 or float32 [B, H, W, 3], RGB 0..255.
        depths: float32 [B, H, W, 1], metres, 0 = invalid.
        input_size: ``(height, width)`` of the crop in pixels (the network input).
        output_size: ``(height, width)`` of the depth target in pixels (the network output).

    Returns:
        ``(images, depths)``: float32 [B, input_height, input_width, 3] in 0..255 (the
        :func:`center_crop_pair` crop) and float32 [B, output_height, output_width, 1] metres (its
        depth nearest-downsampled, :func:`resize_depth_nearest`).
    """
    images, depths = center_crop_pair(images, depths, *input_size)
    return tf.cast(images, tf.float32), resize_depth_nearest(depths, *output_size)


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

"""A small U-Net: the reference a Keras user would try instead of the coarse + fine networks.

It follows the style of the keras.io example "Monocular depth estimation" (Victor Basu, 2021): an
encoder of down blocks (two conv 3x3 - batch norm - LeakyReLU units, the second added to the first,
then a 2x2 max-pool), a bottleneck of two such units, and a decoder of up blocks (bilinear upsampling to
the skip's size, concatenation with the skip, two units). It is not that example's code, and it differs
where our data and evaluation need it:

- Input and output are those of the coarse and fine networks (``keras_depth.models``): float32 RGB
  [B, input_height, input_width, 3] in 0..255, normalised inside the model to [-1, 1]; output log depth
  (log metres) [B, output_height, output_width, 1] from a linear 1x1 conv whose bias starts at
  ``log(ModelConfig.initial_depth)`` (the example ends in a ``tanh``, which would bound log depth to
  [-1, 1], i.e. 0.37 to 2.7 m). The same data reader, loss and evaluation therefore apply unchanged.
- The decoder stops at the output resolution instead of climbing back to the input's: it goes up
  through the skips from the deepest one to the first whose map is at least ``output_height x
  output_width`` (default preset, 114x152 input: skips 15x19 and 29x38, then resized to 26x36). Finer
  skips would only feed pixels the 1/4-resolution output cannot show. The last map is resized
  bilinearly to the output size, so the output covers the whole input crop, as evaluation assumes.
- Pools use ``same`` padding (odd sizes round up: 114 -> 57 -> 29 -> 15 -> 8) and each up block
  resizes to its skip's exact size, so any input of at least 2^depth pixels per side works.

Filters (``ENCODER_FILTERS`` per encoder level, ``BOTTLENECK_FILTERS``) are the example's 16, 32, 64,
128 and 256: about 1.9 M parameters, the coarse network's order of magnitude in the default preset.
Initialisation: He normal for the conv units (followed by batch norm), the output conv as coarse7/fine4
(``keras_depth.models.common.output_layer_arguments``).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_depth.config import ModelConfig
from keras_depth.models.common import (
    OUTPUT_DTYPE,
    RELU_KERNEL_INITIALIZER,
    image_input,
    normalise,
    output_layer_arguments,
)

REFERENCE_UNET_NAME = "reference_unet"
ENCODER_FILTERS = (16, 32, 64, 128)
BOTTLENECK_FILTERS = 256
KERNEL_SIZE = 3
POOL_SIZE = 2
LEAKY_SLOPE = 0.2  # the example's LeakyReLU slope


def _unit(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Conv 3x3 ``same`` (no bias: batch norm follows) - batch norm - LeakyReLU; [B, h, w, filters]."""
    x = keras.layers.Conv2D(
        filters,
        KERNEL_SIZE,
        padding="same",
        use_bias=False,
        kernel_initializer=RELU_KERNEL_INITIALIZER,
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_act")(x)


def _down_block(x: keras.KerasTensor, filters: int, name: str) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Two units with a residual add, then a 2x2 max-pool.

    Returns:
        ``(skip, pooled)``: [B, h, w, filters] and [B, ceil(h / 2), ceil(w / 2), filters].
    """
    first = _unit(x, filters, f"{name}_a")
    second = _unit(first, filters, f"{name}_b")
    skip = keras.layers.Add(name=f"{name}_add")([first, second])
    pooled = keras.layers.MaxPooling2D(POOL_SIZE, padding="same", name=f"{name}_pool")(skip)
    return skip, pooled


def _up_block(x: keras.KerasTensor, skip: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Bilinear resize of ``x`` to the skip's size, concatenation with the skip, two units.

    Returns:
        [B, skip height, skip width, filters].
    """
    height, width = skip.shape[1:3]
    x = keras.layers.Resizing(height, width, interpolation="bilinear", name=f"{name}_upsample")(x)
    x = keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
    return _unit(_unit(x, filters, f"{name}_a"), filters, f"{name}_b")


def _decoder_levels(skip_sizes: Sequence[tuple[int, int]], height: int, width: int) -> int:
    """How many skips (from the deepest) the decoder climbs through to reach the output size.

    Args:
        skip_sizes: (height, width) of each encoder level's skip, finest first.
        height: Output height in pixels.
        width: Output width in pixels.

    Returns:
        The number of up blocks: up to the deepest skip that is at least ``height x width`` (all of
        them when none is).
    """
    for levels, (skip_height, skip_width) in enumerate(reversed(skip_sizes), start=1):
        if skip_height >= height and skip_width >= width:
            return levels
    return len(skip_sizes)


def build_reference_unet(
    cfg: ModelConfig,
    encoder_filters: Sequence[int] = ENCODER_FILTERS,
    bottleneck_filters: int = BOTTLENECK_FILTERS,
) -> keras.Model:
    """Builds the small U-Net (see the module docstring).

    Args:
        cfg: Model configuration: ``input_height``, ``input_width``, ``output_height``, ``output_width``
            (pixels) and ``initial_depth`` (metres); the coarse/fine-only fields are not used.
        encoder_filters: Channels of each encoder level, finest first (one down block per level; the
            up block at a level has the same count).
        bottleneck_filters: Channels of the bottleneck units.

    Returns:
        A functional ``keras.Model`` named ``"reference_unet"`` mapping [B, input_height, input_width, 3]
        float32 RGB in 0..255 to [B, output_height, output_width, 1] float32 log depth (log metres).

    Raises:
        ValueError: naming the argument when a filter count is not positive or there is no level, or
            ``cfg.input_height x input_width`` when it is too small for that many 2x2 pools.
    """
    if not encoder_filters or min(encoder_filters) < 1 or bottleneck_filters < 1:
        raise ValueError(
            "encoder_filters must be a non-empty list of channel counts >= 1 and bottleneck_filters >= 1; "
            f"got {list(encoder_filters)} and {bottleneck_filters}"
        )
    smallest = POOL_SIZE ** len(encoder_filters)
    if min(cfg.input_height, cfg.input_width) < smallest:
        raise ValueError(
            f"ModelConfig.input_height x input_width = {cfg.input_height}x{cfg.input_width} is too small for "
            f"{len(encoder_filters)} encoder levels: use at least {smallest}x{smallest} pixels"
        )
    images = image_input(cfg)
    x = normalise(images, name="unet_normalise")
    skips = []
    for level, filters in enumerate(encoder_filters, start=1):
        skip, x = _down_block(x, filters, f"unet_down{level}")
        skips.append(skip)
    x = _unit(_unit(x, bottleneck_filters, "unet_bottleneck_a"), bottleneck_filters, "unet_bottleneck_b")
    levels = _decoder_levels([tuple(skip.shape[1:3]) for skip in skips], cfg.output_height, cfg.output_width)
    for level in range(len(skips), len(skips) - levels, -1):
        x = _up_block(x, skips[level - 1], encoder_filters[level - 1], f"unet_up{level}")
    x = keras.layers.Conv2D(1, 1, name="unet_log_depth", **output_layer_arguments(cfg))(x)
    log_depth = keras.layers.Resizing(
        cfg.output_height,
        cfg.output_width,
        interpolation="bilinear",
        name="unet_output_resize",
        dtype=OUTPUT_DTYPE,
    )(x)
    return keras.Model(images, log_depth, name=REFERENCE_UNET_NAME)

"""Pieces shared by the coarse and the fine network: input, normalisation, initialisers.

Both networks read the same image: a float32 NHWC RGB batch with values in 0..255 (what the data
reader yields and what the exported SavedModel is fed). Each network normalises it itself with a
``Rescaling`` layer, ``x / 127.5 - 1``, so pixels enter the first convolution in [-1, 1]: roughly
zero-mean with unit range, which suits He-normal initialised ReLU layers trained from scratch.
"""

from __future__ import annotations

import math

import keras

from keras_depth.config import ModelConfig

INPUT_NAME = "image"
RGB_CHANNELS = 3
PIXEL_SCALE = 1.0 / 127.5
PIXEL_OFFSET = -1.0

# ReLU layers: He normal (variance 2 / fan_in) keeps activations at unit scale from scratch.
RELU_KERNEL_INITIALIZER = "he_normal"
# Linear output layers (coarse7, fine4) start almost constant: a small kernel so the first
# predictions are the bias, log(initial_depth), everywhere rather than noise of order one.
OUTPUT_KERNEL_STDDEV = 1e-3
# Model outputs (log depth) are float32 even when the hidden layers compute in float16.
OUTPUT_DTYPE = "float32"


def image_input(cfg: ModelConfig) -> keras.KerasTensor:
    """The symbolic network input.

    Args:
        cfg: Model configuration (``input_height``, ``input_width`` in pixels).

    Returns:
        A float32 ``keras.Input`` of shape [B, input_height, input_width, 3], RGB in 0..255.
    """
    return keras.Input(shape=(cfg.input_height, cfg.input_width, RGB_CHANNELS), name=INPUT_NAME)


def normalise(images: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """Maps 0..255 pixels to [-1, 1] inside the model.

    Args:
        images: [B, H, W, 3] float32 RGB in 0..255.
        name: Name of the ``Rescaling`` layer.

    Returns:
        [B, H, W, 3] float32 in [-1, 1].
    """
    return keras.layers.Rescaling(scale=PIXEL_SCALE, offset=PIXEL_OFFSET, name=name)(images)


def scaled_channels(paper_channels: int, width_multiplier: float) -> int:
    """Channel count of a hidden conv layer after applying the width multiplier.

    Args:
        paper_channels: The paper's channel count for the layer (e.g. 96 for coarse1).
        width_multiplier: ``ModelConfig.width_multiplier``.

    Returns:
        ``round(paper_channels * width_multiplier)``, at least 1.
    """
    return max(1, round(paper_channels * width_multiplier))


def output_layer_arguments(cfg: ModelConfig) -> dict:
    """Initialisers and dtype of a linear log-depth output layer (coarse7, fine4).

    Args:
        cfg: Model configuration (``initial_depth`` in metres).

    Returns:
        ``kernel_initializer`` (normal, stddev ``OUTPUT_KERNEL_STDDEV``), ``bias_initializer``
        (constant ``log(initial_depth)``) and ``dtype`` float32 (log depth stays float32 under a
        mixed-precision policy), as keyword arguments for ``Dense`` / ``Conv2D``.

    Raises:
        ValueError: If ``cfg.initial_depth`` is not a positive depth.
    """
    if not cfg.initial_depth > 0:
        raise ValueError(f"ModelConfig.initial_depth must be a depth > 0 metres, got {cfg.initial_depth!r}")
    return {
        "kernel_initializer": keras.initializers.RandomNormal(stddev=OUTPUT_KERNEL_STDDEV),
        "bias_initializer": keras.initializers.Constant(math.log(cfg.initial_depth)),
        "dtype": OUTPUT_DTYPE,
    }

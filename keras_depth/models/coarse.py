"""The coarse (global) network of Eigen et al. (2014): the whole image to a low-resolution log depth.

Layers (paper channel counts, scaled by ``ModelConfig.width_multiplier``), with the map sizes (W x H)
this implementation produces for NYU 304x228 and KITTI 576x172 input -- every size in the paper's
table is reproduced exactly:

| layer   | op                                                    | NYU   | KITTI  |
|---------|-------------------------------------------------------|-------|--------|
| coarse1 | conv 11x11 stride 4 valid, 96, ReLU; max-pool 2x2/2   | 37x27 | 71x20  |
| coarse2 | conv 5x5 same, 256, ReLU; max-pool 3x3/2 valid        | 18x13 | 35x9   |
| coarse3 | conv 3x3 same, 384, ReLU                              | 18x13 | 35x9   |
| coarse4 | conv 3x3 same, 384, ReLU                              | 18x13 | 35x9   |
| coarse5 | conv 3x3 same, 256, ReLU; max-pool 3x3/2 valid        | 8x6   | 17x4   |
| coarse6 | fully connected ``fc_units`` (4096), ReLU, dropout    | 1x1   | 1x1    |
| coarse7 | fully connected, linear, reshaped to the output size  | 74x55 | 142x27 |

Padding choices (the paper gives none):

- coarse1 uses ``valid`` padding: (304 - 11) // 4 + 1 = 74 and (228 - 11) // 4 + 1 = 55, halved by a
  2x2 pool to 37x27 (KITTI 142x41 -> 71x20). ``same`` padding would give 76x57 -> 38x28.
- coarse2 to coarse5 use ``same`` padding, so the convolutions keep the map size, as in the table.
- The pools after coarse2 and coarse5 are AlexNet's overlapping 3x3 stride-2 ``valid`` pools (the coarse
  network follows Krizhevsky et al.): they give 37x27 -> 18x13 -> 8x6 and 71x20 -> 35x9 -> 17x4, the
  table's sizes. A 2x2 pool would give 9x6 on NYU and 35x10 / 17x5 on KITTI.

Initialisation (trained from scratch: the paper's ImageNet pretraining of coarse1-5 is not used):
He normal kernels for the ReLU layers coarse1-6, zero biases; coarse7 has a normal(0, 1e-3) kernel and
its bias starts at ``log(ModelConfig.initial_depth)``, so the untrained network predicts a plausible
constant depth. The input is normalised in the model (see ``keras_depth.models.common``).

Other input sizes work as long as the coarse5 map is at least 1x1 (inputs of at least 63x63 pixels):
coarse7 always produces exactly ``output_height x output_width`` values, whatever the feature size.
"""

from __future__ import annotations

import keras

from keras_depth.config import ModelConfig
from keras_depth.models.common import (
    OUTPUT_DTYPE,
    RELU_KERNEL_INITIALIZER,
    image_input,
    normalise,
    output_layer_arguments,
    scaled_channels,
)

COARSE_MODEL_NAME = "coarse"
# Layer names; the optimizer's learning-rate groups match these (keras_depth.optimizers).
COARSE_CONV_LAYERS = ("coarse1", "coarse2", "coarse3", "coarse4", "coarse5")
COARSE_FC_LAYERS = ("coarse6", "coarse7")
# (layer name, paper channels, kernel size, stride, padding, pool size, pool stride) of coarse1-5.
_CONV_SPECS = (
    ("coarse1", 96, 11, 4, "valid", 2, 2),
    ("coarse2", 256, 5, 1, "same", 3, 2),
    ("coarse3", 384, 3, 1, "same", None, None),
    ("coarse4", 384, 3, 1, "same", None, None),
    ("coarse5", 256, 3, 1, "same", 3, 2),
)


def _valid_size(size: int, window: int, stride: int) -> int:
    """Output length of a ``valid`` conv or pool along one axis (may be <= 0 when too small)."""
    return (size - window) // stride + 1


def coarse5_feature_size(height: int, width: int) -> tuple[int, int]:
    """Size of the pooled coarse5 map, the input of the fully connected layers.

    Args:
        height: Input height in pixels.
        width: Input width in pixels.

    Returns:
        (height, width) of the map in cells, e.g. (6, 8) for NYU 228x304; a value <= 0 means the input
        is too small for the network.
    """
    sizes = [height, width]
    for _, _, kernel, stride, padding, pool, pool_stride in _CONV_SPECS:
        if padding == "valid":
            sizes = [_valid_size(n, kernel, stride) for n in sizes]
        else:
            sizes = [-(-n // stride) for n in sizes]
        if pool is not None:
            sizes = [_valid_size(n, pool, pool_stride) for n in sizes]
    return sizes[0], sizes[1]


def build_coarse_model(cfg: ModelConfig) -> keras.Model:
    """Builds the coarse network.

    Args:
        cfg: Model configuration: input and output sizes in pixels, ``width_multiplier``, ``fc_units``,
            ``dropout_rate`` and ``initial_depth`` (metres).

    Returns:
        A functional ``keras.Model`` named ``"coarse"`` mapping [B, input_height, input_width, 3] float32
        RGB in 0..255 to [B, output_height, output_width, 1] float32 log depth (log metres).

    Raises:
        ValueError: If the input is too small for the coarse5 feature map to be at least 1x1.
    """
    feature_height, feature_width = coarse5_feature_size(cfg.input_height, cfg.input_width)
    if min(feature_height, feature_width) < 1:
        raise ValueError(
            f"ModelConfig.input_height x input_width = {cfg.input_height}x{cfg.input_width} is too small: the "
            f"coarse5 feature map would be {feature_height}x{feature_width} (H x W); use at least 63x63 pixels"
        )
    images = image_input(cfg)
    x = normalise(images, name="coarse_normalise")
    for name, channels, kernel, stride, padding, pool, pool_stride in _CONV_SPECS:
        x = keras.layers.Conv2D(
            scaled_channels(channels, cfg.width_multiplier),
            kernel,
            strides=stride,
            padding=padding,
            activation="relu",
            kernel_initializer=RELU_KERNEL_INITIALIZER,
            name=name,
        )(x)
        if pool is not None:
            x = keras.layers.MaxPooling2D(pool, strides=pool_stride, padding="valid", name=f"{name}_pool")(x)
    x = keras.layers.Flatten(name="coarse5_flatten")(x)
    x = keras.layers.Dense(
        cfg.fc_units, activation="relu", kernel_initializer=RELU_KERNEL_INITIALIZER, name="coarse6"
    )(x)
    x = keras.layers.Dropout(cfg.dropout_rate, name="coarse6_dropout")(x)
    x = keras.layers.Dense(
        cfg.output_height * cfg.output_width, name="coarse7", **output_layer_arguments(cfg)
    )(x)
    log_depth = keras.layers.Reshape(
        (cfg.output_height, cfg.output_width, 1), name="coarse7_reshape", dtype=OUTPUT_DTYPE
    )(x)
    return keras.Model(images, log_depth, name=COARSE_MODEL_NAME)

"""The fine (local) network of Eigen et al. (2014): refines the coarse log depth with local image detail.

| layer | op                                                              | NYU   | KITTI              |
|-------|-----------------------------------------------------------------|-------|--------------------|
| fine1 | conv 9x9 stride 2 valid, 63, ReLU; max-pool 2x2/2 valid         | 74x55 | pool 3x2/3x2: 142x27 |
| fine2 | concatenate the coarse log depth as the last (64th) channel     | 74x55 | 142x27             |
| fine3 | conv 5x5 same (zero pad), 64, ReLU                              | 74x55 | 142x27             |
| fine4 | conv 5x5 same (zero pad), 1, linear -> refined log depth        | 74x55 | 142x27             |

Size choices: fine1 uses ``valid`` padding, (304 - 9) // 2 + 1 = 148 and (228 - 9) // 2 + 1 = 110, pooled
2x2 to 74x55, the coarse output size on NYU. The fine path must see the same field of view as the output
it refines: output row r covers input rows ~r * H / h, and so must fine1's row r. On KITTI the conv map is
284x82 for a 142x27 output; a 2x2 pool would give 142x41, and centrally cropping that to 27 rows would let
output row r see input rows 28 rows below the ones it is trained on, and never the top and bottom 28 rows.
So along each axis the pool (and its stride) is widened from the paper's 2 to ``conv // output`` where that
is larger (KITTI: 3 rows x 2 columns -> 142x27, covering input rows 0-170 of 172). What remains is at most
a few rows or columns: a larger map is cropped centrally (``fine1_crop``; an odd difference drops the extra
row or column at the bottom or right) and a smaller one (e.g. 36x26 for a 152x114 input with a 37x27
output) is zero-padded centrally (``fine1_pad``; zero is the "no activation" value after a ReLU). These
layers are only added when needed, so the NYU network is exactly the paper's.

Channel counts scale with ``ModelConfig.width_multiplier`` (63 and 64 at 1.0). Initialisation
(``ModelConfig.fine_init``):

- ``paper``: He normal for fine1 and fine3, zero biases; fine4 has a normal(0, 1e-3) kernel and its bias
  starts at ``log(ModelConfig.initial_depth)``. The untrained fine net predicts a constant, so fine
  training first has to relearn what the coarse map (its 64th input channel) already says.
- ``coarse_passthrough``: the untrained fine net outputs the coarse log depth exactly, and training learns
  a residual on top of it. Log depth is negative below 1 m, and a single ReLU unit cannot carry a signed
  value, so two fine3 units (the last two) carry ``relu(x)`` and ``relu(-x)`` of the coarse log depth
  ``x`` (centre tap +1 and -1 on the coarse channel, every other weight and the bias 0) and fine4 adds
  them back with centre taps +1 and -1: ``relu(x) - relu(-x) = x`` for either sign, at every pixel
  (centre taps only, so the zero padding does not matter), with no offset to choose. The other fine3
  units keep their He-normal start; fine4's weights from them and its bias start at 0, like the last
  layer of a residual branch, so the residual is exactly 0 at initialisation yet gets a gradient at once
  (fine1 and the other fine3 units get theirs from the second step on). All these weights stay trainable.

Freezing: the coarse network is embedded through a ``FrozenModel`` layer named ``"coarse"`` (its
``.model`` is the coarse network, shared, not copied), which sets ``trainable = False``, always calls it
with ``training=False`` (dropout off, whatever the fine model's training flag; a plain nested call would
inherit the outer flag in Keras 3) and wraps its output in ``stop_gradient``. Training the fine model
therefore never changes it and none of its weights is in ``trainable_weights``. The frozen state survives
``.keras`` save and ``keras.models.load_model``; ``freeze_coarse`` re-applies it to a fine model whose
coarse part was unfrozen (for example by a loop setting ``layer.trainable = True`` on every layer).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_depth.config import ModelConfig
from keras_depth.models.coarse import COARSE_MODEL_NAME
from keras_depth.models.common import (
    RELU_KERNEL_INITIALIZER,
    RGB_CHANNELS,
    image_input,
    normalise,
    output_layer_arguments,
    scaled_channels,
)
from keras_depth.models.layers import FrozenModel

FINE_MODEL_NAME = "fine"
# Layer names; the optimizer's learning-rate groups match these (keras_depth.optimizers).
FINE_CONV_LAYERS = ("fine1", "fine3")
FINE_OUTPUT_LAYERS = ("fine4",)
FINE1_CHANNELS = 63
FINE1_KERNEL = 9
FINE1_STRIDE = 2
FINE1_POOL = 2
FINE3_CHANNELS = 64
FINE34_KERNEL = 5
# ModelConfig.fine_init values.
PAPER_INIT = "paper"
COARSE_PASSTHROUGH = "coarse_passthrough"
# coarse_passthrough: fine2 puts the coarse log depth last; fine3's last two units carry +x and -x of it.
COARSE_CHANNEL = -1
PASSTHROUGH_SIGNS = (1.0, -1.0)


def _split(total: int) -> tuple[int, int]:
    """Splits ``total`` pixels of crop or padding into (before, after), the odd one after."""
    return total // 2, total - total // 2


def fine1_pool_size(conv_height: int, conv_width: int, height: int, width: int) -> tuple[int, int]:
    """The (rows, columns) max-pool window and stride that bring the fine1 conv map to the output's view.

    Args:
        conv_height: Rows of the fine1 conv map.
        conv_width: Columns of the fine1 conv map.
        height: Output rows.
        width: Output columns.

    Returns:
        The paper's 2 along each axis, or ``conv // output`` where that is larger (see the module docstring).
    """
    return max(FINE1_POOL, conv_height // height), max(FINE1_POOL, conv_width // width)


def _fit_to_output(x: keras.KerasTensor, height: int, width: int) -> keras.KerasTensor:
    """Centrally crops and/or zero-pads a feature map to the output size.

    Args:
        x: [B, h, w, C] feature map.
        height: Target height in pixels.
        width: Target width in pixels.

    Returns:
        [B, height, width, C]; ``x`` itself when it already has that size.
    """
    extra_h, extra_w = x.shape[1] - height, x.shape[2] - width
    if extra_h > 0 or extra_w > 0:
        crop = (_split(max(extra_h, 0)), _split(max(extra_w, 0)))
        x = keras.layers.Cropping2D(crop, name="fine1_crop")(x)
    if extra_h < 0 or extra_w < 0:
        pad = (_split(max(-extra_h, 0)), _split(max(-extra_w, 0)))
        x = keras.layers.ZeroPadding2D(pad, name="fine1_pad")(x)
    return x


def init_coarse_passthrough(fine_model: keras.Model) -> keras.Model:
    """Sets fine3/fine4 so that the fine model outputs its coarse input exactly (``coarse_passthrough``).

    See the module docstring: fine3's last two units carry ``relu(x)`` and ``relu(-x)`` of the coarse log
    depth ``x`` (fine2's last channel), fine4 sums them with centre taps +1 and -1; fine4's other weights
    and its bias are zeroed; fine3's other units are left as initialised.

    Args:
        fine_model: A model from ``build_fine_model`` (fine3 with at least 2 units).

    Returns:
        ``fine_model``, whose output now equals its coarse network's log depth (to float rounding).

    Raises:
        ValueError: If fine3 has fewer than 2 units (``ModelConfig.width_multiplier`` too small).
    """
    fine3, fine4 = fine_model.get_layer("fine3"), fine_model.get_layer("fine4")
    kernel3, bias3 = (keras.ops.convert_to_numpy(weight) for weight in (fine3.kernel, fine3.bias))
    units = kernel3.shape[-1]
    if units < len(PASSTHROUGH_SIGNS):
        raise ValueError(
            f"fine_init 'coarse_passthrough' needs at least {len(PASSTHROUGH_SIGNS)} fine3 units, got "
            f"{units}; raise ModelConfig.width_multiplier"
        )
    centre = FINE34_KERNEL // 2
    kernel4 = np.zeros(fine4.kernel.shape, "float32")
    for unit, sign in zip(range(units - len(PASSTHROUGH_SIGNS), units), PASSTHROUGH_SIGNS, strict=True):
        kernel3[..., unit] = 0.0
        kernel3[centre, centre, COARSE_CHANNEL, unit] = sign
        bias3[unit] = 0.0
        kernel4[centre, centre, unit, 0] = sign
    fine3.set_weights([kernel3, bias3])
    fine4.set_weights([kernel4, np.zeros(fine4.bias.shape, "float32")])
    return fine_model


def build_fine_model(cfg: ModelConfig, coarse_model: keras.Model) -> keras.Model:
    """Builds the fine network around a (trained) coarse network, which it freezes.

    Args:
        cfg: Model configuration: the same input and output sizes as ``coarse_model`` (pixels),
            ``width_multiplier``, ``initial_depth`` (metres) and ``fine_init``.
        coarse_model: The coarse network from ``build_coarse_model(cfg)``; it is set to
            ``trainable = False`` and shared (training the coarse model later would change the fine one).

    Returns:
        A functional ``keras.Model`` named ``"fine"`` mapping [B, input_height, input_width, 3] float32
        RGB in 0..255 to [B, output_height, output_width, 1] float32 refined log depth (log metres).

    Raises:
        ValueError: If ``coarse_model``'s input or output shape does not match ``cfg``, or ``fine_init``
            is unknown or ``coarse_passthrough`` with fewer than 2 fine3 units.
    """
    if cfg.fine_init not in (PAPER_INIT, COARSE_PASSTHROUGH):
        raise ValueError(
            f"ModelConfig.fine_init must be {PAPER_INIT!r} or {COARSE_PASSTHROUGH!r}, got {cfg.fine_init!r}"
        )
    input_shape = (cfg.input_height, cfg.input_width, RGB_CHANNELS)
    output_shape = (cfg.output_height, cfg.output_width, 1)
    if (
        tuple(coarse_model.input_shape[1:]) != input_shape
        or tuple(coarse_model.output_shape[1:]) != output_shape
    ):
        raise ValueError(
            f"coarse_model maps {coarse_model.input_shape[1:]} to {coarse_model.output_shape[1:]}, but "
            f"ModelConfig expects input (H, W, C) {input_shape} and output {output_shape}"
        )
    images = image_input(cfg)
    coarse_log_depth = FrozenModel(coarse_model, name=COARSE_MODEL_NAME)(images)

    x = normalise(images, name="fine_normalise")
    x = keras.layers.Conv2D(
        scaled_channels(FINE1_CHANNELS, cfg.width_multiplier),
        FINE1_KERNEL,
        strides=FINE1_STRIDE,
        padding="valid",
        activation="relu",
        kernel_initializer=RELU_KERNEL_INITIALIZER,
        name="fine1",
    )(x)
    pool = fine1_pool_size(x.shape[1], x.shape[2], cfg.output_height, cfg.output_width)
    x = keras.layers.MaxPooling2D(pool, padding="valid", name="fine1_pool")(x)
    x = _fit_to_output(x, cfg.output_height, cfg.output_width)
    x = keras.layers.Concatenate(axis=-1, name="fine2")([x, coarse_log_depth])
    x = keras.layers.Conv2D(
        scaled_channels(FINE3_CHANNELS, cfg.width_multiplier),
        FINE34_KERNEL,
        padding="same",
        activation="relu",
        kernel_initializer=RELU_KERNEL_INITIALIZER,
        name="fine3",
    )(x)
    log_depth = keras.layers.Conv2D(
        1, FINE34_KERNEL, padding="same", name="fine4", **output_layer_arguments(cfg)
    )(x)
    fine_model = keras.Model(images, log_depth, name=FINE_MODEL_NAME)
    if cfg.fine_init == COARSE_PASSTHROUGH:
        init_coarse_passthrough(fine_model)
    return fine_model


def freeze_coarse(fine_model: keras.Model) -> keras.Model:
    """Marks the coarse network inside a fine model as non-trainable again.

    Call it after anything that may have unfrozen it (e.g. ``layer.trainable = True`` on every layer) and
    before ``compile``, which fixes the trainable variables the optimizer updates.

    Args:
        fine_model: A model from ``build_fine_model`` (or one loaded from its ``.keras`` file).

    Returns:
        ``fine_model``, whose ``"coarse"`` layer and the coarse network inside now have
        ``trainable = False``.
    """
    fine_model.get_layer(COARSE_MODEL_NAME).trainable = False
    return fine_model

"""Floating-point operations of a training step, counted from layer shapes, and a reference FLOP rate.

Counted per image, multiply-add = 2 FLOPs:

- ``Conv2D``: ``2 * k_h * k_w * (c_in / groups) * c_out * H_out * W_out``;
- ``Dense``: ``2 * units_in * units_out`` (times the positions when applied to a map);
- everything else (bias, ReLU, pooling, dropout, normalisation, the loss) is ignored: a few percent
  of a conv net's work.

A training step runs the forward pass of every layer and, for each trainable layer, the gradients
with respect to its input and its weights, each about as costly as its forward pass: training FLOPs =
forward(all layers) + 2 x forward(trainable layers), the usual "3 x forward" for a fully trainable
network (slightly more than the work done: the first layer's input gradient is not needed). Layers
inside nested models (the fine network's frozen coarse network) are counted, as not trainable.

:func:`dense_matmul_flops_per_second` measures what the device achieves on the most favourable
kernel, a large square dense matmul; achieved FLOP/s of a training step divided by it is the
compute efficiency ``make bench`` reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import keras
import tensorflow as tf

MATMUL_WARMUP = 2


def iter_layers(model: keras.Model, trainable: bool = True) -> Iterator[tuple[keras.layers.Layer, bool]]:
    """Every leaf layer of ``model`` with whether it trains, descending into nested models.

    A layer holding a model in ``.model`` (``keras_depth.models.FrozenModel``) is descended into too.

    Args:
        model: A built Keras model.
        trainable: Whether ``model`` itself trains (a nested model inherits its parent's state).

    Yields:
        ``(layer, trains)``: ``trains`` is False when the layer or an enclosing one is frozen.
    """
    for layer in model.layers:
        trains = trainable and layer.trainable
        inner = layer if isinstance(layer, keras.Model) else getattr(layer, "model", None)
        if isinstance(inner, keras.Model):
            yield from iter_layers(inner, trains)
        else:
            yield layer, trains


def layer_forward_flops(layer: keras.layers.Layer) -> int:
    """FLOPs of one image's forward pass through ``layer`` (0 for layers without a counted op).

    Raises:
        ValueError: naming the layer when a ``Conv2D`` is not channels-last.
    """
    if isinstance(layer, keras.layers.Conv2D):
        if layer.data_format != "channels_last":
            raise ValueError(
                f"layer {layer.name}: FLOPs are counted for channels_last (NHWC) convolutions only"
            )
        kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
        _, height_out, width_out, _ = layer.output.shape
        return 2 * kernel_h * kernel_w * channels_in * channels_out * height_out * width_out
    if isinstance(layer, keras.layers.Dense):
        units_in, units_out = layer.kernel.shape
        positions = math.prod(layer.output.shape[1:-1])
        return 2 * units_in * units_out * positions
    return 0


def forward_flops(model: keras.Model) -> int:
    """FLOPs of one image's forward pass through ``model`` (all layers, frozen ones included)."""
    return sum(layer_forward_flops(layer) for layer, _ in iter_layers(model))


def training_flops(model: keras.Model) -> int:
    """FLOPs of one image's training step: forward(all) + 2 x forward(trainable) (module docstring)."""
    layers = list(iter_layers(model))
    forward = sum(layer_forward_flops(layer) for layer, _ in layers)
    return forward + 2 * sum(layer_forward_flops(layer) for layer, trains in layers if trains)


def dense_matmul_flops_per_second(size: int, repeats: int, rounds: int = 3, dtype: str = "float32") -> float:
    """FLOP/s of ``size x size`` by ``size x size`` matmuls on TensorFlow's default device, best round.

    Each round runs ``repeats`` matmuls and waits for the last result; ``2 * size**3`` FLOPs each.

    Args:
        size: Matrix side (2048 or more to reach the CPU's rate; 8192 for a GPU).
        repeats: Matmuls per round.
        rounds: Timed rounds; the fastest counts (the device's rate, not a neighbour's load).
        dtype: ``float32`` or ``float16`` (the rate mixed precision computes at).

    Returns:
        FLOP/s of the fastest round.
    """
    left = tf.random.normal([size, size], dtype=dtype)
    right = tf.random.normal([size, size], dtype=dtype)
    for _ in range(MATMUL_WARMUP):
        float(tf.reduce_sum(tf.linalg.matmul(left, right)))
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            product = tf.linalg.matmul(left, right)
        float(product[0, 0])  # waits for the device (GPU kernels run asynchronously)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 * repeats / best

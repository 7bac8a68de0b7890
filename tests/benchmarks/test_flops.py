"""FLOPs counted from layer shapes against a hand count, and the reference matmul rate."""

from __future__ import annotations

import math

import keras
import pytest

from benchmarks.flops import (
    dense_matmul_flops_per_second,
    forward_flops,
    iter_layers,
    layer_forward_flops,
    training_flops,
)
from keras_depth.models import FrozenModel

# 8x8x3 -> conv 3x3 same, 4 ch -> conv 3x3 stride 2 valid, 2 ch (3x3) -> flatten 18 -> dense 5.
CONV1 = 2 * 3 * 3 * 3 * 4 * 8 * 8
CONV2 = 2 * 3 * 3 * 4 * 2 * 3 * 3
DENSE = 2 * 18 * 5


def small_model() -> keras.Model:
    images = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(images)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="valid", name="conv2")(x)
    x = keras.layers.MaxPooling2D(1, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(images, keras.layers.Dense(5, name="dense")(x))


def test_forward_flops_match_the_hand_count():
    model = small_model()
    counted = {
        layer.name: layer_forward_flops(layer)
        for layer, _ in iter_layers(model)
        if not isinstance(layer, keras.layers.InputLayer)
    }
    assert counted == {"conv1": CONV1, "conv2": CONV2, "pool": 0, "flatten": 0, "dense": DENSE}
    assert forward_flops(model) == CONV1 + CONV2 + DENSE


def test_a_fully_trainable_model_trains_at_three_times_its_forward_pass():
    model = small_model()
    assert training_flops(model) == 3 * (CONV1 + CONV2 + DENSE)


def test_a_frozen_nested_model_counts_its_forward_pass_only():
    inner = small_model()
    images = keras.Input((8, 8, 3))
    head = keras.layers.Dense(7, name="head")(FrozenModel(inner, name="frozen")(images))
    outer = keras.Model(images, head)
    head_flops = 2 * 5 * 7
    assert forward_flops(outer) == CONV1 + CONV2 + DENSE + head_flops
    assert training_flops(outer) == CONV1 + CONV2 + DENSE + 3 * head_flops
    counted = {layer.name for layer, trains in iter_layers(outer) if trains and layer_forward_flops(layer)}
    assert counted == {"head"}


def test_a_dense_layer_on_a_map_counts_every_position():
    images = keras.Input((4, 6))
    model = keras.Model(images, keras.layers.Dense(3, name="dense")(images))
    assert forward_flops(model) == 2 * 6 * 3 * 4


def test_the_paper_coarse1_layer(build_networks):
    coarse, fine = build_networks()
    # The tiny networks: fine's frozen coarse part counts once, forward only.
    trainable_fine = forward_flops(fine) - forward_flops(coarse)
    assert training_flops(fine) == forward_flops(coarse) + 3 * trainable_fine
    conv = coarse.get_layer("coarse1")
    kernel_h, kernel_w, channels_in, channels_out = conv.kernel.shape
    _, height, width, _ = conv.output.shape
    assert layer_forward_flops(conv) == 2 * kernel_h * kernel_w * channels_in * channels_out * height * width


def test_channels_first_convolutions_are_refused():
    images = keras.Input((3, 8, 8))
    model = keras.Model(images, keras.layers.Conv2D(2, 3, data_format="channels_first", name="cf")(images))
    with pytest.raises(ValueError, match="layer cf: .*channels_last"):
        forward_flops(model)


def test_the_reference_matmul_rate_is_a_positive_number():
    rate = dense_matmul_flops_per_second(size=64, repeats=2, rounds=1)
    assert rate > 0 and math.isfinite(rate)

"""Tests of the reference U-Net: sizes, initial prediction, a training step and serialisation."""

from __future__ import annotations

import math
from dataclasses import replace

import keras
import numpy as np
import pytest

from keras_depth.losses import ScaleInvariantLoss
from keras_depth.models.reference_unet import build_reference_unet

# Fewer channels than the default, so the tests stay fast; the sizes do not depend on them.
SMALL_FILTERS = (4, 4, 8, 8)
SMALL_BOTTLENECK = 8


def _images(height: int, width: int, batch: int = 2) -> np.ndarray:
    """Random [batch, height, width, 3] float32 RGB in 0..255."""
    return np.random.default_rng(0).uniform(0.0, 255.0, (batch, height, width, 3)).astype("float32")


def _small_unet(cfg):
    keras.utils.set_random_seed(0)
    return build_reference_unet(cfg, SMALL_FILTERS, SMALL_BOTTLENECK)


def test_maps_the_network_input_to_log_depth_at_the_output_size(tiny_model):
    model = _small_unet(tiny_model)
    log_depth = model.predict_on_batch(_images(tiny_model.input_height, tiny_model.input_width))

    assert log_depth.shape == (2, tiny_model.output_height, tiny_model.output_width, 1)
    assert log_depth.dtype == np.float32
    # The output conv starts almost constant at log(initial_depth), as coarse7 and fine4 do.
    np.testing.assert_allclose(log_depth, math.log(tiny_model.initial_depth), atol=0.1)


@pytest.mark.parametrize(
    ("input_size", "output_size", "last_up_block", "decoder_size"),
    [
        # Default preset: skips 114x152, 57x76, 29x38, 15x19; the decoder stops at 29x38 >= 26x36.
        ((114, 152), (26, 36), "unet_up3", (29, 38)),
        # The smoke preset: skips 64x80, 32x40, 16x20, 8x10; 16x20 >= 14x18.
        ((64, 80), (14, 18), "unet_up3", (16, 20)),
        # An output as large as the input: the decoder climbs back to the input's resolution.
        ((32, 48), (32, 48), "unet_up1", (32, 48)),
    ],
)
def test_the_decoder_stops_at_the_first_skip_covering_the_output(
    tiny_model, input_size, output_size, last_up_block, decoder_size
):
    cfg = replace(
        tiny_model,
        input_height=input_size[0],
        input_width=input_size[1],
        output_height=output_size[0],
        output_width=output_size[1],
    )
    model = _small_unet(cfg)
    up_blocks = sorted(
        {layer.name.split("_")[1] for layer in model.layers if layer.name.startswith("unet_up")}
    )

    assert f"unet_{up_blocks[0]}" == last_up_block
    assert tuple(model.get_layer(f"{last_up_block}_b_act").output.shape[1:3]) == decoder_size
    assert tuple(model.output_shape[1:]) == (*output_size, 1)


def test_a_training_step_lowers_the_loss_and_changes_the_weights(tiny_model):
    model = _small_unet(tiny_model)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=ScaleInvariantLoss())
    images = _images(tiny_model.input_height, tiny_model.input_width, batch=4)
    depth = np.linspace(1.0, 5.0, 4 * tiny_model.output_height * tiny_model.output_width, dtype="float32")
    depth = depth.reshape(4, tiny_model.output_height, tiny_model.output_width, 1)
    before = [np.copy(weight) for weight in model.get_weights()]

    first = float(model.train_on_batch(images, depth))
    for _ in range(5):
        last = float(model.train_on_batch(images, depth))

    assert np.isfinite(first) and last < first
    assert any(not np.array_equal(old, new) for old, new in zip(before, model.get_weights(), strict=True))


def test_round_trips_through_a_keras_file(tiny_model, tmp_path):
    model = _small_unet(tiny_model)
    images = _images(tiny_model.input_height, tiny_model.input_width)
    path = tmp_path / "unet.keras"
    model.save(path)

    loaded = keras.saving.load_model(path)

    np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)


@pytest.mark.parametrize(
    ("filters", "bottleneck", "message"),
    [((), 8, "encoder_filters"), ((4, 0), 8, "encoder_filters"), ((4, 4), 0, "bottleneck_filters")],
)
def test_bad_filter_counts_are_refused_by_name(tiny_model, filters, bottleneck, message):
    with pytest.raises(ValueError, match=message):
        build_reference_unet(tiny_model, filters, bottleneck)


def test_an_input_too_small_for_the_pools_is_refused(tiny_model):
    cfg = replace(tiny_model, input_height=12, input_width=80)
    with pytest.raises(ValueError, match=r"input_height x input_width = 12x80.*at least 16x16"):
        build_reference_unet(cfg, SMALL_FILTERS, SMALL_BOTTLENECK)

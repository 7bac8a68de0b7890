"""Tests of the TFRecord schema: exact round trips and the encoder's input checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_depth.data.schema import (
    CAMERA_INTRINSICS,
    FEATURE_SPEC,
    IMAGE_ENCODED,
    DepthExample,
    decode_example,
    decode_features,
    encode_example,
    encode_png,
    parse_example,
)

HEIGHT, WIDTH = 6, 8
INTRINSICS = (518.5, 519.25, 4.5, 3.0)


def _example(key: str = "unit/0", intrinsics=INTRINSICS) -> DepthExample:
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.1, 10.0, (HEIGHT, WIDTH)).astype(np.float32)
    depth[::3, ::2] = 0.0  # invalid pixels
    return DepthExample(
        image=rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
        depth=depth,
        key=key,
        source="unit",
        intrinsics=intrinsics,
    )


@pytest.mark.parametrize("intrinsics", [INTRINSICS, None])
def test_encode_then_decode_round_trips_exactly(intrinsics):
    example = _example(intrinsics=intrinsics)
    decoded = decode_example(encode_example(example))

    np.testing.assert_array_equal(decoded.image, example.image)
    assert decoded.depth.dtype == np.float32
    np.testing.assert_array_equal(decoded.depth.view(np.uint32), example.depth.view(np.uint32))  # bitwise
    assert (decoded.key, decoded.source) == (example.key, example.source)
    assert decoded.intrinsics == intrinsics


def test_stored_image_bytes_are_the_png_encoding():
    example = _example()
    features = tf.io.parse_single_example(encode_example(example), FEATURE_SPEC)
    assert features[IMAGE_ENCODED].numpy() == encode_png(example.image)


def test_batched_parse_then_decode_matches_single_parse():
    serialized = [encode_example(_example(key=f"unit/{i}")) for i in range(3)]
    batch = tf.io.parse_example(tf.constant(serialized), FEATURE_SPEC)
    for index, record in enumerate(serialized):
        one = {name: value[index] for name, value in batch.items()}
        for name, tensor in decode_features(one).items():
            np.testing.assert_array_equal(tensor.numpy(), parse_example(tf.constant(record))[name].numpy())


def test_parse_example_runs_in_tf_data():
    records = tf.data.Dataset.from_tensor_slices([encode_example(_example())]).map(parse_example)
    parsed = next(iter(records))
    assert parsed["image"].dtype == tf.uint8 and parsed["image"].shape == (HEIGHT, WIDTH, 3)
    assert parsed["depth"].dtype == tf.float32 and parsed["depth"].shape == (HEIGHT, WIDTH, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": np.zeros((HEIGHT, WIDTH), np.uint8)}, "image must be uint8"),
        ({"image": np.zeros((HEIGHT, WIDTH, 3), np.float32)}, "image must be uint8"),
        ({"depth": np.zeros((HEIGHT, WIDTH + 1), np.float32)}, "does not match image size"),
        ({"depth": np.zeros((HEIGHT, WIDTH, 1), np.float32)}, "does not match image size"),
        ({"depth": np.zeros((HEIGHT, WIDTH), np.uint16)}, "floating-point metres"),
        ({"intrinsics": (1.0, 2.0, 3.0)}, CAMERA_INTRINSICS),
    ],
)
def test_encode_rejects_malformed_examples_naming_the_key(change, message):
    example = _example(key="unit/bad")
    for name, value in change.items():
        setattr(example, name, value)
    with pytest.raises(ValueError, match=message) as error:
        encode_example(example)
    assert "unit/bad" in str(error.value)

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


def _with_native(example: DepthExample) -> DepthExample:
    """``example`` with native depth at another size than the stored one (sparse, like LiDAR)."""
    rng = np.random.default_rng(1)
    native = rng.uniform(0.1, 80.0, (HEIGHT * 3 + 1, WIDTH * 3 - 1)).astype(np.float32)
    native[rng.random(native.shape) > 0.2] = 0.0
    example.native_depth, example.native_frame_box = native, (0.5, 1.25, 18.5, 22.75)
    return example


def test_native_depth_round_trips_bit_for_bit_and_is_absent_by_default():
    example = _with_native(_example())
    decoded = decode_example(encode_example(example))
    assert decoded.native_depth.dtype == np.float32
    np.testing.assert_array_equal(decoded.native_depth.view(np.uint32), example.native_depth.view(np.uint32))
    assert decoded.native_frame_box == example.native_frame_box
    np.testing.assert_array_equal(decoded.depth, example.depth)  # the stored depth is unaffected
    plain = decode_example(encode_example(_example()))
    assert plain.native_depth is None and plain.native_frame_box is None
    assert parse_example(tf.constant(encode_example(_example())))["native_depth"].shape == (0, 0, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"native_frame_box": None}, "must be given together"),
        ({"native_depth": None}, "must be given together"),
        ({"native_depth": np.ones((4, 4), np.uint16)}, "native_depth must be floating-point"),
        ({"native_depth": np.ones((4, 4, 1), np.float32)}, "native_depth must be floating-point"),
        ({"native_frame_box": (0.0, 0.0, 0.0, 4.0)}, "top < bottom"),
    ],
)
def test_encode_rejects_malformed_native_depth_naming_the_key(change, message):
    example = _with_native(_example(key="unit/bad"))
    for name, value in change.items():
        setattr(example, name, value)
    with pytest.raises(ValueError, match=message) as error:
        encode_example(example)
    assert "unit/bad" in str(error.value)


@pytest.mark.parametrize("group", ["kitchen_0028a", ""])
def test_group_round_trips_and_is_optional(group):
    example = _example()
    example.group = group
    serialized = encode_example(example)
    assert decode_example(serialized).group == group
    assert ("example/group" in tf.train.Example.FromString(serialized).features.feature) == bool(group)

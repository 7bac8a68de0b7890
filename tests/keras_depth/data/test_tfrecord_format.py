"""The TensorFlow-free TFRecord writer against TensorFlow itself: the same Example bytes, framing that
tf.data reads, and an encoder that imports no TensorFlow."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_depth.data import schema
from keras_depth.data.schema import DepthExample, encode_example, encode_png
from keras_depth.data.tfrecord_format import (
    bytes_feature,
    float_feature,
    frame_record,
    framed_records,
    int64_feature,
    serialize_example,
)


def tf_bytes(*values: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def tf_int64(*values: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def tf_float(*values: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def tf_example(features: dict[str, tf.train.Feature]) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature=features))


def test_features_of_every_kind_serialize_to_tensorflows_deterministic_bytes():
    ours = serialize_example(
        {
            "z/ints": int64_feature([-1, 0, 1, 127, 128, 300, 2**40, -(2**63), 2**63 - 1]),
            "a/bytes": bytes_feature([b"", b"x", bytes(range(256)) * 3]),
            "m/floats": float_feature([0.1, -2.5, 3.4e38, 1e-45]),
            "empty/ints": int64_feature([]),
            "empty/floats": float_feature([]),
            "empty/bytes": bytes_feature([]),
            "clé/ünicode": bytes_feature(["größe".encode()]),
        }
    )
    theirs = tf_example(
        {
            "z/ints": tf_int64(-1, 0, 1, 127, 128, 300, 2**40, -(2**63), 2**63 - 1),
            "a/bytes": tf_bytes(b"", b"x", bytes(range(256)) * 3),
            "m/floats": tf_float(0.1, -2.5, 3.4e38, 1e-45),
            "empty/ints": tf.train.Feature(int64_list=tf.train.Int64List()),
            "empty/floats": tf.train.Feature(float_list=tf.train.FloatList()),
            "empty/bytes": tf.train.Feature(bytes_list=tf.train.BytesList()),
            "clé/ünicode": tf_bytes("größe".encode()),
        }
    )
    assert ours == theirs.SerializeToString(deterministic=True)
    assert tf.train.Example.FromString(ours) == theirs


@pytest.mark.parametrize("with_optional", [True, False])
def test_encode_example_gives_the_bytes_of_the_example_built_with_tensorflow(with_optional):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    depth = rng.uniform(0.1, 10.0, (6, 8)).astype(np.float32)
    native = rng.uniform(0.1, 10.0, (12, 16)).astype(np.float32)
    optional = dict(
        intrinsics=(518.5, 519.25, 4.5, 3.1),
        group="kitchen_0028",
        native_depth=native,
        native_frame_box=(0.0, 0.5, 12.0, 15.5),
    )
    example = DepthExample(image, depth, "nyu/0001", "nyu", **(optional if with_optional else {}))
    features = {
        schema.IMAGE_ENCODED: tf_bytes(encode_png(image)),
        schema.IMAGE_HEIGHT: tf_int64(6),
        schema.IMAGE_WIDTH: tf_int64(8),
        schema.DEPTH_ENCODED: tf_bytes(depth.astype("<f4").tobytes()),
        schema.EXAMPLE_KEY: tf_bytes(b"nyu/0001"),
        schema.EXAMPLE_SOURCE: tf_bytes(b"nyu"),
    }
    if with_optional:
        features |= {
            schema.CAMERA_INTRINSICS: tf_float(*optional["intrinsics"]),
            schema.EXAMPLE_GROUP: tf_bytes(b"kitchen_0028"),
            schema.DEPTH_NATIVE_ENCODED: tf_bytes(native.astype("<f4").tobytes()),
            schema.DEPTH_NATIVE_HEIGHT: tf_int64(12),
            schema.DEPTH_NATIVE_WIDTH: tf_int64(16),
            schema.DEPTH_NATIVE_FRAME_BOX: tf_float(*optional["native_frame_box"]),
        }
    assert encode_example(example) == tf_example(features).SerializeToString(deterministic=True)


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_framed_records_are_read_by_tf_data_and_split_back(tmp_path, compression):
    records = [b"", b"a", bytes(range(256)) * 1000]
    framed = b"".join(frame_record(record) for record in records)
    path = tmp_path / "records.tfrecord"
    path.write_bytes(gzip.compress(framed) if compression else framed)
    assert (
        list(tf.data.TFRecordDataset(str(path), compression_type=compression).as_numpy_iterator()) == records
    )
    assert [frame[12:-4] for frame in framed_records(framed, "records")] == records


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:-1], "records: TFRecord data ends inside the record at byte 17"),
        (lambda data: data[:20], "records: TFRecord data ends inside the record at byte 17"),
        (
            lambda data: data[:-3] + b"\x00" + data[-2:],
            "records: wrong TFRecord checksum in the record at byte 17",
        ),
    ],
)
def test_damaged_framing_is_refused_naming_the_source_and_the_offset(damage, message):
    framed = frame_record(b"x") + frame_record(b"payload")
    with pytest.raises(ValueError, match=message):
        list(framed_records(damage(framed), "records"))


def test_encoding_and_framing_import_no_tensorflow():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from keras_depth.data.schema import DepthExample, encode_example\n"
        "from keras_depth.data.tfrecord_format import frame_record\n"
        "example = DepthExample(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32), 'k', 's')\n"
        "frame_record(encode_example(example))\n"
        "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"

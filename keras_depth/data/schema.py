"""The one TFRecord schema: feature names, the encoder (ingest) and the parser (training).

An example is a ``tf.train.Example`` with:

- ``image/encoded``: PNG bytes of the RGB uint8 image, H x W x 3.
- ``image/height``, ``image/width``: int64, the image (and depth) size in pixels.
- ``depth/encoded``: raw little-endian float32 depth in metres, row-major H x W; 0 = invalid.
- ``example/key``: stable unique id of the example (bytes, UTF-8).
- ``example/source``: dataset name (bytes, UTF-8).
- ``camera/intrinsics``: optional float list (fx, fy, cx, cy) in pixels of the stored image.
- ``example/group``: optional group (scene, drive, room; bytes, UTF-8) that the split kept
  together; absent or empty = the example is its own group. Lets readers check that no
  group spans two splits.
- ``depth_native/encoded``, ``depth_native/height``, ``depth_native/width``: optional (ingest writes
  them for test records only), the source's depth before any resizing: raw little-endian float32
  metres, row-major native height x width; 0 = invalid. Evaluation scores this ground truth.
- ``depth_native/frame_box``: optional float list (top, left, bottom, right), where the stored frame
  lies in the native depth map, in native pixel-edge coordinates (the native map spans
  [0, height] x [0, width]); the storage resize maps edges linearly onto edges.

The encoder is pure Python (:mod:`keras_depth.data.tfrecord_format`, PNG by Pillow), so the ingest
workers that run it never import TensorFlow; the parser (``FEATURE_SPEC``, :func:`parse_example`,
:func:`decode_features`, :func:`decode_example`) imports TensorFlow when first used.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from keras_depth.data.tfrecord_format import (
    bytes_feature,
    float_feature,
    int64_feature,
    serialize_example,
)

if TYPE_CHECKING:
    import tensorflow as tf

IMAGE_ENCODED = "image/encoded"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
DEPTH_ENCODED = "depth/encoded"
EXAMPLE_KEY = "example/key"
EXAMPLE_SOURCE = "example/source"
CAMERA_INTRINSICS = "camera/intrinsics"
EXAMPLE_GROUP = "example/group"
NUM_INTRINSICS = 4  # fx, fy, cx, cy
DEPTH_NATIVE_ENCODED = "depth_native/encoded"
DEPTH_NATIVE_HEIGHT = "depth_native/height"
DEPTH_NATIVE_WIDTH = "depth_native/width"
DEPTH_NATIVE_FRAME_BOX = "depth_native/frame_box"
FRAME_BOX_SIZE = 4  # top, left, bottom, right


@functools.cache
def feature_spec() -> dict:
    """The ``tf.io.parse_example`` spec of every feature (the optional ones with their defaults)."""
    import tensorflow as tf  # here, not at the top: the encoder must not import TensorFlow

    return {
        IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
        IMAGE_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
        IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64),
        DEPTH_ENCODED: tf.io.FixedLenFeature([], tf.string),
        EXAMPLE_KEY: tf.io.FixedLenFeature([], tf.string),
        EXAMPLE_SOURCE: tf.io.FixedLenFeature([], tf.string),
        CAMERA_INTRINSICS: tf.io.FixedLenFeature(
            [NUM_INTRINSICS], tf.float32, default_value=[0.0] * NUM_INTRINSICS
        ),
        EXAMPLE_GROUP: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        DEPTH_NATIVE_ENCODED: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        DEPTH_NATIVE_HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        DEPTH_NATIVE_WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        DEPTH_NATIVE_FRAME_BOX: tf.io.FixedLenFeature(
            [FRAME_BOX_SIZE], tf.float32, default_value=[0.0] * FRAME_BOX_SIZE
        ),
    }


def __getattr__(name: str):
    """``FEATURE_SPEC``: :func:`feature_spec`, built on first use (importing TensorFlow then)."""
    if name == "FEATURE_SPEC":
        return feature_spec()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class DepthExample:
    """One decoded example.

    Attributes:
        image: uint8 RGB, shape (H, W, 3).
        depth: float32 metres, shape (H, W); 0 = invalid.
        key: Stable unique id.
        source: Dataset name.
        intrinsics: (fx, fy, cx, cy) in pixels, or None when unknown.
        group: The group the split kept together; "" = the example is its own group.
        native_depth: float32 metres, shape (native height, native width), the source's depth before
            any resizing (0 = invalid), or None (train and val records).
        native_frame_box: (top, left, bottom, right) of the stored frame in ``native_depth``'s
            pixel-edge coordinates; given exactly when ``native_depth`` is.
    """

    image: np.ndarray
    depth: np.ndarray
    key: str
    source: str
    intrinsics: tuple[float, float, float, float] | None = None
    group: str = ""
    native_depth: np.ndarray | None = None
    native_frame_box: tuple[float, float, float, float] | None = None


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGB image of shape (H, W, 3)."""
    buffer = io.BytesIO()
    # A uint8 (H, W, 3) array is RGB; Pillow 11.3+ deprecates passing ``mode``.
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_example(example: DepthExample) -> bytes:
    """Serializes a :class:`DepthExample` to ``tf.train.Example`` bytes, without TensorFlow.

    The bytes are those of TensorFlow's ``SerializeToString(deterministic=True)`` (features sorted
    by name), so the same example always gives the same bytes.

    Raises:
        ValueError: naming the field when a shape or dtype is not as documented.
    """
    image, depth = example.image, example.depth
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{example.key}: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if depth.shape != image.shape[:2]:
        raise ValueError(
            f"{example.key}: depth shape {depth.shape} does not match image size {image.shape[:2]}"
        )
    if not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"{example.key}: depth must be floating-point metres, got {depth.dtype}")
    if example.intrinsics is not None and len(example.intrinsics) != NUM_INTRINSICS:
        raise ValueError(
            f"{example.key}: {CAMERA_INTRINSICS} must be (fx, fy, cx, cy), got {example.intrinsics}"
        )
    height, width = depth.shape
    features = {
        IMAGE_ENCODED: bytes_feature([encode_png(image)]),
        IMAGE_HEIGHT: int64_feature([height]),
        IMAGE_WIDTH: int64_feature([width]),
        DEPTH_ENCODED: bytes_feature([np.ascontiguousarray(depth, dtype="<f4").tobytes()]),
        EXAMPLE_KEY: bytes_feature([example.key.encode("utf-8")]),
        EXAMPLE_SOURCE: bytes_feature([example.source.encode("utf-8")]),
    }
    if example.group:
        features[EXAMPLE_GROUP] = bytes_feature([example.group.encode("utf-8")])
    features.update(_native_features(example))
    if example.intrinsics is not None:
        features[CAMERA_INTRINSICS] = float_feature(example.intrinsics)
    return serialize_example(features)


def _native_features(example: DepthExample) -> dict[str, bytes]:
    """The serialized ``depth_native/*`` features of an example ({} without native depth).

    Raises:
        ValueError: naming the field when only one of ``native_depth`` and ``native_frame_box`` is
            given, or either is not as documented.
    """
    native, box = example.native_depth, example.native_frame_box
    if native is None and box is None:
        return {}
    if native is None or box is None:
        raise ValueError(f"{example.key}: native_depth and native_frame_box must be given together")
    if native.ndim != 2 or not np.issubdtype(native.dtype, np.floating):
        raise ValueError(
            f"{example.key}: native_depth must be floating-point metres (H, W), got {native.dtype} "
            f"{native.shape}"
        )
    top, left, bottom, right = box
    if not (top < bottom and left < right):
        raise ValueError(
            f"{example.key}: {DEPTH_NATIVE_FRAME_BOX} must be (top, left, bottom, right) with "
            f"top < bottom and left < right, got {box}"
        )
    height, width = native.shape
    return {
        DEPTH_NATIVE_ENCODED: bytes_feature([np.ascontiguousarray(native, dtype="<f4").tobytes()]),
        DEPTH_NATIVE_HEIGHT: int64_feature([height]),
        DEPTH_NATIVE_WIDTH: int64_feature([width]),
        DEPTH_NATIVE_FRAME_BOX: float_feature(box),
    }


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized example into tensors (graph-safe, for tf.data).

    Returns:
        ``image`` uint8 (H, W, 3), ``depth`` float32 metres (H, W, 1), ``key`` and
        ``source`` strings, ``intrinsics`` float32 (4,) (zeros when unknown), ``group``
        string ("" when the example is its own group), ``native_depth`` float32 metres
        (native H, native W, 1) ((0, 0, 1) when absent) and ``native_frame_box`` float32 (4,)
        (zeros when absent).
    """
    import tensorflow as tf  # here, not at the top: the encoder must not import TensorFlow

    return decode_features(tf.io.parse_single_example(serialized, feature_spec()))


def decode_features(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Decodes the image and depth of one example's parsed features (graph-safe).

    The second half of :func:`parse_example`, for readers that parse a batch of
    records with ``tf.io.parse_example(serialized, FEATURE_SPEC)`` and then decode
    each example (PNG decoding cannot be batched over images of different sizes).

    Args:
        features: One example's scalar features as parsed with :data:`FEATURE_SPEC`
            (``camera/intrinsics`` of shape (4,)).

    Returns:
        The dict of :func:`parse_example`.
    """
    import tensorflow as tf  # here, not at the top: the encoder must not import TensorFlow

    height = tf.cast(features[IMAGE_HEIGHT], tf.int32)
    width = tf.cast(features[IMAGE_WIDTH], tf.int32)
    image = tf.io.decode_png(features[IMAGE_ENCODED], channels=3)
    image = tf.reshape(image, tf.stack([height, width, 3]))
    depth = tf.io.decode_raw(features[DEPTH_ENCODED], tf.float32, little_endian=True)
    depth = tf.reshape(depth, tf.stack([height, width, 1]))
    native_height = tf.cast(features[DEPTH_NATIVE_HEIGHT], tf.int32)
    native_width = tf.cast(features[DEPTH_NATIVE_WIDTH], tf.int32)
    native_depth = tf.io.decode_raw(features[DEPTH_NATIVE_ENCODED], tf.float32, little_endian=True)
    native_depth = tf.reshape(native_depth, tf.stack([native_height, native_width, 1]))
    return {
        "image": image,
        "depth": depth,
        "key": features[EXAMPLE_KEY],
        "source": features[EXAMPLE_SOURCE],
        "intrinsics": features[CAMERA_INTRINSICS],
        "group": features[EXAMPLE_GROUP],
        "native_depth": native_depth,
        "native_frame_box": features[DEPTH_NATIVE_FRAME_BOX],
    }


def decode_example(serialized: bytes) -> DepthExample:
    """Eager/numpy inverse of :func:`encode_example` (for tests and tools)."""
    import tensorflow as tf  # here, not at the top: the encoder must not import TensorFlow

    parsed = parse_example(tf.constant(serialized))
    intrinsics = tuple(float(v) for v in parsed["intrinsics"].numpy())
    native_depth = parsed["native_depth"].numpy()[..., 0]
    native_box = tuple(float(v) for v in parsed["native_frame_box"].numpy())
    has_native = native_depth.size > 0
    return DepthExample(
        image=parsed["image"].numpy(),
        depth=parsed["depth"].numpy()[..., 0],
        key=parsed["key"].numpy().decode("utf-8"),
        source=parsed["source"].numpy().decode("utf-8"),
        intrinsics=None if not any(intrinsics) else intrinsics,
        group=parsed["group"].numpy().decode("utf-8"),
        native_depth=native_depth if has_native else None,
        native_frame_box=native_box if has_native else None,
    )

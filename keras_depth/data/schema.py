"""The one TFRecord schema: feature names, the encoder (ingest) and the parser (training).

An example is a ``tf.train.Example`` with:

- ``image/encoded``: PNG bytes of the RGB uint8 image, H x W x 3.
- ``image/height``, ``image/width``: int64, the image (and depth) size in pixels.
- ``depth/encoded``: raw little-endian float32 depth in metres, row-major H x W; 0 = invalid.
- ``example/key``: stable unique id of the example (bytes, UTF-8).
- ``example/source``: dataset name (bytes, UTF-8).
- ``camera/intrinsics``: optional float list (fx, fy, cx, cy) in pixels of the stored image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from PIL import Image

IMAGE_ENCODED = "image/encoded"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
DEPTH_ENCODED = "depth/encoded"
EXAMPLE_KEY = "example/key"
EXAMPLE_SOURCE = "example/source"
CAMERA_INTRINSICS = "camera/intrinsics"
NUM_INTRINSICS = 4  # fx, fy, cx, cy

FEATURE_SPEC = {
    IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
    IMAGE_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64),
    DEPTH_ENCODED: tf.io.FixedLenFeature([], tf.string),
    EXAMPLE_KEY: tf.io.FixedLenFeature([], tf.string),
    EXAMPLE_SOURCE: tf.io.FixedLenFeature([], tf.string),
    CAMERA_INTRINSICS: tf.io.FixedLenFeature(
        [NUM_INTRINSICS], tf.float32, default_value=[0.0] * NUM_INTRINSICS
    ),
}


@dataclass
class DepthExample:
    """One decoded example.

    Attributes:
        image: uint8 RGB, shape (H, W, 3).
        depth: float32 metres, shape (H, W); 0 = invalid.
        key: Stable unique id.
        source: Dataset name.
        intrinsics: (fx, fy, cx, cy) in pixels, or None when unknown.
    """

    image: np.ndarray
    depth: np.ndarray
    key: str
    source: str
    intrinsics: tuple[float, float, float, float] | None = None


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGB image of shape (H, W, 3)."""
    buffer = io.BytesIO()
    # A uint8 (H, W, 3) array is RGB; Pillow 11.3+ deprecates passing ``mode``.
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def encode_example(example: DepthExample) -> bytes:
    """Serializes a :class:`DepthExample` to ``tf.train.Example`` bytes.

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
        IMAGE_ENCODED: _bytes(encode_png(image)),
        IMAGE_HEIGHT: _int(height),
        IMAGE_WIDTH: _int(width),
        DEPTH_ENCODED: _bytes(np.ascontiguousarray(depth, dtype="<f4").tobytes()),
        EXAMPLE_KEY: _bytes(example.key.encode("utf-8")),
        EXAMPLE_SOURCE: _bytes(example.source.encode("utf-8")),
    }
    if example.intrinsics is not None:
        features[CAMERA_INTRINSICS] = tf.train.Feature(
            float_list=tf.train.FloatList(value=list(example.intrinsics))
        )
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized example into tensors (graph-safe, for tf.data).

    Returns:
        ``image`` uint8 (H, W, 3), ``depth`` float32 metres (H, W, 1), ``key`` and
        ``source`` strings, ``intrinsics`` float32 (4,) (zeros when unknown).
    """
    return decode_features(tf.io.parse_single_example(serialized, FEATURE_SPEC))


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
    height = tf.cast(features[IMAGE_HEIGHT], tf.int32)
    width = tf.cast(features[IMAGE_WIDTH], tf.int32)
    image = tf.io.decode_png(features[IMAGE_ENCODED], channels=3)
    image = tf.reshape(image, tf.stack([height, width, 3]))
    depth = tf.io.decode_raw(features[DEPTH_ENCODED], tf.float32, little_endian=True)
    depth = tf.reshape(depth, tf.stack([height, width, 1]))
    return {
        "image": image,
        "depth": depth,
        "key": features[EXAMPLE_KEY],
        "source": features[EXAMPLE_SOURCE],
        "intrinsics": features[CAMERA_INTRINSICS],
    }


def decode_example(serialized: bytes) -> DepthExample:
    """Eager/numpy inverse of :func:`encode_example` (for tests and tools)."""
    parsed = parse_example(tf.constant(serialized))
    intrinsics = tuple(float(v) for v in parsed["intrinsics"].numpy())
    return DepthExample(
        image=parsed["image"].numpy(),
        depth=parsed["depth"].numpy()[..., 0],
        key=parsed["key"].numpy().decode("utf-8"),
        source=parsed["source"].numpy().decode("utf-8"),
        intrinsics=None if not any(intrinsics) else intrinsics,
    )

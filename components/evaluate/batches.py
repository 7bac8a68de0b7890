"""Evaluation batches: the networks' view of each stored test frame, and its native ground truth.

A batch holds, per test example, the stored frame (what a served model is fed), its centre
``input_height x input_width`` crop at scale 1 (``keras_depth.augment.center_crop_pair``, what the
networks are fed) and the native depth map with the stored frame's box in it
(``keras_depth.data.schema``, ``depth_native/*``). :func:`ground_truths` turns these into the ground
truth scored (see :mod:`.native`). A record ingested without native depth is given its stored depth
as native depth and the box (0, 0, H, W): it is scored on its stored frame, as before native ground
truth was stored (``HAS_NATIVE`` False).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from components.evaluate.native import input_window, window_ground_truth
from keras_depth.augment import center_crop_pair
from keras_depth.data.reader import read_examples, stored_size

# Keys of an evaluation batch.
FULL_IMAGE = "image"  # float32 [B, H, W, 3], RGB 0..255, the stored frame (what a served model is fed)
IMAGE = "image_crop"  # float32 [B, input_height, input_width, 3], the networks' input
KEY = "key"  # bytes [B]
# float32 [B, max native H, max native W] metres, 0 = invalid or padding: the native ground truth
# (the stored depth for a record without native depth).
NATIVE_DEPTH = "native_depth"
NATIVE_SIZE = "native_size"  # int32 [B, 2], (height, width) of each example's native depth
FRAME_BOX = "frame_box"  # float32 [B, 4], the stored frame in native pixel edges (top, left, bottom, right)
HAS_NATIVE = "has_native"  # bool [B], False for a record scored on its stored frame


def evaluation_batches(pattern: str, batch_size: int, input_height: int, input_width: int) -> tf.data.Dataset:
    """The test examples as evaluation batches (see the module docstring).

    Args:
        pattern: Glob of the test split's gzip TFRecord shards (all examples of one stored size; native
            sizes may differ).
        batch_size: Examples per batch (the last one may be smaller).
        input_height: Network input height in pixels.
        input_width: Network input width in pixels.

    Returns:
        A dataset of dicts with ``FULL_IMAGE``, ``IMAGE``, ``KEY``, ``NATIVE_DEPTH``, ``NATIVE_SIZE``,
        ``FRAME_BOX`` and ``HAS_NATIVE`` (shapes above).
    """
    height, width = stored_size(pattern)
    stored_box = tf.constant([0.0, 0.0, height, width], tf.float32)

    def view(example: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        same_size = tf.debugging.assert_equal(
            tf.shape(example["image"])[:2],
            tf.constant([height, width]),
            message=f"{pattern}: test examples must all be stored at {height}x{width}, as the first",
        )
        with tf.control_dependencies([same_size]):
            image = tf.ensure_shape(tf.cast(example["image"], tf.float32), [height, width, 3])
        image_crop, _ = center_crop_pair(image, example["depth"], input_height, input_width)
        has_native = tf.size(example["native_depth"]) > 0
        native = tf.cond(has_native, lambda: example["native_depth"], lambda: example["depth"])[..., 0]
        return {
            FULL_IMAGE: image,
            IMAGE: image_crop,
            KEY: example["key"],
            NATIVE_DEPTH: native,
            NATIVE_SIZE: tf.shape(native),
            FRAME_BOX: tf.where(has_native, example["native_frame_box"], stored_box),
            HAS_NATIVE: has_native,
        }

    return (
        read_examples(pattern, batch_size)
        .map(view, num_parallel_calls=tf.data.AUTOTUNE)
        .padded_batch(batch_size)
    )


def ground_truths(batch: Mapping[str, np.ndarray], crop: str) -> list[np.ndarray]:
    """The ground truth scored for each example of a batch (see :mod:`.native`).

    Args:
        batch: An evaluation batch.
        crop: Evaluation crop name, applied in native coordinates.

    Returns:
        One float32 [window height, window width] array (metres, 0 = not scored) per example.

    Raises:
        ValueError: naming the record when its window holds no native pixel (a corrupt frame box).
    """
    frame, network_input = batch[FULL_IMAGE].shape[1:3], batch[IMAGE].shape[1:3]
    truths = []
    for native, size, box, key in zip(
        batch[NATIVE_DEPTH], batch[NATIVE_SIZE], batch[FRAME_BOX], batch[KEY], strict=True
    ):
        window = input_window(box, frame, network_input, (int(size[0]), int(size[1])))
        if min(window.shape) < 1:
            raise ValueError(
                f"test record {key.decode('utf-8')}: frame box {box.tolist()} puts the network window "
                f"outside its {size[0]}x{size[1]} native depth"
            )
        truths.append(window_ground_truth(native[: size[0], : size[1]], window, crop))
    return truths

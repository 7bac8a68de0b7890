"""The constant "mean" baseline of Eigen et al. (2014): predict one depth everywhere.

The paper's first table column ("mean") predicts, for every pixel of every test image, the mean of the
training set's log depth. :func:`mean_log_depth` computes that constant by streaming over gzip TFRecord
shards (constant memory, any dataset size); :func:`evaluate_constant_baseline` scores it on a dataset of
``(image, depth)`` batches with the same metrics as the networks.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_depth.data.reader import COMPRESSION, list_shards
from keras_depth.data.schema import DEPTH_ENCODED, FEATURE_SPEC
from keras_depth.losses import check_depth_range, valid_depth_mask
from keras_depth.metrics import DepthMetricsAccumulator

# Only the depth is read: the image PNG is never decoded.
_DEPTH_SPEC = {DEPTH_ENCODED: FEATURE_SPEC[DEPTH_ENCODED]}


def _log_depth_sum_and_count(serialized: tf.Tensor, min_depth: float, max_depth: float):
    """Sum of log depth (float64) and number of valid pixels (int64) of one serialized example."""
    encoded = tf.io.parse_single_example(serialized, _DEPTH_SPEC)[DEPTH_ENCODED]
    depth = tf.io.decode_raw(encoded, tf.float32, little_endian=True)
    mask = valid_depth_mask(depth, min_depth, max_depth)
    log_depth = tf.math.log(tf.cast(tf.where(mask, depth, 1.0), tf.float64))
    return tf.reduce_sum(log_depth), tf.math.count_nonzero(mask, dtype=tf.int64)


def mean_log_depth(pattern: str, min_depth: float, max_depth: float) -> float:
    """Mean natural-log depth over every valid pixel of every example in the matched shards.

    Streams the records (one example in memory at a time) at their stored resolution; the sums are
    accumulated in float64.

    Args:
        pattern: Glob of gzip TFRecord shards, e.g. ``<ingest>/train/data-*.tfrecord.gz``.
        min_depth: Smallest valid depth in metres.
        max_depth: Largest valid depth in metres; depths outside the range, 0 and non-finite ones are
            left out.

    Returns:
        The mean of ``log(depth / 1 m)`` over the valid pixels.

    Raises:
        FileNotFoundError: naming the pattern when no shard matches.
        ValueError: naming the pattern when no pixel is valid.
    """
    check_depth_range(min_depth, max_depth)
    records = tf.data.TFRecordDataset(list_shards(pattern), compression_type=COMPRESSION)
    sums = records.map(
        lambda serialized: _log_depth_sum_and_count(serialized, min_depth, max_depth),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    total, count = sums.reduce(
        (tf.constant(0.0, tf.float64), tf.constant(0, tf.int64)),
        lambda state, item: (state[0] + item[0], state[1] + item[1]),
    )
    if int(count) == 0:
        raise ValueError(
            f"no valid depth pixel in [{min_depth}, {max_depth}] m in the shards matching {pattern!r}"
        )
    return float(total) / int(count)


def evaluate_constant_baseline(
    dataset: tf.data.Dataset, log_depth: float, min_depth: float, max_depth: float
) -> dict[str, float]:
    """Scores the constant prediction ``exp(log_depth)`` on every batch of a dataset.

    Args:
        dataset: Finite dataset of ``(image, depth)`` batches, depth float32 [B, h, w, 1] in metres
            (0 = invalid), e.g. ``make_dataset(pattern, cfg, training=False)``.
        log_depth: The constant natural-log depth, e.g. from :func:`mean_log_depth`.
        min_depth: Smallest valid ground-truth depth in metres (also the prediction's lower clip).
        max_depth: Largest valid ground-truth depth in metres (also the prediction's upper clip).

    Returns:
        The pixel-averaged metrics of :class:`~keras_depth.metrics.DepthMetricsAccumulator`
        (``delta1, delta2, delta3, abs_rel, sq_rel, rmse, rmse_log, si_log``).

    Raises:
        ValueError: when the dataset has no valid pixel.
    """
    accumulator = DepthMetricsAccumulator(min_depth=min_depth, max_depth=max_depth)
    depth_value = math.exp(log_depth)
    for _, depth in dataset.as_numpy_iterator():
        accumulator.update(np.full(depth.shape, depth_value), depth)
    return accumulator.result()

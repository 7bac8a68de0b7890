"""Tests of keras_depth.baseline: the streamed mean log depth and the constant-prediction scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_depth.baseline import evaluate_constant_baseline, mean_log_depth
from keras_depth.data.schema import DepthExample, encode_example
from keras_depth.metrics import compute_depth_metrics

MIN_DEPTH, MAX_DEPTH = 0.1, 10.0
GZIP = tf.io.TFRecordOptions(compression_type="GZIP")


def _write_shard(path, depths: list[np.ndarray]) -> None:
    with tf.io.TFRecordWriter(str(path), options=GZIP) as writer:
        for index, depth in enumerate(depths):
            image = np.zeros((*depth.shape, 3), np.uint8)
            writer.write(encode_example(DepthExample(image, depth.astype(np.float32), f"k{index}", "test")))


def test_mean_log_depth_averages_valid_pixels_of_all_shards(tmp_path):
    # Valid: 1 m (x2), e m (x1), e^2 m (x3) over two shards; invalid: 0, out of range, NaN.
    first = np.array([[1.0, 1.0], [math.e, 0.0]])
    second = np.array([[math.e**2, math.e**2, math.e**2], [20.0, 0.05, np.nan]])
    _write_shard(tmp_path / "data-00000-of-00002.tfrecord.gz", [first])
    _write_shard(tmp_path / "data-00001-of-00002.tfrecord.gz", [second])

    mean = mean_log_depth(str(tmp_path / "data-*.tfrecord.gz"), MIN_DEPTH, MAX_DEPTH)

    assert mean == pytest.approx((0 + 0 + 1 + 2 + 2 + 2) / 6, abs=1e-6)


def test_mean_log_depth_names_the_pattern_when_nothing_is_usable(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        mean_log_depth(str(tmp_path / "nothing-here-*.tfrecord.gz"), MIN_DEPTH, MAX_DEPTH)
    _write_shard(tmp_path / "data-00000-of-00001.tfrecord.gz", [np.zeros((2, 2))])
    with pytest.raises(ValueError, match="no valid depth pixel"):
        mean_log_depth(str(tmp_path / "data-*.tfrecord.gz"), MIN_DEPTH, MAX_DEPTH)


def test_constant_baseline_matches_the_metrics_of_a_constant_prediction():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 8.0, size=(5, 6, 7, 1)).astype(np.float32)
    depth[0, 0, 0, 0] = 0.0  # invalid, not scored
    images = np.zeros((5, 24, 28, 3), np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, depth)).batch(2)
    log_depth = 1.1

    scores = evaluate_constant_baseline(dataset, log_depth, MIN_DEPTH, MAX_DEPTH)

    expected = compute_depth_metrics(
        np.full(depth.shape, math.exp(log_depth)), depth, None, MIN_DEPTH, MAX_DEPTH
    )
    assert scores == pytest.approx(expected)
    assert 0.0 < scores["delta1"] < 1.0


def test_constant_baseline_is_perfect_on_constant_depth():
    depth = np.full((3, 4, 5, 1), 2.5, np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((3, 8, 10, 3), np.float32), depth)).batch(2)

    scores = evaluate_constant_baseline(dataset, math.log(2.5), MIN_DEPTH, MAX_DEPTH)

    assert scores["delta1"] == pytest.approx(1.0)
    assert scores["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert scores["rmse"] == pytest.approx(0.0, abs=1e-6)

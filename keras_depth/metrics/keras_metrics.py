"""Keras metrics for the training loop: targets in metres, predictions in log depth.

Each metric keeps the float64 sufficient statistics of :mod:`keras_depth.metrics.definitions` (pixel count
and per-pixel sums over the valid pixels) and reports the pixel-averaged value over everything seen since the
last reset (an epoch, in ``fit``). Validity and clipping follow the NumPy evaluation protocol of
:func:`~keras_depth.metrics.compute_depth_metrics`: a target pixel counts when finite, > 0 and inside
``[min_depth, max_depth]``; predicted depth is clipped to that range. Before any valid pixel a metric reads 0.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import keras
import tensorflow as tf

from keras_depth.losses import check_depth_range, fill_invalid_depth, flatten_images, valid_depth_mask
from keras_depth.metrics.definitions import (
    COUNT_KEY,
    DEFAULT_EVAL_MAX_DEPTH,
    DEFAULT_EVAL_MIN_DEPTH,
    PIXEL_TERMS,
    SUM_KEYS,
    metrics_from_sums,
    pixel_terms,
)


class _PixelDepthMetric(keras.metrics.Metric):
    """Base of the depth metrics: accumulates ``SUM_KEYS`` and reports ``METRIC``.

    Args:
        min_depth: Smallest valid target depth in metres; also the lower clip of predicted depth.
        max_depth: Largest valid target depth in metres; also the upper clip of predicted depth.
        name: Metric name (default: the metric's key, e.g. ``"delta1"``).
        dtype: dtype of the reported value (the state is float64).
    """

    METRIC: ClassVar[str]

    def __init__(
        self,
        min_depth: float = DEFAULT_EVAL_MIN_DEPTH,
        max_depth: float = DEFAULT_EVAL_MAX_DEPTH,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name or self.METRIC, dtype=dtype)
        check_depth_range(min_depth, max_depth)
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        # float64 so that a whole epoch of pixel counts and squared errors sums without float32 round-off.
        self.sums = self.add_variable(
            shape=(len(SUM_KEYS),), initializer="zeros", dtype="float64", name="sums"
        )

    def update_state(
        self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None
    ) -> None:
        """Adds a batch.

        Args:
            y_true: Target depth in metres, shape [B, H, W, 1] or [B, H, W].
            y_pred: Predicted log depth, shape [B, H, W, 1] or [B, H, W].
            sample_weight: Optional weight per image (shape [B]) or per pixel (the shape of ``y_true``).
        """
        depth = flatten_images(tf.cast(y_true, tf.float32))
        log_pred = flatten_images(tf.cast(y_pred, tf.float32))
        pred = tf.exp(tf.clip_by_value(log_pred, math.log(self.min_depth), math.log(self.max_depth)))
        mask = valid_depth_mask(depth, self.min_depth, self.max_depth)
        weight = tf.cast(mask, tf.float32)
        if sample_weight is not None:
            weight *= flatten_images(tf.cast(sample_weight, tf.float32))
        terms = pixel_terms(pred, fill_invalid_depth(depth, mask), keras.ops)  # invalid: weight 0
        batch_sums = [tf.reduce_sum(weight)] + [tf.reduce_sum(terms[key] * weight) for key in PIXEL_TERMS]
        self.sums.assign_add(tf.cast(tf.stack(batch_sums), tf.float64))

    def result(self) -> tf.Tensor:
        """The pixel-averaged metric since the last reset (0 before any valid pixel)."""
        sums = dict(zip(SUM_KEYS, tf.unstack(self.sums), strict=True))
        sums[COUNT_KEY] = tf.where(sums[COUNT_KEY] > 0.0, sums[COUNT_KEY], 1.0)
        return tf.cast(metrics_from_sums(sums, keras.ops)[self.METRIC], self.dtype)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, for ``from_config`` and ``.keras`` saving."""
        return {**super().get_config(), "min_depth": self.min_depth, "max_depth": self.max_depth}


@keras.saving.register_keras_serializable(package="keras_depth")
class Delta1(_PixelDepthMetric):
    """Fraction of valid pixels with ``max(y / y*, y* / y) < 1.25`` (pixel-averaged; args as the base)."""

    METRIC = "delta1"


@keras.saving.register_keras_serializable(package="keras_depth")
class AbsRel(_PixelDepthMetric):
    """Mean absolute relative error ``|y - y*| / y*`` over valid pixels (args as the base)."""

    METRIC = "abs_rel"


@keras.saving.register_keras_serializable(package="keras_depth")
class RMSE(_PixelDepthMetric):
    """Root mean squared depth error in metres over valid pixels (args as the base)."""

    METRIC = "rmse"


@keras.saving.register_keras_serializable(package="keras_depth")
class SILog(_PixelDepthMetric):
    """Scale-invariant log error ``sqrt(mean(d^2) - mean(d)^2)``, ``d = log y - log y*`` (args as the base)."""

    METRIC = "si_log"

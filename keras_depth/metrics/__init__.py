"""Depth evaluation metrics (Eigen et al., 2014): definitions, NumPy evaluation, crops, Keras metrics.

- :mod:`~keras_depth.metrics.definitions`: the metrics as functions of per-pixel sums (shared by all paths);
- :mod:`~keras_depth.metrics.evaluation`: :func:`compute_depth_metrics` and :class:`DepthMetricsAccumulator`
  (NumPy, float64, pixel- or image-averaged);
- :mod:`~keras_depth.metrics.edges`: the edge measure ``edge_log_grad`` (log-depth step error at
  ground-truth depth discontinuities), scored by the accumulator beside the standard metrics;
- :mod:`~keras_depth.metrics.crops`: the named NYU/KITTI evaluation crops;
- :mod:`~keras_depth.metrics.keras_metrics`: :class:`Delta1`, :class:`AbsRel`, :class:`RMSE`, :class:`SILog`
  for ``model.compile`` (targets in metres, predictions in log depth).
"""

from keras_depth.metrics.crops import EVAL_CROPS, EvalCrop, crop_mask
from keras_depth.metrics.definitions import (
    DEFAULT_EVAL_MAX_DEPTH,
    DEFAULT_EVAL_MIN_DEPTH,
    METRIC_NAMES,
    metrics_from_sums,
    pixel_terms,
)
from keras_depth.metrics.edges import EDGE_METRIC, edge_errors, edge_reach_for
from keras_depth.metrics.evaluation import AVERAGES, DepthMetricsAccumulator, compute_depth_metrics
from keras_depth.metrics.keras_metrics import RMSE, AbsRel, Delta1, SILog

__all__ = [
    "AVERAGES",
    "DEFAULT_EVAL_MAX_DEPTH",
    "DEFAULT_EVAL_MIN_DEPTH",
    "EDGE_METRIC",
    "EVAL_CROPS",
    "METRIC_NAMES",
    "RMSE",
    "AbsRel",
    "Delta1",
    "DepthMetricsAccumulator",
    "EvalCrop",
    "SILog",
    "compute_depth_metrics",
    "crop_mask",
    "edge_errors",
    "edge_reach_for",
    "metrics_from_sums",
    "pixel_terms",
]

"""Depth evaluation metrics (Eigen et al., 2014): definitions, NumPy evaluation, crops, Keras metrics.

- :mod:`~keras_depth.metrics.definitions`: the metrics as functions of per-pixel sums (shared by all paths);
- :mod:`~keras_depth.metrics.evaluation`: :func:`compute_depth_metrics` and :class:`DepthMetricsAccumulator`
  (NumPy, float64, pixel- or image-averaged);
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
from keras_depth.metrics.evaluation import AVERAGES, DepthMetricsAccumulator, compute_depth_metrics
from keras_depth.metrics.keras_metrics import RMSE, AbsRel, Delta1, SILog

__all__ = [
    "AVERAGES",
    "DEFAULT_EVAL_MAX_DEPTH",
    "DEFAULT_EVAL_MIN_DEPTH",
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
    "metrics_from_sums",
    "pixel_terms",
]

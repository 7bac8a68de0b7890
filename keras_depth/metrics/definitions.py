"""The standard depth metrics, defined once for NumPy arrays and TensorFlow tensors alike.

Over the valid pixels T, with prediction y and ground truth y* in metres (Eigen et al., 2014, section 4.1):

- ``delta1``, ``delta2``, ``delta3``: fraction of pixels with ``max(y / y*, y* / y) < 1.25^k``;
- ``abs_rel``: mean ``|y - y*| / y*``;
- ``sq_rel``: mean ``(y - y*)^2 / y*``;
- ``rmse``: ``sqrt(mean (y - y*)^2)`` in metres;
- ``rmse_log``: ``sqrt(mean (log y - log y*)^2)``;
- ``si_log``: ``sqrt(mean(d^2) - mean(d)^2)`` with ``d = log y - log y*`` (natural log).

Every metric is a function of per-pixel sums (the sufficient statistics ``SUM_KEYS``), which is what lets a
whole dataset (:class:`~keras_depth.metrics.evaluation.DepthMetricsAccumulator`) or a whole training epoch
(the Keras metrics) be aggregated without holding it in memory. The two functions below take the array
namespace ``xp`` (``numpy`` or ``keras.ops``) so that both paths share these definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

# Evaluation depth range (metres): the NYU protocol caps depth at 10 m; 1e-3 m is the usual lower bound.
DEFAULT_EVAL_MIN_DEPTH = 1e-3
DEFAULT_EVAL_MAX_DEPTH = 10.0

DELTA_BASE = 1.25
DELTA_POWERS = (1, 2, 3)

METRIC_NAMES = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "si_log")

# Per-pixel quantities whose sums over the valid pixels, with their count, determine every metric.
PIXEL_TERMS = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "sq_err", "log_err", "sq_log_err")
COUNT_KEY = "count"
SUM_KEYS = (COUNT_KEY, *PIXEL_TERMS)


def pixel_terms(pred_depth: Any, true_depth: Any, xp: ModuleType) -> dict[str, Any]:
    """The per-pixel quantities ``PIXEL_TERMS`` of valid pixels.

    Args:
        pred_depth: Predicted depth in metres, > 0, any shape.
        true_depth: Ground-truth depth in metres, > 0, same shape.
        xp: ``numpy`` (for arrays) or ``keras.ops`` (for tensors).

    Returns:
        Dict from each name of ``PIXEL_TERMS`` to an array/tensor of the input shape: the delta
        indicators (1.0 or 0.0), relative and squared errors (metres^2 for ``sq_err``, metres for
        ``sq_rel``), the log error ``log y - log y*`` and its square.
    """
    ratio = xp.maximum(pred_depth / true_depth, true_depth / pred_depth)
    error = pred_depth - true_depth
    log_error = xp.log(pred_depth) - xp.log(true_depth)
    terms = {f"delta{k}": xp.where(ratio < DELTA_BASE**k, 1.0, 0.0) for k in DELTA_POWERS}
    terms.update(
        abs_rel=xp.abs(error) / true_depth,
        sq_rel=xp.square(error) / true_depth,
        sq_err=xp.square(error),
        log_err=log_error,
        sq_log_err=xp.square(log_error),
    )
    return terms


def metrics_from_sums(sums: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    """The metrics ``METRIC_NAMES`` from per-pixel sums.

    Args:
        sums: Dict with every key of ``SUM_KEYS``: the (possibly weighted) pixel count ``count`` (> 0)
            and the sum of each of ``PIXEL_TERMS`` over the same pixels.
        xp: ``numpy`` (for floats/arrays) or ``keras.ops`` (for tensors).

    Returns:
        Dict from each name of ``METRIC_NAMES`` to its value (``rmse`` in metres, the rest unitless).
    """
    mean = {key: sums[key] / sums[COUNT_KEY] for key in PIXEL_TERMS}
    log_variance = xp.maximum(mean["sq_log_err"] - xp.square(mean["log_err"]), 0.0)
    return {
        "delta1": mean["delta1"],
        "delta2": mean["delta2"],
        "delta3": mean["delta3"],
        "abs_rel": mean["abs_rel"],
        "sq_rel": mean["sq_rel"],
        "rmse": xp.sqrt(mean["sq_err"]),
        "rmse_log": xp.sqrt(mean["sq_log_err"]),
        "si_log": xp.sqrt(log_variance),
    }

"""An edge measure: how well a prediction reproduces the depth steps at the ground truth's discontinuities.

The standard metrics (:mod:`~keras_depth.metrics.definitions`) weigh every pixel the same, and most pixels
lie on smooth surfaces, so a blurred depth map that gets each surface's mean depth right scores almost as
well as a sharp one. The fine network's job in Eigen et al. (2014) is local detail; this measure scores
exactly that.

Definition (``EDGE_METRIC``, ``edge_log_grad``), in natural log depth:

1. A *discontinuity* is a pair of neighbouring valid ground-truth pixels ``i, i + 1`` along a row or a
   column whose depths differ by more than ``exp(threshold)`` (``|log y*_{i+1} - log y*_i| > threshold``).
2. It is scored across ``reach`` pixels on either side: with ``a = i - reach`` and ``b = i + 1 + reach``
   (both valid and inside the image), ``g = log y*_b - log y*_a`` is the ground truth's step and
   ``p = log y_b - log y_a`` the prediction's. The error is ``|p - g|``.
3. The measure is the mean error over the discontinuities (unitless: 0.1 is a step missed by about 10 %).

It is a finite-difference log-depth gradient error at ground-truth depth edges. Since ``p - g = d_b - d_a``
with ``d = log y - log y*``, it is scale-invariant: multiplying a prediction by a constant does not change
it, so it measures local structure only, not the global scale the coarse network sets. A prediction
equal to the ground truth scores 0; one that blurs the edges misses part of every step.

Threshold: ``DEFAULT_EDGE_THRESHOLD = log(1.25)``, a jump between neighbours beyond the ``delta1``
tolerance. Reach: ``DEFAULT_EDGE_REACH = 0`` (the two neighbours themselves) unless the caller knows the
prediction's resolution. Ground truth is scored at its native resolution, several native pixels per
predicted pixel (default preset: about 4; NYU: about 8), and predictions are upsampled bilinearly, so
even a map that is exact at its own resolution spreads every step over several native pixels: scored
on the two neighbours alone, it would miss most of each step, and that upsampling, the same for every
network, would dominate the measure. The evaluate stage therefore scores each discontinuity one
predicted pixel to either side (``edge_reach_for(ground truth size, network output size)``), where a map
that is sharp at the networks' resolution has the depths of both sides and a blurred one does not.

Pooled over the discontinuities of a whole dataset it is ``pixel``-averaged like the other metrics;
``image`` averages each image's mean over the images that have at least one. A split without any
discontinuity (e.g. constant-depth ground truth) has no value.
"""

from __future__ import annotations

import math

import numpy as np

EDGE_METRIC = "edge_log_grad"
DEFAULT_EDGE_THRESHOLD = math.log(1.25)
DEFAULT_EDGE_REACH = 0


def edge_reach_for(truth_size: tuple[int, int], prediction_size: tuple[int, int]) -> int:
    """Native pixels per predicted pixel: the reach that scores a discontinuity one predicted pixel out.

    Args:
        truth_size: (height, width) of the ground truth in pixels.
        prediction_size: (height, width) of the prediction before upsampling, in pixels.

    Returns:
        ``round(min(truth_height / prediction_height, truth_width / prediction_width))``, at least 1.
    """
    (truth_height, truth_width), (height, width) = truth_size, prediction_size
    return max(1, round(min(truth_height / height, truth_width / width)))


def edge_errors(
    pred_depth: np.ndarray,
    true_depth: np.ndarray,
    valid_mask: np.ndarray,
    threshold: float = DEFAULT_EDGE_THRESHOLD,
    reach: int = DEFAULT_EDGE_REACH,
) -> np.ndarray:
    """The errors ``|p - g|`` of one image's ground-truth discontinuities (see the module docstring).

    Args:
        pred_depth: (H, W) predicted depth in metres, > 0 at the valid pixels.
        true_depth: (H, W) ground-truth depth in metres, > 0 at the valid pixels (any value elsewhere).
        valid_mask: (H, W) bool, the pixels that may be scored.
        threshold: Smallest neighbour log-depth jump (exclusive) of a discontinuity.
        reach: Pixels from the discontinuity to each pixel it is scored on, >= 0.

    Returns:
        1-D float64 array, one absolute log-step error per scored discontinuity (those along rows first);
        empty when the image has none.

    Raises:
        ValueError: If the shapes differ or are not (H, W), or ``reach < 0`` or ``threshold < 0``.
    """
    if not (np.shape(pred_depth) == np.shape(true_depth) == np.shape(valid_mask)) or np.ndim(true_depth) != 2:
        raise ValueError(
            f"pred_depth {np.shape(pred_depth)}, true_depth {np.shape(true_depth)} and valid_mask "
            f"{np.shape(valid_mask)} must be the same (H, W)"
        )
    if reach < 0 or threshold < 0:
        raise ValueError(f"edge reach must be >= 0 pixels and threshold >= 0; got {reach} and {threshold}")
    valid = np.asarray(valid_mask, bool)
    log_pred = np.log(np.where(valid, pred_depth, 1.0).astype(np.float64))
    log_true = np.log(np.where(valid, true_depth, 1.0).astype(np.float64))
    errors = []
    for transpose in (False, True):  # discontinuities along rows, then along columns
        pred, true, ok = (array.T if transpose else array for array in (log_pred, log_true, valid))
        jump = np.abs(true[:, 1:] - true[:, :-1])
        rows, cols = np.nonzero(ok[:, 1:] & ok[:, :-1] & (jump > threshold))
        first, second = cols - reach, cols + 1 + reach
        inside = (first >= 0) & (second < true.shape[1])
        rows, first, second = rows[inside], first[inside], second[inside]
        scored = ok[rows, first] & ok[rows, second]
        rows, first, second = rows[scored], first[scored], second[scored]
        true_step = true[rows, second] - true[rows, first]
        pred_step = pred[rows, second] - pred[rows, first]
        errors.append(np.abs(pred_step - true_step))
    return np.concatenate(errors)

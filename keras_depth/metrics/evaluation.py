"""Dataset-level depth evaluation in NumPy (float64): one call, or accumulated batch by batch.

Protocol: a pixel is scored when its ground-truth depth is finite, > 0 and inside
``[min_depth, max_depth]`` (and inside ``valid_mask``, e.g. an evaluation crop from
:mod:`keras_depth.metrics.crops`). Predictions are clipped to ``[min_depth, max_depth]`` before scoring, the
usual protocol, so that a prediction of 0 or a runaway value stays finite; non-finite predictions are not
masked (a NaN prediction makes the metrics NaN). Predictions must already be at the ground-truth resolution.

Two averages are reported:

- ``"pixel"`` (default): every valid pixel of the dataset weighs the same (the metrics over the
  concatenation of all images);
- ``"image"``: the metrics of each image (with at least one valid pixel) are averaged, each image weighing
  the same regardless of its number of valid pixels.

The two differ most for ``si_log``. The paper's scale-invariant error removes each image's own mean log
error, so its value beside the paper's tables is the image-averaged ``si_log``; the pixel-pooled
``si_log`` removes one mean for the whole dataset, so the spread of the images' mean depths counts as
error (for the constant mean predictor on NYU, about 0.49 pooled against 0.30 per image).

Besides ``METRIC_NAMES`` the accumulator scores the edge measure ``edge_log_grad``
(:mod:`keras_depth.metrics.edges`) on the same valid pixels: pooled over every ground-truth edge pair of
the dataset (``"pixel"``) or averaged over the images that have one (``"image"``); it is left out of the
result when no image has a ground-truth depth discontinuity.
"""

from __future__ import annotations

import numpy as np

from keras_depth.losses import check_depth_range, valid_depth_mask
from keras_depth.metrics.definitions import (
    COUNT_KEY,
    DEFAULT_EVAL_MAX_DEPTH,
    DEFAULT_EVAL_MIN_DEPTH,
    METRIC_NAMES,
    PIXEL_TERMS,
    SUM_KEYS,
    metrics_from_sums,
    pixel_terms,
)
from keras_depth.metrics.edges import (
    DEFAULT_EDGE_REACH,
    DEFAULT_EDGE_THRESHOLD,
    EDGE_METRIC,
    edge_errors,
)

AVERAGES = ("pixel", "image")


def _as_image_batch(array: np.ndarray, arg_name: str, dtype: type) -> np.ndarray:
    """Views an (H, W), (N, H, W) or (N, H, W, 1) array as (N, H, W).

    Raises:
        ValueError: naming ``arg_name`` for any other shape.
    """
    array = np.asarray(array, dtype=dtype)
    if array.ndim == 4 and array.shape[-1] == 1:
        return array[..., 0]
    if array.ndim == 3:
        return array
    if array.ndim == 2:
        return array[np.newaxis]
    raise ValueError(f"{arg_name} must have shape (H, W), (N, H, W) or (N, H, W, 1); got {array.shape}")


class DepthMetricsAccumulator:
    """Accumulates the sufficient statistics of the depth metrics over any number of batches.

    Memory stays constant: only float64 sums are kept (pixel count, delta counts, summed relative, squared
    and log errors, for the whole dataset, and the summed per-image metrics; for the edge measure the
    count of discontinuities scored, their summed errors and the summed per-image means).

    Args:
        min_depth: Smallest valid ground-truth depth in metres; also the lower clip of predictions.
        max_depth: Largest valid ground-truth depth in metres; also the upper clip of predictions.
        edge_threshold: Smallest neighbour log-depth jump of a ground-truth discontinuity
            (:func:`~keras_depth.metrics.edges.edge_errors`).
        edge_reach: Pixels from a discontinuity to each pixel it is scored on, unless ``update`` says
            otherwise.
    """

    def __init__(
        self,
        min_depth: float = DEFAULT_EVAL_MIN_DEPTH,
        max_depth: float = DEFAULT_EVAL_MAX_DEPTH,
        edge_threshold: float = DEFAULT_EDGE_THRESHOLD,
        edge_reach: int = DEFAULT_EDGE_REACH,
    ) -> None:
        check_depth_range(min_depth, max_depth)
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.edge_threshold = float(edge_threshold)
        self.edge_reach = int(edge_reach)
        self.reset()

    def reset(self) -> None:
        """Forgets every update."""
        self._pixel_sums = dict.fromkeys(SUM_KEYS, 0.0)
        self._image_metric_sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self._num_images = 0
        self._edge_pairs = 0
        self._edge_error_sum = 0.0
        self._edge_image_sum = 0.0
        self._edge_images = 0

    @property
    def num_pixels(self) -> int:
        """Valid pixels accumulated so far."""
        return int(self._pixel_sums[COUNT_KEY])

    @property
    def num_images(self) -> int:
        """Images with at least one valid pixel accumulated so far."""
        return self._num_images

    def update(
        self,
        pred_depth: np.ndarray,
        true_depth: np.ndarray,
        valid_mask: np.ndarray | None = None,
        edge_reach: int | None = None,
    ) -> None:
        """Adds one image or a batch of images.

        Args:
            pred_depth: Predicted depth in metres, shape (H, W), (N, H, W) or (N, H, W, 1).
            true_depth: Ground-truth depth in metres, the same shape up to a trailing channel of 1; 0,
                non-finite and out-of-range values are not scored.
            valid_mask: Optional bool mask of pixels to score, broadcastable to the (N, H, W) images,
                e.g. an (H, W) evaluation crop.
            edge_reach: Edge reach in pixels for these images (e.g. ``edge_reach_for`` of the ground
                truth and the prediction's sizes); ``None`` = the accumulator's ``edge_reach``.

        Raises:
            ValueError: naming the argument whose shape does not match ``true_depth``.
        """
        true = _as_image_batch(true_depth, "true_depth", np.float64)
        pred = _as_image_batch(pred_depth, "pred_depth", np.float64)
        if pred.shape != true.shape:
            raise ValueError(
                f"pred_depth has shape {np.shape(pred_depth)} but true_depth has shape "
                f"{np.shape(true_depth)}; resize predictions to the ground-truth resolution first"
            )
        mask = valid_depth_mask(true, self.min_depth, self.max_depth)
        if valid_mask is not None:
            extra_mask = _as_image_batch(valid_mask, "valid_mask", bool)
            try:
                mask &= np.broadcast_to(extra_mask, true.shape)
            except ValueError as error:
                raise ValueError(
                    f"valid_mask of shape {np.shape(valid_mask)} does not broadcast to true_depth's "
                    f"images {true.shape}"
                ) from error
        pred = np.clip(pred, self.min_depth, self.max_depth)
        for image_pred, image_true, image_mask in zip(pred, true, mask, strict=True):
            self._add_image(image_pred[image_mask], image_true[image_mask])
            self._add_edges(
                image_pred, image_true, image_mask, self.edge_reach if edge_reach is None else edge_reach
            )

    def _add_image(self, pred: np.ndarray, true: np.ndarray) -> None:
        """Adds the valid pixels of one image (1-D arrays of metres); an empty image is skipped."""
        if pred.size == 0:
            return
        terms = pixel_terms(pred, true, np)
        image_sums = {COUNT_KEY: float(pred.size), **{key: float(np.sum(terms[key])) for key in PIXEL_TERMS}}
        for key, value in image_sums.items():
            self._pixel_sums[key] += value
        for key, value in metrics_from_sums(image_sums, np).items():
            self._image_metric_sums[key] += float(value)
        self._num_images += 1

    def _add_edges(self, pred: np.ndarray, true: np.ndarray, mask: np.ndarray, reach: int) -> None:
        """Adds the discontinuities of one (H, W) image (metres; bool valid mask), scored ``reach`` out."""
        errors = edge_errors(pred, true, mask, self.edge_threshold, reach)
        if errors.size == 0:
            return
        self._edge_pairs += errors.size
        self._edge_error_sum += float(np.sum(errors))
        self._edge_image_sum += float(np.mean(errors))
        self._edge_images += 1

    def result(self, average: str = "pixel") -> dict[str, float]:
        """The metrics of everything accumulated.

        Args:
            average: ``"pixel"`` (every valid pixel weighs the same) or ``"image"`` (mean of the
                per-image metrics; images without a valid pixel are left out).

        Returns:
            Dict with keys ``delta1, delta2, delta3, abs_rel, sq_rel, rmse, rmse_log, si_log``
            (``rmse`` in metres), and ``edge_log_grad`` when at least one discontinuity was scored.

        Raises:
            ValueError: for an unknown ``average``, or when no valid pixel has been accumulated.
        """
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}; got {average!r}")
        if self._num_images == 0:
            raise ValueError(
                "no valid pixel to score: every ground-truth depth was 0, non-finite, outside "
                f"[{self.min_depth}, {self.max_depth}] m or outside valid_mask"
            )
        if average == "image":
            metrics = {key: value / self._num_images for key, value in self._image_metric_sums.items()}
        else:
            metrics = {key: float(value) for key, value in metrics_from_sums(self._pixel_sums, np).items()}
        if self._edge_pairs:
            edge_sum, edge_count = (
                (self._edge_image_sum, self._edge_images)
                if average == "image"
                else (self._edge_error_sum, self._edge_pairs)
            )
            metrics[EDGE_METRIC] = edge_sum / edge_count
        return metrics


def compute_depth_metrics(
    pred_depth: np.ndarray,
    true_depth: np.ndarray,
    valid_mask: np.ndarray | None = None,
    min_depth: float = DEFAULT_EVAL_MIN_DEPTH,
    max_depth: float = DEFAULT_EVAL_MAX_DEPTH,
) -> dict[str, float]:
    """The depth metrics over all valid pixels of the inputs (pixel-averaged).

    Args:
        pred_depth: Predicted depth in metres, shape (H, W), (N, H, W) or (N, H, W, 1); clipped to
            ``[min_depth, max_depth]`` before scoring.
        true_depth: Ground-truth depth in metres, the same shape up to a trailing channel of 1; 0,
            non-finite and out-of-range values are not scored.
        valid_mask: Optional bool mask of pixels to score, broadcastable to the (N, H, W) images.
        min_depth: Smallest valid ground-truth depth in metres.
        max_depth: Largest valid ground-truth depth in metres.

    Returns:
        Dict with keys ``delta1, delta2, delta3, abs_rel, sq_rel, rmse, rmse_log, si_log`` (floats,
        ``rmse`` in metres), and ``edge_log_grad`` when the ground truth has a depth discontinuity.

    Raises:
        ValueError: naming the argument on a shape mismatch, or when no pixel is valid.
    """
    accumulator = DepthMetricsAccumulator(min_depth=min_depth, max_depth=max_depth)
    accumulator.update(pred_depth, true_depth, valid_mask)
    return accumulator.result()

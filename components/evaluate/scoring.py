"""Scores depth predictors on the test split at native ground-truth resolution (Eigen et al., 2014).

The evaluation view of a stored H x W test example is the data reader's: its centre
``input_height x input_width`` crop at scale 1 (``keras_depth.augment.center_crop_pair``), the crop the
networks are fed. Scoring, per example:

1. the crop's window in the native depth map and its ground truth there (native resolution, 0 outside
   the evaluation crop applied in native coordinates) come from :mod:`.native`; records ingested
   without native depth fall back to their stored frame (counted in ``images_without_native``);
2. a predictor returns log depth at its own resolution (the networks: about 1/4 of the crop; the
   baseline: 1 x 1), which is bilinearly upsampled *in log space* to the window's native size, then
   exponentiated and clipped to ``[min_depth, max_depth]``. Interpolating log depth is interpolating
   what the networks predict, and keeps the upsampled map a geometric blend of neighbouring depths.
   No ground-truth value is resampled;
3. :class:`keras_depth.metrics.DepthMetricsAccumulator` scores the pixels whose ground truth lies in
   ``[min_depth, max_depth]``: pixel-pooled (every valid pixel of the split weighs the same) and
   image-averaged (each image's metrics, then their mean; its ``si_log`` is the paper's per-image
   scale-invariant error), and the edge measure ``edge_log_grad``: the log-depth step across each
   ground-truth depth discontinuity, taken one network output pixel to either side
   (``keras_depth.metrics.edges``).

Every predictor is scored on exactly the same pixels.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from components.evaluate.batches import HAS_NATIVE, IMAGE, KEY, NATIVE_SIZE, ground_truths
from components.evaluate.predictors import Predictor
from keras_depth.metrics import DepthMetricsAccumulator, compute_depth_metrics, edge_reach_for

# Keys of the rows of ``gather_examples``.
DEPTH = "ground_truth"


def upsample_depth(
    log_depth: np.ndarray, height: int, width: int, min_depth: float, max_depth: float
) -> np.ndarray:
    """Log depth at the prediction's resolution -> depth at the ground-truth resolution.

    Args:
        log_depth: float32 [B, h, w, 1], natural log of metres.
        height: Ground-truth height in pixels.
        width: Ground-truth width in pixels.
        min_depth: Lower clip of the depth in metres.
        max_depth: Upper clip of the depth in metres.

    Returns:
        float32 [B, height, width, 1] metres: bilinear in log space, exponentiated, clipped.
    """
    upsampled = tf.image.resize(log_depth, [height, width], method="bilinear")
    return np.clip(np.exp(upsampled.numpy()), min_depth, max_depth)


def depth_at_ground_truth(
    predictor: Predictor,
    batch: Mapping[str, np.ndarray],
    truths: list[np.ndarray],
    min_depth: float,
    max_depth: float,
) -> list[np.ndarray]:
    """One predictor's depth (metres) on each example's ground-truth pixels.

    Args:
        predictor: Maps the batch to log depth [B, h, w, 1].
        batch: An evaluation batch.
        truths: :func:`ground_truths` of the batch.
        min_depth: Lower clip of the depth in metres.
        max_depth: Upper clip of the depth in metres.

    Returns:
        One float32 array per example, of its ground truth's shape (:func:`upsample_depth`).
    """
    log_depth = predictor(batch)
    shapes = {truth.shape for truth in truths}
    if len(shapes) == 1:  # the usual case: one resize for the whole batch
        return list(upsample_depth(log_depth, *shapes.pop(), min_depth, max_depth)[..., 0])
    return [
        upsample_depth(log_depth[index : index + 1], *truth.shape, min_depth, max_depth)[0, ..., 0]
        for index, truth in enumerate(truths)
    ]


@dataclass
class ScoringResult:
    """Metrics of every predictor over the same pixels.

    Attributes:
        pixel: Predictor name -> pixel-pooled metrics.
        image: Predictor name -> image-averaged metrics (``si_log``: the paper's per-image SI error).
        num_images: Test examples read.
        num_pixels: Ground-truth pixels scored (the same for every predictor).
        ground_truth_sizes: ``"<height>x<width>"`` of the depth maps scored (native, or stored for the
            records without native depth) -> number of examples.
        images_without_native: Examples scored on their stored frame (no native depth stored).
        ranked: (abs_rel, index, key) of every example with a valid pixel, for the ranked predictor,
            sorted from best (lowest abs_rel) to worst.
    """

    pixel: dict[str, dict[str, float]]
    image: dict[str, dict[str, float]]
    num_images: int
    num_pixels: int
    ground_truth_sizes: dict[str, int]
    images_without_native: int
    ranked: list[tuple[float, int, str]] = field(default_factory=list)


def score_predictors(
    batches: tf.data.Dataset,
    predictors: Mapping[str, Predictor],
    crop: str,
    min_depth: float,
    max_depth: float,
    ranked_predictor: str,
    on_batch: Callable[[int], object] | None = None,
    prediction_size: tuple[int, int] | None = None,
) -> ScoringResult:
    """Scores every predictor on every batch.

    Args:
        batches: From :func:`evaluation_batches`.
        predictors: Name -> predictor.
        crop: Evaluation crop name, applied in native coordinates.
        min_depth: Smallest scored ground-truth depth and lower prediction clip (metres).
        max_depth: Largest scored ground-truth depth and upper prediction clip (metres).
        ranked_predictor: Name of the predictor whose per-image abs_rel ranks the examples.
        on_batch: Called after each batch with the number of images scored so far (progress).
        prediction_size: (height, width) of the networks' log depth; every predictor's depth
            discontinuities are then scored ``edge_reach_for(ground truth size, prediction_size)`` pixels
            to either side (default: on the two neighbouring pixels themselves).

    Returns:
        The metrics of each predictor and the example ranking.

    Raises:
        ValueError: when the split has no valid pixel.
    """
    accumulators = {name: DepthMetricsAccumulator(min_depth, max_depth) for name in predictors}
    ranked: list[tuple[float, int, str]] = []
    sizes: Counter[str] = Counter()
    num_images = without_native = 0
    for batch in batches.as_numpy_iterator():
        truths = ground_truths(batch, crop)
        for name, predictor in predictors.items():
            preds = depth_at_ground_truth(predictor, batch, truths, min_depth, max_depth)
            for pred, true in zip(preds, truths, strict=True):
                reach = edge_reach_for(true.shape, prediction_size) if prediction_size else None
                accumulators[name].update(pred, true, edge_reach=reach)
            if name == ranked_predictor:
                ranked += _rank_entries(preds, truths, batch[KEY], num_images, min_depth, max_depth)
        sizes.update(f"{height}x{width}" for height, width in batch[NATIVE_SIZE])
        without_native += int(np.sum(~batch[HAS_NATIVE]))
        num_images += len(truths)
        if on_batch is not None:
            on_batch(num_images)
    return ScoringResult(
        pixel={name: acc.result("pixel") for name, acc in accumulators.items()},
        image={name: acc.result("image") for name, acc in accumulators.items()},
        num_images=num_images,
        num_pixels=accumulators[ranked_predictor].num_pixels,
        ground_truth_sizes=dict(sorted(sizes.items())),
        images_without_native=without_native,
        ranked=sorted(ranked),
    )


def split_results(
    scores: ScoringResult, crop: str, min_depth: float, max_depth: float, baseline_log_depth: float
) -> dict:
    """The ``metrics.json`` entries of one scored split.

    Args:
        scores: The split's :func:`score_predictors` result.
        crop: Evaluation crop name.
        min_depth: Smallest scored ground-truth depth (metres).
        max_depth: Largest scored ground-truth depth (metres).
        baseline_log_depth: The mean baseline's constant (natural log of metres).

    Returns:
        Pixel-pooled metrics by predictor name; ``image_averaged`` (the same per predictor);
        ``si_log_per_image`` (predictor -> the paper's scale-invariant error: per image, then averaged);
        ``protocol`` (crop, depth range, ground-truth sizes scored, images scored on their stored frame
        for lack of native depth, pixels scored); ``num_images``; ``baseline_depth`` (metres).
    """
    return {
        **scores.pixel,
        "image_averaged": scores.image,
        "si_log_per_image": {name: values["si_log"] for name, values in scores.image.items()},
        "protocol": {
            "crop": crop,
            "min_depth": min_depth,
            "max_depth": max_depth,
            "ground_truth_sizes": scores.ground_truth_sizes,
            "images_without_native_depth": scores.images_without_native,
            "num_pixels": scores.num_pixels,
        },
        "num_images": scores.num_images,
        "baseline_depth": math.exp(baseline_log_depth),
    }


def _rank_entries(
    pred_depth: list[np.ndarray],
    true_depth: list[np.ndarray],
    keys: np.ndarray,
    first_index: int,
    min_depth: float,
    max_depth: float,
) -> list[tuple[float, int, str]]:
    """(abs_rel, index, key) of each image of a batch with at least one valid pixel."""
    entries = []
    for offset, (pred, true, key) in enumerate(zip(pred_depth, true_depth, keys, strict=True)):
        try:
            abs_rel = compute_depth_metrics(pred, true, min_depth=min_depth, max_depth=max_depth)["abs_rel"]
        except ValueError:  # no valid pixel in this image: it has no rank
            continue
        entries.append((abs_rel, first_index + offset, key.decode("utf-8")))
    return entries


def pick_examples(ranked: list[tuple[float, int, str]]) -> dict[str, tuple[float, int, str]]:
    """The best, median and worst entries of a ranking (sorted best first); empty for no entry."""
    if not ranked:
        return {}
    return {"best": ranked[0], "median": ranked[len(ranked) // 2], "worst": ranked[-1]}


def _stack_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """Stacks 2-D arrays of possibly different sizes, padding each at the bottom and right with 0."""
    height = max(array.shape[0] for array in arrays)
    width = max(array.shape[1] for array in arrays)
    stacked = np.zeros((len(arrays), height, width), np.float32)
    for row, array in enumerate(arrays):
        stacked[row, : array.shape[0], : array.shape[1]] = array
    return stacked


def gather_examples(
    batches: tf.data.Dataset,
    indices: list[int],
    predictors: Mapping[str, Predictor],
    crop: str,
    min_depth: float,
    max_depth: float,
) -> dict[str, np.ndarray]:
    """Network inputs, ground truth and predictions of the examples at ``indices`` (a second pass).

    Args:
        batches: The dataset scored by :func:`score_predictors` (same order).
        indices: Example positions in the split, in the order wanted.
        predictors: Name -> predictor, run on just those examples.
        crop: Evaluation crop name, applied in native coordinates.
        min_depth: Lower prediction clip (metres).
        max_depth: Upper prediction clip (metres).

    Returns:
        ``IMAGE`` [K, input_height, input_width, 3], ``DEPTH`` (the scored ground truth, see
        :func:`ground_truths`) and one depth per predictor name on the same pixels, [K, h, w] metres
        (windows of different native sizes are padded with 0 at the bottom and right), rows in the
        order of ``indices``.
    """
    found: dict[int, dict[str, np.ndarray]] = {}
    start = 0
    for batch in batches.as_numpy_iterator():
        size = len(batch[KEY])
        rows = [index - start for index in indices if start <= index < start + size]
        if rows:
            subset = {key: value[rows] for key, value in batch.items()}
            truths = ground_truths(subset, crop)
            columns = {
                name: depth_at_ground_truth(p, subset, truths, min_depth, max_depth)
                for name, p in predictors.items()
            }
            for position, row in enumerate(rows):
                found[start + row] = {
                    IMAGE: subset[IMAGE][position],
                    DEPTH: truths[position],
                    **{name: depth[position] for name, depth in columns.items()},
                }
        start += size
    stacked = {IMAGE: np.stack([found[index][IMAGE] for index in indices])}
    for name in (DEPTH, *predictors):
        stacked[name] = _stack_padded([found[index][name] for index in indices])
    return stacked

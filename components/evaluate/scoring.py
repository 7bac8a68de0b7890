"""Scores depth predictors on the test split at ground-truth resolution (Eigen et al., 2014 protocol).

The evaluation view of a stored H x W test example is the data reader's: its centre
``input_height x input_width`` crop at scale 1 (``keras_depth.augment.center_crop_pair``), the crop the
networks are fed. Scoring, per example:

1. the configured evaluation crop (``keras_depth.metrics.crop_mask`` of the full H x W frame, e.g. the
   NYU Eigen crop) is applied by setting ground truth outside it to 0 (invalid), then image and ground
   truth are centre-cropped together, so the scored pixels are the centre crop minus everything outside
   the evaluation crop;
2. a predictor returns log depth at its own resolution (the networks: about 1/4 of the crop; the
   baseline: 1 x 1), which is bilinearly upsampled *in log space* to the crop's ground-truth resolution
   (input_height x input_width, scale 1 so no ground truth is resampled), then exponentiated and
   clipped to ``[min_depth, max_depth]``. Interpolating log depth is interpolating what the networks
   predict, and keeps the upsampled map a geometric blend of neighbouring depths;
3. :class:`keras_depth.metrics.DepthMetricsAccumulator` scores the pixels whose ground truth lies in
   ``[min_depth, max_depth]``, pixel- and image-averaged.

Every predictor is scored on exactly the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from components.export.signatures import DEPTH_OUTPUT, IMAGES_INPUT, LOG_DEPTH_OUTPUT, SERVING_DEFAULT
from keras_depth.augment import center_crop_pair
from keras_depth.data.reader import make_eval_dataset
from keras_depth.metrics import DepthMetricsAccumulator, compute_depth_metrics, crop_mask

# A predictor maps an evaluation batch (see ``evaluation_batches``) to log depth [B, h, w, 1].
Predictor = Callable[[Mapping[str, np.ndarray]], np.ndarray]

# Keys of an evaluation batch.
FULL_IMAGE = "image"  # float32 [B, H, W, 3], RGB 0..255, the stored frame (what a served model is fed)
IMAGE = "image_crop"  # float32 [B, input_height, input_width, 3], the networks' input
DEPTH = "depth_crop"  # float32 [B, input_height, input_width, 1], metres, 0 = invalid or outside the crop
KEY = "key"  # bytes [B]


def frame_size(pattern: str) -> tuple[int, int]:
    """(height, width) in pixels of the stored examples matched by ``pattern`` (read from the first)."""
    first = next(iter(make_eval_dataset(pattern, batch_size=1)))
    _, height, width, _ = first["depth"].shape
    return int(height), int(width)


def evaluation_batches(
    pattern: str, batch_size: int, input_height: int, input_width: int, crop: str
) -> tf.data.Dataset:
    """The test examples as evaluation batches (see the module docstring).

    Args:
        pattern: Glob of the test split's gzip TFRecord shards (all examples of one stored size).
        batch_size: Examples per batch (the last one may be smaller).
        input_height: Network input height in pixels.
        input_width: Network input width in pixels.
        crop: Evaluation crop name (``keras_depth.metrics.EVAL_CROPS``).

    Returns:
        A dataset of dicts with ``FULL_IMAGE``, ``IMAGE``, ``DEPTH`` and ``KEY`` (shapes above).
    """
    height, width = frame_size(pattern)
    inside = tf.constant(crop_mask(crop, height, width)[:, :, np.newaxis])

    def view(example: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        depth = tf.where(inside, example["depth"], tf.zeros_like(example["depth"]))
        image_crop, depth_crop = center_crop_pair(example["image"], depth, input_height, input_width)
        return {FULL_IMAGE: example["image"], IMAGE: image_crop, DEPTH: depth_crop, KEY: example["key"]}

    examples = make_eval_dataset(pattern, batch_size).unbatch()
    return examples.map(view, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)


def keras_predictor(model: keras.Model) -> Predictor:
    """A network fed the centre crop (``IMAGE``); returns its log depth [B, h, w, 1]."""
    return lambda batch: np.asarray(model.predict_on_batch(batch[IMAGE]))


def constant_predictor(log_depth: float) -> Predictor:
    """The mean baseline: ``log_depth`` (natural log of metres) everywhere, as a [B, 1, 1, 1] map."""
    return lambda batch: np.full((len(batch[DEPTH]), 1, 1, 1), log_depth, dtype=np.float32)


def served_predictor(saved_model_dir: str | Path) -> Predictor:
    """A served SavedModel fed the full stored frame (``FULL_IMAGE``) through ``serving_default``.

    Its ``log_depth`` output (or the log of ``depth`` when it has none) is taken to cover the same
    centre window as the evaluation crop, which holds for models exported by this project from the
    same stored frame and input size (``components.export.signatures``).

    Raises:
        ValueError: naming the directory when the SavedModel lacks the signature or outputs.
    """
    signature = tf.saved_model.load(str(saved_model_dir)).signatures.get(SERVING_DEFAULT)
    if signature is None:
        raise ValueError(f"{saved_model_dir}: served SavedModel has no '{SERVING_DEFAULT}' signature")
    outputs = signature.structured_outputs
    if LOG_DEPTH_OUTPUT not in outputs and DEPTH_OUTPUT not in outputs:
        raise ValueError(
            f"{saved_model_dir}: '{SERVING_DEFAULT}' returns {sorted(outputs)}, "
            f"expected '{LOG_DEPTH_OUTPUT}' or '{DEPTH_OUTPUT}'"
        )

    def predict(batch: Mapping[str, np.ndarray]) -> np.ndarray:
        result = signature(**{IMAGES_INPUT: tf.constant(batch[FULL_IMAGE])})
        if LOG_DEPTH_OUTPUT in result:
            log_depth = result[LOG_DEPTH_OUTPUT]
        else:
            log_depth = tf.math.log(result[DEPTH_OUTPUT])
        return log_depth.numpy()[..., np.newaxis]

    return predict


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


@dataclass
class ScoringResult:
    """Metrics of every predictor over the same pixels.

    Attributes:
        pixel: Predictor name -> pixel-averaged metrics.
        image: Predictor name -> image-averaged metrics.
        num_images: Test examples read.
        ranked: (abs_rel, index, key) of every example with a valid pixel, for the ranked predictor,
            sorted from best (lowest abs_rel) to worst.
    """

    pixel: dict[str, dict[str, float]]
    image: dict[str, dict[str, float]]
    num_images: int
    ranked: list[tuple[float, int, str]] = field(default_factory=list)


def depth_at_ground_truth(
    predictor: Predictor, batch: Mapping[str, np.ndarray], min_depth: float, max_depth: float
) -> np.ndarray:
    """One predictor's depth [B, input_height, input_width, 1] (metres) at the crop's GT resolution."""
    _, height, width, _ = batch[DEPTH].shape
    return upsample_depth(predictor(batch), height, width, min_depth, max_depth)


def score_predictors(
    batches: tf.data.Dataset,
    predictors: Mapping[str, Predictor],
    min_depth: float,
    max_depth: float,
    ranked_predictor: str,
) -> ScoringResult:
    """Scores every predictor on every batch.

    Args:
        batches: From :func:`evaluation_batches`.
        predictors: Name -> predictor.
        min_depth: Smallest scored ground-truth depth and lower prediction clip (metres).
        max_depth: Largest scored ground-truth depth and upper prediction clip (metres).
        ranked_predictor: Name of the predictor whose per-image abs_rel ranks the examples.

    Returns:
        The metrics of each predictor and the example ranking.

    Raises:
        ValueError: when the split has no valid pixel.
    """
    accumulators = {name: DepthMetricsAccumulator(min_depth, max_depth) for name in predictors}
    ranked: list[tuple[float, int, str]] = []
    num_images = 0
    for batch in batches.as_numpy_iterator():
        true_depth = batch[DEPTH]
        for name, predictor in predictors.items():
            pred_depth = depth_at_ground_truth(predictor, batch, min_depth, max_depth)
            accumulators[name].update(pred_depth, true_depth)
            if name == ranked_predictor:
                ranked += _rank_entries(pred_depth, true_depth, batch[KEY], num_images, min_depth, max_depth)
        num_images += len(true_depth)
    return ScoringResult(
        pixel={name: acc.result("pixel") for name, acc in accumulators.items()},
        image={name: acc.result("image") for name, acc in accumulators.items()},
        num_images=num_images,
        ranked=sorted(ranked),
    )


def _rank_entries(
    pred_depth: np.ndarray,
    true_depth: np.ndarray,
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


def gather_examples(
    batches: tf.data.Dataset,
    indices: list[int],
    predictors: Mapping[str, Predictor],
    min_depth: float,
    max_depth: float,
) -> dict[str, np.ndarray]:
    """Crops, ground truth and predictions of the examples at ``indices`` (a second pass).

    Args:
        batches: The dataset scored by :func:`score_predictors` (same order).
        indices: Example positions in the split, in the order wanted.
        predictors: Name -> predictor, run on just those examples.
        min_depth: Lower prediction clip (metres).
        max_depth: Upper prediction clip (metres).

    Returns:
        ``IMAGE`` [K, h, w, 3], ``DEPTH`` [K, h, w, 1] and one [K, h, w, 1] depth per predictor name,
        rows in the order of ``indices``.
    """
    found: dict[int, dict[str, np.ndarray]] = {}
    start = 0
    for batch in batches.as_numpy_iterator():
        size = len(batch[DEPTH])
        rows = [index - start for index in indices if start <= index < start + size]
        if rows:
            subset = {key: value[rows] for key, value in batch.items()}
            columns = {
                name: depth_at_ground_truth(p, subset, min_depth, max_depth) for name, p in predictors.items()
            }
            for position, row in enumerate(rows):
                found[start + row] = {
                    IMAGE: subset[IMAGE][position],
                    DEPTH: subset[DEPTH][position],
                    **{name: depth[position] for name, depth in columns.items()},
                }
        start += size
    names = [IMAGE, DEPTH, *predictors]
    return {name: np.stack([found[index][name] for index in indices]) for name in names}

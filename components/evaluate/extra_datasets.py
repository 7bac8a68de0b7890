"""Cross-dataset evaluation: the networks scored on the test split of each ``evaluate.extra_datasets`` entry.

Each dataset's ingest artifact is an input of the stage (``ExtraDatasetConfig.input_name``; the
pipeline ingests a ``config`` entry itself, see ``pipeline.extra_datasets``). Its test split is scored
with the test split's protocol (:mod:`.scoring`): the networks are fed the centre input crop of each
stored frame, the ground truth is scored at its native resolution, with ``evaluate``'s crop and depth
range. Its frames must be stored at least at the network input size.

The mean baseline is the dataset's own: ``exp`` of the mean log depth of the valid pixels (inside the
evaluation depth range) of its test frames, the constant that predicts "the scene's mean depth" (the
best constant for those frames in log space). A network trained on another dataset has to infer the
scene's scale from the image; this baseline is given it. Beating it on abs rel means the network gets
the scale about right as well as the structure; the SI error (scale removed) compares the structure
alone. An evaluation-only dataset has no train split whose mean the paper's baseline would take, and
the training set's mean depth measures how far apart the two datasets' depths are, not a baseline.
The blessing never looks at these datasets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from components.base import Artifact
from components.evaluate.batches import evaluation_batches
from components.evaluate.config import EvaluateConfig, ExtraDatasetConfig
from components.evaluate.predictors import BASELINE, COARSE_FINE, Predictor, constant_predictor
from components.evaluate.scoring import ScoringResult, score_predictors, split_results
from components.progress import ProgressReporter
from keras_depth.baseline import mean_log_depth
from keras_depth.data.layout import TEST, split_pattern
from keras_depth.data.reader import stored_size


@dataclass(frozen=True)
class DatasetScores:
    """One extra dataset's scores.

    Attributes:
        name: The dataset's name (``ExtraDatasetConfig.name``).
        scores: The scores of the mean baseline, ``coarse`` and ``coarse_fine``.
        results: Its ``metrics.json`` entry: :func:`~components.evaluate.scoring.split_results`, plus
            ``frame`` (stored ``height`` and ``width`` in pixels) and ``ingest`` (the artifact's ``path``
            and ``fingerprint``).
    """

    name: str
    scores: ScoringResult
    results: dict


def score_extra_dataset(
    dataset: ExtraDatasetConfig,
    artifact: Artifact,
    networks: Mapping[str, Predictor],
    cfg: EvaluateConfig,
    input_size: tuple[int, int],
    prediction_size: tuple[int, int],
    log: logging.Logger,
) -> DatasetScores:
    """Scores the networks and the dataset's own mean baseline on its test split.

    Args:
        dataset: The ``evaluate.extra_datasets`` entry.
        artifact: Its ingest artifact (``<path>/test/`` shards).
        networks: ``coarse`` and ``coarse_fine`` predictors (:func:`.predictors.keras_predictor`).
        cfg: The evaluation protocol (crop, depth range, batch size).
        input_size: (height, width) of the network input in pixels.
        prediction_size: (height, width) of the networks' log depth.
        log: Receives progress lines and the warning about records without native depth.

    Returns:
        The scores and their ``metrics.json`` entry.

    Raises:
        ValueError: naming the dataset when its stored frames are smaller than the network input,
            or when its test split has no valid pixel.
        FileNotFoundError: naming the pattern when its test split has no shard.
    """
    pattern = split_pattern(artifact.path, TEST)
    frame = stored_size(pattern)
    if frame[0] < input_size[0] or frame[1] < input_size[1]:
        raise ValueError(
            f"evaluate.extra_datasets {dataset.name}: its frames are stored at {frame[0]}x{frame[1]} "
            f"({artifact.path}), smaller than the {input_size[0]}x{input_size[1]} network input; ingest "
            f"it with ingest.storage_height and ingest.storage_width at least the input size"
        )
    baseline_log_depth = mean_log_depth(pattern, cfg.min_depth, cfg.max_depth)
    predictors = {BASELINE: constant_predictor(baseline_log_depth), **networks}
    num_test = artifact.metadata.get("counts", {}).get(TEST)
    progress = (
        ProgressReporter(log, "evaluate", f"scored {dataset.name}", "images", num_test).update
        if num_test
        else None
    )
    scores = score_predictors(
        evaluation_batches(pattern, cfg.batch_size, *input_size),
        predictors,
        cfg.crop,
        cfg.min_depth,
        cfg.max_depth,
        COARSE_FINE,
        on_batch=progress,
        prediction_size=prediction_size,
    )
    if scores.images_without_native:
        log.warning(
            "%s: %d of %d test records have no native ground truth: scored on their stored frame",
            dataset.name,
            scores.images_without_native,
            scores.num_images,
        )
    results = {
        **split_results(scores, cfg.crop, cfg.min_depth, cfg.max_depth, baseline_log_depth),
        "frame": {"height": frame[0], "width": frame[1]},
        "ingest": {"path": str(artifact.path), "fingerprint": artifact.fingerprint},
    }
    return DatasetScores(dataset.name, scores, results)

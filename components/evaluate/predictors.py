"""Depth predictors scored by evaluation: the networks, the mean baseline and a served SavedModel.

A predictor maps an evaluation batch (:mod:`.batches`) to log depth [B, h, w, 1] (natural log of metres)
over the networks' centre window, at its own resolution; scoring upsamples it onto the ground truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from components.evaluate.batches import FULL_IMAGE, IMAGE, KEY
from components.serving_contract import DEPTH_OUTPUT, IMAGES_INPUT, LOG_DEPTH_OUTPUT, SERVING_DEFAULT

# A predictor maps an evaluation batch (see ``evaluation_batches``) to log depth [B, h, w, 1].
Predictor = Callable[[Mapping[str, np.ndarray]], np.ndarray]

# Predictor names: the keys of their metrics in ``metrics.json`` and MLflow.
BASELINE = "baseline"
COARSE = "coarse"
COARSE_FINE = "coarse_fine"
SERVED = "served"


def keras_predictor(model: keras.Model) -> Predictor:
    """A network fed the centre crop (``IMAGE``); returns its log depth [B, h, w, 1]."""
    return lambda batch: np.asarray(model.predict_on_batch(batch[IMAGE]))


def constant_predictor(log_depth: float) -> Predictor:
    """The mean baseline: ``log_depth`` (natural log of metres) everywhere, as a [B, 1, 1, 1] map."""
    return lambda batch: np.full((len(batch[KEY]), 1, 1, 1), log_depth, dtype=np.float32)


def served_predictor(saved_model_dir: str | Path) -> Predictor:
    """A served SavedModel fed the full stored frame (``FULL_IMAGE``) through ``serving_default``.

    Its ``log_depth`` output (or the log of ``depth`` when it has none) is taken to cover the same
    centre window as the evaluation crop, which holds for models exported by this project from the
    same stored frame and input size (``ServingGeometry`` in :mod:`components.serving_contract`).

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

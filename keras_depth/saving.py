"""Loading saved ``.keras`` models of this library in any process.

A ``.keras`` file of a compiled coarse or fine model names our registered classes: the ``FrozenModel``
layer, the ``LayerwiseSGD`` optimizer, the scale-invariant loss and the depth metrics. Keras finds a
registered class only once the module that defines it has been imported, so loading must not depend on
which modules the calling process happened to import before (a stage rerun alone in a fresh process imports
none of the training code). This module imports every one of them and is the one way to load our models.
"""

from __future__ import annotations

from pathlib import Path

import keras

# Imported for their registrations with keras.saving (register_keras_serializable).
import keras_depth.losses  # noqa: F401
import keras_depth.metrics.keras_metrics  # noqa: F401
import keras_depth.models  # noqa: F401
import keras_depth.optimizers  # noqa: F401


def load_depth_model(path: str | Path, compile: bool = True) -> keras.Model:
    """Loads a coarse or fine model saved with ``model.save(path)``.

    Args:
        path: The ``.keras`` file.
        compile: Also restore the optimizer (with its step count), loss and metrics.

    Returns:
        The model; it maps float32 RGB [B, H, W, 3] in 0..255 to log depth [B, h, w, 1].

    Raises:
        FileNotFoundError: If ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no saved model at {path}: expected a .keras file written by the train stage"
        )
    return keras.saving.load_model(path, compile=compile)

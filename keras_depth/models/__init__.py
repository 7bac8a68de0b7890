"""The coarse and fine networks of Eigen, Puhrsch & Fergus (NIPS 2014).

Both map a [B, H, W, 3] float32 RGB batch in 0..255 to a [B, h, w, 1] log-depth map (log metres) at about
1/4 of the input resolution; see ``coarse`` and ``fine`` for the layer tables and size choices.
Importing this package registers ``FrozenModel``, which ``keras.models.load_model`` needs to load a saved
fine model.
"""

from keras_depth.models.coarse import (
    COARSE_CONV_LAYERS,
    COARSE_FC_LAYERS,
    COARSE_MODEL_NAME,
    build_coarse_model,
)
from keras_depth.models.common import INPUT_NAME
from keras_depth.models.fine import (
    FINE_CONV_LAYERS,
    FINE_MODEL_NAME,
    FINE_OUTPUT_LAYERS,
    build_fine_model,
    freeze_coarse,
)
from keras_depth.models.layers import FrozenModel

__all__ = [
    "COARSE_CONV_LAYERS",
    "COARSE_FC_LAYERS",
    "COARSE_MODEL_NAME",
    "FINE_CONV_LAYERS",
    "FINE_MODEL_NAME",
    "FINE_OUTPUT_LAYERS",
    "FrozenModel",
    "INPUT_NAME",
    "build_coarse_model",
    "build_fine_model",
    "freeze_coarse",
]

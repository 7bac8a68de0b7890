"""The exported SavedModel behind MLflow's ``pyfunc`` interface, logged as model code.

MLflow copies this file into the logged model ("models from code") and runs it when the model is
loaded (``mlflow.pyfunc.load_model("models:/keras-depth@champion")``), so it imports only MLflow,
NumPy and TensorFlow: neither Keras nor this project. The SavedModel is the model's artifact
:data:`SAVED_MODEL_ARTIFACT`; ``predict`` runs its ``serving_default`` signature: ``images`` float32
[N, H, W, 3] (RGB 0..255, any H and W) in, ``depth`` float32 [N, h, w] (metres) out. The signature
names repeat ``components.serving_contract`` (a test keeps them equal). No ``from __future__ import
annotations``: MLflow reads ``predict``'s type hint at run time.
"""

import mlflow
import numpy as np
import tensorflow as tf

SAVED_MODEL_ARTIFACT = "saved_model"
SERVING_DEFAULT = "serving_default"
IMAGES_INPUT = "images"
DEPTH_OUTPUT = "depth"


class SavedModelDepth(mlflow.pyfunc.PythonModel):
    """Depth from RGB images through the SavedModel's ``serving_default`` signature."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Loads the SavedModel from the model's artifacts."""
        self._saved_model = tf.saved_model.load(context.artifacts[SAVED_MODEL_ARTIFACT])
        self._serve = self._saved_model.signatures[SERVING_DEFAULT]

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        """Depth in metres, float32 [N, h, w], of ``images`` float32 [N, H, W, 3] (an array, or a dict
        with the key ``images``).

        The type hint is NumPy's array type, from which MLflow infers no schema: the logged signature
        is the schema (``components.export.tracking.SIGNATURE``).
        """
        images = model_input[IMAGES_INPUT] if isinstance(model_input, dict) else model_input
        outputs = self._serve(**{IMAGES_INPUT: tf.constant(np.asarray(images, dtype=np.float32))})
        return outputs[DEPTH_OUTPUT].numpy()


mlflow.models.set_model(SavedModelDepth())

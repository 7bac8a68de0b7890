"""Custom layers of the depth networks."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_depth")
class FrozenModel(keras.layers.Layer):
    """Runs a model in inference mode with no gradient flowing into it.

    Used to embed the trained coarse network in the fine network. A nested functional model called with
    ``training=False`` is not enough in Keras 3: the outer model's ``training`` flag overrides the flag
    recorded on the node (``keras.src.models.functional.operation_fn``), so ``fine(x, training=True)``
    would turn the coarse dropout on. This layer's ``call`` takes no ``training`` argument and always
    calls the wrapped model with ``training=False``, then applies ``keras.ops.stop_gradient``.

    The layer and the wrapped model are created non-trainable, so none of the wrapped weights is in an
    enclosing model's ``trainable_weights``; the wrapped model is saved inside this layer's config and
    its weights inside this layer's weights.

    Args:
        model: The model to run, mapping one tensor to one tensor; it is shared, not copied.
        **kwargs: Base ``keras.layers.Layer`` arguments (``name``, ...); ``trainable`` is ignored.
    """

    def __init__(self, model: keras.Model, **kwargs):
        kwargs.pop("trainable", None)
        super().__init__(trainable=False, **kwargs)
        self.model = model
        self.model.trainable = False

    @property
    def metrics(self) -> list:
        """No metrics: the wrapped model runs for inference only.

        ``keras.layers.Layer.metrics`` would collect the wrapped model's metrics, and a wrapped model that
        was compiled (the trained coarse network) brings its own ``loss`` tracker, which would overwrite
        the enclosing model's ``loss`` in the logs of ``fit`` and ``evaluate``.
        """
        return []

    def call(self, inputs):
        """Runs the wrapped model.

        Args:
            inputs: The wrapped model's input tensor.

        Returns:
            Its output in inference mode, as a constant for differentiation.
        """
        return keras.ops.stop_gradient(self.model(inputs, training=False))

    def get_config(self) -> dict:
        """Returns the layer config, with the wrapped model serialised under ``"model"``."""
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        return config

    @classmethod
    def from_config(cls, config: dict) -> FrozenModel:
        """Rebuilds the layer (and the wrapped model) from ``get_config``."""
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)

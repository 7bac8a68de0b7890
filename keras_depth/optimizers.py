"""Optimizers with the paper's per-layer learning rates (Eigen et al., 2014, section 3.4).

The paper trains each layer group with its own rate: coarse conv 0.001, coarse fc 0.1, fine1/fine3
0.001, fine4 0.01, all with SGD and momentum 0.9. ``LayerwiseSGD`` is one Keras optimizer that does this:
the learning rate of a variable is the optimizer's (base) ``learning_rate`` times the rate of the layer
the variable belongs to, looked up by layer name. Being a single ``keras.optimizers.SGD`` it works
unchanged with ``model.fit`` (compiled or jit-compiled train steps), ``tf.distribute`` strategies,
``.keras`` saving and checkpoints. ``LayerwiseAdam`` is the same with Adam's update, for the fine phase
of presets that opt in (``OptimizerConfig.fine_algorithm``; the paper's presets keep SGD).

``coarse_optimizer`` and ``fine_optimizer`` build them from an ``OptimizerConfig``; there the base
learning rate is ``lr_scale``, constant or (``fine_schedule: cosine``, fine phase only) decayed along a
half cosine to 0 over the phase's steps, so a schedule on the base rate scales every group together.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras

from keras_depth.config import ADAM, COSINE, OptimizerConfig
from keras_depth.models import COARSE_CONV_LAYERS, COARSE_FC_LAYERS, FINE_CONV_LAYERS, FINE_OUTPUT_LAYERS

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule


class LayerRates:
    """Mixin that gives a Keras optimizer a learning rate per layer (put it before the optimizer class).

    A variable whose path is ``".../<layer>/<variable>"`` (e.g. ``"coarse1/kernel"``) is updated with
    ``learning_rate * layer_rates[<layer>]``; with nested layers the innermost path segment that is a key
    of ``layer_rates`` wins. Every trainable variable must match a key: an unmatched one raises when the
    optimizer is built (first ``apply``, or ``build``), so no layer is silently trained at a default rate.
    """

    def __init__(self, layer_rates: Mapping[str, float], learning_rate: LearningRate = 1.0, **kwargs):
        """Builds the optimizer with ``learning_rate`` and ``kwargs``, then checks and keeps the rates.

        Args:
            layer_rates: Learning rate multiplier per layer name, e.g. ``{"coarse1": 0.001}``.
            learning_rate: Base learning rate (float or ``LearningRateSchedule``) multiplying every
                layer rate.
            **kwargs: The optimizer's other arguments (``clipnorm``, ``name``, ...).

        Raises:
            ValueError: If ``layer_rates`` is empty or a rate is negative.
        """
        super().__init__(learning_rate=learning_rate, **kwargs)
        kind = type(self).__name__
        if not layer_rates:
            raise ValueError(f"{kind}: layer_rates is empty; give a learning rate per layer name")
        negative = {layer: rate for layer, rate in layer_rates.items() if rate < 0}
        if negative:
            raise ValueError(f"{kind}: layer rates must be >= 0, got {negative}")
        self.layer_rates = {str(layer): float(rate) for layer, rate in layer_rates.items()}
        self._variable_rates: tuple[float, ...] = ()

    def rate_of(self, variable: keras.Variable) -> float:
        """The learning rate multiplier of a model variable.

        Args:
            variable: A Keras variable whose ``path`` is ``"<layer>/.../<name>"``.

        Returns:
            ``layer_rates`` of the innermost layer in the path that has one.

        Raises:
            ValueError: If no layer in the path is in ``layer_rates``.
        """
        for segment in reversed(variable.path.split("/")[:-1]):
            if segment in self.layer_rates:
                return self.layer_rates[segment]
        raise ValueError(
            f"{type(self).__name__} {self.name!r}: trainable variable {variable.path!r} belongs to no "
            f"learning-rate group; layer_rates has {sorted(self.layer_rates)}. Freeze that layer or add "
            "its name."
        )

    def build(self, variables):
        """Creates the optimizer's slots and resolves each variable's layer rate.

        Args:
            variables: The trainable variables the optimizer will update.

        Raises:
            ValueError: If a variable matches no layer in ``layer_rates``.
        """
        if self.built:
            return
        rates = tuple(self.rate_of(variable) for variable in variables)
        super().build(variables)
        self._variable_rates = rates

    def update_step(self, gradient, variable, learning_rate):
        """Applies the optimizer's update to one variable at ``learning_rate`` times its layer rate.

        Args:
            gradient: Gradient of the loss with respect to ``variable`` (same shape).
            variable: The variable to update; under ``tf.distribute`` a per-replica ``tf.Variable``,
                which is why the rate is found by the optimizer's variable index, not by path.
            learning_rate: The base learning rate of this step (scalar tensor).
        """
        rate = self._variable_rates[self._get_variable_index(variable)]
        super().update_step(gradient, variable, keras.ops.multiply(learning_rate, rate))

    def get_config(self) -> dict:
        """Returns the optimizer's config plus ``layer_rates``."""
        config = super().get_config()
        config["layer_rates"] = dict(self.layer_rates)
        return config


@keras.saving.register_keras_serializable(package="keras_depth")
class LayerwiseSGD(LayerRates, keras.optimizers.SGD):
    """SGD (with momentum) whose learning rate is set per layer (see ``LayerRates``).

    Momentum is SGD's: ``v = momentum * v - rate * g; w = w + v`` with the layer's ``rate``.

    Args:
        layer_rates: Learning rate multiplier per layer name, e.g. ``{"coarse1": 0.001, "coarse6": 0.1}``.
        learning_rate: Base learning rate (float or ``LearningRateSchedule``) multiplying every layer rate.
        momentum: Momentum in [0, 1].
        nesterov: Whether to use Nesterov momentum.
        name: Optimizer name.
        **kwargs: Other ``keras.optimizers.SGD`` arguments (``clipnorm``, ``global_clipnorm``, ...).

    Raises:
        ValueError: If ``layer_rates`` is empty or a rate is negative.
    """

    def __init__(
        self,
        layer_rates: Mapping[str, float],
        learning_rate: LearningRate = 1.0,
        momentum: float = 0.9,
        nesterov: bool = False,
        name: str = "layerwise_sgd",
        **kwargs,
    ):
        super().__init__(
            layer_rates,
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            name=name,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="keras_depth")
class LayerwiseAdam(LayerRates, keras.optimizers.Adam):
    """Adam whose learning rate is set per layer (see ``LayerRates``, whose ``__init__`` it takes:
    ``layer_rates``, the base ``learning_rate`` and ``keras.optimizers.Adam``'s other arguments, with
    Keras' default betas and epsilon)."""


def _clipnorm(opt_cfg: OptimizerConfig) -> float | None:
    return opt_cfg.clipnorm if opt_cfg.clipnorm > 0 else None


def coarse_optimizer(opt_cfg: OptimizerConfig) -> LayerwiseSGD:
    """The optimizer of the coarse network.

    Args:
        opt_cfg: ``lr_coarse_conv`` (coarse1-5), ``lr_coarse_fc`` (coarse6-7), ``lr_scale`` (base rate),
            ``momentum`` and ``clipnorm`` (per-variable gradient norm clipping, 0 = off).

    Returns:
        A ``LayerwiseSGD`` named ``"coarse_sgd"``.
    """
    rates = {layer: opt_cfg.lr_coarse_conv for layer in COARSE_CONV_LAYERS}
    rates.update({layer: opt_cfg.lr_coarse_fc for layer in COARSE_FC_LAYERS})
    return LayerwiseSGD(
        rates,
        learning_rate=opt_cfg.lr_scale,
        momentum=float(opt_cfg.momentum),
        clipnorm=_clipnorm(opt_cfg),
        name="coarse_sgd",
    )


def fine_optimizer(opt_cfg: OptimizerConfig, total_steps: int) -> LayerwiseSGD | LayerwiseAdam:
    """The optimizer of the fine network (the coarse network inside it is frozen and has no group).

    Args:
        opt_cfg: ``lr_fine_conv`` (fine1, fine3), ``lr_fine_out`` (fine4), ``lr_scale`` (base rate),
            ``fine_algorithm`` (``sgd`` with ``momentum``, or ``adam``), ``fine_schedule`` (``constant``,
            or ``cosine``: the base rate decays to 0 along a half cosine over ``total_steps``) and
            ``clipnorm`` (per-variable gradient norm clipping, 0 = off).
        total_steps: Optimizer steps of the fine phase (the length of a cosine schedule).

    Returns:
        A ``LayerwiseSGD`` named ``"fine_sgd"`` or a ``LayerwiseAdam`` named ``"fine_adam"``.
    """
    rates = {layer: opt_cfg.lr_fine_conv for layer in FINE_CONV_LAYERS}
    rates.update({layer: opt_cfg.lr_fine_out for layer in FINE_OUTPUT_LAYERS})
    base_rate: LearningRate = opt_cfg.lr_scale
    if opt_cfg.fine_schedule == COSINE:
        base_rate = keras.optimizers.schedules.CosineDecay(opt_cfg.lr_scale, decay_steps=total_steps)
    if opt_cfg.fine_algorithm == ADAM:
        return LayerwiseAdam(rates, learning_rate=base_rate, clipnorm=_clipnorm(opt_cfg), name="fine_adam")
    return LayerwiseSGD(
        rates,
        learning_rate=base_rate,
        momentum=float(opt_cfg.momentum),
        clipnorm=_clipnorm(opt_cfg),
        name="fine_sgd",
    )

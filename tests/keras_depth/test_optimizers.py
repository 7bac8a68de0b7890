"""Tests of LayerwiseSGD and LayerwiseAdam: per-layer rates, momentum, schedules, errors, serialisation,
model.fit and tf.distribute."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_depth.config import ModelConfig, OptimizerConfig
from keras_depth.models import build_coarse_model, build_fine_model
from keras_depth.optimizers import LayerwiseAdam, LayerwiseSGD, coarse_optimizer, fine_optimizer
from keras_depth.saving import load_depth_model

TINY = ModelConfig(
    input_height=72, input_width=96, output_height=16, output_width=22, width_multiplier=0.1, fc_units=8
)
# Distinct rates per group and a non-unit scale, so a wrong group or a missing scale shows.
RATES = OptimizerConfig(
    momentum=0.0, lr_coarse_conv=0.01, lr_coarse_fc=0.2, lr_fine_conv=0.03, lr_fine_out=0.4, lr_scale=0.5
)
COARSE_GROUPS = {"coarse1": 0.01, "coarse2": 0.01, "coarse3": 0.01, "coarse4": 0.01, "coarse5": 0.01}
COARSE_GROUPS |= {"coarse6": 0.2, "coarse7": 0.2}
FINE_GROUPS = {"fine1": 0.03, "fine3": 0.03, "fine4": 0.4}
# The paper's rates, as OptimizerConfig's defaults.
PAPER_COARSE_RATES = {
    "coarse1": 0.001,
    "coarse2": 0.001,
    "coarse3": 0.001,
    "coarse4": 0.001,
    "coarse5": 0.001,
}
PAPER_COARSE_RATES |= {"coarse6": 0.1, "coarse7": 0.1}
PAPER_FINE_RATES = {"fine1": 0.001, "fine3": 0.001, "fine4": 0.01}
FINE_STEPS = 10


def _random_gradients(variables, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=v.shape).astype("float32") for v in variables]


def _expected_rate(variable, groups: dict[str, float]) -> float:
    """``lr_scale`` times the rate of the variable's layer (its path is ``<layer>/<name>``)."""
    return RATES.lr_scale * groups[variable.path.split("/")[0]]


@pytest.mark.parametrize("network", ["coarse", "fine"])
def test_each_group_moves_with_its_own_rate(network):
    coarse = build_coarse_model(TINY)
    if network == "coarse":
        model, optimizer, groups = coarse, coarse_optimizer(RATES), COARSE_GROUPS
    else:
        model, optimizer, groups = (
            build_fine_model(TINY, coarse),
            fine_optimizer(RATES, FINE_STEPS),
            FINE_GROUPS,
        )
    variables = model.trainable_variables
    assert {v.path.split("/")[0] for v in variables} == set(groups)
    before = [v.numpy().copy() for v in variables]
    grads = _random_gradients(variables)

    optimizer.apply(grads, variables)

    for variable, start, grad in zip(variables, before, grads, strict=True):
        expected = -_expected_rate(variable, groups) * grad
        np.testing.assert_allclose(
            variable.numpy() - start, expected, rtol=1e-4, atol=1e-7, err_msg=variable.path
        )


def test_momentum_accumulates_at_the_layer_rate():
    model = build_coarse_model(TINY)
    optimizer = coarse_optimizer(replace(RATES, momentum=0.9))
    variables = model.trainable_variables
    grads = _random_gradients(variables)
    optimizer.apply(grads, variables)
    after_first = [v.numpy().copy() for v in variables]
    optimizer.apply(grads, variables)

    for variable, start, grad in zip(variables, after_first, grads, strict=True):
        # v1 = -rate * g, v2 = 0.9 * v1 - rate * g: the second step moves by -1.9 * rate * g.
        expected = -_expected_rate(variable, COARSE_GROUPS) * grad * (1.0 + 0.9)
        np.testing.assert_allclose(
            variable.numpy() - start, expected, rtol=1e-4, atol=1e-7, err_msg=variable.path
        )


def test_adam_moves_each_group_with_its_own_rate():
    """Adam's first step (Keras' form) is ``rate * g / (|g| + epsilon / sqrt(1 - beta_2))``: about the
    rate, in the gradient's sign."""
    model = build_fine_model(TINY, build_coarse_model(TINY))
    optimizer = fine_optimizer(replace(RATES, fine_algorithm="adam"), FINE_STEPS)
    assert isinstance(optimizer, LayerwiseAdam)
    variables = model.trainable_variables
    before = [v.numpy().copy() for v in variables]
    grads = _random_gradients(variables)

    optimizer.apply(grads, variables)

    for variable, start, grad in zip(variables, before, grads, strict=True):
        damping = optimizer.epsilon / np.sqrt(1.0 - optimizer.beta_2)
        expected = -_expected_rate(variable, FINE_GROUPS) * grad / (np.abs(grad) + damping)
        np.testing.assert_allclose(
            variable.numpy() - start, expected, rtol=1e-4, atol=1e-7, err_msg=variable.path
        )


@pytest.mark.parametrize("algorithm", ["sgd", "adam"])
def test_cosine_schedule_decays_the_base_rate_over_the_fine_phase(algorithm):
    optimizer = fine_optimizer(
        OptimizerConfig(lr_scale=2.0, fine_algorithm=algorithm, fine_schedule="cosine"), FINE_STEPS
    )
    rates = []
    for step in (0, FINE_STEPS // 2, FINE_STEPS):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(rates, [2.0, 1.0, 0.0], atol=1e-6)
    constant = fine_optimizer(OptimizerConfig(lr_scale=2.0, fine_algorithm=algorithm), FINE_STEPS)
    constant.iterations.assign(FINE_STEPS)
    assert float(constant.learning_rate) == 2.0


def test_unmatched_trainable_variable_raises_at_build():
    coarse = build_coarse_model(TINY)
    extra = keras.layers.Dense(2, name="extra")
    model = keras.Sequential([coarse, keras.layers.Flatten(), extra], name="sequential")
    model.build((None, TINY.input_height, TINY.input_width, 3))
    with pytest.raises(ValueError, match=r"'sequential/extra/kernel' belongs to no learning-rate group"):
        coarse_optimizer(RATES).build(model.trainable_variables)
    with pytest.raises(ValueError, match=r"'fine1/kernel'"):
        coarse_optimizer(RATES).build(build_fine_model(TINY, coarse).trainable_variables)


def test_invalid_layer_rates_raise():
    with pytest.raises(ValueError, match="layer_rates is empty"):
        LayerwiseSGD({})
    with pytest.raises(ValueError, match="must be >= 0"):
        LayerwiseSGD({"coarse1": -0.1})
    with pytest.raises(ValueError, match="LayerwiseAdam: layer_rates is empty"):
        LayerwiseAdam({})


def test_factories_apply_clipnorm_and_momentum():
    assert coarse_optimizer(OptimizerConfig()).clipnorm is None
    optimizer = fine_optimizer(OptimizerConfig(clipnorm=2.0, momentum=0.5, lr_scale=3.0), FINE_STEPS)
    assert optimizer.clipnorm == 2.0
    assert optimizer.momentum == 0.5
    assert float(optimizer.learning_rate) == 3.0
    assert optimizer.layer_rates == PAPER_FINE_RATES
    adam = fine_optimizer(OptimizerConfig(clipnorm=2.0, fine_algorithm="adam"), FINE_STEPS)
    assert adam.clipnorm == 2.0
    assert adam.layer_rates == PAPER_FINE_RATES


@pytest.mark.parametrize(
    ("optimizer", "rates"),
    [
        (coarse_optimizer(OptimizerConfig(clipnorm=1.5)), PAPER_COARSE_RATES),
        (fine_optimizer(OptimizerConfig(fine_algorithm="adam", fine_schedule="cosine"), 7), PAPER_FINE_RATES),
    ],
    ids=["sgd", "adam-cosine"],
)
def test_get_config_round_trip(optimizer, rates):
    config = optimizer.get_config()
    assert config["layer_rates"] == rates
    assert type(optimizer).from_config(dict(config)).get_config() == config  # from_config edits its dict
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is type(optimizer)
    assert restored.get_config() == config


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_under_mirrored_strategy_uses_layer_rates(jit_compile):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(3, name="coarse6")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, name="coarse7")(hidden))
        optimizer = LayerwiseSGD({"coarse6": 0.1, "coarse7": 0.01}, learning_rate=0.5, momentum=0.0)
        model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x))
    grads = tape.gradient(loss, model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]

    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    for variable, start, grad in zip(model.trainable_variables, before, grads, strict=True):
        rate = 0.5 * (0.1 if variable.path.startswith("coarse6/") else 0.01)
        np.testing.assert_allclose(
            variable.numpy() - start, -rate * grad.numpy(), rtol=1e-4, atol=1e-7, err_msg=variable.path
        )


def test_compiled_model_saves_and_resumes(tmp_path):
    model = build_coarse_model(replace(TINY, dropout_rate=0.0))  # deterministic steps to compare
    model.compile(optimizer=coarse_optimizer(OptimizerConfig(lr_scale=0.1)), loss="mse")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, TINY.input_height, TINY.input_width, 3)).astype("float32")
    target = rng.normal(1.0, 0.3, (2, TINY.output_height, TINY.output_width, 1)).astype("float32")
    model.fit(images, target, batch_size=2, verbose=0)
    model.save(tmp_path / "coarse.keras")
    restored = keras.models.load_model(tmp_path / "coarse.keras")

    assert isinstance(restored.optimizer, LayerwiseSGD)
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    assert int(restored.optimizer.iterations) == 1
    for original, loaded in zip(model.optimizer.variables, restored.optimizer.variables, strict=True):
        np.testing.assert_array_equal(original.numpy(), loaded.numpy())
    # A second step from the restored state (momentum included) matches the original's.
    for m in (model, restored):
        m.fit(images, target, batch_size=2, verbose=0)
    for original, loaded in zip(model.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_allclose(original, loaded, rtol=1e-6, atol=1e-7)


def test_fine_model_with_adam_and_cosine_saves_and_loads(tmp_path):
    fine = build_fine_model(TINY, build_coarse_model(TINY))
    fine.compile(
        optimizer=fine_optimizer(OptimizerConfig(fine_algorithm="adam", fine_schedule="cosine"), 4),
        loss="mse",
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, TINY.input_height, TINY.input_width, 3)).astype("float32")
    target = rng.normal(1.0, 0.3, (2, TINY.output_height, TINY.output_width, 1)).astype("float32")
    fine.fit(images, target, batch_size=1, verbose=0)
    fine.save(tmp_path / "fine.keras")

    restored = load_depth_model(tmp_path / "fine.keras")

    assert isinstance(restored.optimizer, LayerwiseAdam)
    assert int(restored.optimizer.iterations) == 2
    assert float(restored.optimizer.learning_rate) == pytest.approx(0.5)  # half way along the cosine

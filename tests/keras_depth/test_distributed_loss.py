"""ScaleInvariantLoss under tf.distribute: two CPU replicas report the loss of one device.

The loss returns one value per image, so Keras averages over each replica's share of the batch and
scales by the number of replicas. The images below have very different valid-pixel counts (one has none),
so a per-replica pixel average or a missing replica scaling would give a different number.

Logical CPU devices can only be configured before TensorFlow initialises, hence the subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras

from keras_depth.losses import ScaleInvariantLoss

GLOBAL_BATCH = 8
rng = np.random.default_rng(0)
images = rng.uniform(size=(GLOBAL_BATCH, 8, 8, 3)).astype("float32")
depth = rng.uniform(0.5, 5.0, size=(GLOBAL_BATCH, 8, 8, 1)).astype("float32")
depth[rng.uniform(size=depth.shape) < rng.uniform(0.0, 0.9, size=(GLOBAL_BATCH, 1, 1, 1))] = 0.0
depth[5] = 0.0  # an image without a valid pixel


def build():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(1, 3, padding="same")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=ScaleInvariantLoss(lam=0.5))
    return model


single = build()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    mirrored = build()
mirrored.set_weights(single.get_weights())

report = {"replicas": strategy.num_replicas_in_sync}
for name, model in (("single", single), ("mirrored", mirrored)):
    report[name] = {
        "evaluate": model.evaluate(images, depth, batch_size=GLOBAL_BATCH, verbose=0),
        "train_step": model.fit(images, depth, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0)
        .history["loss"][0],
        "weights": [w.tolist() for w in model.get_weights()],
    }
print("REPORT " + json.dumps(report))
"""


@pytest.mark.e2e
def test_mirrored_strategy_loss_equals_single_device_loss() -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report_line = next(line for line in completed.stdout.splitlines() if line.startswith("REPORT "))
    report = json.loads(report_line.removeprefix("REPORT "))
    single, mirrored = report["single"], report["mirrored"]

    assert report["replicas"] == 2
    assert single["evaluate"] > 0.0
    assert mirrored["evaluate"] == pytest.approx(single["evaluate"], rel=1e-5)
    assert mirrored["train_step"] == pytest.approx(single["train_step"], rel=1e-5)
    for single_weights, mirrored_weights in zip(single["weights"], mirrored["weights"], strict=True):
        np.testing.assert_allclose(mirrored_weights, single_weights, rtol=1e-5, atol=1e-7)

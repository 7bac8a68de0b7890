"""The train stage under MirroredStrategy over two logical CPU devices (in a subprocess).

Logical devices must be configured before TensorFlow initialises its runtime, which this test process
has long done; a fresh interpreter splits its CPU in two, then runs the stage.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from pipeline.config import save_config

REPO_ROOT = Path(__file__).resolve().parents[3]
DEVICES = ["/cpu:0", "/cpu:1"]
TIMEOUT_S = 300

SCRIPT = """
import json, sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from components.base import Artifact, StageContext
from components.train import STAGE
from pipeline.config import load_config

config_path, ingest_dir, root = (Path(arg) for arg in sys.argv[1:4])
ctx = StageContext(
    config=load_config(config_path),
    output_dir=root / "out",
    work_dir=root / "work",
    inputs={"ingest": Artifact("ingest", "0123456789abcdef", ingest_dir, {})},
    run_root=root,
    fingerprint="mirrored-test",
)
print("COUNTS=" + json.dumps(STAGE.run(ctx)))
"""


@pytest.mark.e2e
def test_two_phases_train_under_mirrored_strategy_on_two_cpus(tiny, ingest_dir, tmp_path):
    config = tiny(strategy="mirrored", devices=DEVICES)
    save_config(config, tmp_path / "config.yaml")
    for name in ("out", "work"):
        (tmp_path / name).mkdir()

    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "config.yaml"), str(ingest_dir), str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    counts = json.loads(result.stdout.split("COUNTS=")[-1])
    global_batch = config.data.batch_size * len(DEVICES)
    coarse_steps = math.ceil(config.train.coarse_samples / global_batch)
    fine_steps = math.ceil(config.train.fine_samples / global_batch)
    assert counts == {
        "coarse_steps": coarse_steps,
        "fine_steps": fine_steps,
        "replicas": 2,
        "global_batch_size": global_batch,
    }
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["strategy"] == "MirroredStrategy" and summary["replicas"] == 2
    assert keras.saving.load_model(tmp_path / "out" / "fine.keras").optimizer.iterations.numpy() == fine_steps

"""The SavedModel the smoke pipeline's export stage pushed, served by the real server: its ``:predict``
answers equal the in-process call of the same SavedModel on the same images."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
import tensorflow as tf

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "depth"  # export.model_name's default, which the smoke preset keeps
OUTPUTS = ["depth", "depth_full", "log_depth"]
PIPELINE_TIMEOUT_S = 900
REQUEST_TIMEOUT_S = 60
# JSON carries float32 values exactly (as Python floats); only the last bit may differ across processes.
RTOL = 1e-6


@pytest.fixture(scope="module")
def pushed_version(tmp_path_factory) -> Path:
    """Runs the smoke pipeline (MLflow off) in a fresh process; the pushed version directory."""
    output_dir = tmp_path_factory.mktemp("smoke_runs")
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "pipeline.run", "--config", "configs/smoke.yaml"]
    command += ["--output-dir", str(output_dir), "--set", "mlflow.enabled=false"]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=PIPELINE_TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr[-4000:]
    versions = sorted((output_dir / "serving" / MODEL_NAME).iterdir())
    assert [path.name for path in versions] == ["1"], "the smoke preset blesses and pushes its model"
    return versions[0]


@pytest.mark.e2e
def test_served_export_answers_as_the_saved_model_in_process(pushed_version, start_server, image_codec):
    server = start_server(
        [
            f"--model_name={MODEL_NAME}",
            f"--model_base_path={pushed_version.parent}",
            "--file_system_poll_wait_seconds=0",
        ],
        "export_e2e",
    )
    server.wait_available()
    signatures = tf.saved_model.load(str(pushed_version)).signatures
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)  # the smoke preset's stored frame size
    other = rng.integers(0, 256, (2, 50, 90, 3)).astype(np.float32)  # another size and aspect ratio
    encoded = image_codec(frame, "PNG")
    url = f"{server.url}/v1/models/{MODEL_NAME}:predict"

    row = requests.post(
        url,
        json={
            "signature_name": "predict_image_bytes",
            "instances": [{"b64": base64.b64encode(encoded).decode("ascii")}],
            "output_filter": OUTPUTS,
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    assert row.status_code == 200, row.text
    expected = signatures["predict_image_bytes"](image_bytes=tf.constant([encoded]))
    (prediction,) = row.json()["predictions"]
    assert sorted(prediction) == OUTPUTS
    for name in OUTPUTS:
        np.testing.assert_allclose(np.asarray(prediction[name]), expected[name].numpy()[0], rtol=RTOL)

    columnar = requests.post(
        url, json={"inputs": {"images": other.tolist()}, "output_filter": OUTPUTS}, timeout=REQUEST_TIMEOUT_S
    )
    assert columnar.status_code == 200, columnar.text
    expected = signatures["serving_default"](images=tf.constant(other))
    outputs = columnar.json()["outputs"]
    assert np.shape(outputs["depth_full"]) == (2, 50, 90)
    for name in OUTPUTS:
        np.testing.assert_allclose(np.asarray(outputs[name]), expected[name].numpy(), rtol=RTOL)
    server.stop_gracefully()

"""The train stage logs into the pipeline's MLflow run on a real tracking server, read back with its client.

The pipeline runner (``pipeline.runner.run_stages``) starts the run; a test ingest stage writes the tiny
TFRecords, then the real train stage runs and logs params, per-epoch metrics and artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from components.base import StageDefinition
from components.train import STAGE
from pipeline.config import TrackingConfig
from pipeline.runner import run_stages

SERVER_START_TIMEOUT_S = 120
SERVER_STOP_TIMEOUT_S = 5
HEALTH_TIMEOUT_S = 5
POLL_INTERVAL_S = 0.5
EXPERIMENT = "train-tracking-test"
EPOCH_METRICS = (
    "loss",
    "val_loss",
    "val_delta1",
    "val_abs_rel",
    "val_rmse",
    "val_si_log",
    "learning_rate",
    "images_per_sec",
)
COARSE_EPOCHS, FINE_EPOCHS = 2, 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """A ``mlflow server`` process (SQLite store, proxied artifacts); yields its URL."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (root / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            assert server.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                if requests.get(f"{url}/health", timeout=HEALTH_TIMEOUT_S).ok:
                    break
            except requests.RequestException:  # not listening yet, or still starting up
                pass
            assert time.monotonic() < deadline, "mlflow server did not answer /health in time"
            time.sleep(POLL_INTERVAL_S)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            server.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.e2e
def test_pipeline_run_receives_train_params_metrics_and_artifacts(
    tracking_server, tiny, write_ingest, tmp_path
):
    def ingest(ctx):
        write_ingest(Path(ctx.output_dir))
        return {}

    registry = {
        "ingest": StageDefinition(name="ingest", inputs=(), parameters=lambda config: {}, run=ingest),
        "train": STAGE,
    }
    config = dataclasses.replace(
        tiny(), mlflow=TrackingConfig(tracking_uri=tracking_server, experiment_name=EXPERIMENT)
    )

    artifacts = run_stages(config, ["ingest", "train"], tmp_path / "run", registry=registry)

    client = MlflowClient(tracking_uri=tracking_server)
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    run_id = run.info.run_id
    params = run.data.params
    assert params["train.dataset_fingerprint"] == artifacts["ingest"].fingerprint
    assert params["train.examples_train"] == "24" and params["train.examples_val"] == "8"
    assert params["train.strategy_class"] == "_DefaultDistributionStrategy"
    assert params["train.replicas"] == "1" and params["train.global_batch_size"] == "4"
    assert params["train.coarse_steps"] == "6" and params["train.fine_steps"] == "5"
    assert {"train.tensorflow_version", "train.keras_version"} <= set(params)

    for phase, steps in (("coarse", [0, 1]), ("fine", [2, 3])):
        for name in EPOCH_METRICS:
            history = client.get_metric_history(run_id, f"train/{phase}/{name}")
            assert sorted(m.step for m in history) == steps, (phase, name)
        assert {m.value for m in client.get_metric_history(run_id, f"train/{phase}/learning_rate")} == {
            config.optimizer.lr_scale
        }
    summary = json.loads((artifacts["train"].path / "summary.json").read_text())
    assert run.data.metrics["train/val_baseline_delta1"] == pytest.approx(summary["val_baseline"]["delta1"])
    assert run.data.metrics["train/val_baseline_log_depth"] == pytest.approx(
        summary["val_baseline"]["log_depth"]
    )

    listed = {item.path for item in client.list_artifacts(run_id, "train")}
    assert {
        "train/training_curves.png",
        "train/val_predictions_coarse.png",
        "train/val_predictions_fine.png",
        "train/summary.json",
        "train/models",
    } <= listed
    models = {item.path for item in client.list_artifacts(run_id, "train/models")}
    assert models == {"train/models/coarse.keras", "train/models/fine.keras"}
    downloaded = download_artifacts(
        run_id=run_id,
        artifact_path="train/summary.json",
        dst_path=str(tmp_path),
        tracking_uri=tracking_server,
    )
    assert json.loads(Path(downloaded).read_text()) == summary

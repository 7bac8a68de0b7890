"""A real MLflow tracking server that dies during the train stage: the stage completes all the same."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from components.base import StageDefinition
from pipeline.config import CONFIGS_DIR, load_config
from pipeline.open_runs import OPEN_RUNS_DIR
from pipeline.runner import run_stages
from pipeline.stages import default_registry

SERVER_START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` on a free loopback port with a SQLite store; yields (uri, db uri, process)."""
    port, db = _free_port(), tmp_path / "server.db"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}"]
    command += ["--artifacts-destination", str(tmp_path / "server_artifacts"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the MLflow server did not start"
            time.sleep(0.5)
    yield uri, f"sqlite:///{db}", process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    log.close()


def _kill(process: subprocess.Popen) -> None:
    """SIGKILLs the server and its workers (its own process group)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_train_completes_when_the_tracking_server_dies_during_it(tmp_path, mlflow_server, caplog):
    uri, server_db, server = mlflow_server
    out = tmp_path / "runs"
    config = load_config(CONFIGS_DIR / "smoke.yaml", [f"mlflow.tracking_uri={uri}"])
    registry = default_registry()
    train = registry["train"]

    def train_after_the_server_died(ctx):
        _kill(server)
        return train.run(ctx)

    registry["train"] = StageDefinition(
        train.name, train.inputs, train.parameters, train_after_the_server_died
    )
    with caplog.at_level(logging.WARNING):
        artifacts = run_stages(config, ["ingest", "train"], out, registry=registry)

    assert (artifacts["train"].path / "fine.keras").is_file()
    assert "MLflow logging failed in log_params" in caplog.text
    assert "could not end MLflow run" in caplog.text
    # What ingest logged before the server died is in the server's store; the run could not be ended.
    (run,) = MlflowClient(server_db).search_runs(
        [MlflowClient(server_db).get_experiment_by_name("keras-depth").experiment_id]
    )
    assert run.data.metrics["ingest/records_read"] == config.ingest.synthetic.num_scenes
    assert run.info.status == "RUNNING"
    (marker,) = (out / OPEN_RUNS_DIR).glob("*.json")
    assert marker.stem == run.info.run_id and '"status": "FINISHED"' in marker.read_text()

"""A real MLflow tracking server that dies during the train stage: the stage completes all the same."""

from __future__ import annotations

import logging
import os
import signal
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from components.base import StageDefinition
from pipeline.config import CONFIGS_DIR, load_config
from pipeline.open_runs import OPEN_RUNS_DIR
from pipeline.runner import run_stages
from pipeline.stages import default_registry


def _kill(process: subprocess.Popen) -> None:
    """SIGKILLs the server and its workers (its own process group)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_train_completes_when_the_tracking_server_dies_during_it(tmp_path, mlflow_server, caplog):
    uri, server_db, server = mlflow_server.uri, mlflow_server.store_uri, mlflow_server.process
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

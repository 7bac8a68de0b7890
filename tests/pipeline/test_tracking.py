"""The pipeline's MLflow run: where it goes, what it is called, and that it leaves no global state."""

from __future__ import annotations

import os

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.config import load_config
from pipeline.tracking import pipeline_run, resolve_tracking_uri


def test_default_store_is_sqlite_in_the_output_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_config(None)
    assert resolve_tracking_uri(config, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert resolve_tracking_uri(config, tmp_path) == "http://tracking.example:5000"
    config.mlflow.tracking_uri = "sqlite:////elsewhere.db"
    assert resolve_tracking_uri(config, tmp_path) == "sqlite:////elsewhere.db"


def test_run_has_config_params_comparable_name_and_tags_and_restores_the_uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_config(None, ["loss.lam=1.0", "model.width_multiplier=0.5"])
    with pipeline_run(config, tmp_path, ["train"]) as run_id:
        mlflow.log_metric("train/coarse/loss", 1.5)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.data.params["loss.lam"] == "1.0"
    assert run.data.params["model.width_multiplier"] == "0.5"
    assert run.data.params["ingest.synthetic.num_scenes"] == str(config.ingest.synthetic.num_scenes)
    assert run.data.tags["preset"] == "default" and run.data.tags["lambda"] == "1"
    assert run.data.tags["dataset"] == "synthetic_rooms"
    assert run.data.tags["model_size"].startswith("w0.5-")
    assert run.info.run_name.startswith("default-synthetic_rooms-lam1-w0.5-")
    assert run.data.metrics["train/coarse/loss"] == 1.5
    config_path = client.download_artifacts(run_id, "config.yaml", str(tmp_path / "download"))
    assert load_config(config_path) == config
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "keras-depth"
    assert experiment.artifact_location == (tmp_path.resolve() / "mlartifacts").as_uri()


def test_disabled_tracking_starts_no_run(tmp_path):
    config = load_config(None, ["mlflow.enabled=false"])
    with pipeline_run(config, tmp_path, ["train"]) as run_id:
        assert run_id is None
    assert not (tmp_path / "mlflow.db").exists()

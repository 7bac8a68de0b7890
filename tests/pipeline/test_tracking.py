"""The pipeline's MLflow run: where it goes, what it is called, and that it leaves no global state."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from components.owners import this_host
from pipeline.config import load_config
from pipeline.mlflow_ui import EXPERIMENT_KIND_TAG, HEADLINE_VIEW_KEY, SAVED_VIEW_TAG_PREFIX, run_page
from pipeline.open_runs import OPEN_RUNS_DIR
from pipeline.tracking import (
    HTTP_LIMITS,
    TrackingUnavailable,
    close_orphaned_runs,
    pipeline_run,
    resolve_tracking_uri,
    run_name,
    run_tags,
)


def exited_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


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


def _closed_port_uri() -> str:
    """An HTTP tracking URI on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.timeout(120)  # MLflow's own retries would take minutes
def test_an_unreachable_server_falls_back_to_the_local_store(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = _closed_port_uri()
    config = load_config(None, [f"mlflow.tracking_uri={uri}"])
    with caplog.at_level(logging.WARNING, logger="keras_depth.pipeline"):
        with pipeline_run(config, tmp_path, ["train"]) as run_id:
            mlflow.log_metric("train/coarse/loss", 2.0)
    assert f"MLflow tracking store {uri} cannot be used (" in caplog.text
    assert f"logging to sqlite:///{tmp_path.resolve() / 'mlflow.db'} instead" in caplog.text
    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["train/coarse/loss"] == 2.0
    assert not list((tmp_path / OPEN_RUNS_DIR).glob("*.json")), "an ended run leaves no marker"


def test_a_required_unreachable_server_fails_before_the_block(tmp_path):
    config = load_config(None, [f"mlflow.tracking_uri={_closed_port_uri()}", "mlflow.required=true"])
    with pytest.raises(
        TrackingUnavailable, match=r"cannot be used \(.*Connection refused\) and mlflow.required"
    ):
        with pipeline_run(config, tmp_path, ["train"]):
            pytest.fail("the block must not run")
    assert not (tmp_path / "mlflow.db").exists()


def test_http_limits_hold_during_the_run_only_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "3")
    with pipeline_run(load_config(None), tmp_path, ["train"]):
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == HTTP_LIMITS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == HTTP_LIMITS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
        assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "3"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "3"


def test_a_run_that_cannot_be_ended_is_closed_later_with_its_status(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    real_end_run = mlflow.end_run

    def store_gone(status="FINISHED"):
        real_end_run("RUNNING")  # pops the active run as MLflow does, leaving it RUNNING in the store
        raise ConnectionError("tracking server gone")

    monkeypatch.setattr(mlflow, "end_run", store_gone)
    with caplog.at_level(logging.WARNING, logger="keras_depth.pipeline"):
        with pipeline_run(load_config(None), tmp_path, ["train"]) as run_id:
            pass
    assert f"could not end MLflow run {run_id} (ConnectionError: tracking server gone)" in caplog.text
    monkeypatch.setattr(mlflow, "end_run", real_end_run)
    marker = tmp_path / OPEN_RUNS_DIR / f"{run_id}.json"
    record = json.loads(marker.read_text())
    assert record["status"] == "FINISHED"
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "RUNNING"
    assert close_orphaned_runs(tmp_path) == [], "the owner (this process) still runs"
    record["owner"] = f"{exited_pid()}@{this_host()}"
    marker.write_text(json.dumps(record))
    assert close_orphaned_runs(tmp_path) == [run_id]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert not marker.exists()


def test_a_multi_source_run_is_named_and_tagged_with_all_its_sources():
    config = load_config(
        None, ["ingest.sources=[{source: folder, splits: [train, val]}, {source: nyu_labeled}]"]
    )
    assert run_tags(config, ["ingest"])["dataset"] == "folder+nyu_labeled"
    assert run_name(config).startswith("default-folder+nyu_labeled-")


def test_new_and_existing_experiments_get_the_kind_and_the_headline_view(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store)
    # Made before this project tagged experiments.
    existing = client.create_experiment("made-elsewhere", artifact_location=(tmp_path / "elsewhere").as_uri())
    view_tag = SAVED_VIEW_TAG_PREFIX + HEADLINE_VIEW_KEY

    def run_in(name: str) -> tuple[str, dict[str, str]]:
        with caplog.at_level(logging.INFO, logger="keras_depth.pipeline"):
            with pipeline_run(
                load_config(None, [f"mlflow.experiment_name={name}"]), tmp_path, ["train"]
            ) as run_id:
                pass
        return run_id, client.get_experiment_by_name(name)

    for name in ("made-elsewhere", "new-here"):
        run_id, experiment = run_in(name)
        assert experiment.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
        assert json.loads(experiment.tags[view_tag])["name"] == "Headline test metrics"
        assert run_page(store, experiment.experiment_id, run_id) in caplog.text
    assert client.get_experiment_by_name("made-elsewhere").experiment_id == existing
    client.set_experiment_tag(existing, view_tag, "edited by a user")
    _, experiment = run_in("made-elsewhere")
    assert experiment.tags[view_tag] == "edited by a user", "a view that is present is kept"

"""The ingest artifact as an MLflow dataset input, logged into a real (SQLite) store and read back."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from components import tracking
from components.base import Artifact
from components.ingest.tracking import dataset_name, log_dataset

COUNTS = {"records_read": 12, "records_failed": 1, "train": 8, "val": 1, "test": 2}


def _artifact(path, parameters) -> Artifact:
    return Artifact("ingest", "0123456789abcdef", path, {"parameters": parameters, "counts": COUNTS})


@pytest.fixture
def active_run(tmp_path):
    """An active run in a throw-away SQLite store; yields a client of that store."""
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracking.reset()
    experiment = mlflow.create_experiment("test", artifact_location=(tmp_path / "mlartifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        yield run.info.run_id, MlflowClient()
    mlflow.set_tracking_uri(previous_uri)


def test_the_dataset_is_named_by_its_sources():
    assert dataset_name(_artifact(None, {"source": "nyu_labeled", "sources": []})) == "nyu_labeled"
    several = {"source": "synthetic_rooms", "sources": [{"source": "folder"}, {"source": "kitti_depth"}]}
    assert dataset_name(_artifact(None, several)) == "folder+kitti_depth"


def test_the_run_reads_back_name_digest_source_schema_and_split_counts(tmp_path, active_run):
    run_id, client = active_run
    ingest_dir = tmp_path / "pipeline_root" / "ingest" / "0123456789abcdef"
    log_dataset(_artifact(ingest_dir, {"source": "synthetic_rooms", "sources": []}))

    (dataset_input,) = client.get_run(run_id).inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert (dataset.name, dataset.digest) == ("synthetic_rooms", "0123456789abcdef")
    assert json.loads(dataset.source) == {"uri": str(ingest_dir)}
    assert json.loads(dataset.profile) == COUNTS
    schema = {spec["name"]: spec["tensor-spec"] for spec in json.loads(dataset.schema)["mlflow_colspec"]}
    assert schema == {
        "image": {"dtype": "uint8", "shape": [-1, -1, 3]},
        "depth": {"dtype": "float32", "shape": [-1, -1]},
    }
    assert [(tag.key, tag.value) for tag in dataset_input.tags] == [("mlflow.data.context", "ingest")]

"""Every pipeline run shows its dataset: the ingest artifact it produces, reuses, or reads through upstream.

Stand-in stages (no TensorFlow) with the real stage graph, run by the real runner into a SQLite store.
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from components.base import StageDefinition
from pipeline.config import PipelineConfig
from pipeline.runner import run_stages
from pipeline.stages import STAGE_ORDER

INPUTS = {
    "ingest": (),
    "train": ("ingest",),
    "evaluate": ("ingest", "train"),
    "export": ("train", "evaluate"),
}


def _stage(name: str) -> StageDefinition:
    return StageDefinition(
        name=name,
        inputs=INPUTS[name],
        parameters=lambda config: {"source": config.ingest.source, "sources": []} if name == "ingest" else {},
        run=lambda ctx: {"train": 3, "val": 1, "test": 2} if name == "ingest" else {},
    )


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Runs stages with tracking into ``tmp_path``'s SQLite store; returns ``(run, datasets)`` pairs."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry = {name: _stage(name) for name in STAGE_ORDER}

    def run(stages: list[str]) -> list[tuple[str, str]]:
        artifacts = run_stages(PipelineConfig(), stages, tmp_path, registry=registry)
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        (newest, *_) = client.search_runs(
            [client.get_experiment_by_name("keras-depth").experiment_id],
            order_by=["attributes.start_time DESC"],
        )
        datasets = [(d.dataset.name, d.dataset.digest) for d in newest.inputs.dataset_inputs]
        return artifacts, datasets

    return run


def test_a_run_that_ingests_shows_the_new_artifact(runs):
    artifacts, datasets = runs(["ingest", "train"])
    assert datasets == [("synthetic_rooms", artifacts["ingest"].fingerprint)]


def test_a_run_that_reuses_ingest_still_shows_it(runs):
    first, _ = runs(["ingest", "train"])
    second, datasets = runs(["ingest", "train", "evaluate"])
    assert second["ingest"] == first["ingest"], "ingest was reused"
    assert datasets == [("synthetic_rooms", first["ingest"].fingerprint)]


def test_a_later_stage_alone_shows_the_ingest_artifact_its_inputs_were_made_from(runs):
    first, _ = runs(["ingest", "train", "evaluate"])
    _, datasets = runs(["export"])  # reads train and evaluate, not ingest
    assert datasets == [("synthetic_rooms", first["ingest"].fingerprint)]

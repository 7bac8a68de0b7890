"""The smoke pipeline through its CLI with an extra dataset: ingested apart, scored, in the report and in
MLflow, the main ingest's MLflow counts untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

REPO_ROOT = Path(__file__).resolve().parents[2]
NAME = "other_rooms"
NUM_SCENES = 6  # smoke renders 40 scenes with seed 0; these are other rooms


@pytest.mark.e2e
def test_smoke_run_scores_an_extra_dataset(tmp_path):
    preset = tmp_path / f"{NAME}.yaml"
    ingest = {
        "sources": [{"source": "synthetic_rooms", "splits": ["test"]}],
        "synthetic": {"num_scenes": NUM_SCENES, "seed": 1, "height": 72, "width": 96},
        "storage_height": 72,
        "storage_width": 96,
        "shards_per_split": 1,
        "direct_num_workers": 1,
        "direct_running_mode": "in_memory",
    }
    preset.write_text(yaml.safe_dump({"ingest": ingest}))
    output_dir = tmp_path / "runs"
    command = [sys.executable, "-m", "pipeline.run", "--config", "configs/smoke.yaml"]
    command += [
        "--output-dir",
        str(output_dir),
        "--set",
        f"evaluate.extra_datasets=[{{name: {NAME}, config: {preset}}}]",
    ]
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    root = output_dir / "pipeline_root"
    (extra_ingest,) = (root / "extra_ingest").glob("[!.]*")
    assert json.loads((extra_ingest / "metadata.json").read_text())["counts"]["test"] == NUM_SCENES
    (evaluate,) = (root / "evaluate").glob("[!.]*")
    metrics = json.loads((evaluate / "metrics.json").read_text())
    extra = metrics["extra_datasets"][NAME]
    assert extra["num_images"] == NUM_SCENES and extra["ingest"]["path"] == str(extra_ingest)
    report = (evaluate / "report.md").read_text()
    assert f"| test coarse+fine | {NAME} mean | {NAME} coarse | {NAME} coarse+fine |" in report
    assert f"| test coarse+fine | {NAME} mean" in result.stdout  # the summary prints the report

    client = MlflowClient(f"sqlite:///{output_dir / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "keras-depth"]
    (run,) = client.search_runs([experiment.experiment_id])
    logged = run.data.metrics
    assert logged[f"{NAME}_abs_rel"] == pytest.approx(extra["coarse_fine"]["abs_rel"])
    assert logged[f"evaluate/{NAME}/baseline/abs_rel"] == pytest.approx(extra["baseline"]["abs_rel"])
    assert logged[f"evaluate/{NAME}/num_images"] == NUM_SCENES
    (ingest,) = (root / "ingest").glob("[!.]*")
    ingest_counts = json.loads((ingest / "metadata.json").read_text())["counts"]
    assert logged["ingest/records_read"] == ingest_counts["records_read"] != NUM_SCENES
    assert logged["ingest/test"] == ingest_counts["test"]

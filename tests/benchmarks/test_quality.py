"""`make quality` end to end: a tiny pipeline run, then the U-Net reference trained and scored beside it.

The run and the benchmark each run in a fresh process, as ``make run`` and ``make quality`` do.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
LABELS = ["mean-depth", "coarse", "coarse+fine", "U-Net"]
METRIC_KEYS = ("delta1", "abs_rel", "rmse", "si_log_per_image", "edge_log_grad")


def _run(*args: str) -> subprocess.CompletedProcess:
    """``python <args>`` in the repository root, in a fresh process without the caller's MLflow URI."""
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The output directory of ingest + train on the smoke preset (no tracking)."""
    run_dir = tmp_path_factory.mktemp("quality") / "runs"
    for stage in ("ingest", "train"):
        result = _run(
            "-m",
            "pipeline.run",
            "--config",
            "configs/smoke.yaml",
            "--stage",
            stage,
            "--output-dir",
            str(run_dir),
            "--set",
            "mlflow.enabled=false",
            "--quiet",
        )
        assert result.returncode == 0, f"--stage {stage} failed:\n{result.stderr[-4000:]}"
    return run_dir


@pytest.mark.e2e
def test_scores_the_four_rows_of_a_run_with_the_same_code(tiny_run, tmp_path):
    results_dir = tmp_path / "results"
    result = _run(
        "-m",
        "benchmarks.quality",
        "--run-dir",
        str(tiny_run),
        "--seconds",
        "3",
        "--results-dir",
        str(results_dir),
    )
    assert result.returncode == 0, result.stderr[-4000:]

    (json_path,) = results_dir.glob("quality-*.json")
    (markdown_path,) = results_dir.glob("quality-*.md")
    assert json_path.stem == markdown_path.stem
    report = json.loads(json_path.read_text())
    rows = report["rows"]
    assert [row["label"] for row in rows] == LABELS
    for row in rows:
        assert all(math.isfinite(row[key]) for key in METRIC_KEYS), row
        assert row["parameters"] >= 1
    baseline, coarse, coarse_fine, unet = rows
    # The table's networks are those of the train artifact, timed by its history.
    phases = report["run"]["phase_training_seconds"]
    assert baseline["train_seconds"] is None
    assert coarse["train_seconds"] == pytest.approx(phases["coarse"])
    assert coarse_fine["train_seconds"] == pytest.approx(phases["coarse"] + phases["fine"])
    assert coarse_fine["parameters"] > coarse["parameters"]
    # The U-Net trained until the budget was spent, on the run's batches.
    assert report["budget_seconds"] == 3.0
    assert report["unet"]["steps"] >= 1
    assert unet["train_seconds"] >= 3.0
    assert report["unet"]["batch_size"] == 4  # configs/smoke.yaml data.batch_size
    # Every row is scored on the same test pixels, as the evaluate stage records them.
    test = report["test"]
    assert test["num_images"] > 0 and test["protocol"]["num_pixels"] > 0
    for row in rows:
        assert test[row["name"]]["abs_rel"] == row["abs_rel"]
        assert test["si_log_per_image"][row["name"]] == row["si_log_per_image"]
    assert report["environment"]["cpu_cores"] >= 1

    markdown = markdown_path.read_text()
    assert markdown in result.stdout
    for label in LABELS:
        assert f"| {label} |" in markdown
    assert report["environment"]["device"] in markdown


def test_without_a_run_it_says_to_run_make_run(tmp_path, capsys):
    from benchmarks.quality import main

    assert main(["--run-dir", str(tmp_path / "nothing"), "--results-dir", str(tmp_path / "results")]) == 2

    error = capsys.readouterr().err
    assert "no completed train artifact" in error and "make run" in error
    assert not (tmp_path / "results").exists()

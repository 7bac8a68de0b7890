"""The whole pipeline through its CLI on the smoke preset, as `make run` does it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "train", "evaluate", "export")


def _run_pipeline(output_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.run",
            "--config",
            "configs/smoke.yaml",
            "--output-dir",
            str(output_dir),
            *extra,
        ],
        cwd=REPO_ROOT,
        env={key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.e2e
def test_each_stage_runs_alone_in_a_fresh_process(tmp_path):
    """Every stage reruns from what is on disk, in a process that imported nothing of the stages before it."""
    output_dir = tmp_path / "runs"
    for stage in STAGES:
        result = _run_pipeline(output_dir, "--stage", stage)
        assert result.returncode == 0, f"--stage {stage} failed:\n{result.stderr[-4000:]}"
        assert f"{stage}: completed" in result.stderr, result.stderr[-4000:]
    for stage in ("evaluate", "export"):
        rerun = _run_pipeline(output_dir, "--stage", stage, "--force")
        assert rerun.returncode == 0, f"--stage {stage} --force failed:\n{rerun.stderr[-4000:]}"
        assert f"{stage}: completed" in rerun.stderr


@pytest.mark.e2e
def test_all_stages_run_then_a_rerun_skips_every_stage(tmp_path):
    output_dir = tmp_path / "runs"
    first = _run_pipeline(output_dir)
    assert first.returncode == 0, first.stderr[-4000:]
    for stage in STAGES:
        assert f"{stage}: completed" in first.stderr, f"{stage} did not run:\n{first.stderr[-4000:]}"
    assert "keras-depth pipeline summary" in first.stdout
    assert "abs rel" in first.stdout.lower() or "abs_rel" in first.stdout
    assert "make serve" in first.stdout and "make mlflow-ui" in first.stdout
    root = output_dir / "pipeline_root"
    for stage in STAGES:
        (artifact,) = [p for p in (root / stage).iterdir() if not p.name.startswith(".")]
        metadata = json.loads((artifact / "metadata.json").read_text())
        assert metadata["status"] == "completed"
        assert (artifact / "config.yaml").is_file()
    assert (output_dir / "mlflow.db").is_file()

    second = _run_pipeline(output_dir)
    assert second.returncode == 0, second.stderr[-4000:]
    for stage in STAGES:
        assert f"{stage}: skipped" in second.stderr
    assert "completed in" not in second.stderr

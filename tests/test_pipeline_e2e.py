"""The whole pipeline through its CLI on the smoke preset, as `make run` does it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from components.failpoints import FAILPOINT_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "train", "evaluate", "export")


def _run_pipeline(output_dir: Path, *extra: str, failpoint: str = "") -> subprocess.CompletedProcess:
    """``python -m pipeline.run`` on the smoke preset in a fresh process; ``failpoint`` kills it there."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", FAILPOINT_ENV)
    }
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
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
        env=env,
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


def _keys_per_split(output_dir: Path) -> dict[str, list[str]]:
    """The ``example/key`` of every record in the ingest artifact, per split, sorted."""
    import tensorflow as tf

    (ingest,) = [p for p in (output_dir / "pipeline_root" / "ingest").iterdir() if not p.name.startswith(".")]
    keys = {}
    for split in ("train", "val", "test"):
        files = sorted(str(path) for path in (ingest / split).glob("*.tfrecord.gz"))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        keys[split] = sorted(
            tf.train.Example.FromString(record.numpy())
            .features.feature["example/key"]
            .bytes_list.value[0]
            .decode()
            for record in records
        )
    return keys


def _optimizer_steps(output_dir: Path) -> dict[str, int]:
    """Optimizer steps of the trained coarse and fine models in the train artifact."""
    from keras_depth.saving import load_depth_model

    (train,) = [p for p in (output_dir / "pipeline_root" / "train").iterdir() if not p.name.startswith(".")]
    return {
        name: int(load_depth_model(train / f"{name}.keras").optimizer.iterations.numpy())
        for name in ("coarse", "fine")
    }


# (failpoint, what the run after the kill must log): each kill happens in the run after the previous
# kill's recovery, so one chain of processes crashes every stage once.
CRASH_CHAIN = (
    ("ingest.encode@3", None),
    ("train.coarse.checkpoint_saved", "coarse: resuming at step 2 of 4"),
    ("train.fine.checkpoint_saved", "fine: resuming at step 2 of 4"),
    ("evaluate.scored", None),
    ("export.before_push", None),
    ("export.after_push", None),
)


@pytest.mark.e2e
def test_sigkill_in_every_stage_then_rerun_gives_the_uninterrupted_result(tmp_path):
    reference_dir, crashed_dir = tmp_path / "reference", tmp_path / "crashed"
    reference = _run_pipeline(reference_dir)
    assert reference.returncode == 0, reference.stderr[-4000:]

    expected_log = None
    for point, next_expected_log in CRASH_CHAIN:
        killed = _run_pipeline(crashed_dir, failpoint=point)
        assert killed.returncode == -signal.SIGKILL, f"{point} was not reached:\n{killed.stderr[-4000:]}"
        if expected_log is not None:
            assert expected_log in killed.stderr, killed.stderr[-4000:]
        expected_log = next_expected_log
    final = _run_pipeline(crashed_dir)
    assert final.returncode == 0, final.stderr[-4000:]
    if expected_log is not None:
        assert expected_log in final.stderr, final.stderr[-4000:]
    assert "export: completed" in final.stderr

    assert _keys_per_split(crashed_dir) == _keys_per_split(reference_dir)
    assert _optimizer_steps(crashed_dir) == _optimizer_steps(reference_dir)
    versions = sorted(p.name for p in (crashed_dir / "serving" / "depth").iterdir())
    assert versions == ["1"], f"expected exactly one serving version, got {versions}"
    leftovers = [
        p.name
        for stage in STAGES
        for p in (crashed_dir / "pipeline_root" / stage).iterdir()
        if p.name.startswith(".")
    ]
    assert leftovers == [], f"stale temporary or work directories: {leftovers}"

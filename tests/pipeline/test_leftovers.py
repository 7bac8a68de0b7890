"""What a killed run leaves behind (temporary and work directories, a RUNNING MLflow run) is cleaned up
by the next run; what a live process uses is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from components.base import StageDefinition
from components.owners import is_gone, owner_tag, tag_at_end, this_host
from pipeline.artifacts import ArtifactStore
from pipeline.config import PipelineConfig
from pipeline.runner import run_stages

REPO_ROOT = Path(__file__).resolve().parents[2]

STAGE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from components.base import StageDefinition
    from pipeline.config import PipelineConfig
    from pipeline.runner import run_stages

    def run(ctx):
        (ctx.work_dir / "checkpoint").write_text("step 3")
        (ctx.output_dir / "partial.txt").write_text("half")
        Path(sys.argv[1], "started").write_text("yes")
        time.sleep(600)

    config = PipelineConfig()
    config.mlflow.enabled = False
    config.ingest.shards_per_split = int(sys.argv[2])
    registry = {"ingest": StageDefinition("ingest", (), lambda c: {"shards": c.ingest.shards_per_split}, run)}
    run_stages(config, ["ingest"], sys.argv[1], force=sys.argv[3:] == ["force"], registry=registry)
    """
)

MLFLOW_RUN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pipeline.config import PipelineConfig
    from pipeline.tracking import pipeline_run

    with pipeline_run(PipelineConfig(), Path(sys.argv[1]), ["train"]) as run_id:
        Path(sys.argv[1], "run_id").write_text(run_id)
        time.sleep(600)
    """
)


def _config(shards: int) -> PipelineConfig:
    config = PipelineConfig()
    config.mlflow.enabled = False
    config.ingest.shards_per_split = shards
    return config


def _finishing_registry() -> dict[str, StageDefinition]:
    def run(ctx):
        checkpoint = ctx.work_dir / "checkpoint"
        resumed = f"resumed from {checkpoint.read_text()}" if checkpoint.exists() else "fresh"
        (ctx.output_dir / "result.txt").write_text(resumed)
        return {}

    return {"ingest": StageDefinition("ingest", (), lambda c: {"shards": c.ingest.shards_per_split}, run)}


def _kill_when_started(script: str, out: Path, *args: str) -> None:
    """Runs ``script`` in a subprocess, SIGKILLs it once it wrote ``<out>/started`` (or ``run_id``)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("started", "run_id"):
        (out / name).unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLFLOW_TRACKING_URI": ""}
    process = subprocess.Popen([sys.executable, "-c", script, str(out), *args], env=env)
    deadline = time.monotonic() + 120
    while not ((out / "started").exists() or (out / "run_id").exists()):
        assert process.poll() is None, "the process died early"
        assert time.monotonic() < deadline, "the process never got going"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _hidden(stage_dir: Path, prefix: str) -> list[str]:
    return sorted(path.name for path in stage_dir.glob(f"{prefix}*"))


@pytest.mark.e2e
def test_the_next_run_removes_a_killed_runs_temp_dir_and_resumes_from_its_work_dir(tmp_path):
    out = tmp_path / "runs"
    stage_dir = out / "pipeline_root" / "ingest"
    _kill_when_started(STAGE_SCRIPT, out, "1")
    (killed_temp,) = _hidden(stage_dir, ".tmp-")
    assert is_gone(tag_at_end(killed_temp))
    assert len(_hidden(stage_dir, ".work-")) == 1

    artifact = run_stages(_config(1), ["ingest"], out, registry=_finishing_registry())["ingest"]
    assert (artifact.path / "result.txt").read_text() == "resumed from step 3"
    assert _hidden(stage_dir, ".tmp-") == [] and _hidden(stage_dir, ".work-") == []


@pytest.mark.e2e
def test_work_dirs_of_killed_runs_go_once_superseded_or_complete(tmp_path):
    out = tmp_path / "runs"
    stage_dir = out / "pipeline_root" / "ingest"
    _kill_when_started(STAGE_SCRIPT, out, "1")
    assert len(_hidden(stage_dir, ".work-")) == 1
    run_stages(_config(2), ["ingest"], out, registry=_finishing_registry())
    assert _hidden(stage_dir, ".work-") == [], "a run of the stage completed after it was last used"

    # Killed while rerunning (--force) a fingerprint that is complete: its work directory is not needed.
    _kill_when_started(STAGE_SCRIPT, out, "2", "force")
    assert len(_hidden(stage_dir, ".work-")) == 1 and len(_hidden(stage_dir, ".tmp-")) == 1
    run_stages(_config(2), ["ingest"], out, registry=_finishing_registry())  # skipped: complete
    assert _hidden(stage_dir, ".work-") == [] and _hidden(stage_dir, ".tmp-") == []


def test_directories_of_live_or_foreign_processes_are_kept(tmp_path):
    store = ArtifactStore(tmp_path)
    stage_dir = store.root / "ingest"
    live_fingerprint, odd_fingerprint = "c" * 16, "d" * 16
    # Both fingerprints are complete (so their work directories would be stale without a live owner).
    for stage_fingerprint in (live_fingerprint, odd_fingerprint):
        store.publish(store.new_temp_dir("ingest", stage_fingerprint), "ingest", stage_fingerprint, {})
    live_work = store.claim_work_dir("ingest", live_fingerprint)  # a --force rerun going on
    unreadable_owner = store.claim_work_dir("ingest", odd_fingerprint)
    (unreadable_owner / ".owner").write_text("garbage")
    mine = store.new_temp_dir("ingest", "f" * 16)
    foreign = stage_dir / f".tmp-{'e' * 16}-0badc0de-1@another-host"
    foreign.mkdir(parents=True)
    assert store.remove_stale(time.time()) == []
    assert live_work.is_dir() and unreadable_owner.is_dir() and mine.is_dir() and foreign.is_dir()
    assert tag_at_end(mine.name) == owner_tag() and tag_at_end(foreign.name) == "1@another-host"


def test_untagged_directories_of_older_versions_count_as_stale_when_older_than_the_run(tmp_path):
    stage_dir = tmp_path / "pipeline_root" / "train"
    legacy = stage_dir / f".tmp-{'a' * 16}-12345678"
    legacy.mkdir(parents=True)
    store = ArtifactStore(tmp_path)
    assert store.remove_stale(started=legacy.stat().st_mtime - 1) == []
    assert store.remove_stale(started=legacy.stat().st_mtime + 1) == [legacy]


def test_owner_tags_name_this_process_and_only_exited_local_ones_are_gone():
    assert owner_tag() == f"{os.getpid()}@{this_host()}"
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert is_gone(f"{process.pid}@{this_host()}")
    assert not is_gone(owner_tag())
    assert not is_gone(f"{process.pid}@another-host")
    assert not is_gone(None) and not is_gone("nonsense")


@pytest.mark.e2e
def test_the_next_run_closes_the_mlflow_run_of_a_killed_process(tmp_path):
    out = tmp_path / "runs"
    _kill_when_started(MLFLOW_RUN_SCRIPT, out)
    run_id = (out / "run_id").read_text()
    client = MlflowClient(f"sqlite:///{out.resolve() / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "RUNNING"

    run_stages(_config(1), ["ingest"], out, registry=_finishing_registry())
    assert client.get_run(run_id).info.status == "KILLED"
    assert not list((out / ".mlflow-runs").glob("*.json"))

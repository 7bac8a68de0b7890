"""The stage runner: fingerprints, reuse, atomic publish, crash safety, missing upstreams."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from components.base import StageDefinition
from pipeline import run as cli
from pipeline.artifacts import ArtifactStore, fingerprint
from pipeline.config import PipelineConfig, load_config
from pipeline.runner import PipelineError, run_stages


def _config(**ingest_changes) -> PipelineConfig:
    config = PipelineConfig()
    config.mlflow.enabled = False
    config.ingest = dataclasses.replace(config.ingest, **ingest_changes)
    return config


def _write_stage(name, inputs, calls):
    """A stage that writes a file derived from its parameters and inputs, and records each call."""

    def run(ctx):
        calls.append(name)
        upstream = {key: (artifact.path / "out.txt").read_text() for key, artifact in ctx.inputs.items()}
        (ctx.output_dir / "out.txt").write_text(f"{name}:{ctx.config.ingest.shards_per_split}:{upstream}")
        return {"written": 1}

    return StageDefinition(
        name=name,
        inputs=inputs,
        parameters=lambda config: {"shards": config.ingest.shards_per_split} if name == "ingest" else {},
        run=run,
    )


@pytest.fixture
def registry_and_calls():
    calls: list[str] = []
    registry = {
        "ingest": _write_stage("ingest", (), calls),
        "train": _write_stage("train", ("ingest",), calls),
    }
    return registry, calls


def test_fingerprint_depends_on_parameters_inputs_and_version_only():
    base = fingerprint("train", {"a": 1, "b": [1, 2]}, {"ingest": "abc"}, "0.1.0")
    assert base == fingerprint("train", {"b": [1, 2], "a": 1}, {"ingest": "abc"}, "0.1.0")
    assert base != fingerprint("train", {"a": 2, "b": [1, 2]}, {"ingest": "abc"}, "0.1.0")
    assert base != fingerprint("train", {"a": 1, "b": [1, 2]}, {"ingest": "abd"}, "0.1.0")
    assert base != fingerprint("train", {"a": 1, "b": [1, 2]}, {"ingest": "abc"}, "0.2.0")
    assert base != fingerprint("evaluate", {"a": 1, "b": [1, 2]}, {"ingest": "abc"}, "0.1.0")


def test_rerun_is_skipped_and_force_reruns(tmp_path, registry_and_calls):
    registry, calls = registry_and_calls
    first = run_stages(_config(), ["ingest", "train"], tmp_path, registry=registry)
    assert calls == ["ingest", "train"]
    second = run_stages(_config(), ["ingest", "train"], tmp_path, registry=registry)
    assert calls == ["ingest", "train"], "a completed stage must be skipped"
    assert {k: a.path for k, a in first.items()} == {k: a.path for k, a in second.items()}
    run_stages(_config(), ["train"], tmp_path, force=True, registry=registry)
    assert calls == ["ingest", "train", "train"]


def test_parameter_change_reruns_the_stage_and_its_downstream(tmp_path, registry_and_calls):
    registry, calls = registry_and_calls
    first = run_stages(_config(), ["ingest", "train"], tmp_path, registry=registry)
    second = run_stages(_config(shards_per_split=7), ["ingest", "train"], tmp_path, registry=registry)
    assert calls == ["ingest", "train", "ingest", "train"]
    assert first["ingest"].fingerprint != second["ingest"].fingerprint
    assert first["train"].fingerprint != second["train"].fingerprint, "upstream change must change train"
    # A change that no stage declares as a parameter changes nothing.
    third = run_stages(
        _config(shards_per_split=7, direct_num_workers=5), ["ingest", "train"], tmp_path, registry=registry
    )
    assert calls == ["ingest", "train", "ingest", "train"]
    assert third["train"].fingerprint == second["train"].fingerprint


def test_metadata_and_resolved_config_are_written(tmp_path, registry_and_calls):
    registry, _ = registry_and_calls
    artifacts = run_stages(_config(), ["ingest", "train"], tmp_path, registry=registry)
    train = artifacts["train"]
    assert train.path == tmp_path.resolve() / "pipeline_root" / "train" / train.fingerprint
    metadata = json.loads((train.path / "metadata.json").read_text())
    assert metadata["stage"] == "train" and metadata["status"] == "completed"
    assert metadata["inputs"]["ingest"]["fingerprint"] == artifacts["ingest"].fingerprint
    assert metadata["counts"] == {"written": 1}
    assert {"start_time", "end_time", "package_version", "parameters"} <= set(metadata)
    assert load_config(train.path / "config.yaml") == _config()
    assert "out.txt" in metadata["files"]


def test_stage_alone_uses_newest_upstream_and_fails_clearly_without_one(tmp_path, registry_and_calls):
    registry, calls = registry_and_calls
    with pytest.raises(PipelineError) as info:
        run_stages(_config(), ["train"], tmp_path, registry=registry)
    message = str(info.value)
    assert "stage 'train' needs the output of stage 'ingest'" in message
    assert "--stage ingest" in message
    ingest = run_stages(_config(), ["ingest"], tmp_path, registry=registry)["ingest"]
    train = run_stages(_config(), ["train"], tmp_path, registry=registry)["train"]
    assert train.metadata["inputs"]["ingest"]["fingerprint"] == ingest.fingerprint


def test_artifact_with_a_missing_file_is_not_reused(tmp_path, registry_and_calls):
    registry, calls = registry_and_calls
    artifact = run_stages(_config(), ["ingest"], tmp_path, registry=registry)["ingest"]
    (artifact.path / "out.txt").unlink()
    assert ArtifactStore(tmp_path).load("ingest", artifact.fingerprint) is None
    run_stages(_config(), ["ingest"], tmp_path, registry=registry)
    assert calls == ["ingest", "ingest"]


def test_failed_stage_leaves_no_artifact_and_keeps_work_dir(tmp_path):
    def run(ctx):
        (ctx.work_dir / "checkpoint").write_text("step 3")
        (ctx.output_dir / "partial.txt").write_text("half")
        raise RuntimeError("boom")

    registry = {"ingest": StageDefinition("ingest", (), lambda config: {}, run)}
    with pytest.raises(RuntimeError, match="boom"):
        run_stages(_config(), ["ingest"], tmp_path, registry=registry)
    stage_dir = tmp_path / "pipeline_root" / "ingest"
    assert [p.name for p in stage_dir.iterdir() if not p.name.startswith(".work-")] == []
    assert ArtifactStore(tmp_path).latest("ingest") is None
    (work_dir,) = stage_dir.glob(".work-*")
    assert (work_dir / "checkpoint").read_text() == "step 3"


KILLED_STAGE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from components.base import StageDefinition
    from pipeline.config import PipelineConfig
    from pipeline.runner import run_stages

    def run(ctx):
        resumed = (ctx.work_dir / "progress").exists()
        (ctx.work_dir / "progress").write_text("half")
        (ctx.output_dir / "result.txt").write_text("resumed" if resumed else "fresh")
        if sys.argv[2] == "hang":
            Path(sys.argv[1], "started").write_text("yes")
            time.sleep(600)
        return {}

    config = PipelineConfig()
    config.mlflow.enabled = False
    registry = {"ingest": StageDefinition("ingest", (), lambda c: {}, run)}
    run_stages(config, ["ingest"], sys.argv[1], registry=registry)
    """
)


@pytest.mark.e2e
def test_stage_killed_half_way_leaves_no_completed_artifact_and_rerun_completes(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(KILLED_STAGE_SCRIPT)
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen([sys.executable, str(script), str(out), "hang"], env=env)
    deadline = time.monotonic() + 60
    while not (out / "started").exists():
        assert process.poll() is None, "stage process died early"
        assert time.monotonic() < deadline, "stage never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    store = ArtifactStore(out)
    assert store.latest("ingest") is None
    assert not any(p.name[0] != "." for p in (out / "pipeline_root" / "ingest").iterdir())
    subprocess.run([sys.executable, str(script), str(out), "finish"], env=env, check=True, timeout=120)
    artifact = store.latest("ingest")
    assert artifact is not None
    assert (artifact.path / "result.txt").read_text() == "resumed"
    assert not list((out / "pipeline_root" / "ingest").glob(".work-*")), "work dir removed after publish"


def test_cli_reports_missing_upstream(tmp_path, capsys):
    code = cli.main(
        ["--stage", "train", "--output-dir", str(tmp_path), "--set", "mlflow.enabled=false", "--quiet"]
    )
    assert code == 1
    assert "no completed 'ingest' artifact" in capsys.readouterr().err


def test_cli_reports_config_errors(tmp_path, capsys):
    code = cli.main(["--output-dir", str(tmp_path), "--set", "train.steps_per_epoch=lots"])
    assert code == 2
    assert "key 'train.steps_per_epoch' expects int" in capsys.readouterr().err


def test_config_and_stage_graph_load_without_tensorflow_or_beam():
    """`--help`, `--print-config` and planning stay fast: stages import their heavy modules when they run."""
    code = (
        "import sys\n"
        "from pipeline.config import load_config\n"
        "from pipeline.stages import default_registry\n"
        "load_config(None); assert set(default_registry()) == {'ingest', 'train', 'evaluate', 'export'}\n"
        "print(sorted(name for name in ('tensorflow', 'keras', 'apache_beam') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"

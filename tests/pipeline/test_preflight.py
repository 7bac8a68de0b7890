"""Bad configs and unusable directories fail in the CLI before any stage runs: one line, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import CONFIGS_DIR, ConfigError, load_config
from pipeline.preflight import check_before_run, unwritable

SMOKE = str(CONFIGS_DIR / "smoke.yaml")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m pipeline.run --config smoke.yaml <args>`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.run", "--config", SMOKE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    "override, key",
    [
        ("data.batch_size=0", "data.batch_size"),
        ("ingest.train_fraction=1.5", "ingest.train_fraction"),
        ("model.width_multiplier=-1", "model.width_multiplier"),
        ("train.steps_per_epoch=-2", "train.steps_per_epoch"),
        ("evaluate.crop=garg", "evaluate.crop"),
    ],
)
def test_a_bad_value_fails_before_any_stage_with_one_line(tmp_path, override, key):
    out = tmp_path / "runs"
    result = run_cli("--output-dir", str(out), "--set", override, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"config error: --set {override}: key '{key}' expects ")
    assert "Traceback" not in result.stderr
    assert not out.exists(), "nothing may run (or be created) for a bad config"


@pytest.mark.e2e
def test_a_missing_folder_root_fails_before_any_stage(tmp_path):
    out, missing = tmp_path / "runs", tmp_path / "no_such_dataset"
    result = run_cli(
        "--output-dir",
        str(out),
        "--set",
        "ingest.source=folder",
        "--set",
        f"ingest.folder.root={missing}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert f"key 'ingest.folder.root' expects an existing directory, got '{missing}'" in result.stderr
    assert f"--set ingest.folder.root={missing}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "pipeline_root").exists()


@pytest.mark.e2e
def test_an_unwritable_output_dir_fails_before_any_stage(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = run_cli("--output-dir", str(blocker / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"config error: --output-dir {blocker / 'runs'}: cannot create or write")
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_required_tracking_on_a_closed_port_fails_at_once_without_traceback(tmp_path):
    out = tmp_path / "runs"
    uri = f"http://127.0.0.1:{closed_port()}"
    result = run_cli(
        "--output-dir",
        str(out),
        "--set",
        f"mlflow.tracking_uri={uri}",
        "--set",
        "mlflow.required=true",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: MLflow tracking store {uri} cannot be used ([Errno 111] Connection refused) "
        "and mlflow.required is true"
    ]
    assert not (out / "pipeline_root").exists()


def test_serving_root_is_checked_only_when_export_runs(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    config = load_config(SMOKE, [f"export.serving_root={blocker / 'serving'}"])
    check_before_run(config, ["ingest", "train"], tmp_path / "runs", SMOKE, [])
    with pytest.raises(ConfigError, match=r"key 'export.serving_root' expects a writable directory"):
        check_before_run(config, ["export"], tmp_path / "runs", SMOKE, [])


def test_unwritable_says_why(tmp_path):
    assert unwritable(tmp_path / "new" / "nested") is None
    assert (tmp_path / "new" / "nested").is_dir() and not any((tmp_path / "new" / "nested").iterdir())
    (tmp_path / "file").write_text("")
    assert unwritable(tmp_path / "file" / "below") == "Not a directory"


def test_a_missing_folder_root_of_one_of_several_sources_is_named(tmp_path):
    overrides = [
        "ingest.sources=[{source: synthetic_rooms, splits: [test]}, {source: folder, splits: [train]}]"
    ]
    overrides.append(f"ingest.folder.root={tmp_path / 'missing'}")
    config = load_config(SMOKE, overrides)
    with pytest.raises(ConfigError, match="key 'ingest.folder.root' expects an existing directory"):
        check_before_run(config, ["ingest"], tmp_path / "runs", SMOKE, overrides)

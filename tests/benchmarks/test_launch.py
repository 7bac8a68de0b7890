"""``python -m benchmarks.launch``: a module it runs prints no native start-up lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.run import REPO_ROOT
from pipeline.stderr_filter import is_noise


@pytest.mark.e2e
def test_a_module_importing_tensorflow_prints_its_own_lines_only(tmp_path):
    # benchmarks.quality imports TensorFlow, then exits 2 naming the missing run.
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.launch", "quality", "--run-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2
    assert "no completed train artifact" in completed.stderr
    assert [line for line in completed.stderr.splitlines() if is_noise(line)] == []

"""``make bench-gpu`` without a GPU: it says so and exits 0; ``--allow-cpu`` runs its whole path on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.entries import ENTRY_FIELDS
from benchmarks.run import REPO_ROOT
from pipeline.stderr_filter import is_noise

# The tiny model of tests/conftest.py (64x80 input, 1/16 of the paper's channels, 16 fc units) in the NYU preset.
TINY = [
    "model.input_height=64",
    "model.input_width=80",
    "model.output_height=14",
    "model.output_width=18",
    "model.width_multiplier=0.0625",
    "model.fc_units=16",
    "ingest.storage_height=72",
    "ingest.storage_width=96",
    "data.batch_size=2",
    "data.shuffle_buffer=8",
]
# One variant without mixed precision and XLA, one with both: every code path, one XLA compilation.
VARIANTS = ("fp32", "mixed fp16+XLA")


def run_gpu_bench(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", *arguments],
        cwd=REPO_ROOT,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.e2e
def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    completed = run_gpu_bench("--results-dir", str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("no GPU: ")
    assert [line for line in completed.stderr.splitlines() if is_noise(line)] == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_allow_cpu_runs_the_variants_and_the_saved_model_on_a_tiny_model(tmp_path):
    arguments = ["--allow-cpu", "--results-dir", str(tmp_path), "--variants", ",".join(VARIANTS)]
    arguments += ["--scenes", "4", "--warmup-steps", "1"]
    arguments += ["--steps", "1", "--matmul-size", "64", "--latency-calls", "2"]
    completed = run_gpu_bench(*arguments, *(f"--set={override}" for override in TINY))
    assert completed.returncode == 0, completed.stderr
    assert [line for line in completed.stderr.splitlines() if is_noise(line)] == []
    (json_path,) = tmp_path.glob("*-gpu.json")
    report = json.loads(json_path.read_text())
    assert report["device"].endswith("(--allow-cpu: no GPU)") and report["failed"] == []
    names = [entry["name"] for entry in report["entries"]]
    for variant in VARIANTS:
        assert {f"GPU training, {variant}", f"GPU input pipeline, {variant}"} <= set(names)
        assert f"GPU compute efficiency, {variant}" in names
    assert names[-1] == "GPU SavedModel"
    assert all(tuple(entry) == ENTRY_FIELDS for entry in report["entries"])
    details = report["benchmarks"]["gpu"]["details"]
    # No GPU: mixed precision falls back to float32 and there is no GPU memory to report.
    assert [details["variants"][variant]["policy"] for variant in VARIANTS] == ["float32"] * len(VARIANTS)
    assert set(details["variants"]) == set(VARIANTS)
    assert details["variants"]["fp32"]["peak_memory_gib"] == []
    assert json_path.with_suffix(".md").read_text() in completed.stdout

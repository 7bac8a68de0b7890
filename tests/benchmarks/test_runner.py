"""``make bench``'s runner: the result JSON, the Markdown table and the MLflow run, and failing modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import markdown
from benchmarks.run import REPO_ROOT, Benchmark, benchmarks, run_all, run_benchmark, selected_names
from pipeline.stderr_filter import is_noise

NOISY_FAILURE = (
    "import sys; "
    "sys.stderr.write('I0000 00:00:1795662965.074134   30971 port.cc:153] oneDNN custom operations\\n'); "
    "sys.stderr.write('ValueError: real problem\\n'); sys.exit(3)"
)


def failing(tmp_path: Path, code: str = NOISY_FAILURE, name: str = "bench_broken") -> Benchmark:
    return Benchmark(name, [sys.executable, "-c", code], tmp_path / f"{name}.json")


@pytest.mark.e2e
def test_make_bench_writes_the_json_and_the_table_and_logs_one_mlflow_run(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "renderer"]
    command += [
        "--out",
        str(tmp_path / "work"),
        "--results-dir",
        str(tmp_path / "results"),
        "--tracking-uri",
        uri,
    ]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert [line for line in completed.stderr.splitlines() if is_noise(line)] == []

    (json_path,) = (tmp_path / "results").glob("*.json")
    report = json.loads(json_path.read_text())
    assert {"device", "host", "date", "versions", "entries", "failed"} <= set(report)
    assert {"python", "tensorflow", "keras", "apache-beam", "mlflow", "keras-depth", "git_commit"} <= set(
        report["versions"]
    )
    assert json_path.name == f"{report['date'][:10]}-{report['host']}.json"
    (entry,) = report["entries"]
    assert (entry["benchmark"], entry["name"], entry["goal"], entry["goal_op"]) == (
        "bench_renderer",
        "renderer",
        1.0,
        ">=",
    )
    assert entry["ratio"] == round(entry["value"] / entry["baseline"], 3)
    table = json_path.with_suffix(".md").read_text()
    assert table == markdown(report)
    assert table in completed.stdout
    assert (tmp_path / "work" / "bench_renderer.json").is_file()

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("benchmarks")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {f"renderer/{field}": entry[field] for field in ("value", "baseline", "ratio")}
    assert run.data.params["version.tensorflow"] == report["versions"]["tensorflow"]
    assert run.data.tags["device"] == report["device"]
    assert sorted(artifact.path for artifact in client.list_artifacts(run.info.run_id)) == sorted(
        [json_path.name, json_path.with_suffix(".md").name]
    )


def test_a_failing_module_is_reported_with_its_last_real_error_line(tmp_path):
    entries, status = run_benchmark(failing(tmp_path), timeout_s=60)
    assert entries == [] and status["status"] == "failed"
    assert status["error"].startswith("exit status 3: ValueError: real problem")
    assert "oneDNN" not in status["error"]


def test_a_module_that_writes_no_result_or_runs_too_long_fails(tmp_path):
    _, silent = run_benchmark(failing(tmp_path, "pass", "bench_silent"), timeout_s=60)
    assert silent["status"] == "failed" and "bench_silent.json" in silent["error"]
    _, slow = run_benchmark(failing(tmp_path, "import time; time.sleep(60)", "bench_slow"), timeout_s=1)
    assert slow["error"] == "killed after 1 s (--timeout-s)"


@pytest.mark.e2e
def test_a_failing_module_does_not_lose_the_others(tmp_path):
    selected = [failing(tmp_path), *benchmarks(["bench_renderer"], tmp_path, quick=True)]
    report = run_all(selected, timeout_s=120, quick=True)
    assert report["failed"] == ["bench_broken"]
    assert [entry["benchmark"] for entry in report["entries"]] == ["bench_renderer"]
    assert report["benchmarks"]["bench_renderer"]["status"] == "ok"
    assert "| bench_broken | failed |" in markdown(report)


def test_only_names_known_modules():
    assert selected_names(["renderer", "bench_serving"]) == ["bench_renderer", "bench_serving"]
    with pytest.raises(ValueError, match="no benchmark bench_nope; known: .*bench_renderer"):
        selected_names(["nope"])

"""What the CLI prints on stderr: our lines and progress only, as text or JSON; start-up noise held back."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.progress import PROGRESS_SECONDS_ENV, ProgressReporter
from pipeline.console import LIBRARY_LOG_LEVELS, JsonFormatter, configure_logging
from pipeline.stderr_filter import StderrFilter, as_json_line, is_noise

REPO_ROOT = Path(__file__).resolve().parents[2]
# Lines seen on stderr before this filtering, from TensorFlow's libraries and Beam's worker processes.
NOISE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795662965.074134   30971 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1795662965.075185   30971 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.",
    "E0000 00:00:1795663005.580267   30971 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
    "error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "WARNING:root:apitools not found, and bigquery client libraries are not available despite the "
    "import not raising an ImportError.",
    "INFO:__main__:Logging handler created.",
]
KEPT_LINES = [
    "W0000 00:00:1795663005.580267   30971 cpu_allocator_impl.cc:83] Allocation of 4000000 exceeds 10% "
    "of free system memory.",
    "E1126 03:16:24.123456   30971 executor.cc:1] an error of TensorFlow's own",
    "Traceback (most recent call last):",
    "ERROR:apache_beam.runners.worker.sdk_worker:a worker failed",
]
# What `make run` printed before (TensorFlow, absl, Beam and MLflow start-up), in any process.
NOISE_PATTERNS = [
    "absl::InitializeLog",
    "oneDNN custom operations",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "failed call to cuInit",
    "apitools not found",
    "semi_persistent_directory",
    "Discarding unparseable args",
    "Logging handler created",
    "Creating initial MLflow database tables",
    "triggered tf.function retracing",
]
# Enough records that the ingest runs for seconds, long enough for progress lines between its first and last.
INGEST_RECORDS = 400
PROGRESS_LINE = re.compile(
    rf"\[keras_depth\.ingest\] ingest: (read|finished) \d+/{INGEST_RECORDS} records \(\d+%\), [\d.]+ records/s"
)


@pytest.fixture
def restore_logging():
    """Undoes configure_logging: root handlers and level, library levels, warnings capture, excepthook."""
    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, sys.excepthook
    library_levels = {name: logging.getLogger(name).level for name in LIBRARY_LOG_LEVELS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, library_level in library_levels.items():
        logging.getLogger(name).setLevel(library_level)
    logging.captureWarnings(False)
    sys.excepthook = hook


def test_noise_is_recognised_and_real_messages_are_not():
    assert [line for line in NOISE_LINES if not is_noise(line)] == []
    assert [line for line in KEPT_LINES if is_noise(line)] == []


def test_filter_holds_back_noise_of_this_process_and_of_its_children(capfd):
    child = "import os; os.write(2, b'I0000 00:00:17.5  7 port.cc:153] oneDNN\\nchild kept\\n')"
    with StderrFilter():
        os.write(2, "".join(line + "\n" for line in NOISE_LINES + KEPT_LINES).encode())
        subprocess.run([sys.executable, "-c", child], check=True)
    assert capfd.readouterr().err.splitlines() == [*KEPT_LINES, "child kept"]


def test_filter_passes_a_line_longer_than_its_buffer(capfd):
    text = "\r".join(f"{index:06d}" for index in range(40000))  # a bar redrawn 40000 times, no newline
    with StderrFilter():
        os.write(2, text.encode() + b"\nend\n")
    assert capfd.readouterr().err.replace("\n", "") == text + "end"


def test_filter_keeps_everything_when_asked(capfd):
    with StderrFilter(drop_noise=False):
        os.write(2, (NOISE_LINES[1] + "\n").encode())
    assert capfd.readouterr().err == NOISE_LINES[1] + "\n"


def test_json_filter_wraps_foreign_lines_and_passes_json_objects(capfd):
    with StderrFilter(json_lines=True):
        os.write(2, b'plain words\n{"level": "INFO", "message": "ours"}\n\n' + KEPT_LINES[1].encode() + b"\n")
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert lines[0]["message"] == "plain words" and lines[0]["logger"] == "stderr"
    assert lines[1] == {"level": "INFO", "message": "ours"}
    assert lines[2]["level"] == "ERROR" and len(lines) == 3
    assert json.loads(as_json_line("ERROR:x:boom"))["level"] == "ERROR"


def test_json_records_carry_the_stage_and_the_progress_fields():
    record = logging.LogRecord("keras_depth.evaluate", logging.INFO, __file__, 1, "%s", ("hi",), None)
    assert json.loads(JsonFormatter().format(record))["stage"] == "evaluate"
    record.fields = {"stage": "ingest", "done": 3, "total": 9, "rate": 1.5, "eta_s": 4.0}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "hi" and entry["logger"] == "keras_depth.evaluate" and entry["level"] == "INFO"
    assert {key: entry[key] for key in ("stage", "done", "total", "rate", "eta_s")} == record.fields
    assert "stage" not in json.loads(JsonFormatter().format(logging.makeLogRecord({"name": "mlflow"})))


def test_quiet_hides_progress_and_library_chatter(restore_logging, capsys):
    log = logging.getLogger("keras_depth.ingest")
    configure_logging(quiet=False, log_format="text")
    ProgressReporter(log, "ingest", "read", "records", 10, interval=0).update(5)
    logging.getLogger("root").warning("apitools not found, and bigquery client libraries are not available")
    logging.getLogger("apache_beam.runners").info("Worker: chatter")
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO \[keras_depth\.ingest\] ingest: read 5/10 records \(50%\), .*\n",
        capsys.readouterr().err,
    )
    configure_logging(quiet=True, log_format="text")  # replaces the handler: no line twice
    ProgressReporter(log, "ingest", "read", "records", 10, interval=0).update(5)
    log.warning("kept")
    assert capsys.readouterr().err.endswith("WARNING [keras_depth.ingest] kept\n")
    assert len([h for h in logging.getLogger().handlers if type(h).__name__ == "CurrentStderrHandler"]) == 1


def test_the_cli_module_imports_neither_tensorflow_nor_beam_nor_mlflow():
    """So that main() sets their environment before they load."""
    code = (
        "import sys, pipeline.run; print(sorted({'tensorflow', 'apache_beam', 'mlflow'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def _run_ingest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI's ingest of the smoke preset in a fresh process, with the environment of a plain shell."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name
        not in (
            "TF_CPP_MIN_LOG_LEVEL",
            "CUDA_VISIBLE_DEVICES",
            "MLFLOW_CONFIGURE_LOGGING",
            PROGRESS_SECONDS_ENV,
        )
    }
    command = [sys.executable, "-m", "pipeline.run", "--stage", "ingest", "--config", "configs/smoke.yaml"]
    command += ["--set", f"ingest.synthetic.num_scenes={INGEST_RECORDS}"]
    return subprocess.run(
        [*command, "--output-dir", str(tmp_path), "--progress-seconds", "0.5", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.e2e
def test_multi_process_ingest_shows_progress_and_no_start_up_noise(tmp_path):
    result = _run_ingest(
        tmp_path,
        "--set",
        "ingest.direct_running_mode=multi_processing",
        "--set",
        "ingest.direct_num_workers=2",
    )
    assert result.returncode == 0, result.stderr
    assert [pattern for pattern in NOISE_PATTERNS if pattern in result.stderr] == [], result.stderr
    assert PROGRESS_LINE.search(result.stderr), result.stderr
    assert f"ingest: read {INGEST_RECORDS}, written" in result.stderr


@pytest.mark.e2e
def test_json_log_format_writes_one_object_per_stderr_line(tmp_path):
    result = _run_ingest(tmp_path, "--log-format", "json")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert entries and all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    progress = [entry for entry in entries if "done" in entry]
    assert progress, result.stderr
    assert all(
        entry["stage"] == "ingest" and entry["total"] == INGEST_RECORDS and "rate" in entry
        for entry in progress
    )

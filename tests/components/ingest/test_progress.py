"""Ingest progress: worker-side counts appended to a file, read and reported by the main process."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from components.ingest.progress import (
    FINISHED,
    READ,
    ProgressCounter,
    is_direct_runner,
    read_progress,
    watch_ingest_progress,
)
from components.progress import PROGRESS_SECONDS_ENV


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_counter_appends_at_most_once_per_flush_interval(tmp_path):
    path = tmp_path / "done"
    clock = FakeClock()
    counter = ProgressCounter(str(path), flush_seconds=1.0, clock=clock)
    for _ in range(3):
        counter.add()
    assert not path.exists()
    clock.now = 1.0
    counter.add()
    assert path.read_text() == "4\n"
    counter.add(2)
    counter.flush()
    counter.flush()  # nothing pending: no empty line
    assert path.read_text() == "4\n2\n"
    assert read_progress(path) == 6


def test_reading_skips_an_incomplete_last_line_and_a_missing_file(tmp_path):
    path = tmp_path / "done"
    assert read_progress(path) == 0
    path.write_text("3\n5\n1")
    assert read_progress(path) == 8


def test_a_counter_that_cannot_write_turns_itself_off(tmp_path):
    counter = ProgressCounter(str(tmp_path / "absent" / "done"), flush_seconds=0.0)
    counter.add()  # no exception: progress never stops the ingest
    (tmp_path / "absent").mkdir()
    counter.add()
    assert not (tmp_path / "absent" / "done").exists()


def test_only_the_direct_runner_gets_progress():
    assert is_direct_runner(PipelineOptions([]))
    for name in ("DirectRunner", "direct", "apache_beam.runners.direct.direct_runner.DirectRunner"):
        assert is_direct_runner(PipelineOptions([f"--runner={name}"])), name
    assert not is_direct_runner(PipelineOptions(["--runner=FlinkRunner"]))
    with watch_ingest_progress(PipelineOptions(["--runner=FlinkRunner"]), 10, logging.getLogger("t")) as path:
        assert path is None


def test_watcher_reports_records_read_then_records_finished(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv(PROGRESS_SECONDS_ENV, "0")
    log = logging.getLogger("test.ingest_progress")
    with caplog.at_level(logging.INFO, logger=log.name):
        with watch_ingest_progress(PipelineOptions([]), 10, log, poll_seconds=0.01) as folder:
            ProgressCounter(str(Path(folder) / READ), flush_seconds=0.0).add(4)
            _wait_for(caplog, "ingest: read 4/10 records (40%), ")
            ProgressCounter(str(Path(folder) / READ), flush_seconds=0.0).add(6)
            ProgressCounter(str(Path(folder) / FINISHED), flush_seconds=0.0).add(10)
            _wait_for(caplog, "ingest: finished 10/10 records (100%), ")
    lines = [record.getMessage() for record in caplog.records]
    assert lines[-1].startswith("ingest: finished 10/10 records (100%), ")  # and none after it
    assert not any(line.startswith("ingest: read 10/10") for line in lines)  # finished follows read


def _wait_for(caplog, start: str) -> None:
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if any(record.getMessage().startswith(start) for record in caplog.records):
            return
        time.sleep(0.01)
    raise AssertionError(f"no progress line starting with {start!r} in {caplog.text}")

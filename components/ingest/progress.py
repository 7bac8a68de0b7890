"""Ingest progress across Beam workers: DoFns append counts to files that the main process polls.

The DirectRunner makes Beam counters readable only once the pipeline has finished, and its worker
processes log through the runner in Beam's own format. So the DoFns count records into small files
of a progress folder (a :class:`ProgressCounter` per DoFn instance appends the count it has
passed on, one integer per line, at most once per :data:`FLUSH_SECONDS` and at the end of each
bundle), and a thread of the main process (:func:`watch_ingest_progress`) sums them every
:data:`POLL_SECONDS` and logs throttled :class:`~components.progress.ProgressReporter` lines, in two
steps, as the graph runs them:

- :data:`READ`: records read (counted as their key goes to load, in ``IngestChunk``, which also
  converts and compresses them: most of an ingest's time);
- :data:`FINISHED`: records that reached the end of the graph: written into their committed shard
  (``CommitShards``, which needs every record read: train and val records wait for every test
  group), dead-lettered or skipped. ``stats.json`` and the stage's checks follow.

The folder is local, so this works in every DirectRunner mode (in memory, threads, processes);
other runners' workers cannot reach it and get no folder (no progress lines; the stage's final line
still gives the counts and rate).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from components.progress import ProgressReporter

FLUSH_SECONDS = 1.0
POLL_SECONDS = 1.0
# Files of the progress folder: one per counted step.
READ = "read"
FINISHED = "finished"
# Lower-case names of the DirectRunner's classes (Beam accepts "direct", "DirectRunner", a dotted path).
DIRECT_RUNNERS = ("directrunner", "bundlebaseddirectrunner", "switchingdirectrunner")


class ProgressCounter:
    """Counts processed records in a worker and appends them to the progress file now and then.

    Progress is best effort: a file that cannot be written turns the counter off, never the ingest.

    Args:
        path: The progress file.
        flush_seconds: Least time between two appends.
        clock: Monotonic clock in seconds (injected by tests).
    """

    def __init__(
        self, path: str, flush_seconds: float = FLUSH_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path: str | None = path
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._pending = 0
        self._last_flush = clock()

    def add(self, count: int = 1) -> None:
        """Counts ``count`` records; appends the pending count when ``flush_seconds`` have passed."""
        self._pending += count
        if self._clock() - self._last_flush >= self._flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Appends the pending count (one line, one ``write``) to the file."""
        self._last_flush = self._clock()
        if not self._pending or self._path is None:
            return
        try:
            with open(self._path, "a", encoding="ascii") as file:
                file.write(f"{self._pending}\n")
        except OSError:
            self._path = None
        self._pending = 0


def read_progress(path: Path) -> int:
    """Records counted in the progress file so far (0 without a file; an incomplete line is skipped)."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return 0
    return sum(int(line) for line in text.split("\n")[:-1] if line.isdigit())


def is_direct_runner(options: PipelineOptions) -> bool:
    """True when ``options`` run the pipeline on this machine's DirectRunner."""
    runner = options.view_as(StandardOptions).runner
    if runner is None:
        return True
    name = str(runner).rsplit(".", 1)[-1].lower()
    return (name if name.endswith("runner") else f"{name}runner") in DIRECT_RUNNERS


@contextlib.contextmanager
def watch_ingest_progress(
    options: PipelineOptions, total: int, log: logging.Logger, poll_seconds: float = POLL_SECONDS
) -> Iterator[str | None]:
    """Logs ingest progress while the body runs the pipeline: records read, then records finished.

    Args:
        options: The pipeline's options (progress needs the DirectRunner).
        total: Records to process.
        log: Logger of the progress lines.
        poll_seconds: Time between two reads of the progress folder.

    Yields:
        The progress folder's path for :func:`~components.ingest.pipeline_beam.build_pipeline` (a
        temporary folder, removed afterwards), or None when the runner is not the DirectRunner.
    """
    if not is_direct_runner(options):
        yield None
        return
    steps = [(READ, ProgressReporter(log, "ingest", READ, "records", total))]
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="keras-depth-ingest-progress-") as folder:

        def poll() -> None:
            while not stop.wait(poll_seconds):
                name, reporter = steps[-1]
                done = read_progress(Path(folder) / name)
                if name == READ and done >= total:  # the next step starts its own clock
                    steps.append((FINISHED, ProgressReporter(log, "ingest", FINISHED, "records", total)))
                else:
                    reporter.update(done)

        watcher = threading.Thread(target=poll, name="ingest-progress", daemon=True)
        watcher.start()
        try:
            yield folder
        finally:
            stop.set()
            watcher.join()

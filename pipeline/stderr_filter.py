"""Start-up noise of native libraries and Beam worker processes, held back at the stderr descriptor.

Some lines reach stderr without passing through Python logging, so no logging setting hides them:

- TensorFlow writes C++ log lines through absl. ``TF_CPP_MIN_LOG_LEVEL=2`` (set by
  :func:`quiet_native_logs` before TensorFlow is imported) hides its INFO and WARNING lines, but not
  the ones written while the library loads, before absl is initialised: "WARNING: All log messages
  before absl::InitializeLog() is called are written to STDERR", the oneDNN notice (``port.cc``) and
  "Could not find cuda drivers" (``cudart_stub.cc``), once per TensorFlow library that loads (no
  environment variable reaches them). The ERROR "failed call to cuInit" (a machine without a GPU) is
  an expected probe on a CPU machine;
- every DirectRunner worker process (``python -m apache_beam.runners.worker.sdk_worker_main``,
  spawned with the CLI's environment and stderr) imports TensorFlow too, and prints Beam's
  "apitools not found" notice and "Logging handler created." before its logging goes to the runner.

:class:`StderrFilter` points file descriptor 2 at a pipe while the CLI runs (children inherit it) and
copies every line from it to the real stderr except those that match :data:`NOISE`; in JSON mode, a
line that is not a JSON object is wrapped into one (``logger`` ``stderr``), so that every stderr line
stays parseable. Everything else (a warning or error of TensorFlow, a worker's crash) passes.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import threading

# Set (unless already set) before TensorFlow is imported; Beam's worker processes inherit them.
NATIVE_LOG_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
# After the severity letter of an absl line: "MMDD HH:MM:SS.micros  thread file:line] " (before absl
# is initialised: "0000 00:00:<seconds since 1970>.micros").
_ABSL_HEAD = r"\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        "I" + _ABSL_HEAD,  # any absl INFO line (the oneDNN notice, the CUDA stub)
        "E" + _ABSL_HEAD + "failed call to cuInit",
        "E" + _ABSL_HEAD + "Unable to register cu(DNN|FFT|BLAS) factory",
        r"WARNING:root:apitools not found, and bigquery client libraries are not available",
        r"INFO:__main__:Logging handler created\.$",
    )
)
# Severity of a foreign line, for wrapping it into JSON: absl's letter or Python's "LEVEL:logger:".
_ABSL_SEVERITY = re.compile("([IWEF])" + _ABSL_HEAD)
_ABSL_LEVELS = {"I": "INFO", "W": "WARNING", "E": "ERROR", "F": "CRITICAL"}
_PYTHON_SEVERITY = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):")
_READ_SIZE = 65536


def quiet_native_logs() -> None:
    """Sets :data:`NATIVE_LOG_ENV` (keeping values the user set); call before TensorFlow is imported."""
    for name, value in NATIVE_LOG_ENV.items():
        os.environ.setdefault(name, value)


def is_noise(line: str) -> bool:
    """True when ``line`` (without its newline) is known start-up noise (:data:`NOISE`)."""
    return any(pattern.match(line) for pattern in NOISE)


def as_json_line(line: str) -> str:
    """``line`` itself when it is a JSON object, else a JSON object (``logger`` ``stderr``) holding it."""
    if line.startswith("{"):
        try:
            if isinstance(json.loads(line), dict):
                return line
        except ValueError:
            pass
    absl, python = _ABSL_SEVERITY.match(line), _PYTHON_SEVERITY.match(line)
    level = _ABSL_LEVELS[absl.group(1)] if absl else python.group(1) if python else "WARNING"
    return json.dumps(
        {
            "time": datetime.datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "level": level,
            "logger": "stderr",
            "message": line,
        }
    )


class StderrFilter:
    """While active, every line written to file descriptor 2 (by any library or child) is filtered.

    Use as a context manager around the CLI's work. On exit the real stderr is restored, and the
    lines still in the pipe are copied (waiting up to ``drain_seconds`` for children that still
    hold it).

    Args:
        drop_noise: Drop the lines of :data:`NOISE` (False: copy every line).
        json_lines: Wrap each line that is not a JSON object (:func:`as_json_line`).
        drain_seconds: How long exit waits for the pipe to be drained.
    """

    def __init__(self, drop_noise: bool = True, json_lines: bool = False, drain_seconds: float = 5.0) -> None:
        self.drop_noise = drop_noise
        self.json_lines = json_lines
        self.drain_seconds = drain_seconds
        self._saved_fd: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StderrFilter:
        sys.stderr.flush()
        self._saved_fd = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(
            target=self._copy, args=(read_fd, os.dup(self._saved_fd)), name="stderr-filter", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        sys.stderr.flush()
        os.dup2(self._saved_fd, 2)  # closes this process's write end of the pipe
        os.close(self._saved_fd)
        self._thread.join(self.drain_seconds)

    def filter_line(self, line: bytes) -> bytes | None:
        """What to write for one line read from the pipe (without its newline); None to drop it."""
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        if self.drop_noise and is_noise(text):
            return None
        if self.json_lines:
            return as_json_line(text).encode("utf-8") if text.strip() else None
        return line

    def _copy(self, read_fd: int, out_fd: int) -> None:
        """Copies lines from the pipe to the real stderr until every writer has closed the pipe.

        It keeps reading when stderr cannot be written any more, so that no writer ever blocks on a
        full pipe.
        """
        writable = True
        with open(read_fd, "rb", buffering=0) as pipe, open(out_fd, "wb") as out:
            pending = b""
            while chunk := pipe.read(_READ_SIZE):
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > _READ_SIZE:  # a line without end (a progress bar redrawn with \r)
                    lines.append(pending)
                    pending = b""
                writable = writable and self._write(out, lines)
            if pending and writable:
                self._write(out, [pending])

    def _write(self, out, lines: list[bytes]) -> bool:
        """Writes the kept ``lines``; False when stderr cannot be written."""
        try:
            for line in lines:
                try:
                    kept = self.filter_line(line)
                except Exception:  # never lose a line to a filtering bug
                    kept = line
                if kept is not None:
                    out.write(kept + b"\n")
            out.flush()
        except OSError:
            return False
        return True

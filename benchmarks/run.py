"""``make bench``: runs every ``benchmarks/bench_*.py``, then reports all their entries in one place.

Each module runs in a subprocess (``python -m benchmarks.launch <name> --out <out>/<name>.json``,
plus ``--quick`` for tiny sizes; :mod:`benchmarks.launch`) and writes ``{"entries": [...], "details": {...}}``
(:mod:`benchmarks.entries`): ratios of two numbers measured in the same run. The runner then

- writes ``<results-dir>/<YYYY-MM-DD>-<host>.json`` and ``.md`` (:mod:`benchmarks.report`): every
  entry, the device, host, date and versions;
- prints the Markdown table;
- logs one run to the MLflow experiment ``benchmarks`` (:mod:`benchmarks.tracking`; best-effort: a
  store that cannot be used is warned about).

A module that fails (non-zero exit, no or malformed result, over ``--timeout-s``) is reported as
failed, the others still are, and the exit status is 1. Start-up noise of TensorFlow, absl and Beam,
in this process and in the modules' processes, is held back (:mod:`pipeline.stderr_filter`).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import environment, tracking
from benchmarks.entries import read_result
from benchmarks.report import markdown, write_report
from components.tracking import first_line
from pipeline.console import configure_logging, route_library_logs
from pipeline.stderr_filter import NATIVE_LOG_ENV, StderrFilter, is_noise

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_TIMEOUT_S = 600
STDERR_TAIL_LINES = 20
KILL_WAIT_S = 30

log = logging.getLogger("keras_depth.bench")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark module's process.

    Attributes:
        name: Module name, e.g. ``bench_renderer``.
        command: Its command line; it writes its result to ``result_path``.
        result_path: Where it writes ``{"entries": [...], "details": {...}}``.
    """

    name: str
    command: list[str]
    result_path: Path


def discover() -> list[str]:
    """Module names of all benchmarks, sorted."""
    return sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))


def benchmarks(names: Sequence[str], out_dir: Path, quick: bool) -> list[Benchmark]:
    """The :class:`Benchmark` of each module name, writing into ``out_dir``."""
    found = []
    for name in names:
        result_path = Path(out_dir) / f"{name}.json"
        command = [sys.executable, "-m", "benchmarks.launch", name, "--out", str(result_path)]
        found.append(Benchmark(name, command + (["--quick"] if quick else []), result_path))
    return found


def _copy_stderr(stream, tail: collections.deque) -> None:
    """Copies a child's stderr lines to ours (filtered there) and keeps the last non-noise ones."""
    for line in stream:
        sys.stderr.write(line)
        sys.stderr.flush()
        if line.strip() and not is_noise(line.rstrip("\n")):
            tail.append(line.rstrip("\n"))


def run_benchmark(benchmark: Benchmark, timeout_s: float) -> tuple[list[dict], dict]:
    """Runs one module; returns its entries and its status (``status``, ``seconds``, ``details`` or ``error``).

    The module's process group is killed when it runs longer than ``timeout_s`` (servers it started
    go with it). A module that fails yields no entries and ``status`` ``failed`` with the reason and
    the last lines of its stderr in ``error``.
    """
    benchmark.result_path.unlink(missing_ok=True)
    started = time.monotonic()
    process = subprocess.Popen(
        benchmark.command,
        cwd=REPO_ROOT,
        env={**NATIVE_LOG_ENV, "PYTHONUNBUFFERED": "1", **os.environ},
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
    copier = threading.Thread(target=_copy_stderr, args=(process.stderr, tail), daemon=True)
    copier.start()
    try:
        returncode = process.wait(timeout_s)
        reason = f"exit status {returncode}" if returncode else None
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(KILL_WAIT_S)
        reason = f"killed after {timeout_s:g} s (--timeout-s)"
    copier.join(KILL_WAIT_S)
    seconds = round(time.monotonic() - started, 1)
    entries, details = [], {}
    if reason is None:
        try:
            entries, details = read_result(benchmark.result_path)
        except (OSError, ValueError) as error:
            reason = str(error)
    if reason is not None:
        last = " / ".join(list(tail)[-3:])
        return [], {"status": "failed", "seconds": seconds, "error": f"{reason}: {last}" if last else reason}
    return entries, {"status": "ok", "seconds": seconds, "details": details}


def run_all(selected: Sequence[Benchmark], timeout_s: float, quick: bool) -> dict:
    """Runs ``selected`` one after the other; returns the report (see :mod:`benchmarks.report`)."""
    report = environment.describe() | {"quick": quick, "entries": [], "benchmarks": {}, "failed": []}
    for benchmark in selected:
        log.info("== %s", benchmark.name)
        entries, status = run_benchmark(benchmark, timeout_s)
        report["entries"] += [{"benchmark": benchmark.name, **entry} for entry in entries]
        report["benchmarks"][benchmark.name] = status
        if status["status"] != "ok":
            report["failed"].append(benchmark.name)
            log.error("%s failed: %s", benchmark.name, status["error"])
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/benchmarks"), help="per-module result JSONs (working files)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS_DIR,
        help="where <date>-<host>.json and .md go (default benchmarks/results)",
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="module names to run, with or without bench_ (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the wiring, not the numbers")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default $MLFLOW_TRACKING_URI, else sqlite:///<repo>/runs/mlflow.db)",
    )
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    parser.add_argument(
        "--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="longest one module may run (seconds)"
    )
    return parser


def selected_names(only: Sequence[str] | None) -> list[str]:
    """The modules to run: all of :func:`discover`, or those named in ``only``.

    Raises:
        ValueError: naming the unknown names and the known ones.
    """
    names = discover()
    if only is None:
        return names
    wanted = [name if name.startswith("bench_") else f"bench_{name}" for name in only]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ValueError(f"--only: no benchmark {', '.join(unknown)}; known: {', '.join(names)}")
    return [name for name in names if name in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        names = selected_names(args.only)
    except ValueError as error:
        parser.error(str(error))
    route_library_logs()
    configure_logging(quiet=False, log_format="text")
    with StderrFilter():
        report = run_all(benchmarks(names, args.out, args.quick), args.timeout_s, args.quick)
        json_path, markdown_path = write_report(report, args.results_dir)
        print(markdown(report), flush=True)
        log.info("results: %s, %s", json_path, markdown_path)
        if not args.no_tracking:
            uri = tracking.tracking_uri(args.tracking_uri)
            try:
                run_id = tracking.log_report(report, [json_path, markdown_path], uri)
                log.info("MLflow: experiment %s, run %s in %s", tracking.EXPERIMENT, run_id, uri)
            except Exception as error:  # the results are written: tracking must not fail the benchmarks
                log.warning("could not log to MLflow at %s: %s", uri, first_line(error))
    if report["failed"]:
        log.error("failed: %s", ", ".join(report["failed"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

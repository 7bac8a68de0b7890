"""Runs one benchmark module with the console set up before it imports anything.

    python -m benchmarks.launch bench_training --out runs/benchmarks/bench_training.json

The runner starts every module this way. Before the module (and so TensorFlow, Beam or MLflow) is
imported, TensorFlow's native log level and MLflow's logging settings are set
(:func:`pipeline.stderr_filter.quiet_native_logs`, :func:`pipeline.console.route_library_logs`) and
the pipeline's log handler is installed (:func:`pipeline.console.configure_logging`): a library
that logs through the root logger while it is imported (Beam's "apitools not found") would
otherwise install Python's default handler, and every line would be printed twice. While the
module runs, file descriptor 2 goes through :class:`pipeline.stderr_filter.StderrFilter`, which
drops the start-up lines native code writes whatever the log level (absl's "All log messages
before absl::InitializeLog()", "failed call to cuInit"), as ``python -m pipeline.run`` does.
"""

from __future__ import annotations

import runpy
import sys

from pipeline.console import configure_logging, route_library_logs
from pipeline.stderr_filter import StderrFilter, quiet_native_logs


def main(argv: list[str] | None = None) -> None:
    """Runs ``benchmarks.<argv[0]>`` as ``__main__`` with the arguments that follow."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m benchmarks.launch <bench module> [arguments...]")
    name, *arguments = argv
    quiet_native_logs()
    route_library_logs()
    configure_logging(quiet=False, log_format="text")
    sys.argv = [f"benchmarks.{name}", *arguments]
    with StderrFilter():
        runpy.run_module(f"benchmarks.{name}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

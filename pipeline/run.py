"""Command line entry point: ``python -m pipeline.run --stage all``.

Runs the TFX-style stages ingest -> train -> evaluate -> export. Every stage
writes to ``<output-dir>/pipeline_root/<stage>/<fingerprint>/`` with
``metadata.json`` and the resolved ``config.yaml``; the fingerprint hashes the
stage's parameters, its inputs' fingerprints and the package version, so a
rerun with nothing changed skips the stage (``--force`` reruns it). A stage
writes into a temporary directory renamed into place when it completes.
``--stage X`` alone uses the newest completed upstream artifacts.

``--sweep section.key=v1,v2,...`` (repeatable: the product of the flags) runs one pipeline per
value, each through ``--stage`` (e.g. ``--stage evaluate``: ingest, train, evaluate; stages the swept
keys do not change are reused), as child MLflow runs of one parent run; the comparison table and plot
land in ``<output-dir>/sweeps/<time>/`` and in the parent run (``pipeline.sweep``).

Every config value is checked before any stage runs (exit status 2 and a
one-line message naming the key and its file or --set). MLflow tracking is
best-effort: an unreachable tracking server falls back to the local store
(set mlflow.required=true to fail instead, exit status 1).

stderr carries the pipeline's log lines and throttled progress only (``--quiet``:
warnings and errors; ``--log-format json``: one JSON object per line): library
start-up noise is held back by :mod:`pipeline.console` (logging) and
:mod:`pipeline.stderr_filter` (what native code and Beam's worker processes
write to the descriptor); ``--native-logs`` keeps it.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from components.progress import DEFAULT_PROGRESS_SECONDS, PROGRESS_SECONDS_ENV
from pipeline.config import ConfigError, PipelineConfig, config_to_dict, load_config
from pipeline.console import LOG_FORMATS, configure_logging, route_library_logs
from pipeline.preflight import check_before_run
from pipeline.runner import PipelineError, expand_stages, run_stages
from pipeline.stages import STAGE_ORDER
from pipeline.stderr_filter import StderrFilter, quiet_native_logs
from pipeline.sweep import (
    Sweep,
    SweepFailed,
    check_sweep,
    format_sweep_summary,
    plan_sweep,
    run_sweep,
    stages_through,
)
from pipeline.tracking import TrackingUnavailable

DEFAULT_OUTPUT_DIR = "runs"

log = logging.getLogger("keras_depth.pipeline")


def seconds_argument(text: str) -> float:
    """A command-line number of seconds >= 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stage",
        choices=[*STAGE_ORDER, "all"],
        default="all",
        help="stage to run; 'all' runs every stage in order (default: all). With --sweep, each variant "
        "runs every stage up to this one: 'evaluate' compares the variants without pushing any, 'all' "
        "exports each blessed variant in turn (the last one is served)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML preset (default: configs/default.yaml); see configs/ for nyu_eigen2014, "
        "kitti_eigen2014, real_samples, smoke",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (YAML syntax), repeatable, e.g. --set loss.lam=1.0 "
        "--set train.devices='[/gpu:0,/gpu:1]'",
    )
    parser.add_argument(
        "--sweep",
        dest="sweeps",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2,...",
        help="run the pipeline once per value (YAML, as --set; applied after --set) as child MLflow runs "
        "of one parent run, with a comparison table and plot; repeatable: the product of the flags, "
        "e.g. --sweep loss.lam=0,0.5,1 --stage evaluate. Stages the swept keys do not change run once; "
        "--force reruns every stage of every variant",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(DEFAULT_OUTPUT_DIR),
        help="run directory: pipeline_root/, mlflow.db, serving/ (default: ./runs)",
    )
    parser.add_argument(
        "--force", action="store_true", help="rerun the selected stages even when already complete"
    )
    parser.add_argument(
        "--beam-arg",
        dest="beam_args",
        action="append",
        default=[],
        metavar="ARG",
        help="extra Apache Beam option for ingest, repeatable, e.g. --beam-arg=--runner=FlinkRunner",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config as YAML and exit"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="log warnings and errors only (no progress lines)"
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="stderr lines: 'text' (HH:MM:SS LEVEL [logger] message) or 'json' (one object per line: "
        "time, level, logger, message, and stage, done, total, rate, eta_s where known) (default: text)",
    )
    parser.add_argument(
        "--progress-seconds",
        type=seconds_argument,
        default=None,
        metavar="SECONDS",
        help=f"at most one progress line per stage every SECONDS (default: {DEFAULT_PROGRESS_SECONDS:g}, "
        f"or ${PROGRESS_SECONDS_ENV})",
    )
    parser.add_argument(
        "--native-logs",
        action="store_true",
        help="keep the start-up messages of TensorFlow (C++), absl and Beam's worker processes, "
        "hidden by default",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parses ``argv``, sets up the console, runs; returns the exit status (0, 1 or 2)."""
    args = build_parser().parse_args(argv)
    # Before anything imports TensorFlow, Beam or MLflow (Beam's worker processes inherit these).
    if not args.native_logs:
        quiet_native_logs()
    route_library_logs()
    if args.progress_seconds is not None:
        os.environ[PROGRESS_SECONDS_ENV] = str(args.progress_seconds)
    configure_logging(args.quiet, args.log_format)
    with StderrFilter(drop_noise=not args.native_logs, json_lines=args.log_format == "json"):
        return run(args)


def report_error(message: str, log_format: str) -> None:
    """One line on stderr: the message itself, or a JSON log line with ``--log-format json``."""
    if log_format == "json":
        log.error("%s", message)
    else:
        print(message, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Loads the config and runs the stages (or the sweep) of the parsed command line; returns the
    exit status."""
    try:
        config = load_config(args.config, args.overrides)
        sweep = plan_sweep(config, args.config, args.overrides, args.sweeps) if args.sweeps else None
    except ConfigError as err:
        report_error(f"config error: {err}", args.log_format)
        return 2
    if args.print_config:
        print(config_yaml(config, sweep), end="")
        return 0
    if sweep is not None:
        return run_sweep_command(args, sweep)
    stages = expand_stages(args.stage)
    try:
        check_before_run(config, stages, args.output_dir, args.config, args.overrides)
        artifacts = run_stages(config, stages, args.output_dir, args.force, args.beam_args)
    except ConfigError as err:
        report_error(f"config error: {err}", args.log_format)
        return 2
    except (PipelineError, TrackingUnavailable) as err:
        report_error(f"error: {err}", args.log_format)
        return 1
    from pipeline.summary import format_summary

    print(format_summary(config, artifacts, args.output_dir.resolve()))
    return 0


def config_yaml(config: PipelineConfig, sweep: Sweep | None) -> str:
    """The resolved config as YAML (``--print-config``); with a sweep, one document per variant."""
    import yaml

    if sweep is None:
        return yaml.safe_dump(config_to_dict(config), sort_keys=False)
    return "".join(
        f"--- # {variant.name}\n{yaml.safe_dump(config_to_dict(variant.config), sort_keys=False)}"
        for variant in sweep.variants
    )


def run_sweep_command(args: argparse.Namespace, sweep: Sweep) -> int:
    """Runs the planned sweep of the parsed command line; returns the exit status (1: a variant failed)."""
    stages = stages_through(args.stage)
    try:
        check_sweep(sweep, stages, args.output_dir)
        report = run_sweep(sweep, stages, args.output_dir, args.force, args.beam_args)
    except ConfigError as err:
        report_error(f"config error: {err}", args.log_format)
        return 2
    except SweepFailed as err:
        print(format_sweep_summary(err.report, args.output_dir.resolve()))
        report_error(f"error: {err}", args.log_format)
        return 1
    except (PipelineError, TrackingUnavailable) as err:
        report_error(f"error: {err}", args.log_format)
        return 1
    print(format_sweep_summary(report, args.output_dir.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

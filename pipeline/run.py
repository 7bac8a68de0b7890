"""Command line entry point: ``python -m pipeline.run --stage all``.

Runs the TFX-style stages ingest -> train -> evaluate -> export. Every stage
writes to ``<output-dir>/pipeline_root/<stage>/<fingerprint>/`` with
``metadata.json`` and the resolved ``config.yaml``; the fingerprint hashes the
stage's parameters, its inputs' fingerprints and the package version, so a
rerun with nothing changed skips the stage (``--force`` reruns it). A stage
writes into a temporary directory renamed into place when it completes.
``--stage X`` alone uses the newest completed upstream artifacts.

Every config value is checked before any stage runs (exit status 2 and a
one-line message naming the key and its file or --set). MLflow tracking is
best-effort: an unreachable tracking server falls back to the local store
(set mlflow.required=true to fail instead, exit status 1).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pipeline.config import ConfigError, config_to_dict, load_config
from pipeline.preflight import check_before_run
from pipeline.runner import PipelineError, expand_stages, run_stages
from pipeline.stages import STAGE_ORDER, default_registry
from pipeline.tracking import TrackingUnavailable

DEFAULT_OUTPUT_DIR = "runs"

log = logging.getLogger("keras_depth.pipeline")


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
        help="stage to run; 'all' runs every implemented stage in order (default: all)",
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
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ info lines (CUDA probing on CPU machines, buffer sizes) drown the stage logs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        datefmt="%H:%M:%S",
    )
    # Beam's runner relays every worker log line at INFO; keep its warnings and errors.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
        return 0
    stages = expand_stages(args.stage)
    if args.stage == "all":
        implemented = default_registry()
        missing = [name for name in stages if name not in implemented]
        if missing:
            log.warning("not implemented yet, not run: %s", ", ".join(missing))
        stages = [name for name in stages if name in implemented]
    try:
        check_before_run(config, stages, args.output_dir, args.config, args.overrides)
        artifacts = run_stages(config, stages, args.output_dir, args.force, args.beam_args)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    except (PipelineError, TrackingUnavailable, NotImplementedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    from pipeline.summary import format_summary

    print(format_summary(config, artifacts, args.output_dir.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

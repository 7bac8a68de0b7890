"""``make bench-gpu``: training and serving speed of the NYU paper preset on this machine's GPUs.

    python -m benchmarks.gpu [--steps 50] [--warmup-steps 10] [--results-dir benchmarks/results]

Without a GPU (TensorFlow lists none) it prints ``no GPU: ...`` and exits 0; only TensorFlow is
imported to find out. With GPUs (all of them, under ``MirroredStrategy``; per-replica batch = the
preset's 32):

1. the ingest stage writes synthetic scenes at the preset's storage size (240x320) as TFRecords;
2. the coarse network (the paper's phase 1) trains with mixed precision off and on, XLA off and on
   (:mod:`benchmarks.gpu_training`): ``--warmup-steps`` + ``--steps`` steps fed by
   ``make_dataset`` (augmented) and as many fed from one batch in memory; images/s of both, their
   ratio (the input pipeline), the compute efficiency against a dense matmul in the compute dtype
   and the peak memory TensorFlow allocated per GPU;
3. the preset's fine network is exported as the export stage exports it and ``serving_default`` is
   timed on the GPU (one image, and a batch), beside the same network called in Keras.

The entries (:mod:`benchmarks.entries`) go to ``<results-dir>/<YYYY-MM-DD>-<host>-gpu.json`` and
``.md`` and the table is printed. Steps are bounded so that the whole run fits in 8 minutes on one
GPU; a variant that would start after ``--budget-s`` is skipped (and said so), one that fails is
reported as failed (exit status 1) while the others still run.

``--allow-cpu`` runs the same path without a GPU (the tests do, with a tiny model given by ``--set``);
mixed precision is then ignored (``components.train.strategy.precision_policy``) and no GPU memory
is reported.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import environment
from benchmarks.entries import make_entry
from benchmarks.report import markdown, write_report
from pipeline.config import CONFIGS_DIR
from pipeline.console import configure_logging, route_library_logs
from pipeline.stderr_filter import StderrFilter, quiet_native_logs

DEFAULT_CONFIG = CONFIGS_DIR / "nyu_eigen2014.yaml"
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULT_SUFFIX = "gpu"
INPUT_PIPELINE_GOAL = 0.95
DEFAULT_SCENES = 256
DEFAULT_WARMUP_STEPS = 10
DEFAULT_STEPS = 50
DEFAULT_MATMUL_SIZE = 8192
DEFAULT_LATENCY_CALLS = 50
# Seconds after which no further training variant starts (the SavedModel timing still runs): leaves
# time for export and reporting within 8 minutes.
DEFAULT_BUDGET_S = 360

log = logging.getLogger("keras_depth.bench")


@dataclass(frozen=True)
class Variant:
    """One training setting: ``train.mixed_precision`` and ``train.xla``."""

    mixed_precision: bool
    xla: bool

    @property
    def label(self) -> str:
        """``fp32``, ``fp32+XLA``, ``mixed fp16`` or ``mixed fp16+XLA``."""
        return ("mixed fp16" if self.mixed_precision else "fp32") + ("+XLA" if self.xla else "")


VARIANTS = tuple(Variant(mixed, xla) for mixed in (False, True) for xla in (False, True))


def variants_argument(text: str) -> list[Variant]:
    """``--variants``: comma-separated labels of :data:`VARIANTS`, in their order."""
    known = {variant.label: variant for variant in VARIANTS}
    labels = [label.strip() for label in text.split(",")]
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(known)}")
    return [variant for variant in VARIANTS if variant.label in labels]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="preset (default nyu_eigen2014)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config override",
    )
    parser.add_argument("--scenes", type=int, default=DEFAULT_SCENES, help="synthetic scenes ingested")
    parser.add_argument(
        "--warmup-steps", type=int, default=DEFAULT_WARMUP_STEPS, help="untimed steps per feed"
    )
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="timed steps per feed")
    parser.add_argument("--matmul-size", type=int, default=DEFAULT_MATMUL_SIZE, help="reference matmul side")
    parser.add_argument(
        "--latency-calls",
        type=int,
        default=DEFAULT_LATENCY_CALLS,
        help="timed SavedModel calls per batch size",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help="start no training variant after this many seconds",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="where the JSON and .md go"
    )
    parser.add_argument(
        "--variants",
        type=variants_argument,
        default=VARIANTS,
        help="comma-separated training variants to run, of: fp32, fp32+XLA, mixed fp16, mixed fp16+XLA "
        "(default: all)",
    )
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (tests, tiny models)")
    return parser


def gpu_names(tf) -> list[str]:
    """The visible GPUs' names as TensorFlow reports them (``device_name``, else the device's name)."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_native_logs()
    route_library_logs()
    configure_logging(quiet=False, log_format="text")
    with StderrFilter():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus and not args.allow_cpu:
            print(
                "no GPU: TensorFlow lists no GPU device (no NVIDIA driver, a CPU-only TensorFlow or "
                "CUDA_VISIBLE_DEVICES hiding them); nothing to measure. `pip install -e .[gpu]` installs "
                "TensorFlow with CUDA."
            )
            return 0
        for gpu in gpus:  # allocate as needed, so the peak memory is what training used
            tf.config.experimental.set_memory_growth(gpu, True)
        report = run(args, gpu_names(tf))
        json_path, markdown_path = write_report(report, args.results_dir, RESULT_SUFFIX)
        print(markdown(report), flush=True)
        log.info("results: %s, %s", json_path, markdown_path)
    return 1 if report["failed"] else 0


def run(args: argparse.Namespace, gpus: list[str]) -> dict:
    """Runs every measurement (module docstring); returns the report (:mod:`benchmarks.report`).

    A variant or the SavedModel timing that raises is logged and listed in the report's ``gpu``
    status (``failed``) while the others still run.
    """
    from benchmarks.gpu_training import measure_saved_model
    from components.train.config import TrainConfig
    from components.train.strategy import make_strategy
    from pipeline.config import load_config

    started = time.monotonic()
    config = load_config(args.config, args.overrides)
    report = environment.describe() | {"entries": [], "benchmarks": {}, "failed": []}
    if gpus:
        report["device"] = ", ".join(f"{gpus.count(name)} x {name}" for name in sorted(set(gpus)))
    else:
        report["device"] += " (--allow-cpu: no GPU)"
    strategy = make_strategy(TrainConfig(strategy="mirrored"))
    global_batch = config.data.batch_size * strategy.num_replicas_in_sync
    details = {
        "preset": args.config.name,
        "overrides": args.overrides,
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": global_batch,
        "warmup_steps": args.warmup_steps,
        "steps": args.steps,
        "host_cpu_cores": environment.cpu_cores(),
    }
    failures: list[str] = []
    details["variants"] = train_variants(args, config, strategy, global_batch, started, failures)
    try:
        details["saved_model"] = measure_saved_model(config, global_batch, args.latency_calls, warmup=3)
    except Exception as error:  # the training results still count
        log.exception("SavedModel timing failed")
        failures.append(f"SavedModel: {type(error).__name__}: {error}")
    report["entries"] = gpu_entries(details, global_batch)
    report["benchmarks"]["gpu"] = {
        "status": "failed" if failures else "ok",
        "seconds": round(time.monotonic() - started, 1),
        "details": details,
    }
    if failures:
        report["failed"].append("gpu")
        report["benchmarks"]["gpu"]["error"] = "; ".join(failures)
    return report


def train_variants(
    args: argparse.Namespace,
    config: Any,
    strategy: Any,
    global_batch: int,
    started: float,
    failures: list[str],
) -> dict[str, dict]:
    """Each variant of ``--variants``, measured (:func:`benchmarks.gpu_training.measure_variant`).

    Returns:
        Variant label -> its result, ``{"skipped": reason}`` once ``--budget-s`` has passed, or
        ``{"error": ...}`` (also appended to ``failures``).
    """
    from benchmarks.gpu_training import matmul_gflop_per_second, measure_variant
    from benchmarks.training_speed import in_memory_batches, write_synthetic_shards
    from keras_depth.data import make_dataset

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as workdir:
        ingest_log = logging.getLogger("keras_depth.bench.ingest")
        ingest_log.setLevel(logging.ERROR)  # its progress and empty val/test splits say nothing here
        pattern = write_synthetic_shards(config, Path(workdir), args.scenes, ingest_log)
        reader = make_dataset(pattern, config, training=True, batch_size=global_batch)
        in_memory = in_memory_batches(reader)
        for variant in args.variants:
            if time.monotonic() - started > args.budget_s:
                results[variant.label] = {"skipped": f"over --budget-s {args.budget_s:g}"}
                log.warning("%s skipped: over --budget-s %g", variant.label, args.budget_s)
                continue
            try:
                result = measure_variant(
                    config,
                    variant.mixed_precision,
                    variant.xla,
                    strategy,
                    reader,
                    in_memory,
                    args.warmup_steps,
                    args.steps,
                    log,
                )
                result["matmul_gflop_per_s"] = matmul_gflop_per_second(result["policy"], args.matmul_size)
            except Exception as error:  # one variant failing (e.g. XLA on this GPU) must not lose the others
                log.exception("%s failed", variant.label)
                results[variant.label] = {"error": f"{type(error).__name__}: {error}"}
                failures.append(f"{variant.label}: {results[variant.label]['error']}")
                continue
            results[variant.label] = result
            log.info(
                "%s: %.4g images/s from memory, %.4g fed by the reader",
                variant.label,
                result["images_per_s_in_memory"],
                result["images_per_s_reader"],
            )
    return results


def gpu_entries(details: dict, global_batch: int) -> list[dict]:
    """Entries of the measured variants (speed-up, input pipeline, compute efficiency) and the SavedModel."""
    measured = {
        label: result for label, result in details["variants"].items() if "images_per_s_in_memory" in result
    }
    entries = []
    reference = measured.get("fp32")
    for label, result in measured.items():
        memory = ", ".join(f"{gib:.2f}" for gib in result["peak_memory_gib"]) or "n/a"
        if reference is not None:
            entries.append(
                make_entry(
                    name=f"GPU training, {label}",
                    what=f"coarse-net images/s (global batch {global_batch}) fed from memory, {label} / fp32",
                    value=result["images_per_s_in_memory"],
                    baseline=reference["images_per_s_in_memory"],
                    unit="images/s",
                    goal=None,
                    notes=f"policy {result['policy']}; peak GPU memory {memory} GiB per GPU",
                )
            )
        entries.append(
            make_entry(
                name=f"GPU input pipeline, {label}",
                what="coarse-net images/s fed by make_dataset from TFRecords, augmented / fed from memory",
                value=result["images_per_s_reader"],
                baseline=result["images_per_s_in_memory"],
                unit="images/s",
                goal=INPUT_PIPELINE_GOAL,
                notes=f"the reader decodes and augments on the host's {details['host_cpu_cores']} CPU cores",
            )
        )
        gpus = max(1, details["replicas"])
        entries.append(
            make_entry(
                name=f"GPU compute efficiency, {label}",
                what="GFLOP/s per device of a train step from memory (FLOPs from layer shapes) / of a "
                f"dense matmul in {'float16' if result['policy'] == 'mixed_float16' else 'float32'}",
                value=result["train_gflop_per_image"] * result["images_per_s_in_memory"] / gpus,
                baseline=result["matmul_gflop_per_s"],
                unit="GFLOP/s",
                goal=None,
                notes="no fixed goal: tracks what mixed precision and XLA gain",
            )
        )
    saved = details.get("saved_model")
    if saved is None:
        return entries
    entries.append(
        make_entry(
            name="GPU SavedModel",
            what=f"images/s of the serving SavedModel (serving_default, batch {saved['batch_size']}) / of the "
            "same fine network called in Keras",
            value=saved["saved_model_images_per_s"],
            baseline=saved["keras_forward_images_per_s"],
            unit="images/s",
            goal=None,
            notes=f"one image: {saved['saved_model_ms_batch_1']:.3g} ms median; the SavedModel also crops, "
            "resizes and returns depth and log depth",
        )
    )
    return entries


if __name__ == "__main__":
    sys.exit(main())

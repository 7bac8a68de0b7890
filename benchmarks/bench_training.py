"""Training speed: what the input pipeline costs, and how close a training step is to the device's FLOP rate.

    python -m benchmarks.bench_training --out runs/benchmarks/bench_training.json [--quick]

For the default preset (``configs/default.yaml``) and the NYU paper preset
(``configs/nyu_eigen2014.yaml``: 228x304 input, full width, batch 32) the coarse network, compiled
and distributed as the train stage does it, trains for a few steps after a warm-up
(:mod:`benchmarks.training_speed`), three ways:

1. fed by ``keras_depth.data.make_dataset`` (training mode: shuffled, augmented) from TFRecord shards
   that the ingest stage wrote from synthetic scenes at the preset's storage size;
2. fed from one batch of (1) held in memory: no reading, decoding or augmenting;
3. the reader of (1) alone, without training, with and without augmentation (it says what limits
   a low ratio).

Entries (:mod:`benchmarks.entries`), per preset:

- ``input pipeline``: steps/s of (1) / steps/s of (2), goal >= 0.95;
- ``compute efficiency``: FLOP/s achieved by (2), with the FLOPs of a step counted from the layer
  shapes (:mod:`benchmarks.flops`), / FLOP/s of a dense float32 matmul measured in the same run. No
  fixed goal: a conv net with small maps and a large fully connected layer is not a square matmul;
  the ratio tracks regressions (e.g. a layout or threading change) and what XLA or another device gains.
"""

from __future__ import annotations

import argparse
import copy
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.entries import make_entry, write_result
from benchmarks.environment import cpu_cores
from benchmarks.flops import dense_matmul_flops_per_second, training_flops
from benchmarks.training_speed import (
    compiled_coarse_model,
    in_memory_batches,
    reader_batches_per_second,
    steps_per_second,
    write_synthetic_shards,
)
from components.train.strategy import make_strategy
from keras_depth.data import make_dataset
from pipeline.config import CONFIGS_DIR, load_config

INPUT_PIPELINE_GOAL = 0.95
GIGA = 1e9

log = logging.getLogger("keras_depth.bench")
ingest_log = logging.getLogger("keras_depth.bench.ingest")


@dataclass(frozen=True)
class PresetRun:
    """How long one preset is measured.

    Attributes:
        label: Name in the entries, e.g. ``default preset``.
        config: The preset file.
        scenes: Synthetic scenes ingested (the reader repeats them).
        warmup_steps: Steps before the timed ones (tracing, buffers filling).
        steps: Timed steps of each feed; the reader alone is timed for as many batches.
        rounds: Times each feed is measured, alternating; the fastest round of each counts (on a
            shared machine, the round least slowed by other processes).
        overrides: ``--set`` style overrides (``--quick`` shrinks the batch).
    """

    label: str
    config: Path
    scenes: int
    warmup_steps: int
    steps: int
    rounds: int = 2
    overrides: tuple[str, ...] = ()


# About 1 min for the default preset and 2.5 min for the NYU one on 2 CPU cores.
RUNS = (
    PresetRun("default preset", CONFIGS_DIR / "default.yaml", scenes=256, warmup_steps=10, steps=40),
    PresetRun("NYU preset", CONFIGS_DIR / "nyu_eigen2014.yaml", scenes=96, warmup_steps=2, steps=4),
)
QUICK_DATA = ("data.batch_size=2", "data.shuffle_buffer=8")
QUICK_RUNS = tuple(
    PresetRun(run.label, run.config, scenes=8, warmup_steps=1, steps=2, rounds=1, overrides=QUICK_DATA)
    for run in RUNS
)
MATMUL = {"size": 2048, "repeats": 4, "rounds": 5}
QUICK_MATMUL = {"size": 256, "repeats": 2, "rounds": 1}


def measure_preset(run: PresetRun, workdir: Path) -> dict:
    """Steps/s fed by the reader and from memory, the reader alone, and the FLOPs of a step."""
    config = load_config(run.config, list(run.overrides))
    started = time.monotonic()
    pattern = write_synthetic_shards(config, workdir, run.scenes, ingest_log)
    ingest_seconds = time.monotonic() - started
    strategy = make_strategy(config.train)
    global_batch = config.data.batch_size * strategy.num_replicas_in_sync
    reader = make_dataset(pattern, config, training=True, batch_size=global_batch)
    with strategy.scope():
        model = compiled_coarse_model(config)
    from_memory = in_memory_batches(reader)
    rounds = {"fed": [], "in_memory": []}
    for _ in range(run.rounds):
        rounds["fed"].append(steps_per_second(model, reader, run.warmup_steps, run.steps))
        rounds["in_memory"].append(steps_per_second(model, from_memory, run.warmup_steps, run.steps))
    fed, in_memory = max(rounds["fed"]), max(rounds["in_memory"])
    reader_alone = reader_batches_per_second(reader, run.warmup_steps, run.steps)
    unaugmented = copy.deepcopy(config)
    unaugmented.augment.enabled = False  # centre crops: what reading and decoding alone cost
    plain_reader = make_dataset(pattern, unaugmented, training=True, batch_size=global_batch)
    reader_unaugmented = reader_batches_per_second(plain_reader, run.warmup_steps, run.steps)
    flops_per_image = training_flops(model)
    result = {
        "preset": run.config.name,
        "input_hw": [config.model.input_height, config.model.input_width],
        "storage_hw": [config.ingest.storage_height, config.ingest.storage_width],
        "global_batch": global_batch,
        "replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__,
        "scenes": run.scenes,
        "warmup_steps": run.warmup_steps,
        "steps": run.steps,
        "steps_per_s_fed_by_reader": fed,
        "steps_per_s_in_memory": in_memory,
        "steps_per_s_rounds": rounds,
        "reader_alone_batches_per_s": reader_alone,
        "reader_alone_unaugmented_batches_per_s": reader_unaugmented,
        "train_gflop_per_image": flops_per_image / GIGA,
        "achieved_gflop_per_s": flops_per_image * global_batch * in_memory / GIGA,
        "ingest_seconds": round(ingest_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    log.info(
        "%s: %.3g steps/s fed by the reader, %.3g from memory; reader alone %.3g batches/s",
        run.label,
        fed,
        in_memory,
        reader_alone,
    )
    return result


def pipeline_notes(result: dict, cores: int) -> str:
    """What limits the reader-fed rate, from the three rates of :func:`measure_preset`."""
    fed, in_memory = result["steps_per_s_fed_by_reader"], result["steps_per_s_in_memory"]
    reader = result["reader_alone_batches_per_s"]
    alone = (
        f"reader alone {reader:.3g} batches/s "
        f"({result['reader_alone_unaugmented_batches_per_s']:.3g} without augmentation)"
    )
    if fed / in_memory >= INPUT_PIPELINE_GOAL:
        return f"{alone}, training from memory {in_memory:.3g} steps/s"
    if reader < in_memory:
        return (
            f"{alone} < {in_memory:.3g} steps/s of training from memory: decoding and augmenting "
            f"{result['global_batch']} images a step is the limit on {cores} cores"
        )
    return (
        f"{alone} outpaces training from memory ({in_memory:.3g} steps/s), but the two share {cores} "
        "cores: the reader's threads take CPU time from the training step"
    )


def preset_entries(label: str, result: dict, matmul: dict, cores: int) -> list[dict]:
    """The input pipeline and compute efficiency entries of one preset.

    Args:
        label: The preset's label.
        result: Its measurements (:func:`measure_preset`).
        matmul: The reference matmul: ``size`` and ``gflop_per_s``.
        cores: CPU cores of this process.
    """
    batch = result["global_batch"]
    return [
        make_entry(
            name=f"input pipeline, {label}",
            what=f"coarse-net train steps/s (batch {batch}) fed by make_dataset from TFRecords, augmented "
            "/ fed from one batch in memory",
            value=result["steps_per_s_fed_by_reader"],
            baseline=result["steps_per_s_in_memory"],
            unit="steps/s",
            goal=INPUT_PIPELINE_GOAL,
            notes=pipeline_notes(result, cores),
        ),
        make_entry(
            name=f"compute efficiency, {label}",
            what=f"GFLOP/s of a coarse-net train step from memory ({result['train_gflop_per_image']:.3g} GFLOP "
            f"per image, counted from layer shapes) / GFLOP/s of a {matmul['size']}^2 float32 matmul",
            value=result["achieved_gflop_per_s"],
            baseline=matmul["gflop_per_s"],
            unit="GFLOP/s",
            goal=None,
            notes="no fixed goal: small feature maps and the large fc layer are not a square matmul; "
            "tracks regressions and what XLA or another device gains",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="result JSON file")
    parser.add_argument(
        "--quick", action="store_true", help="tiny batches and one timed step (checks wiring)"
    )
    args = parser.parse_args(argv)
    # The ingest stage's own lines (its progress, the empty val and test splits) say nothing here.
    ingest_log.setLevel(logging.ERROR)
    runs, matmul = (QUICK_RUNS, QUICK_MATMUL) if args.quick else (RUNS, MATMUL)
    cores = cpu_cores()
    # The reference rate is taken before and after the presets; the faster one counts.
    reference = [dense_matmul_flops_per_second(**matmul) / GIGA]
    results = {}
    for run in runs:
        with tempfile.TemporaryDirectory(prefix="bench_training_") as workdir:
            results[run.label] = measure_preset(run, Path(workdir))
    reference.append(dense_matmul_flops_per_second(**matmul) / GIGA)
    matmul = {**matmul, "gflop_per_s": max(reference), "gflop_per_s_before_after": reference}
    entries = [
        entry for label, result in results.items() for entry in preset_entries(label, result, matmul, cores)
    ]
    details = {"matmul": matmul, "cpu_cores": cores, **results}
    write_result(args.out, entries, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

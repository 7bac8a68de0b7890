"""Ingest throughput: the Beam pipeline on 1 and 2 DirectRunner worker processes against a plain loop.

For each source the same keys are ingested three times into gzip TFRecord shards of the same layout:

- ``plain``: one process, a ``for`` loop over the keys: the ingest's own per-record work
  (:func:`components.ingest.convert.convert_key`: load, route, validate, resize, encode, summarize)
  and the records framed and written through ``gzip`` files at the same level, in key order;
- ``beam_1`` and ``beam_2``: :func:`components.ingest.pipeline_beam.build_pipeline` on the
  DirectRunner in ``multi_processing`` mode with 1 and 2 workers, with the stage's progress lines.

Times cover what the ingest stage reports as its rate: building, running and finishing the pipeline
(or the loop), after the keys are listed; each run is timed ``--repeats`` times and the fastest
counts. Two ratios per source, in ``{"entries": [...], "details": {...}}``: scaling = ``beam_2`` /
``beam_1`` records/s (goal >= 1.7) and overhead = ``beam_1`` / ``plain`` records/s (goal >= 0.8).
The three outputs are compared shard by shard (decompressed bytes: the same records, in the same
order) and the two Beam outputs byte for byte (``details``).

Sources: ``synthetic`` (``--scenes`` rendered rooms at ``--height`` x ``--width``), ``real_samples``
(the 7-Scenes frames of ``configs/real_samples.yaml``, as many as exist; skipped when the shared data
is absent) and ``nyu_labeled`` (a ``nyu_depth_v2_labeled.mat`` of ``--nyu-frames`` frames written as
the tests write it, ``tests/keras_depth/sources/conftest.py``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import apache_beam as beam
import numpy as np

from benchmarks.entries import make_entry, write_result
from components.ingest.config import IngestConfig
from components.ingest.convert import convert_key
from components.ingest.pipeline_beam import build_pipeline, pipeline_options
from components.ingest.progress import watch_ingest_progress
from components.ingest.shards import COMPRESSION_LEVEL, shard_of_key
from components.ingest.sources import make_ingest_source
from components.ingest.stats import StatsAccumulator
from keras_depth.config import NyuLabeledConfig, SyntheticRoomsConfig
from keras_depth.data.layout import SHARD_PREFIX, SHARD_SUFFIX, SPLITS
from keras_depth.data.tfrecord_format import frame_record
from pipeline.config import CONFIGS_DIR, load_config

REPO_ROOT = Path(__file__).resolve().parent.parent
NYU_FIXTURE_MODULE = REPO_ROOT / "tests" / "keras_depth" / "sources" / "conftest.py"
NYU_FRAMES_PER_SCENE = 10
SCALING_GOAL, OVERHEAD_GOAL = 1.7, 0.8
# Below this many records the Beam start-up (worker processes, runner) dominates both ratios.
FEW_RECORDS = 1000
# --quick: synthetic scenes, NYU frames, their size, and real frames read.
QUICK_SCENES, QUICK_NYU_FRAMES, QUICK_SIZE, QUICK_REAL_RECORDS = 24, 12, (48, 64), 12
QUICK = f"{QUICK_SCENES} scenes, {QUICK_NYU_FRAMES} NYU frames, {QUICK_REAL_RECORDS} real frames"
log = logging.getLogger("keras_depth.bench_ingest")


def synthetic_config(scenes: int, height: int, width: int) -> IngestConfig:
    """``scenes`` synthetic rooms rendered and stored at ``height`` x ``width``."""
    return IngestConfig(
        synthetic=SyntheticRoomsConfig(num_scenes=scenes, height=height, width=width),
        storage_height=height,
        storage_width=width,
    )


def real_samples_config() -> IngestConfig | None:
    """The ``configs/real_samples.yaml`` ingest (folder resolved from the repository root), or None
    when its frames are absent."""
    ingest = load_config(CONFIGS_DIR / "real_samples.yaml").ingest
    root = (REPO_ROOT / ingest.folder.root).resolve()
    if not root.is_dir():
        return None
    return replace(ingest, folder=replace(ingest.folder, root=str(root)))


def nyu_labeled_config(folder: Path, frames: int, height: int, width: int) -> IngestConfig:
    """Writes a ``nyu_depth_v2_labeled.mat`` of ``frames`` frames (``NYU_FRAMES_PER_SCENE`` per scene)
    with the tests' writer and returns an ingest of it at the same size (scenes hashed into splits)."""
    spec = importlib.util.spec_from_file_location("nyu_fixture", NYU_FIXTURE_MODULE)
    fixture = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fixture  # its dataclasses look their module up
    spec.loader.exec_module(fixture)
    rng = np.random.default_rng(0)
    marked = [fixture.marked_frame(rng, index, height, width, hole_fraction=0.3) for index in range(frames)]
    images = np.stack([image for image, _ in marked])
    depths = np.stack([depth for _, depth in marked])
    scenes = [f"living_room_{index // NYU_FRAMES_PER_SCENE + 1:04d}" for index in range(frames)]
    path = folder / "nyu_depth_v2_labeled.mat"
    fixture.write_nyu_mat(path, images, depths, depths, scenes)
    return IngestConfig(
        source="nyu_labeled",
        nyu_labeled=NyuLabeledConfig(path=str(path), depth_field="rawDepths"),
        storage_height=height,
        storage_width=width,
    )


def shard_file(output_dir: Path, split: str, shard: int, num_shards: int) -> Path:
    return output_dir / split / f"{SHARD_PREFIX}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def plain_loop(config: IngestConfig, keys: list[str], output_dir: Path) -> float:
    """Ingests ``keys`` in this process with a plain loop; returns the seconds taken.

    Each split's shard files are ``gzip`` files (level 6, as the pipeline's), records in key order;
    the statistics summaries are summed as the pipeline sums them.
    """
    source = make_ingest_source(config)
    num_shards = config.shards_per_split
    started = time.monotonic()
    files = {}
    for split in SPLITS:
        (output_dir / split).mkdir(parents=True)
        for shard in range(num_shards):
            path = shard_file(output_dir, split, shard, num_shards)
            files[split, shard] = gzip.GzipFile(path, "wb", compresslevel=COMPRESSION_LEVEL, mtime=0)
    stats = StatsAccumulator()
    for key in sorted(keys):
        converted = convert_key(key, source, config).converted
        if converted is not None:
            files[converted.split, shard_of_key(key, num_shards)].write(frame_record(converted.serialized))
            stats.add(converted.summary)
    for file in files.values():
        file.close()
    return time.monotonic() - started


def beam_run(config: IngestConfig, keys: list[str], output_dir: Path, workers: int) -> float:
    """Runs the ingest pipeline with ``workers`` DirectRunner worker processes; returns the seconds taken."""
    config = replace(config, direct_num_workers=workers, direct_running_mode="multi_processing")
    source = make_ingest_source(config)
    options = pipeline_options(config, [])
    started = time.monotonic()
    with watch_ingest_progress(options, len(keys), log) as progress_dir:
        pipeline = beam.Pipeline(options=options)
        build_pipeline(pipeline, source, keys, config, output_dir, progress_dir)
        pipeline.run().wait_until_finish()
    return time.monotonic() - started


def shard_digests(output_dir: Path, num_shards: int, read: Callable[[bytes], bytes]) -> dict[str, str]:
    """``<split>/<shard file>`` -> SHA-256 of ``read(file bytes)``, for every shard."""
    return {
        f"{split}/{path.name}": hashlib.sha256(read(path.read_bytes())).hexdigest()
        for split in SPLITS
        for path in (shard_file(output_dir, split, shard, num_shards) for shard in range(num_shards))
    }


def measure(
    name: str, config: IngestConfig, root: Path, max_records: int | None, repeats: int
) -> tuple[list[dict], dict]:
    """The two entries of one source and its details (seconds, rates, output checks).

    Args:
        name: The source's name in the results.
        config: Its ingest.
        root: Folder of the outputs.
        max_records: Ingest only the first this many keys (``--quick``); None = all.
        repeats: Times each of the three runs is timed; the fastest counts (other processes on the
            machine only ever slow a run down).
    """
    keys = make_ingest_source(config).list_keys()[:max_records]
    size = f"{config.storage_height}x{config.storage_width}"
    num_shards = config.shards_per_split
    runs = {
        "plain": lambda out: plain_loop(config, keys, out),
        "beam_1": lambda out: beam_run(config, keys, out, 1),
        "beam_2": lambda out: beam_run(config, keys, out, 2),
    }
    seconds, records, shard_bytes = {}, {}, {}
    for run, timed in runs.items():
        times = []
        for attempt in range(repeats):
            log.info(
                "bench_ingest: %s, %s (%d of %d): %d records", name, run, attempt + 1, repeats, len(keys)
            )
            output_dir = root / name / f"{run}-{attempt}"
            times.append(timed(output_dir))
            if attempt == 0:
                records[run] = shard_digests(output_dir, num_shards, gzip.decompress)
                shard_bytes[run] = shard_digests(output_dir, num_shards, bytes)
            shutil.rmtree(output_dir)
        seconds[run] = min(times)
    rates = {run: len(keys) / value for run, value in seconds.items()}
    fixed_1 = seconds["beam_1"] - seconds["plain"]
    fixed_2 = seconds["beam_2"] - seconds["plain"] / 2
    few = (
        f"only {len(keys)} records exist, so Beam's fixed cost dominates. " if len(keys) < FEW_RECORDS else ""
    )
    scaling_notes = (
        f"{few}beam_1 {seconds['beam_1']:.1f} s = plain loop {seconds['plain']:.1f} s + {fixed_1:.1f} s; "
        f"beam_2 {seconds['beam_2']:.1f} s = half the loop + {fixed_2:.1f} s. The fixed cost (runner set-up, "
        "worker processes starting (Beam import), the stages after the records, shut-down) does not "
        "shrink with workers, and the workers share the 2 cores with the runner process"
    )
    overhead_notes = (
        f"{few}plain {seconds['plain']:.1f} s, beam_1 {seconds['beam_1']:.1f} s: {fixed_1:.1f} s of fixed "
        "cost (runner set-up, the worker process starting (Beam import), the stages after the records, "
        "shut-down); the per-record work is the same function in both"
    )
    entries = [
        make_entry(
            f"ingest scaling, {name}",
            f"records/s with 2 DirectRunner workers / with 1 worker, {len(keys)} records {size}",
            rates["beam_2"],
            rates["beam_1"],
            "records/s",
            SCALING_GOAL,
            notes=scaling_notes,
        ),
        make_entry(
            f"ingest overhead, {name}",
            f"records/s with 1 DirectRunner worker / a plain single-process loop, {len(keys)} records {size}",
            rates["beam_1"],
            rates["plain"],
            "records/s",
            OVERHEAD_GOAL,
            notes=overhead_notes,
        ),
    ]
    details = {
        "records": len(keys),
        "size": size,
        "shards_per_split": num_shards,
        "repeats": repeats,
        "seconds": {run: round(value, 2) for run, value in seconds.items()},
        "records_per_second": {run: round(value, 2) for run, value in rates.items()},
        "same_records_as_plain_loop": records["beam_1"] == records["plain"] == records["beam_2"],
        "beam_shards_byte_identical": shard_bytes["beam_1"] == shard_bytes["beam_2"],
    }
    return entries, details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="result JSON file")
    parser.add_argument("--scenes", type=int, default=1000, help="synthetic scenes to ingest")
    parser.add_argument("--height", type=int, default=120, help="render and storage height (pixels)")
    parser.add_argument("--width", type=int, default=160, help="render and storage width (pixels)")
    parser.add_argument("--nyu-frames", type=int, default=200, help="frames of the NYU labelled fixture")
    parser.add_argument("--repeats", type=int, default=2, help="timings of each run (the fastest counts)")
    parser.add_argument(
        "--quick", action="store_true", help=f"tiny sizes: checks the wiring, not the numbers ({QUICK})"
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        choices=("synthetic", "real_samples", "nyu_labeled"),
        default=["synthetic", "real_samples", "nyu_labeled"],
        help="sources to measure",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.quick:
        args.scenes, args.nyu_frames, args.height, args.width = QUICK_SCENES, QUICK_NYU_FRAMES, *QUICK_SIZE
        args.repeats = 1
    max_records = QUICK_REAL_RECORDS if args.quick else None

    entries, details = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as temp:
        root = Path(temp)
        for name in args.sources:
            if name == "synthetic":
                config = synthetic_config(args.scenes, args.height, args.width)
            elif name == "real_samples":
                config = real_samples_config()
            else:
                config = nyu_labeled_config(root, args.nyu_frames, args.height, args.width)
            if config is None:
                details[name] = {"skipped": "the real samples of configs/real_samples.yaml are absent"}
                continue
            source_entries, details[name] = measure(name, config, root, max_records, args.repeats)
            entries += source_entries
    write_result(args.out, entries, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

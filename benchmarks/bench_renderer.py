"""Synthetic-room rendering speed on one core at 320 x 240 (target: 20 scenes/s/core).

Usage::

    python -m benchmarks.bench_renderer [--scenes 100] [--out result.json]

The process is pinned to one CPU core. The headline number divides the scenes by
the CPU time the process used: on a shared machine, wall-clock time also counts
the time the core spent on other processes, so it is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from keras_depth.sources.synthetic_rooms import render_scene

TARGET_SCENES_PER_SECOND = 20.0
WARMUP_SCENES = 2


def _pin_to_one_core() -> int | None:
    """Restricts this process to one of its allowed CPU cores; returns it (None if unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def run(scenes: int, height: int, width: int, seed: int) -> dict:
    """Renders ``scenes`` scenes and returns the benchmark result."""
    core = _pin_to_one_core()
    for index in range(WARMUP_SCENES):
        render_scene(seed, scenes + index, height, width)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for index in range(scenes):
        render_scene(seed, index, height, width)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    per_core = scenes / cpu
    return {
        "benchmark": "renderer",
        "scenes_per_second_per_core": round(per_core, 2),
        "target": TARGET_SCENES_PER_SECOND,
        "ratio_to_target": round(per_core / TARGET_SCENES_PER_SECOND, 3),
        "scenes_per_second_wall": round(scenes / wall, 2),
        "scenes": scenes,
        "height": height,
        "width": width,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "pinned_core": core,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100, help="scenes to render (default 100)")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    result = run(args.scenes, args.height, args.width, args.seed)
    text = json.dumps(result)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()

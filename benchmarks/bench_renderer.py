"""Synthetic-room rendering speed on one core at 320 x 240 (target: 20 scenes/s/core).

Usage::

    python -m benchmarks.bench_renderer [--scenes 100] [--quick] [--out result.json]

The process is pinned to one CPU core. The headline number divides the scenes by
the CPU time the process used: on a shared machine, wall-clock time also counts
the time the core spent on other processes, so it is reported beside it. The entry
(:mod:`benchmarks.entries`) compares it with the 20 scenes/s target (goal: ratio >= 1).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchmarks.entries import make_entry, write_result
from keras_depth.sources.synthetic_rooms import render_scene

TARGET_SCENES_PER_SECOND = 20.0
WARMUP_SCENES = 2
DEFAULT_SCENES = 100
QUICK_SCENES = 5


def _pin_to_one_core() -> int | None:
    """Restricts this process to one of its allowed CPU cores; returns it (None if unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def run(scenes: int, height: int, width: int, seed: int) -> dict:
    """Renders ``scenes`` scenes and returns the measurements (scenes/s per core of CPU time, wall)."""
    core = _pin_to_one_core()
    for index in range(WARMUP_SCENES):
        render_scene(seed, scenes + index, height, width)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for index in range(scenes):
        render_scene(seed, index, height, width)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    return {
        "scenes_per_second_per_core": round(scenes / cpu, 2),
        "scenes_per_second_wall": round(scenes / wall, 2),
        "scenes": scenes,
        "height": height,
        "width": width,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "pinned_core": core,
    }


def renderer_entry(result: dict) -> dict:
    """The entry: scenes/s per core / the 20 scenes/s target."""
    return make_entry(
        name="renderer",
        what=f"synthetic scenes/s per core (CPU time) at {result['width']}x{result['height']} / the target",
        value=result["scenes_per_second_per_core"],
        baseline=TARGET_SCENES_PER_SECOND,
        unit="scenes/s",
        goal=1.0,
        notes=f"one pinned core; wall clock {result['scenes_per_second_wall']:g} scenes/s",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenes", type=int, default=None, help=f"scenes to render (default {DEFAULT_SCENES})"
    )
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SCENES} scenes")
    parser.add_argument("--out", type=Path, required=True, help="result JSON file")
    args = parser.parse_args(argv)
    scenes = args.scenes or (QUICK_SCENES if args.quick else DEFAULT_SCENES)
    result = run(scenes, args.height, args.width, args.seed)
    write_result(args.out, [renderer_entry(result)], result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

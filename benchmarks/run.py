"""``make bench``: runs every ``benchmarks/bench_*.py`` and collects their JSON results.

Each benchmark measures ratios within one run (e.g. scenes/s against a target,
batched against unbatched serving), prints them and writes one JSON file;
this runner writes ``<out>/<name>.json`` per benchmark and ``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Module names of all benchmarks, sorted."""
    return sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="result directory")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run (default: all)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    failed = []
    for name in discover():
        if args.only and name not in args.only and name.removeprefix("bench_") not in args.only:
            continue
        result_path = args.out / f"{name}.json"
        print(f"== {name}", flush=True)
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}", "--out", str(result_path)],
            env={"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ},
        )
        if completed.returncode != 0 or not result_path.is_file():
            failed.append(name)
            continue
        summary[name] = {
            "seconds": round(time.monotonic() - started, 1),
            "result": json.loads(result_path.read_text()),
        }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"results: {args.out / 'summary.json'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

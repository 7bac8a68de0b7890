"""Bounded soak of the REST server: ``make soak`` (= ``python -m benchmarks.soak --out runs/soak``).

Starts ``serving.server`` (default flags: request limits, timeouts and connection limit on) on a free
loopback port and drives it for ``--seconds`` (default 60) from ``--clients`` (default 16) closed-loop
clients, each on its own keep-alive session, cycling through a mix of requests:

- ``png``: one 120x160 PNG as base64 to ``predict_image_bytes`` (as ``serving.client`` sends);
- ``floats``: one 48x64 float image to ``serving_default`` (columnar ``inputs``);
- ``status``: ``GET /v1/models/{model}``;
- ``bad``: malformed JSON, which must get 400.

A request fails when its status is not the expected one (200, or 400 for ``bad``) or it raises
(connection error, timeout). Reported: requests served, failures, latency p50/p99 per kind and over
all, throughput, and the server's resident memory (RSS) after the warm-up, at the end and at its
peak (sampled every ``RSS_SAMPLE_S``). Results go to ``<out>/soak.json`` and ``<out>/soak.md``.

The model is ``--model_base_path`` (default ``runs/serving/depth``) when it holds a version; otherwise
the default preset's untrained network is exported as the export stage does
(``benchmarks.bench_serving.build_model``) and served instead. This is not a ``bench_*`` module, so ``make bench`` does
not run it.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import requests
from PIL import Image

from benchmarks.bench_serving import MODEL_NAME, build_model, start_server

DEFAULT_CLIENTS = 16
DEFAULT_SECONDS = 60.0
DEFAULT_MODEL_BASE_PATH = Path("runs/serving/depth")
DEFAULT_OUT = Path("runs/soak")
WARMUP_ROUNDS = 2
REQUEST_TIMEOUT_S = 60
RSS_SAMPLE_S = 1.0
PNG_HW = (120, 160)
FLOAT_HW = (48, 64)
SEED = 0
MIB = 2**20
KINDS = ("png", "floats", "status", "bad")


def _request_mix(model: str) -> list[tuple[str, str, str, bytes | None, int]]:
    """(kind, method, path, body, expected status) cycled through by every client."""
    rng = np.random.default_rng(SEED)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (*PNG_HW, 3), dtype=np.uint8)).save(buffer, format="PNG")
    png = {
        "signature_name": "predict_image_bytes",
        "instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}],
    }
    floats = {"inputs": {"images": rng.uniform(0, 255, (1, *FLOAT_HW, 3)).round(1).tolist()}}
    predict = f"/v1/models/{model}:predict"
    return [
        ("png", "POST", predict, json.dumps(png).encode(), 200),
        ("floats", "POST", predict, json.dumps(floats).encode(), 200),
        ("status", "GET", f"/v1/models/{model}", None, 200),
        ("bad", "POST", predict, b'{"instances": [1, 2', 400),
    ]


class _RssMonitor:
    """Samples a process's RSS on a thread; ``peak`` is the largest sample (bytes)."""

    def __init__(self, process: psutil.Process):
        self.process = process
        self.peak = process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> _RssMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _client(url: str, mix: list, offset: int, deadline: float) -> list[tuple[str, float, bool, str]]:
    """Closed-loop requests until ``deadline``: (kind, latency s, ok, failure detail) each."""
    results = []
    index = offset
    with requests.Session() as session:
        while time.monotonic() < deadline:
            kind, method, path, body, expected = mix[index % len(mix)]
            index += 1
            start = time.perf_counter()
            try:
                response = session.request(
                    method,
                    url + path,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=REQUEST_TIMEOUT_S,
                )
                ok, detail = response.status_code == expected, f"HTTP {response.status_code}"
            except requests.RequestException as error:
                ok, detail = False, type(error).__name__
            results.append((kind, time.perf_counter() - start, ok, detail))
    return results


def _latency_ms(latencies: list[float], percentile: float) -> float | None:
    return round(float(np.percentile(np.asarray(latencies) * 1e3, percentile)), 1) if latencies else None


def _warm_up(url: str, mix: list) -> None:
    """Sends every request kind ``WARMUP_ROUNDS`` times (first calls trace the model's functions)."""
    with requests.Session() as session:
        for _ in range(WARMUP_ROUNDS):
            for _, method, path, body, _ in mix:
                session.request(method, url + path, data=body, timeout=REQUEST_TIMEOUT_S)


def _percentiles(latencies: list[float]) -> dict:
    return {"count": len(latencies), "p50": _latency_ms(latencies, 50), "p99": _latency_ms(latencies, 99)}


def drive(url: str, server: psutil.Process, clients: int, seconds: float) -> dict:
    """Warms up, then runs ``clients`` closed-loop clients for ``seconds``; returns the figures."""
    mix = _request_mix(MODEL_NAME)
    _warm_up(url, mix)
    rss_before = server.memory_info().rss
    start = time.monotonic()
    deadline = start + seconds
    with _RssMonitor(server) as monitor, ThreadPoolExecutor(clients) as pool:
        batches = pool.map(lambda offset: _client(url, mix, offset, deadline), range(clients))
        results = [result for batch in batches for result in batch]
    elapsed = time.monotonic() - start
    rss_after = server.memory_info().rss
    by_kind: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for kind, latency, ok, detail in results:
        by_kind[kind].append(latency)
        if not ok:
            failures[f"{kind}: {detail}"] += 1
    latency_ms = {kind: _percentiles(by_kind[kind]) for kind in KINDS}
    latency_ms["all"] = _percentiles([latency for _, latency, _, _ in results])
    return {
        "requests": len(results),
        "failures": sum(failures.values()),
        "failure_kinds": dict(failures),
        "seconds": round(elapsed, 1),
        "requests_per_s": round(len(results) / elapsed, 1),
        "latency_ms": latency_ms,
        "server_rss_mib": {
            "before": round(rss_before / MIB, 1),
            "after": round(rss_after / MIB, 1),
            "peak": round(max(monitor.peak, rss_after) / MIB, 1),
        },
        "server_alive": server.is_running() and server.status() != psutil.STATUS_ZOMBIE,
    }


def markdown(result: dict) -> str:
    """The result as Markdown tables."""
    rss = result["server_rss_mib"]
    lines = [
        f"Soak: {result['clients']} clients, {result['seconds']} s, model {result['model']}",
        "",
        "| requests served | failures | requests/s | p50 (ms) | p99 (ms) | server RSS before / after / peak (MiB) |",
        "|---|---|---|---|---|---|",
        f"| {result['requests']} | {result['failures']} | {result['requests_per_s']} | "
        f"{result['latency_ms']['all']['p50']} | {result['latency_ms']['all']['p99']} | "
        f"{rss['before']} / {rss['after']} / {rss['peak']} |",
        "",
        "| request kind | count | p50 (ms) | p99 (ms) |",
        "|---|---|---|---|",
    ]
    for kind in KINDS:
        figures = result["latency_ms"][kind]
        lines.append(f"| {kind} | {figures['count']} | {figures['p50']} | {figures['p99']} |")
    if result["failure_kinds"]:
        lines += [
            "",
            "Failures: " + ", ".join(f"{name} x{count}" for name, count in result["failure_kinds"].items()),
        ]
    return "\n".join(lines) + "\n"


def run(model_base_path: Path | None, clients: int, seconds: float, workdir: Path) -> dict:
    """Starts the server on the model (exporting one when there is none), soaks it, stops it."""
    if model_base_path is None:
        model_base_path = workdir / MODEL_NAME
        build_model(model_base_path)
        model = "untrained default-preset export (benchmarks.bench_serving.build_model)"
    else:
        model = str(model_base_path)
    process, url = start_server(model_base_path, [], workdir / "server.log")
    try:
        result = drive(url, psutil.Process(process.pid), clients, seconds)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(REQUEST_TIMEOUT_S)
    log = (workdir / "server.log").read_text(errors="replace")
    return {
        "benchmark": "serving_soak",
        "clients": clients,
        "model": model,
        **result,
        "server_exit_code": process.returncode,
        "server_log_tracebacks": log.count("Traceback"),
        "environment": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def _has_version(path: Path) -> bool:
    return path.is_dir() and any(child.name.isdigit() for child in path.iterdir())


def main(argv: list[str] | None = None) -> int:
    """Runs the soak, prints the Markdown table and writes ``soak.json`` and ``soak.md``."""
    parser = argparse.ArgumentParser(description="Bounded soak of the REST model server.")
    parser.add_argument(
        "--model_base_path",
        type=Path,
        default=DEFAULT_MODEL_BASE_PATH,
        help=f"Versioned model directory (default {DEFAULT_MODEL_BASE_PATH}); when it holds no version, "
        "an untrained export of the default preset is served.",
    )
    parser.add_argument(
        "--clients", type=int, default=DEFAULT_CLIENTS, help="Concurrent clients (default 16)."
    )
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="Soak duration (default 60).")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"Result directory (default {DEFAULT_OUT})."
    )
    args = parser.parse_args(argv)
    model_base_path = args.model_base_path.absolute() if _has_version(args.model_base_path) else None
    if model_base_path is None:
        print(f"no model version under {args.model_base_path}: serving an untrained export", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="soak_") as workdir:
        result = run(model_base_path, args.clients, args.seconds, Path(workdir))
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(result)
    (args.out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "soak.md").write_text(table)
    print(table)
    print(f"wrote {args.out / 'soak.json'} and {args.out / 'soak.md'}")
    healthy = result["failures"] == 0 and result["server_alive"] and not result["server_log_tracebacks"]
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())

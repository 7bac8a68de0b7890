"""Serving throughput with and without server-side batching, in one run.

    python -m benchmarks.bench_serving --out runs/benchmarks/bench_serving.json

Exports the default preset's coarse+fine network (untrained, seeded weights) exactly as the export
stage does, then starts ``serving.server`` twice on a free
loopback port -- batching off, then on -- and drives each with the same closed-loop load: 8
concurrent clients, each sending its requests back to back (one PNG per request, as base64, to
``predict_image_bytes``, like ``serving.client``). Reports requests/s, latency percentiles and
the ratio batched / unbatched; ``--out`` (a ``.json`` file or a directory) receives the result.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import requests
import tensorflow as tf
from PIL import Image

from components.export.signatures import ServingGeometry, write_saved_model
from keras_depth.models import build_coarse_model, build_fine_model
from pipeline.config import DEFAULT_CONFIG, load_config

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "depth"
CLIENTS = 8
DEFAULT_REQUESTS_PER_CLIENT = 25
WARMUP_REQUESTS = 4
IMAGE_HW = (120, 160)
DEFAULT_MAX_BATCH_SIZE = 8
# Longer than the server's 5 ms default so closed-loop clients on a small CPU fill batches.
DEFAULT_BATCH_TIMEOUT_MS = 20.0
SERVER_START_TIMEOUT_S = 120
REQUEST_TIMEOUT_S = 120
SEED = 0
RESULT_NAME = "bench_serving.json"
SERVER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}


def build_model(base_path: Path) -> None:
    """Exports an untrained default-preset fine network, exactly as the export stage does, as version 1.

    The weights do not matter for throughput; the graph (preprocessing, coarse and fine networks,
    upsampling) is the one a trained model serves.
    """
    config = load_config(DEFAULT_CONFIG)
    keras.utils.set_random_seed(SEED)
    fine = build_fine_model(config.model, build_coarse_model(config.model))
    geometry = ServingGeometry(
        frame_height=config.ingest.storage_height,
        frame_width=config.ingest.storage_width,
        input_height=config.model.input_height,
        input_width=config.model.input_width,
    )
    write_saved_model(fine, geometry, config.export.upsample_to_input, base_path / "1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(base_path: Path, flags: list[str], log_path: Path) -> tuple[subprocess.Popen, str]:
    """Starts ``serving.server``; returns it and its URL once the model is AVAILABLE."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "serving.server",
        f"--rest_api_port={port}",
        f"--model_name={MODEL_NAME}",
    ]
    command += [f"--model_base_path={base_path}", "--file_system_poll_wait_seconds=0", *flags]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env={**os.environ, **SERVER_ENV}, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{url}/v1/models/{MODEL_NAME}", timeout=REQUEST_TIMEOUT_S).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(
        f"server did not start; see {log_path}:\n{log_path.read_text(errors='replace')[-2000:]}"
    )


def _payloads(count: int) -> list[bytes]:
    rng = np.random.default_rng(SEED)
    bodies = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)).save(buffer, format="PNG")
        instance = {"b64": base64.b64encode(buffer.getvalue()).decode()}
        bodies.append(json.dumps({"signature_name": "predict_image_bytes", "instances": [instance]}).encode())
    return bodies


def _batch_totals(url: str) -> np.ndarray:
    """(signature calls, requests served) so far, from the server's batching histogram."""
    text = requests.get(f"{url}/monitoring/prometheus/metrics", timeout=REQUEST_TIMEOUT_S).text
    totals = np.zeros(2)
    for index, suffix in enumerate(("count", "sum")):
        prefix = f":tensorflow:serving:batching:requests_per_batch_{suffix}{{"
        totals[index] = sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
        )
    return totals


def drive(url: str, payloads: list[bytes], requests_per_client: int) -> dict:
    """Closed-loop load from ``CLIENTS`` threads after a warm-up; returns throughput and latencies."""
    endpoint = f"{url}/v1/models/{MODEL_NAME}:predict"

    def client(index: int, count: int) -> list[float]:
        latencies = []
        with requests.Session() as session:
            for request in range(count):
                body = payloads[(index * count + request) % len(payloads)]
                start = time.perf_counter()
                response = session.post(
                    endpoint,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=REQUEST_TIMEOUT_S,
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)
        return latencies

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS), [WARMUP_REQUESTS] * CLIENTS))
        before = _batch_totals(url)
        start = time.perf_counter()
        results = pool.map(client, range(CLIENTS), [requests_per_client] * CLIENTS)
        latencies = [latency for result in results for latency in result]
        elapsed = time.perf_counter() - start
    calls, served = _batch_totals(url) - before
    latencies_ms = np.asarray(latencies) * 1e3
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms_p50": round(float(np.percentile(latencies_ms, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(latencies_ms, 95)), 2),
        "signature_calls": int(calls),
        "mean_requests_per_call": round(float(served / calls), 2) if calls else None,
    }


def run(requests_per_client: int, max_batch_size: int, batch_timeout_ms: float) -> dict:
    """Runs both modes; returns the JSON-able result."""
    payloads = _payloads(CLIENTS * WARMUP_REQUESTS)
    modes = {
        "unbatched": [],
        "batched": [
            "--enable_batching",
            f"--max_batch_size={max_batch_size}",
            f"--batch_timeout_ms={batch_timeout_ms}",
        ],
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as workdir:
        base_path = Path(workdir) / MODEL_NAME
        build_model(base_path)
        for mode, flags in modes.items():
            process, url = start_server(base_path, flags, Path(workdir) / f"{mode}.log")
            try:
                results[mode] = drive(url, payloads, requests_per_client)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(REQUEST_TIMEOUT_S)
            print(f"{mode}: {results[mode]}", file=sys.stderr)
    ratio = results["batched"]["requests_per_s"] / results["unbatched"]["requests_per_s"]
    return {
        "benchmark": "serving_batching",
        "metric": "requests_per_s ratio batched / unbatched",
        "ratio": round(ratio, 3),
        "clients": CLIENTS,
        "requests_per_client": requests_per_client,
        "image_hw": list(IMAGE_HW),
        "max_batch_size": max_batch_size,
        "batch_timeout_ms": batch_timeout_ms,
        "results": results,
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints the ratio and writes the JSON result."""
    parser = argparse.ArgumentParser(description="Serving throughput with and without server-side batching.")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"Result .json file or directory (gets {RESULT_NAME})."
    )
    parser.add_argument("--requests-per-client", type=int, default=DEFAULT_REQUESTS_PER_CLIENT)
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE)
    parser.add_argument("--batch-timeout-ms", type=float, default=DEFAULT_BATCH_TIMEOUT_MS)
    args = parser.parse_args(argv)
    result = run(args.requests_per_client, args.max_batch_size, args.batch_timeout_ms)
    print(f"batched / unbatched throughput: {result['ratio']:.3f}x")
    if args.out is not None:
        path = args.out if args.out.suffix == ".json" else args.out / RESULT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

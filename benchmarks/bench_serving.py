"""Serving: what the REST layer costs over an in-process call, and what server-side batching gains.

    python -m benchmarks.bench_serving --out runs/benchmarks/bench_serving.json [--quick]

Exports the default preset's coarse+fine network (untrained, seeded) exactly as the export stage
does (:func:`benchmarks.exported_model.export_untrained`), then

1. in this process, loads it as the server does (:class:`serving.servable.Servable`) and times
   ``serving_default`` on one decoded 120x160 RGB image (the preset's stored frame size), computing
   the outputs a REST request gets by default, and ``predict_image_bytes`` on its PNG (so the notes
   can tell decoding from the HTTP layer);
2. starts ``serving.server`` (batching off) on a free loopback port and times one client sending the
   same image as a base64 PNG to ``:predict`` (``predict_image_bytes``), request after request, and
   the model status GET (the HTTP round trip alone); then drives it with 8 concurrent clients, each
   sending its requests back to back (closed loop);
3. restarts the server with batching on and drives it with the same 8 clients.

During each 8-client load the CPU time of the server process and of this process (the clients) is
measured, so the notes can say whether the cores had room for batching to use.

Entries (:mod:`benchmarks.entries`): REST p50 / in-process p50 (goal <= 1.3); REST p99 / in-process
p99 (no fixed goal: the tail of a shared machine); 8-client requests/s batched / unbatched (goal
>= 1.5 where the device has spare parallelism).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import gc
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import requests
import tensorflow as tf
from PIL import Image

from benchmarks.entries import make_entry, write_result
from benchmarks.environment import cpu_cores
from benchmarks.exported_model import call_latencies_ms, export_untrained
from pipeline.config import DEFAULT_CONFIG, load_config
from serving.contract import BYTES_INPUT, BYTES_SIGNATURE, IMAGES_INPUT, SERVING_DEFAULT
from serving.servable import Servable

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "depth"
VERSION = 1
CLIENTS = 8
IMAGE_HW = (120, 160)
MAX_BATCH_SIZE = CLIENTS
# Longer than the server's 5 ms default so closed-loop clients on a small CPU fill batches.
BATCH_TIMEOUT_MS = 20.0
SERVER_START_TIMEOUT_S = 120
REQUEST_TIMEOUT_S = 120
SEED = 0
# Serving is measured on the CPU, the server and the in-process call alike (a GPU held by this
# process would leave the server none); make bench-gpu times the SavedModel on a GPU.
SERVER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
REST_P50_GOAL = 1.3
BATCHING_GOAL = 1.5
# Cores at least this busy (server plus clients, as a fraction of all cores) leave batching no room.
BUSY_FRACTION = 0.8

log = logging.getLogger("keras_depth.bench")


@dataclass(frozen=True)
class Load:
    """How many requests each measurement makes.

    Attributes:
        latency_calls: Timed calls of the in-process and the one-client REST latency.
        requests_per_client: Timed requests of each of the 8 clients, per server.
        warmup: Untimed calls (per client) before each measurement.
    """

    latency_calls: int
    requests_per_client: int
    warmup: int


LOAD = Load(latency_calls=200, requests_per_client=40, warmup=4)
QUICK_LOAD = Load(latency_calls=5, requests_per_client=2, warmup=1)


def build_model(base_path: Path) -> None:
    """Exports the untrained default-preset network as version 1 under ``base_path`` (a model base path)."""
    export_untrained(load_config(DEFAULT_CONFIG), base_path / str(VERSION))


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
    with open(log_path, "wb") as server_log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **SERVER_ENV},
            stdout=server_log,
            stderr=subprocess.STDOUT,
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


@contextlib.contextmanager
def running_server(base_path: Path, flags: list[str], log_path: Path) -> Iterator[tuple[psutil.Process, str]]:
    """:func:`start_server` for the block (yields the server's process and URL), then SIGTERM and wait."""
    process, url = start_server(base_path, flags, log_path)
    try:
        yield psutil.Process(process.pid), url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(REQUEST_TIMEOUT_S)


def random_pngs(count: int) -> list[bytes]:
    """``count`` PNG files of seeded random RGB noise of :data:`IMAGE_HW` pixels."""
    rng = np.random.default_rng(SEED)
    images = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def predict_body(png: bytes) -> bytes:
    """The JSON body of a ``:predict`` request for one image as base64 to ``predict_image_bytes``."""
    instance = {"b64": base64.b64encode(png).decode()}
    return json.dumps({"signature_name": BYTES_SIGNATURE, "instances": [instance]}).encode()


def decoded_batch(png: bytes) -> np.ndarray:
    """float32 [1, H, W, 3] RGB 0..255 of a PNG (what ``serving_default`` takes)."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)[None]


def _post(session: requests.Session, url: str, body: bytes) -> float:
    """Seconds one ``:predict`` request took (raises on an HTTP error)."""
    started = time.perf_counter()
    response = session.post(
        f"{url}/v1/models/{MODEL_NAME}:predict",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=REQUEST_TIMEOUT_S,
    )
    response.raise_for_status()
    return time.perf_counter() - started


def _get_status(session: requests.Session, url: str) -> float:
    """Seconds one model status request took (raises on an HTTP error)."""
    started = time.perf_counter()
    session.get(f"{url}/v1/models/{MODEL_NAME}", timeout=REQUEST_TIMEOUT_S).raise_for_status()
    return time.perf_counter() - started


def rest_latencies_ms(url: str, body: bytes | None, calls: int, warmup: int) -> np.ndarray:
    """Milliseconds of each of ``calls`` requests from one client, one after the other, after ``warmup``.

    Args:
        url: The server.
        body: A ``:predict`` body, or None for the model status request (the HTTP round trip alone).
        calls: Timed requests.
        warmup: Untimed requests first.
    """
    with requests.Session() as session:

        def request() -> float:
            return _get_status(session, url) if body is None else _post(session, url, body)

        for _ in range(warmup):
            request()
        return np.array([request() for _ in range(calls)]) * 1e3


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


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def drive(
    url: str, server: psutil.Process, bodies: list[bytes], requests_per_client: int, warmup: int
) -> dict:
    """Closed-loop load from :data:`CLIENTS` threads after a warm-up; throughput, latency and CPU use.

    Returns:
        ``requests_per_s``, latency percentiles (ms), ``signature_calls`` and
        ``mean_requests_per_call`` (from the server's batching histogram), and the cores the server and
        this process (the clients) kept busy on average (CPU seconds / wall seconds).
    """

    def client(index: int, count: int) -> list[float]:
        with requests.Session() as session:
            return [_post(session, url, bodies[(index + request) % len(bodies)]) for request in range(count)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS), [warmup] * CLIENTS))
        calls_before, server_before = _batch_totals(url), _cpu_seconds(server)
        client_before, started = time.process_time(), time.perf_counter()
        results = pool.map(client, range(CLIENTS), [requests_per_client] * CLIENTS)
        latencies_ms = np.array([latency for result in results for latency in result]) * 1e3
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        server_cpu = _cpu_seconds(server) - server_before
    calls, served = _batch_totals(url) - calls_before
    return {
        "requests": len(latencies_ms),
        "seconds": round(elapsed, 3),
        "requests_per_s": len(latencies_ms) / elapsed,
        "latency_ms_p50": float(np.percentile(latencies_ms, 50)),
        "latency_ms_p95": float(np.percentile(latencies_ms, 95)),
        "signature_calls": int(calls),
        "mean_requests_per_call": float(served / calls) if calls else None,
        "server_cores_busy": server_cpu / elapsed,
        "client_cores_busy": client_cpu / elapsed,
        "server_cpu_ms_per_request": server_cpu / len(latencies_ms) * 1e3,
    }


def measure(load: Load, workdir: Path) -> dict:
    """Runs the three measurements of the module docstring; returns every number."""
    base_path = workdir / MODEL_NAME
    build_model(base_path)
    pngs = random_pngs(CLIENTS)
    image = decoded_batch(pngs[0])
    servable = Servable(MODEL_NAME, VERSION, base_path / str(VERSION))
    in_process = call_latencies_ms(
        servable, SERVING_DEFAULT, {IMAGES_INPUT: image}, load.latency_calls, load.warmup
    )
    png_bytes = np.array([pngs[0]], dtype=object)
    in_process_bytes = call_latencies_ms(
        servable, BYTES_SIGNATURE, {BYTES_INPUT: png_bytes}, load.latency_calls, load.warmup
    )
    del servable
    gc.collect()
    bodies = [predict_body(png) for png in pngs]
    batching_flags = [
        "--enable_batching",
        f"--max_batch_size={MAX_BATCH_SIZE}",
        f"--batch_timeout_ms={BATCH_TIMEOUT_MS}",
    ]
    throughput = {}
    with running_server(base_path, [], workdir / "unbatched.log") as (server, url):
        rest = rest_latencies_ms(url, bodies[0], load.latency_calls, load.warmup)
        status = rest_latencies_ms(url, None, load.latency_calls, load.warmup)
        throughput["unbatched"] = drive(url, server, bodies, load.requests_per_client, load.warmup)
    with running_server(base_path, batching_flags, workdir / "batched.log") as (server, url):
        throughput["batched"] = drive(url, server, bodies, load.requests_per_client, load.warmup)
    for mode, numbers in throughput.items():
        log.info("%s: %.1f requests/s", mode, numbers["requests_per_s"])
    result = {
        "image_hw": list(IMAGE_HW),
        "clients": CLIENTS,
        "load": dataclasses.asdict(load),
        "batching_flags": batching_flags,
        "throughput": throughput,
    }
    latencies = {
        "in_process": in_process,
        "in_process_bytes": in_process_bytes,
        "rest": rest,
        "status": status,
    }
    for name, milliseconds in latencies.items():
        result[f"{name}_ms"] = {f"p{q}": float(np.percentile(milliseconds, q)) for q in (50, 90, 99)}
    return result


def batching_notes(result: dict, cores: int) -> str:
    """What limits the batched / unbatched ratio, from the CPU use and batch sizes of both loads."""
    unbatched, batched = result["throughput"]["unbatched"], result["throughput"]["batched"]
    busy = unbatched["server_cores_busy"] + unbatched["client_cores_busy"]
    mean_batch = batched["mean_requests_per_call"] or 0.0
    cpu_bound = unbatched["server_cpu_ms_per_request"] / batched["server_cpu_ms_per_request"]
    summary = (
        f"unbatched, the server kept {unbatched['server_cores_busy']:.2f} and the {CLIENTS} clients "
        f"{unbatched['client_cores_busy']:.2f} of {cores} cores busy; batched, {mean_batch:.1f} requests "
        f"per call and server CPU {batched['server_cpu_ms_per_request']:.3g} ms/request "
        f"(unbatched {unbatched['server_cpu_ms_per_request']:.3g}: at most {cpu_bound:.2f}x where CPU-bound)"
    )
    if batched["requests_per_s"] / unbatched["requests_per_s"] >= BATCHING_GOAL:
        return summary
    if busy >= BUSY_FRACTION * cores:
        return (
            f"no spare parallelism: {summary}. The cores are full without batching, so merging requests "
            "only saves the model's per-call overhead"
        )
    if mean_batch < MAX_BATCH_SIZE / 2:
        return f"batches stay small: {summary}"
    return (
        f"{summary}. Batches are full but cores idle: per-request Python work outside the model (HTTP, "
        "JSON, base64; one interpreter lock) bounds throughput, batching only shortens the model's part"
    )


def serving_entries(result: dict, cores: int) -> list[dict]:
    """The REST overhead (p50, p99) and batching entries."""
    rest, in_process = result["rest_ms"], result["in_process_ms"]
    unbatched, batched = result["throughput"]["unbatched"], result["throughput"]["batched"]
    image = "x".join(str(side) for side in IMAGE_HW)
    decoding = max(0.0, result["in_process_bytes_ms"]["p50"] - in_process["p50"])
    round_trip = result["status_ms"]["p50"]
    overhead = (
        f"REST adds {rest['p50'] - in_process['p50']:.2g} ms: {decoding:.1f} ms decoding the PNG (in-process "
        f"predict_image_bytes), {round_trip:.2g} ms an HTTP round trip (model status GET: client, uvicorn, "
        "FastAPI), the rest JSON and base64 decoding, worker-thread hand-offs and encoding the response"
    )
    return [
        make_entry(
            name="serving REST p50",
            what=f"median ms of REST :predict, one {image} b64 PNG, one client / of the in-process "
            "SavedModel call on the decoded image",
            value=rest["p50"],
            baseline=in_process["p50"],
            unit="ms",
            goal=REST_P50_GOAL,
            goal_op="<=",
            notes=overhead,
        ),
        make_entry(
            name="serving REST p99",
            what=f"99th percentile ms of REST :predict, one {image} b64 PNG / of the in-process call",
            value=rest["p99"],
            baseline=in_process["p99"],
            unit="ms",
            goal=None,
            goal_op="<=",
            notes="no fixed goal: the tail on a shared machine is scheduling noise",
        ),
        make_entry(
            name="serving batching",
            what=f"requests/s of {CLIENTS} closed-loop clients with server-side batching (max batch "
            f"{MAX_BATCH_SIZE}, {BATCH_TIMEOUT_MS:g} ms) / without",
            value=batched["requests_per_s"],
            baseline=unbatched["requests_per_s"],
            unit="req/s",
            goal=BATCHING_GOAL,
            notes=batching_notes(result, cores),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="result JSON file")
    parser.add_argument("--quick", action="store_true", help="a few requests (checks wiring)")
    args = parser.parse_args(argv)
    tf.config.set_visible_devices([], "GPU")  # on the CPU, as the server (SERVER_ENV)
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as workdir:
        result = measure(QUICK_LOAD if args.quick else LOAD, Path(workdir))
    cores = cpu_cores()
    write_result(args.out, serving_entries(result, cores), result | {"cpu_cores": cores})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

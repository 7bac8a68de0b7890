"""Serving test set-up: a tiny stand-in SavedModel with the export contract's signatures, and real
server subprocesses on free loopback ports.

The stand-in computes ``depth = offset + mean(area-resized image) / 255`` on a 6x8 grid, so each
version (offset) gives recognisably different answers, and exposes exactly the exported
signatures: ``serving_default`` (``images`` float32 [N, H, W, 3]) and ``predict_image_bytes``
(``image_bytes`` string [N]), both returning ``depth``, ``log_depth`` [N, 6, 8] and ``depth_full``
[N, H, W].
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import tensorflow as tf
from PIL import Image

from serving.contract import (
    BYTES_SIGNATURE,
    DEPTH_FULL_OUTPUT,
    DEPTH_OUTPUT,
    LOG_DEPTH_OUTPUT,
    SERVING_DEFAULT,
)
from serving.server import SHUTDOWN_MESSAGE

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "depth"
STANDIN_OUTPUT_HW = (6, 8)
# Offsets of the stand-in versions: depth of a black image, in metres.
VERSION_OFFSETS = {1: 1.0, 2: 2.0, 3: 3.0}
SERVER_START_TIMEOUT_S = 90
SERVER_STOP_TIMEOUT_S = 30
REQUEST_TIMEOUT_S = 30
SESSION_MAX_BODY_BYTES = 256 * 1024
SERVER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}


class StandInDepthModel(tf.Module):
    """Depth = offset + mean(image) / 255 on a fixed grid; the export's signatures and outputs."""

    def __init__(self, offset: float):
        super().__init__()
        self.offset = tf.constant(offset, tf.float32)

    def _predict(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        size = tf.shape(images)[1:3]
        small = tf.image.resize(images, STANDIN_OUTPUT_HW, method="area")
        depth = self.offset + tf.reduce_mean(small, axis=-1) / 255.0
        depth_full = tf.image.resize(depth[..., None], size, method="bilinear")[..., 0]
        return {DEPTH_OUTPUT: depth, LOG_DEPTH_OUTPUT: tf.math.log(depth), DEPTH_FULL_OUTPUT: depth_full}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def serve_images(self, images):
        return self._predict(images)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_image_bytes(self, image_bytes):
        decoded = tf.map_fn(
            lambda data: tf.io.decode_image(data, channels=3, expand_animations=False),
            image_bytes,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
        return self._predict(tf.cast(decoded, tf.float32))


def _save_standin(path: Path, offset: float) -> Path:
    module = StandInDepthModel(offset)
    signatures = {SERVING_DEFAULT: module.serve_images, BYTES_SIGNATURE: module.serve_image_bytes}
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


@pytest.fixture(scope="session")
def standin_versions(tmp_path_factory) -> dict[int, Path]:
    """Version -> a saved stand-in SavedModel directory (built once per session)."""
    root = tmp_path_factory.mktemp("standin")
    return {
        version: _save_standin(root / f"offset_{offset:g}", offset)
        for version, offset in VERSION_OFFSETS.items()
    }


def install_version(base_path: Path, version: int, source: Path) -> Path:
    """Copies a SavedModel to ``base_path/<version>`` atomically (staged, then renamed) like the export."""
    base_path.mkdir(parents=True, exist_ok=True)
    staging = base_path / f".staging-{version}"
    shutil.copytree(source, staging)
    return staging.rename(base_path / str(version))


@pytest.fixture(scope="session")
def install():
    """The ``install_version`` helper, for test modules."""
    return install_version


@pytest.fixture(scope="session")
def reference_outputs(standin_versions):
    """``fn(version, signature_name, **inputs) -> {output: np.ndarray}`` run in-process."""
    loaded: dict[int, object] = {}

    def run(version: int, signature_name: str, **inputs) -> dict[str, np.ndarray]:
        if version not in loaded:
            loaded[version] = tf.saved_model.load(str(standin_versions[version]))
        outputs = loaded[version].signatures[signature_name](
            **{name: tf.constant(value) for name, value in inputs.items()}
        )
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    return run


def encode_image(rgb: np.ndarray, image_format: str) -> bytes:
    """uint8 [H, W, 3] -> PNG or JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def image_codec():
    """The ``encode_image`` helper, for test modules."""
    return encode_image


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m serving.server`` on a free loopback port, its output captured to a log file.

    Args:
        flags: Server flags besides ``--rest_api_port``.
        log_path: File receiving the server's stdout and stderr.
    """

    def __init__(self, flags: list[str], log_path: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving.server", f"--rest_api_port={self.port}", *flags],
            cwd=REPO_ROOT,
            env={**os.environ, **SERVER_ENV},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_text(self) -> str:
        """Everything the server has written so far."""
        return self.log_path.read_text(errors="replace")

    def wait_available(self, model_name: str = MODEL_NAME) -> None:
        """Blocks until ``model_name`` has an AVAILABLE version; fails with the log if the server dies."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                response = requests.get(f"{self.url}/v1/models/{model_name}", timeout=REQUEST_TIMEOUT_S)
                states = [entry["state"] for entry in response.json().get("model_version_status", [])]
                if response.ok and "AVAILABLE" in states:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        pytest.fail(f"server not ready after {SERVER_START_TIMEOUT_S} s:\n{self.log_text()}")

    def stop(self) -> int:
        """SIGTERM (graceful shutdown); returns the exit code (-SIGTERM: uvicorn re-raises the signal)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def stop_gracefully(self) -> None:
        """Stops the server and checks that the graceful shutdown ran to completion."""
        code = self.stop()
        assert code in (0, -signal.SIGTERM), f"exit code {code}\n{self.log_text()}"
        assert SHUTDOWN_MESSAGE in self.log_text(), self.log_text()


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    """``fn(flags, name) -> ServerProcess`` (ready to serve); every server is stopped at session end."""
    servers: list[ServerProcess] = []

    def start(flags: list[str], name: str) -> ServerProcess:
        server = ServerProcess(flags, tmp_path_factory.mktemp(name) / "server.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def session_server(tmp_path_factory, standin_versions, start_server) -> ServerProcess:
    """A read-only server of version 1 (no batching, 256 KiB body limit), shared by the API and CLI tests.

    Its graceful shutdown is checked when the session ends.
    """
    base_path = tmp_path_factory.mktemp("session_models") / MODEL_NAME
    install_version(base_path, 1, standin_versions[1])
    server = start_server(
        [
            f"--model_name={MODEL_NAME}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=0",
            f"--max_body_bytes={SESSION_MAX_BODY_BYTES}",
        ],
        "session_server",
    )
    server.wait_available()
    yield server
    server.stop_gracefully()

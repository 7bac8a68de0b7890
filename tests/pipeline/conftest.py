"""A real MLflow tracking server for the pipeline tests: ``mlflow server`` on a free loopback port.

``mlflow_server`` gives a test its own server; ``serve_mlflow`` starts one in a given directory for
fixtures of a wider scope. The server keeps its SQLite store and artifacts in that directory and runs
in its own process group, which is killed (SIGKILL) afterwards, workers included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_START_TIMEOUT_S = 180


@dataclass(frozen=True)
class MlflowServer:
    """A running tracking server.

    Attributes:
        uri: Its HTTP tracking URI.
        store_uri: Its backend store (``sqlite:///...``), to read it directly.
        process: The server process (leader of its process group).
    """

    uri: str
    store_uri: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_mlflow_server(directory: Path) -> Iterator[MlflowServer]:
    """Starts ``mlflow server`` with its store and artifacts in ``directory``; kills it afterwards."""
    port, db = free_port(), directory / "server.db"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}"]
    command += ["--artifacts-destination", str(directory / "server_artifacts"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    log_path = directory / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            uri = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    urllib.request.urlopen(f"{uri}/health", timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the MLflow server did not start"
                    time.sleep(0.5)
            yield MlflowServer(uri, f"sqlite:///{db}", process)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


@pytest.fixture(scope="session")
def serve_mlflow():
    """:func:`running_mlflow_server`, for fixtures that need a server beyond one test."""
    return running_mlflow_server


@pytest.fixture
def mlflow_server(tmp_path) -> Iterator[MlflowServer]:
    """A tracking server of this test, in ``tmp_path``."""
    with running_mlflow_server(tmp_path) as server:
        yield server

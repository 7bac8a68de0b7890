"""Hot version changes: a new version directory is served without a restart, a removed one is unloaded."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import requests

pytestmark = pytest.mark.e2e

MODEL = "depth"
POLL_WAIT_S = 0.3
CHANGE_TIMEOUT_S = 30
TIMEOUT_S = 30
BLACK_IMAGE = np.zeros((1, 4, 4, 3)).tolist()


@pytest.fixture(scope="module")
def versioned_server(tmp_path_factory, standin_versions, start_server, install):
    base_path = tmp_path_factory.mktemp("versions") / MODEL
    install(base_path, 1, standin_versions[1])
    server = start_server(
        [
            f"--model_name={MODEL}",
            f"--model_base_path={base_path}",
            f"--file_system_poll_wait_seconds={POLL_WAIT_S}",
        ],
        "versioned_server",
    )
    server.wait_available()
    yield server, base_path
    server.stop_gracefully()


def _black_depth(server, path: str = f"/v1/models/{MODEL}:predict") -> tuple[int, float | None]:
    response = requests.post(server.url + path, json={"instances": BLACK_IMAGE}, timeout=TIMEOUT_S)
    if response.status_code != 200:
        return response.status_code, None
    return 200, float(np.mean(response.json()["predictions"][0]["depth"]))


def _states(server) -> dict[str, str]:
    body = requests.get(f"{server.url}/v1/models/{MODEL}", timeout=TIMEOUT_S).json()
    return {entry["version"]: entry["state"] for entry in body["model_version_status"]}


def _wait_for(condition, server) -> None:
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_WAIT_S / 2)
    pytest.fail(f"condition not met in {CHANGE_TIMEOUT_S} s; states {_states(server)}\n{server.log_text()}")


def test_new_version_is_served_without_restart(versioned_server, standin_versions, install):
    server, base_path = versioned_server
    assert _black_depth(server) == (200, 1.0)  # version 1: offset 1 m
    pid = server.process.pid
    install(base_path, 2, standin_versions[2])
    _wait_for(lambda: _states(server) == {"2": "AVAILABLE", "1": "END"}, server)
    assert _black_depth(server) == (200, 2.0)
    assert (
        _black_depth(server, f"/v1/models/{MODEL}/versions/1:predict")[0] == 404
    )  # latest policy serves one
    metadata = requests.get(f"{server.url}/v1/models/{MODEL}/metadata", timeout=TIMEOUT_S).json()
    assert metadata["model_spec"]["version"] == "2"
    assert server.process.pid == pid and server.process.poll() is None


def test_removed_version_is_unloaded(versioned_server):
    server, base_path = versioned_server
    shutil.rmtree(base_path / "2")
    _wait_for(lambda: _states(server).get("1") == "AVAILABLE", server)
    assert _states(server)["2"] == "END"
    assert _black_depth(server, f"/v1/models/{MODEL}/versions/2:predict")[0] == 404
    assert _black_depth(server) == (200, 1.0)
    assert "Unloaded servable version {name: depth version: 2}" in server.log_text()

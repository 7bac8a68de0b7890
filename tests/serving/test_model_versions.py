"""Hot version changes: a new version directory is served without a restart, a removed one is unloaded,
and one that appears before its copy has finished is served once it is complete."""

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
# TF Serving (and this server before) gave up on a version after this many failed loads.
OLD_LOAD_ATTEMPTS = 6
TIMEOUT_S = 30
# TF Serving (and this server before) gave up on a version after this many failed loads.
OLD_LOAD_ATTEMPTS = 6
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


def test_partially_copied_version_is_loaded_once_complete(versioned_server, standin_versions):
    server, base_path = versioned_server
    source, partial = standin_versions[3], base_path / "3"
    partial.mkdir()
    shutil.copy2(source / "saved_model.pb", partial / "saved_model.pb")  # variables/ not copied yet
    _wait_for(lambda: _states(server).get("3") == "END", server)
    time.sleep(2 * OLD_LOAD_ATTEMPTS * POLL_WAIT_S)  # longer than the old retry budget
    assert _black_depth(server) == (200, 1.0)  # the previous version is served meanwhile
    for entry in source.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, partial / entry.name)
        elif not (partial / entry.name).exists():
            shutil.copy2(entry, partial / entry.name)
    _wait_for(lambda: _states(server).get("3") == "AVAILABLE", server)
    assert _black_depth(server) == (200, 3.0)
    log = server.log_text()
    assert log.count(f"ERROR serving.model_registry: Failed to load {partial}") == 1, log  # logged once
    assert "Successfully loaded servable version {name: depth version: 3}" in log

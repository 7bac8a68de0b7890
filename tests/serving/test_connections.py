"""Hostile connections against a real server on loopback: slow or idle clients are cut off after
the header/body deadlines, connections beyond the limit get 503, a client that disconnects is
logged as 499, and normal clients are served throughout.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

pytestmark = pytest.mark.e2e

MODEL = "depth"
PREDICT = f"/v1/models/{MODEL}:predict"
MAX_CONNECTIONS = 4
HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
# How long a test waits for the server to act on a deadline before failing (generous on a busy CI box).
CUT_OFF_WAIT_S = 10 * HEADER_TIMEOUT_S
TRICKLE_INTERVAL_S = 0.25
KEEP_ALIVE_TIMEOUT_S = 1
# Counting tests first wait until the server has closed earlier clients' idle keep-alive connections.
SETTLE_S = KEEP_ALIVE_TIMEOUT_S + 0.5
TIMEOUT_S = 30
IMAGE_BODY = json.dumps({"instances": [[[[10.0, 20.0, 30.0]] * 2] * 2]}).encode()
REQUEST_HEAD = (
    f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: {length}\r\n\r\n"
)


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory, standin_versions, start_server, install):
    base_path = tmp_path_factory.mktemp("connections") / MODEL
    install(base_path, 1, standin_versions[1])
    server = start_server(
        [
            f"--model_name={MODEL}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=0",
            f"--max_connections={MAX_CONNECTIONS}",
            f"--request_header_timeout_seconds={HEADER_TIMEOUT_S}",
            f"--request_body_timeout_seconds={BODY_TIMEOUT_S}",
            f"--keep_alive_timeout_seconds={KEEP_ALIVE_TIMEOUT_S}",
        ],
        "guarded_server",
    )
    server.wait_available()
    yield server
    server.stop_gracefully()


def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=CUT_OFF_WAIT_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _parse(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _assert_served(server) -> None:
    """A normal client's predict request, on its own connection, succeeds."""
    response = requests.post(
        server.url + PREDICT, data=IMAGE_BODY, headers={"Connection": "close"}, timeout=TIMEOUT_S
    )
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1, response.text


def _predict_records(server) -> list[dict]:
    """The access-log records of predict requests so far."""
    records = [json.loads(line) for line in server.log_text().splitlines() if line.startswith('{"time"')]
    return [record for record in records if record["path"] == PREDICT]


def test_connections_beyond_the_limit_get_503(guarded_server):
    time.sleep(SETTLE_S)
    idle = [_connect(guarded_server) for _ in range(MAX_CONNECTIONS)]
    try:
        with _connect(guarded_server) as extra:
            extra.sendall(REQUEST_HEAD.format(length=len(IMAGE_BODY)).encode() + IMAGE_BODY)
            status, body = _parse(_read_until_closed(extra))
        assert status == 503 and f"--max_connections={MAX_CONNECTIONS}" in body["error"]
        idle.pop().close()
        time.sleep(SETTLE_S - KEEP_ALIVE_TIMEOUT_S)  # the server sees the close
        _assert_served(guarded_server)  # the freed connection, while the others are still held
        for sock in idle:  # the idle connections are cut off at the header deadline ...
            assert _read_until_closed(sock) == b""
    finally:
        for sock in idle:
            sock.close()
    _assert_served(guarded_server)  # ... and the server serves again


def test_trickled_headers_are_cut_off_while_others_are_served(guarded_server):
    head = REQUEST_HEAD.format(length=len(IMAGE_BODY)).encode()
    with _connect(guarded_server) as sock:
        sock.settimeout(TRICKLE_INTERVAL_S)
        sent, response = 0, b""
        deadline = time.monotonic() + CUT_OFF_WAIT_S
        while time.monotonic() < deadline:
            try:
                sock.sendall(head[sent : sent + 1])  # one byte at a time, never finishing
                sent += 1
                response = sock.recv(65536)
                break  # the server answered (and closes)
            except TimeoutError:
                if sent == 5:
                    _assert_served(guarded_server)
            except (BrokenPipeError, ConnectionResetError):
                break
        assert sent < len(head), "the whole header went through"
    status, body = _parse(response)
    assert status == 408 and "--request_header_timeout_seconds" in body["error"]


def test_idle_connection_is_closed_silently(guarded_server):
    with _connect(guarded_server) as sock:
        assert _read_until_closed(sock) == b""


def test_partial_body_gets_408(guarded_server):
    with _connect(guarded_server) as sock:
        sock.sendall(REQUEST_HEAD.format(length=1000).encode() + b'{"instances"')
        status, body = _parse(_read_until_closed(sock))
    assert status == 408 and "--request_body_timeout_seconds" in body["error"]
    _assert_served(guarded_server)


def test_client_disconnect_is_logged_as_499_without_traceback(guarded_server):
    before = len(_predict_records(guarded_server))
    with _connect(guarded_server) as sock:
        sock.sendall(REQUEST_HEAD.format(length=1000).encode() + b'{"instances"')
        time.sleep(TRICKLE_INTERVAL_S)  # let the server start reading the body
    deadline = time.monotonic() + CUT_OFF_WAIT_S
    while time.monotonic() < deadline and len(_predict_records(guarded_server)) == before:
        time.sleep(TRICKLE_INTERVAL_S)
    log = guarded_server.log_text()
    assert _predict_records(guarded_server)[before]["status"] == 499, log
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    _assert_served(guarded_server)

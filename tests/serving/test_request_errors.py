"""Bad requests get TF Serving's 4xx statuses with an ``{"error": ...}`` body, and the server keeps serving."""

from __future__ import annotations

import base64
import http.client
import json

import pytest
import requests

pytestmark = pytest.mark.e2e

MODEL = "depth"
PREDICT = f"/v1/models/{MODEL}:predict"
TIMEOUT_S = 30
IMAGE = [[[[10.0, 20.0, 30.0]] * 4] * 4]  # [1, 4, 4, 3]
BYTES_SIGNATURE = "predict_image_bytes"


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


# (case id, path, raw body, expected status, text expected in the error message)
BAD_BODIES = [
    ("malformed json", PREDICT, b'{"instances": [1, 2', 400, "Malformed JSON"),
    ("not an object", PREDICT, b"[1, 2, 3]", 400, "JSON object"),
    ("wrong field name", PREDICT, json.dumps({"instance": IMAGE}).encode(), 400, "instance"),
    ("both formats", PREDICT, json.dumps({"instances": IMAGE, "inputs": IMAGE}).encode(), 400, "exactly one"),
    (
        "unknown input name",
        PREDICT,
        json.dumps({"inputs": {"image": IMAGE}}).encode(),
        400,
        "unknown inputs ['image']",
    ),
    ("empty instances", PREDICT, json.dumps({"instances": []}).encode(), 400, "non-empty"),
    ("wrong rank", PREDICT, json.dumps({"instances": [1.0, 2.0]}).encode(), 400, "shape [2]"),
    (
        "wrong channels",
        PREDICT,
        json.dumps({"instances": [[[[1.0, 2.0, 3.0, 4.0]]]]}).encode(),
        400,
        "shape [1, 1, 1, 4]",
    ),
    ("ragged", PREDICT, json.dumps({"instances": [[[[1, 2, 3]], [[1, 2]]]]}).encode(), 400, "rectangular"),
    (
        "strings for floats",
        PREDICT,
        json.dumps({"instances": [[[["a", "b", "c"]]]]}).encode(),
        400,
        "dtype float32",
    ),
    ("b64 for floats", PREDICT, json.dumps({"instances": [_b64(b"abc")]}).encode(), 400, "dtype float32"),
    (
        "numbers for bytes",
        PREDICT,
        json.dumps({"signature_name": BYTES_SIGNATURE, "instances": [1.5]}).encode(),
        400,
        "dtype string",
    ),
    (
        "invalid base64",
        PREDICT,
        json.dumps({"signature_name": BYTES_SIGNATURE, "instances": [{"b64": "%%%"}]}).encode(),
        400,
        "base64",
    ),
    (
        "non-image bytes",
        PREDICT,
        json.dumps(
            {"signature_name": BYTES_SIGNATURE, "instances": [_b64(b"definitely not an image")]}
        ).encode(),
        400,
        "image",
    ),
    (
        "unknown signature",
        PREDICT,
        json.dumps({"signature_name": "nope", "instances": IMAGE}).encode(),
        400,
        'signature name: "nope"',
    ),
    (
        "oversized body",
        PREDICT,
        json.dumps({"instances": [[[[1.5] * 3] * 256] * 256]}).encode(),
        413,
        "limit",
    ),
    (
        "unknown model",
        "/v1/models/nope:predict",
        json.dumps({"instances": IMAGE}).encode(),
        404,
        "Latest(nope)",
    ),
    (
        "unknown version",
        f"/v1/models/{MODEL}/versions/9:predict",
        json.dumps({"instances": IMAGE}).encode(),
        404,
        "Specific(depth, 9)",
    ),
    (
        "non-numeric version",
        f"/v1/models/{MODEL}/versions/x:predict",
        json.dumps({"instances": IMAGE}).encode(),
        400,
        "numeric",
    ),
    (
        "unknown label",
        f"/v1/models/{MODEL}/labels/stable:predict",
        json.dumps({"instances": IMAGE}).encode(),
        404,
        "label",
    ),
    (
        "dot-dot model",
        "/v1/models/..:predict",
        json.dumps({"instances": IMAGE}).encode(),
        404,
        "invalid model name",
    ),
    (
        "json nested 5000 deep",
        PREDICT,
        b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        400,
        "nested too deeply",
    ),
    ("5000-digit number", PREDICT, b'{"instances": [' + b"7" * 5000 + b"]}", 400, "4300 digits"),
    (
        "strings nested 900 deep",
        PREDICT,
        b'{"signature_name": "predict_image_bytes", "instances": ' + b"[" * 900 + b'"a"' + b"]" * 900 + b"}",
        400,
        "nested 900 lists deep",
    ),
    (
        "encoded slash",
        "/v1/models/..%2F..%2Fetc:predict",
        json.dumps({"instances": IMAGE}).encode(),
        400,
        "Malformed request",
    ),
]


def _raw_request(server, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    """Sends ``path`` byte-for-byte (no client-side dot-segment normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT_S)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_predict_requests(session_server, path, body, status, message):
    got_status, payload = _raw_request(session_server, "POST", path, body)
    assert got_status == status, payload
    assert set(payload) == {"error"} and message in payload["error"], payload


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/models/nope", 404),
        (f"/v1/models/{MODEL}/versions/9", 404),
        ("/v1/models/nope/metadata", 404),
        (f"/v1/models/{MODEL}/versions/9/metadata", 404),
        ("/v1/models/../../etc/passwd", 400),
        ("/v1/models/%2e%2e/metadata", 404),
        (f"/v1/models/{MODEL}:predict", 400),  # GET on a POST endpoint: TF Serving's "Malformed request"
        ("/nothing/here", 404),
    ],
)
def test_bad_get_requests(session_server, path, status):
    got_status, payload = _raw_request(session_server, "GET", path)
    assert got_status == status and set(payload) == {"error"}, payload


def test_still_serving_after_errors(session_server):
    for _, path, body, _, _ in BAD_BODIES:
        _raw_request(session_server, "POST", path, body)
    response = requests.post(session_server.url + PREDICT, json={"instances": IMAGE}, timeout=TIMEOUT_S)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1
    assert session_server.process.poll() is None

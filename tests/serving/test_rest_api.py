"""The REST API's successful paths against a real server: status, metadata, predict, docs, logs."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import requests

pytestmark = pytest.mark.e2e

MODEL = "depth"
TIMEOUT_S = 30
# JSON carries float32 values exactly (float64 repr), so served and in-process outputs agree to
# float32 rounding; the tolerance only absorbs that.
RTOL, ATOL = 1e-6, 1e-6
OUTPUT_NAMES = {"depth", "log_depth", "depth_full"}
ALL_OUTPUTS = sorted(OUTPUT_NAMES)


def _images(seed: int, batch: int = 2, height: int = 12, width: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(batch, height, width, 3)).astype(np.float32)


def _post(server, body: dict, path: str = f"/v1/models/{MODEL}:predict") -> dict:
    response = requests.post(server.url + path, json=body, timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    return response.json()


def _assert_outputs_close(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected) == OUTPUT_NAMES
    for name in expected:
        np.testing.assert_allclose(
            np.asarray(actual[name], np.float32), expected[name], rtol=RTOL, atol=ATOL, err_msg=name
        )


def test_model_status(session_server):
    for path in (f"/v1/models/{MODEL}", f"/v1/models/{MODEL}/versions/1"):
        response = requests.get(session_server.url + path, timeout=TIMEOUT_S)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }


def test_model_metadata_mirrors_tf_serving(session_server):
    response = requests.get(f"{session_server.url}/v1/models/{MODEL}/metadata", timeout=TIMEOUT_S)
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "predict_image_bytes"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["images"] == {
        "dtype": "DT_FLOAT",
        "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}] * 3 + [{"size": "3", "name": ""}],
            "unknown_rank": False,
        },
        "name": "serving_default_images:0",
    }
    assert set(default["outputs"]) == OUTPUT_NAMES
    assert default["outputs"]["depth"]["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""},
        {"size": "6", "name": ""},
        {"size": "8", "name": ""},
    ]
    image_bytes = signatures["predict_image_bytes"]["inputs"]["image_bytes"]
    assert image_bytes["dtype"] == "DT_STRING" and image_bytes["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""}
    ]
    versioned = requests.get(f"{session_server.url}/v1/models/{MODEL}/versions/1/metadata", timeout=TIMEOUT_S)
    assert versioned.json() == body


def test_predict_row_format_floats(session_server, reference_outputs):
    images = _images(seed=0)
    body = _post(session_server, {"instances": images.tolist(), "output_filter": ALL_OUTPUTS})
    expected = reference_outputs(1, "serving_default", images=images)
    assert len(body["predictions"]) == len(images)
    for index, prediction in enumerate(body["predictions"]):
        _assert_outputs_close(prediction, {name: value[index] for name, value in expected.items()})


def test_predict_columnar_formats(session_server, reference_outputs):
    images = _images(seed=1, batch=1)
    expected = reference_outputs(1, "serving_default", images=images)
    named = _post(
        session_server,
        {
            "signature_name": "serving_default",
            "inputs": {"images": images.tolist()},
            "output_filter": ALL_OUTPUTS,
        },
    )
    bare = _post(
        session_server,
        {"inputs": images.tolist(), "output_filter": ALL_OUTPUTS},
        path=f"/v1/models/{MODEL}/versions/1:predict",
    )
    for body in (named, bare):
        _assert_outputs_close(body["outputs"], expected)


def test_predict_constant_image_analytically(session_server):
    image = np.full((1, 8, 8, 3), 51.0)  # mean / 255 = 0.2
    depth = np.asarray(_post(session_server, {"instances": image.tolist()})["predictions"][0]["depth"])
    np.testing.assert_allclose(depth, np.full((6, 8), 1.2), rtol=RTOL)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_predict_b64_images(session_server, reference_outputs, image_codec, image_format):
    rgb = _images(seed=2, batch=1)[0].astype(np.uint8)
    encoded = [image_codec(rgb, image_format), image_codec(rgb[::-1].copy(), image_format)]
    instances = [{"b64": base64.b64encode(data).decode()} for data in encoded]
    expected = reference_outputs(1, "predict_image_bytes", image_bytes=encoded)
    row = _post(
        session_server,
        {"signature_name": "predict_image_bytes", "instances": instances, "output_filter": ALL_OUTPUTS},
    )
    for index, prediction in enumerate(row["predictions"]):
        _assert_outputs_close(prediction, {name: value[index] for name, value in expected.items()})
        assert np.shape(prediction["depth_full"]) == rgb.shape[:2]
    columnar = _post(
        session_server,
        {
            "signature_name": "predict_image_bytes",
            "inputs": {"image_bytes": instances},
            "output_filter": ALL_OUTPUTS,
        },
    )
    _assert_outputs_close(columnar["outputs"], expected)


def test_openapi_lists_the_endpoints(session_server):
    schema = requests.get(f"{session_server.url}/openapi.json", timeout=TIMEOUT_S).json()
    paths = schema["paths"]
    for selector in ("", "/versions/{version}", "/labels/{label}"):
        base = "/v1/models/{model_name}" + selector
        assert set(paths[base]) == {"get"}
        assert set(paths[base + "/metadata"]) == {"get"}
        predict = paths[base + ":predict"]["post"]
        assert {"200", "400", "404", "413"} <= set(predict["responses"])
        assert "422" not in predict["responses"]
        assert "instances" in predict["requestBody"]["content"]["application/json"]["schema"]["properties"]
        assert {parameter["name"] for parameter in predict["parameters"]} == {
            "model_name",
            *([selector.split("{")[1][:-1]] if selector else []),
        }
    assert "/monitoring/prometheus/metrics" in paths


def test_access_log_and_metrics(session_server):
    _post(session_server, {"instances": _images(seed=3, batch=1).tolist()})
    metrics = requests.get(f"{session_server.url}/monitoring/prometheus/metrics", timeout=TIMEOUT_S)
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert (
        ':tensorflow:serving:request_count{entrypoint="REST_PREDICT",model_name="depth",status="OK"}'
        in metrics.text
    )
    assert ":tensorflow:serving:request_latency_bucket{" in metrics.text
    records = [
        json.loads(line) for line in session_server.log_text().splitlines() if line.startswith('{"time"')
    ]
    predicts = [
        record
        for record in records
        if record["path"] == f"/v1/models/{MODEL}:predict" and record["status"] == 200
    ]
    assert predicts, records
    assert (
        predicts[-1]["method"] == "POST" and predicts[-1]["model"] == MODEL and predicts[-1]["version"] == "1"
    )
    assert predicts[-1]["latency_ms"] > 0

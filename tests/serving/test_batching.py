"""Server-side batching: concurrent clients get their own correct answers from fewer model calls."""

from __future__ import annotations

import base64
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

pytestmark = pytest.mark.e2e

MODEL = "depth"
CLIENTS = 8
REQUESTS_PER_CLIENT = 4
MAX_BATCH_SIZE = 8
BATCH_TIMEOUT_MS = 50
TIMEOUT_S = 60
RTOL, ATOL = 1e-6, 1e-6
IMAGE_SHAPE = (1, 10, 12, 3)
DEFAULT_OUTPUTS = {"depth", "log_depth"}
# Odd-numbered requests ask for the opt-in output, so batches are keyed by the requested outputs too.
FILTERED_OUTPUTS = ["depth", "depth_full"]


def _wanted_outputs(number: int) -> set[str]:
    return set(FILTERED_OUTPUTS) if number % 2 else DEFAULT_OUTPUTS


@pytest.fixture(scope="module")
def batching_server(tmp_path_factory, standin_versions, start_server, install):
    base_path = tmp_path_factory.mktemp("batching") / MODEL
    install(base_path, 1, standin_versions[1])
    server = start_server(
        [
            f"--model_name={MODEL}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=0",
            "--enable_batching",
            f"--max_batch_size={MAX_BATCH_SIZE}",
            f"--batch_timeout_ms={BATCH_TIMEOUT_MS}",
        ],
        "batching_server",
    )
    server.wait_available()
    yield server
    server.stop_gracefully()


def _batch_metric(text: str, signature: str, suffix: str) -> float:
    pattern = rf':tensorflow:serving:batching:requests_per_batch_{suffix}\{{model_name="{MODEL}",signature_name="{signature}"\}} (\S+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def test_concurrent_requests_are_batched_and_correct(batching_server, reference_outputs):
    images = (
        np.random.default_rng(7)
        .integers(0, 256, size=(CLIENTS * REQUESTS_PER_CLIENT, *IMAGE_SHAPE))
        .astype(np.float32)
    )

    def client(index: int) -> list[tuple[int, dict]]:
        with requests.Session() as session:
            results = []
            for request in range(REQUESTS_PER_CLIENT):
                number = index * REQUESTS_PER_CLIENT + request
                body = {"instances": images[number].tolist()}
                if number % 2:
                    body["output_filter"] = FILTERED_OUTPUTS
                response = session.post(
                    f"{batching_server.url}/v1/models/{MODEL}:predict", json=body, timeout=TIMEOUT_S
                )
                assert response.status_code == 200, response.text
                results.append((number, response.json()["predictions"][0]))
            return results

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [result for batch in pool.map(client, range(CLIENTS)) for result in batch]
    assert len(results) == CLIENTS * REQUESTS_PER_CLIENT
    for number, prediction in results:
        expected = reference_outputs(1, "serving_default", images=images[number])
        assert set(prediction) == _wanted_outputs(number)
        for name in prediction:
            np.testing.assert_allclose(
                np.asarray(prediction[name], np.float32),
                expected[name][0],
                rtol=RTOL,
                atol=ATOL,
                err_msg=name,
            )

    metrics = requests.get(f"{batching_server.url}/monitoring/prometheus/metrics", timeout=TIMEOUT_S).text
    served = _batch_metric(metrics, "serving_default", "sum")
    batches = _batch_metric(metrics, "serving_default", "count")
    assert served == CLIENTS * REQUESTS_PER_CLIENT
    assert 0 < batches < served, metrics


def test_a_bad_request_does_not_fail_its_batch(batching_server, image_codec):
    encoded = image_codec(np.full((6, 6, 3), 102, np.uint8), "PNG")
    good = {"b64": base64.b64encode(encoded).decode()}
    # Valid PNG headers (so the request joins the batch of same-size images), pixel data cut short.
    bad = {"b64": base64.b64encode(encoded[: encoded.index(b"IDAT") + len(b"IDAT") + 2]).decode()}
    bodies = [
        {"signature_name": "predict_image_bytes", "instances": [bad if index == 3 else good]}
        for index in range(CLIENTS)
    ]

    def send(body: dict) -> requests.Response:
        return requests.post(f"{batching_server.url}/v1/models/{MODEL}:predict", json=body, timeout=TIMEOUT_S)

    with ThreadPoolExecutor(CLIENTS) as pool:
        responses = list(pool.map(send, bodies))
    for index, response in enumerate(responses):
        if index == 3:
            assert response.status_code == 400 and "error" in response.json()
        else:
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(
                response.json()["predictions"][0]["depth"], np.full((6, 8), 1.4), rtol=RTOL
            )
    metrics = requests.get(f"{batching_server.url}/monitoring/prometheus/metrics", timeout=TIMEOUT_S).text
    # The bad request shared a batch with good ones (fewer batches than requests), and only it failed.
    assert _batch_metric(metrics, "predict_image_bytes", "sum") == CLIENTS
    assert _batch_metric(metrics, "predict_image_bytes", "count") < CLIENTS

"""Request limits (rows, pixels per image, pixels per request) and ``output_filter``.

Images over the pixel limits are refused from their headers: most images here are header-only
PNGs (valid signature and IHDR, a few rows of pixel data), which the model could not decode, so a
413 instead of a decoding error shows that the limit was applied first.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import psutil
import pytest
import requests
from PIL import Image

from serving.errors import ServingError
from serving.request_codec import InputSpec, decode_predict_request, select_outputs
from serving.request_limits import RequestLimits, image_size

MODEL = "depth"
PREDICT = f"/v1/models/{MODEL}:predict"
BYTES_SIGNATURE = "predict_image_bytes"
TIMEOUT_S = 60
MAX_ROWS = 4
MAX_PIXELS_PER_IMAGE = 12_000_000  # a 4000x3000 photo just fits
MAX_PIXELS_PER_REQUEST = 13_000_000
BOMB_SIDE = 12_000  # 144 MP: 432 MB of RGB from a ~2 MB PNG
RSS_GROWTH_LIMIT_BYTES = 150 * 2**20
IMAGES_SPEC = {"images": InputSpec("float32", (None, None, None, 3))}
BYTES_SPEC = {"image_bytes": InputSpec("string", (None,))}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_zeros(width: int, height: int, rows: int | None = None) -> bytes:
    """An RGB PNG of black pixels; with ``rows`` only that many rows of pixel data (header-only)."""
    row = b"\x00" * (1 + 3 * width)  # filter byte + RGB
    compressor = zlib.compressobj(1)
    written, block = 0, 500
    data = []
    total = height if rows is None else rows
    while written < total:
        count = min(block, total - written)
        data.append(compressor.compress(row * count))
        written += count
    data.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(data))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """A tiny JPEG whose SOF0 header claims ``width x height``."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"\xff\xc0")
    data[start + 5 : start + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


# --- in-process: header reading and the checks in the codec ---


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_image_size_reads_the_header(image_format):
    buffer = io.BytesIO()
    Image.new("RGB", (7, 5)).save(buffer, format=image_format)
    assert image_size(buffer.getvalue()) == (7, 5)


def test_image_size_of_headers_without_pixels():
    assert image_size(png_of_zeros(40_000, 30_000, rows=2)) == (40_000, 30_000)
    assert image_size(jpeg_with_size(5_000, 4_000)) == (5_000, 4_000)
    assert image_size(b"plain text, not an image") is None


def test_unreadable_image_header_is_a_bad_request():
    with pytest.raises(ServingError) as error:
        image_size(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    assert error.value.http_status == 400 and "unreadable PNG image header" in error.value.message


def test_sizes_over_pils_own_bomb_threshold_are_read():
    assert image_size(png_of_zeros(100_000, 100_000, rows=1)) == (100_000, 100_000)


@pytest.mark.parametrize(
    ("payload", "specs", "limits", "message"),
    [
        (
            {"instances": [[[[0.0] * 3]]] * 3},
            IMAGES_SPEC,
            RequestLimits(max_rows_per_request=2),
            "'instances' has 3 rows, which exceeds --max_rows_per_request=2",
        ),
        (
            {"inputs": [[[[0.0] * 3] * 11] * 10]},
            IMAGES_SPEC,
            RequestLimits(max_pixels_per_image=100),
            "110 pixels per example, which exceeds --max_pixels_per_image=100",
        ),
        (
            {"inputs": [[[[0.0] * 3] * 8] * 8] * 2},
            IMAGES_SPEC,
            RequestLimits(max_pixels_per_request=100),
            "at least 128 pixels, which exceeds --max_pixels_per_request=100",
        ),
        (
            {"instances": [_b64(png_of_zeros(11, 10, rows=1))]},
            BYTES_SPEC,
            RequestLimits(max_pixels_per_image=100),
            "input 'image_bytes'[0], a 11x10 image, has 110 pixels",
        ),
    ],
    ids=["rows", "float pixels per image", "float pixels per request", "encoded pixels per image"],
)
def test_codec_refuses_requests_over_the_limits(payload, specs, limits, message):
    with pytest.raises(ServingError) as error:
        decode_predict_request(payload, specs, limits)
    assert error.value.http_status == 413 and message in error.value.message


def test_select_outputs():
    available = ("depth", "depth_full", "log_depth")
    assert select_outputs(available, None, {"depth_full"}) == ("depth", "log_depth")
    assert select_outputs(available, ["depth_full"], {"depth_full"}) == ("depth_full",)
    assert select_outputs(("depth_full",), None, {"depth_full"}) == ("depth_full",)
    with pytest.raises(ServingError, match=r"unknown outputs \['nope'\]"):
        select_outputs(available, ["nope"], {"depth_full"})


# --- against a real server with small limits ---


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory, standin_versions, start_server, install):
    base_path = tmp_path_factory.mktemp("limits") / MODEL
    install(base_path, 1, standin_versions[1])
    server = start_server(
        [
            f"--model_name={MODEL}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=0",
            f"--max_rows_per_request={MAX_ROWS}",
            f"--max_pixels_per_image={MAX_PIXELS_PER_IMAGE}",
            f"--max_pixels_per_request={MAX_PIXELS_PER_REQUEST}",
        ],
        "limited_server",
    )
    server.wait_available()
    yield server
    server.stop_gracefully()


def _predict(server, body: dict) -> requests.Response:
    return requests.post(server.url + PREDICT, json=body, timeout=TIMEOUT_S)


TINY = [[[1.0, 2.0, 3.0]] * 2] * 2  # one [2, 2, 3] image
TINY_PNG = png_of_zeros(2, 2)

OVER_LIMIT = [
    ("float rows", {"instances": [TINY] * (MAX_ROWS + 1)}, f"--max_rows_per_request={MAX_ROWS}"),
    ("columnar rows", {"inputs": {"images": [TINY] * (MAX_ROWS + 1)}}, f"--max_rows_per_request={MAX_ROWS}"),
    (
        "b64 rows",
        {"signature_name": BYTES_SIGNATURE, "instances": [_b64(TINY_PNG)] * (MAX_ROWS + 1)},
        f"--max_rows_per_request={MAX_ROWS}",
    ),
    (
        "png pixels",
        {"signature_name": BYTES_SIGNATURE, "instances": [_b64(png_of_zeros(4001, 3000, rows=1))]},
        f"--max_pixels_per_image={MAX_PIXELS_PER_IMAGE}",
    ),
    (
        "jpeg pixels",
        {"signature_name": BYTES_SIGNATURE, "instances": [_b64(jpeg_with_size(4001, 3000))]},
        f"--max_pixels_per_image={MAX_PIXELS_PER_IMAGE}",
    ),
    (
        "request pixels",
        {"signature_name": BYTES_SIGNATURE, "instances": [_b64(png_of_zeros(2000, 2200, rows=1))] * 3},
        f"--max_pixels_per_request={MAX_PIXELS_PER_REQUEST}",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("body", "flag"), [case[1:] for case in OVER_LIMIT], ids=[case[0] for case in OVER_LIMIT]
)
def test_requests_over_the_limits_get_413(limited_server, body, flag):
    response = _predict(limited_server, body)
    assert response.status_code == 413, response.text
    assert set(response.json()) == {"error"} and flag in response.json()["error"]


@pytest.mark.e2e
def test_decompression_bomb_is_refused_without_decoding(limited_server):
    bomb = png_of_zeros(BOMB_SIDE, BOMB_SIDE)  # a valid PNG: 432 MB of pixels
    server_process = psutil.Process(limited_server.process.pid)
    rss_before = server_process.memory_info().rss
    response = _predict(limited_server, {"signature_name": BYTES_SIGNATURE, "instances": [_b64(bomb)]})
    assert response.status_code == 413, response.text
    assert f"a {BOMB_SIDE}x{BOMB_SIDE} image" in response.json()["error"]
    assert server_process.memory_info().rss - rss_before < RSS_GROWTH_LIMIT_BYTES
    assert _predict(limited_server, {"instances": [TINY]}).status_code == 200


@pytest.mark.e2e
def test_photo_sized_request_gets_a_small_response_by_default(limited_server, image_codec):
    photo = image_codec(np.full((3000, 4000, 3), 51, np.uint8), "JPEG")
    response = _predict(limited_server, {"signature_name": BYTES_SIGNATURE, "instances": [_b64(photo)]})
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert set(prediction) == {"depth", "log_depth"}  # depth_full (12 M values) only on request
    assert len(response.content) < 10_000
    np.testing.assert_allclose(prediction["depth"], np.full((6, 8), 1.2), rtol=1e-2)


@pytest.mark.e2e
def test_output_filter_selects_outputs(limited_server):
    image = np.full((1, 5, 7, 3), 51.0).tolist()
    full = _predict(limited_server, {"instances": image, "output_filter": ["depth_full"]}).json()
    assert np.shape(full["predictions"][0]) == (5, 7)  # a single output is returned bare
    both = _predict(limited_server, {"inputs": image, "output_filter": ["depth", "depth_full"]}).json()
    assert set(both["outputs"]) == {"depth", "depth_full"}
    unknown = _predict(limited_server, {"instances": image, "output_filter": ["depth", "nope"]})
    assert (
        unknown.status_code == 400
        and "'output_filter' names unknown outputs ['nope']" in unknown.json()["error"]
    )
    malformed = _predict(limited_server, {"instances": image, "output_filter": "depth"})
    assert (
        malformed.status_code == 400
        and "'output_filter' must be a non-empty list" in malformed.json()["error"]
    )

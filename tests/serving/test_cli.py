"""The client CLI (against the real server) and the offline predict CLI write the same outputs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serving import client, predict

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_HW = (12, 16)
MM_PER_M = 1000.0
PLY_BINARY_VERTEX_BYTES = 3 * 4 + 3


@pytest.fixture(scope="module")
def images(tmp_path_factory, image_codec) -> list[Path]:
    directory = tmp_path_factory.mktemp("cli_images")
    rng = np.random.default_rng(3)
    paths = []
    for index, image_format in enumerate(("PNG", "JPEG")):
        path = directory / f"frame{index}.{image_format.lower()}"
        path.write_bytes(image_codec(rng.integers(0, 256, size=(*IMAGE_HW, 3), dtype=np.uint8), image_format))
        paths.append(path)
    return paths


def _read_ply(path: Path) -> tuple[str, int, bytes]:
    """(format line value, vertex count, body bytes) of a PLY file."""
    header, body = path.read_bytes().split(b"end_header\n", 1)
    lines = header.decode("ascii").splitlines()
    encoding = next(line.removeprefix("format ") for line in lines if line.startswith("format "))
    count = next(int(line.split()[-1]) for line in lines if line.startswith("element vertex "))
    return encoding, count, body


def _check_outputs(out_dir: Path, stem: str, reference: np.ndarray | None = None) -> np.ndarray:
    depth = np.load(out_dir / f"{stem}_depth.npy")
    assert depth.dtype == np.float32 and depth.shape == IMAGE_HW  # depth_full: the input's size
    png = np.asarray(Image.open(out_dir / f"{stem}_depth.png"))
    assert png.dtype == np.uint16
    np.testing.assert_allclose(png / MM_PER_M, depth, atol=0.5 / MM_PER_M)  # rounding to the millimetre
    color = Image.open(out_dir / f"{stem}_depth_color.png")
    assert color.mode == "RGB" and color.size == IMAGE_HW[::-1]
    if reference is not None:
        np.testing.assert_allclose(depth, reference, rtol=1e-6)
    return depth


@pytest.mark.e2e
def test_client_writes_outputs(session_server, images, tmp_path, reference_outputs, capsys):
    code = client.main(
        [
            *map(str, images),
            "--url",
            session_server.url,
            "--model",
            "depth",
            "--out",
            str(tmp_path),
            "--pointcloud",
        ]
    )
    assert code == 0, capsys.readouterr().err
    for path in images:
        expected = reference_outputs(1, "predict_image_bytes", image_bytes=[path.read_bytes()])["depth_full"][
            0
        ]
        _check_outputs(tmp_path, path.stem, expected)
        encoding, count, body = _read_ply(tmp_path / f"{path.stem}.ply")
        assert encoding == "binary_little_endian 1.0"
        assert count == IMAGE_HW[0] * IMAGE_HW[1] and len(body) == count * PLY_BINARY_VERTEX_BYTES


@pytest.mark.e2e
def test_client_reports_error_responses(session_server, images, tmp_path, capsys):
    code = client.main(
        [str(images[0]), "--url", session_server.url, "--model", "nope", "--out", str(tmp_path)]
    )
    assert code == client.EXIT_SERVER_ERROR
    assert "HTTP 404" in capsys.readouterr().err


def test_client_retries_then_fails_on_a_closed_port(images, tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.client",
            str(images[0]),
            "--url",
            f"http://127.0.0.1:{port}",
            "--out",
            str(tmp_path),
        ]
        + ["--attempts", "3", "--backoff", "0.05"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == client.EXIT_UNREACHABLE, result.stderr
    assert (
        "attempt 1/3" in result.stderr
        and "retrying in 0.05 s" in result.stderr
        and "retrying in 0.10 s" in result.stderr
    )
    assert "after 3 attempts" in result.stderr
    assert not list(tmp_path.iterdir())


def test_predict_cli_writes_outputs(standin_versions, install, images, tmp_path, reference_outputs, capsys):
    base_path = tmp_path / "models"
    install(base_path, 1, standin_versions[1])
    install(base_path, 2, standin_versions[2])
    out_dir = tmp_path / "out"
    argv = [
        *map(str, images),
        "--model",
        str(base_path),
        "--out",
        str(out_dir),
        "--pointcloud",
        "--ply-format",
        "ascii",
    ]
    assert predict.main(argv + ["--intrinsics", "20,20,8,6"]) == 0, capsys.readouterr().err
    for path in images:  # the base path's highest version (2) was used
        expected = reference_outputs(2, "predict_image_bytes", image_bytes=[path.read_bytes()])["depth_full"][
            0
        ]
        depth = _check_outputs(out_dir, path.stem, expected)
        encoding, count, body = _read_ply(out_dir / f"{path.stem}.ply")
        rows = np.loadtxt(body.decode().splitlines())
        assert encoding == "ascii 1.0" and count == len(rows) == depth.size
        np.testing.assert_allclose(rows[:, 2], depth.reshape(-1), rtol=1e-5)  # z = depth, row-major
        np.testing.assert_allclose(
            rows[0, :2], [(0 - 8) * depth[0, 0] / 20, (0 - 6) * depth[0, 0] / 20], rtol=1e-5
        )


def test_predict_cli_errors_name_the_file(standin_versions, tmp_path, images, capsys):
    assert (
        predict.main([str(images[0]), "--model", str(tmp_path / "missing"), "--out", str(tmp_path)])
        == predict.EXIT_BAD_INPUT
    )
    assert f"{tmp_path / 'missing'}: no SavedModel" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    argv = [str(broken), "--model", str(standin_versions[1]), "--out", str(tmp_path / "out")]
    assert predict.main(argv) == predict.EXIT_BAD_INPUT
    assert f"{broken}: not a decodable image" in capsys.readouterr().err
    assert predict.main([str(tmp_path / "absent.png"), *argv[1:]]) == predict.EXIT_BAD_INPUT
    assert "absent.png: cannot read image" in capsys.readouterr().err

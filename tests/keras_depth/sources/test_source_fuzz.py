"""Property: a source fed random or mutated file bytes returns a storable record or raises RecordError.

Each ``FuzzCase`` is one file a source reads: a valid sample of it and a function that
puts given bytes in that file's place in a tiny dataset and loads the record. A new
source (``nyu_labeled`` .mat, ``kitti_depth`` PNG, ``diode`` .npy, ...) is fuzzed by
adding its entries to ``FUZZ_CASES``. Mutations flip, truncate, insert, delete and
overwrite bytes, and for PNGs also rewrite header fields with a valid CRC, so the
decoder (not only the checksum) sees the damage. Sources run with a small
``max_image_pixels`` so that headers claiming huge sizes stay cheap.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from components.ingest.validate import validate_record
from keras_depth.config import DiodeConfig, FolderSourceConfig, KittiDepthConfig
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.diode import DiodeSource
from keras_depth.sources.folder import FolderSource
from keras_depth.sources.kitti_depth import KittiDepthSource

HEIGHT, WIDTH = 6, 8
FUZZ_MAX_PIXELS = 4096
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IHDR_DATA = slice(16, 29)  # width, height, bit depth, colour type, compression, filter, interlace
SIGNATURE_BYTES = 8
HEADER_BYTES = 64


def _encoded(array: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format)
    return buffer.getvalue()


_RNG = np.random.default_rng(0)
RGB_PNG = _encoded(_RNG.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), "PNG")
RGB_JPEG = _encoded(_RNG.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), "JPEG")
DEPTH_PNG = _encoded(_RNG.integers(0, 65536, (HEIGHT, WIDTH), dtype=np.uint16), "PNG")


@dataclass(frozen=True)
class FuzzCase:
    """One file of one source to fuzz.

    Attributes:
        id: Test id, ``<source>-<file>``.
        sample: Valid bytes of the file.
        load: Writes the given bytes as that file into a tiny dataset under the given
            (empty) folder, with valid companions, and loads the record.
    """

    id: str
    sample: bytes
    load: Callable[[Path, bytes], RawRecord]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


DIODE_DEPTH = _npy(_RNG.uniform(0.5, 8.0, (HEIGHT, WIDTH, 1)).astype(np.float32))
DIODE_MASK = _npy((_RNG.random((HEIGHT, WIDTH)) > 0.2).astype(np.float32))


def _load_single(source: DepthSource) -> RawRecord:
    (key,) = source.list_keys()
    return source.load(key)


def _load_folder_pair(
    root: Path, rgb_name: str = "rgb_x.png", rgb: bytes = RGB_PNG, depth: bytes = DEPTH_PNG
):
    (root / rgb_name).write_bytes(rgb)
    (root / "depth_x.png").write_bytes(depth)
    config = FolderSourceConfig(root=str(root), rgb_glob="rgb_*", invalid_values=[0, 65535])
    return _load_single(FolderSource(config, max_image_pixels=FUZZ_MAX_PIXELS))


def _load_kitti_frame(root: Path, rgb: bytes = RGB_PNG, depth: bytes = DEPTH_PNG) -> RawRecord:
    drive = "2011_09_26_drive_0001_sync"
    depth_file = root / "annotated/train" / drive / "proj_depth/groundtruth/image_02/0000000005.png"
    rgb_file = root / "raw/2011_09_26" / drive / "image_02/data/0000000005.png"
    for path, data in ((depth_file, depth), (rgb_file, rgb)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    config = KittiDepthConfig(
        annotated_root=str(root / "annotated"), raw_root=str(root / "raw"), cameras=["image_02"]
    )
    return _load_single(KittiDepthSource(config, max_image_pixels=FUZZ_MAX_PIXELS))


def _load_diode_scan(
    root: Path, rgb: bytes = RGB_PNG, depth: bytes = DIODE_DEPTH, mask: bytes = DIODE_MASK
) -> RawRecord:
    folder = root / "train/indoors/scene_00001/scan_00002"
    folder.mkdir(parents=True, exist_ok=True)
    name = "00001_00002_indoors_000_000"
    for suffix, data in ((".png", rgb), ("_depth.npy", depth), ("_depth_mask.npy", mask)):
        (folder / f"{name}{suffix}").write_bytes(data)
    return _load_single(DiodeSource(DiodeConfig(root=str(root)), max_image_pixels=FUZZ_MAX_PIXELS))


FUZZ_CASES = [
    FuzzCase("folder-rgb_png", RGB_PNG, lambda root, data: _load_folder_pair(root, rgb=data)),
    FuzzCase("folder-rgb_jpeg", RGB_JPEG, lambda root, data: _load_folder_pair(root, "rgb_x.jpg", rgb=data)),
    FuzzCase("folder-depth_png", DEPTH_PNG, lambda root, data: _load_folder_pair(root, depth=data)),
    FuzzCase("kitti_depth-rgb_png", RGB_PNG, lambda root, data: _load_kitti_frame(root, rgb=data)),
    FuzzCase("kitti_depth-depth_png", DEPTH_PNG, lambda root, data: _load_kitti_frame(root, depth=data)),
    FuzzCase("diode-rgb_png", RGB_PNG, lambda root, data: _load_diode_scan(root, rgb=data)),
    FuzzCase("diode-depth_npy", DIODE_DEPTH, lambda root, data: _load_diode_scan(root, depth=data)),
    FuzzCase("diode-mask_npy", DIODE_MASK, lambda root, data: _load_diode_scan(root, mask=data)),
]


def _with_png_crc(data: bytearray) -> bytearray:
    """Recomputes the IHDR chunk's CRC, so a rewritten header passes Pillow's checksum."""
    if data[:8] == PNG_SIGNATURE and len(data) >= 33:
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return data


@st.composite
def mutated(draw, sample: bytes) -> bytes:
    """``sample`` with 1-4 random edits, or (1 time in 8) random bytes."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 4))):
        # Half the edits hit the header after the signature, where they reach the parser
        # instead of the pixel data or the format detection.
        start, end = (SIGNATURE_BYTES, HEADER_BYTES) if draw(st.booleans()) else (0, len(data))
        end = min(end, len(data))
        at = draw(st.integers(min(start, end), end))
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "png_header"]))
        if edit == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "png_header" and len(data) >= 33:
            field = draw(st.sampled_from(["size", "byte"]))
            if field == "size":  # any width and height, huge and zero included
                data[16:24] = struct.pack(
                    ">II", draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
                )
            else:  # bit depth, colour type, compression, filter or interlace
                data[draw(st.integers(24, 28))] = draw(st.integers(0, 255))
            data = _with_png_crc(data)
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("case", FUZZ_CASES, ids=lambda case: case.id)
def test_valid_sample_loads(case, fuzz_root):
    root = fuzz_root / f"valid-{case.id}"
    root.mkdir()
    validate_record(case.load(root, case.sample))


@pytest.mark.parametrize("case", FUZZ_CASES, ids=lambda case: case.id)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_give_a_record_or_a_record_error(case, fuzz_root, data):
    raw = data.draw(mutated(case.sample), label="file bytes")
    root = fuzz_root / case.id
    root.mkdir(exist_ok=True)
    try:
        record = case.load(root, raw)
    except RecordError as error:
        assert str(error)  # the dead-letter reason
        return
    image, depth = np.asarray(record.image), np.asarray(record.depth)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert depth.dtype == np.float32 and depth.ndim == 2
    assert depth.size <= FUZZ_MAX_PIXELS and image.shape[0] * image.shape[1] <= FUZZ_MAX_PIXELS
    try:
        validate_record(record)
    except RecordError:
        pass

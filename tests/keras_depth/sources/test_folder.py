"""The folder source on the real RGB-D samples and on small generated pairs, good and broken."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from keras_depth.config import FolderSourceConfig
from keras_depth.sources.base import RecordError
from keras_depth.sources.folder import FolderSource

NYU_PATTERN = r"rgb/rgb_(\w+)\.(jpg|png)$=>depth/sync_depth_\1.png"
FLAT_PATTERN = r"rgb_(\w+)\.png$=>depth_\1.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _nyu(real_rgbd_dir: Path) -> FolderSource:
    return FolderSource(
        FolderSourceConfig(
            root=str(real_rgbd_dir / "nyu_samples"),
            rgb_glob="rgb/*",
            depth_pattern=NYU_PATTERN,
            depth_scale=1000.0,
        )
    )


def test_nyu_samples_pair_up_and_decode_in_metres(real_rgbd_dir):
    source = _nyu(real_rgbd_dir)
    keys = source.list_keys()
    assert keys == [
        "folder/rgb/rgb_00000.jpg",
        "folder/rgb/rgb_00050.jpg",
        "folder/rgb/rgb_00100.jpg",
        "folder/rgb/rgb_living_room.png",
    ]
    for key in keys:
        record = source.load(key)
        assert record.source_path == str(real_rgbd_dir / "nyu_samples" / key.removeprefix("folder/"))
        assert record.image.dtype == np.uint8 and record.image.shape == (480, 640, 3)
        assert record.depth.dtype == np.float32 and record.depth.shape == (480, 640)
        valid = record.depth > 0
        assert 0.5 < valid.mean() <= 1.0
        assert 0.3 < record.depth[valid].min() and record.depth.max() <= 10.0
        assert record.intrinsics == pytest.approx((518.8579, 519.46961, 325.58245, 253.73617))
    stored = np.asarray(Image.open(real_rgbd_dir / "nyu_samples/depth/sync_depth_living_room.png"))
    np.testing.assert_allclose(source.load(keys[-1]).depth, stored / 1000.0, rtol=1e-6)


def test_kitti_samples_use_their_depth_scale(real_rgbd_dir):
    source = FolderSource(
        FolderSourceConfig(
            root=str(real_rgbd_dir / "kitti_samples"),
            rgb_glob="rgb/*.png",
            depth_pattern="^rgb/=>depth/",
            depth_scale=256.0,
        )
    )
    keys = source.list_keys()
    assert len(keys) == 3
    record = source.load(keys[0])
    assert record.image.shape == (375, 1242, 3) and record.depth.shape == (375, 1242)
    valid = record.depth > 0
    assert 0.05 < valid.mean() < 0.5  # sparse LiDAR
    assert 20.0 < record.depth.max() < 90.0
    assert record.intrinsics == pytest.approx((707.0493, 707.0493, 604.0814, 180.5066))


def _save_pair(folder: Path, name: str, size=(6, 8)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(len(name))
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    depth = rng.integers(0, 5000, size, dtype=np.uint16)
    depth[0, 0] = 0
    Image.fromarray(rgb).save(folder / f"rgb_{name}.png")
    Image.fromarray(depth).save(folder / f"depth_{name}.png")
    return rgb, depth


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    """A flat folder with one good pair and one broken record of each kind."""
    _save_pair(tmp_path, "good")
    # A corrupt RGB: a PNG signature followed by garbage.
    _save_pair(tmp_path, "corrupt")
    (tmp_path / "rgb_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    # A truncated RGB: the first half of a valid PNG.
    _save_pair(tmp_path, "truncated", size=(64, 64))
    data = (tmp_path / "rgb_truncated.png").read_bytes()
    (tmp_path / "rgb_truncated.png").write_bytes(data[: len(data) // 2])
    # An RGB without its depth.
    _save_pair(tmp_path, "nodepth")
    (tmp_path / "depth_nodepth.png").unlink()
    # Depth stored as 8-bit and as RGB.
    _save_pair(tmp_path, "eightbit")
    Image.fromarray(np.full((6, 8), 9, np.uint8)).save(tmp_path / "depth_eightbit.png")
    _save_pair(tmp_path, "colour")
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "depth_colour.png")
    return tmp_path


def _flat(root: Path, **overrides) -> FolderSource:
    return FolderSource(
        FolderSourceConfig(
            **{"root": str(root), "rgb_glob": "*.png", "depth_pattern": FLAT_PATTERN, **overrides}
        )
    )


def test_depth_files_under_the_glob_are_not_taken_for_rgb(pairs):
    assert _flat(pairs).list_keys() == [
        "folder/rgb_colour.png",
        "folder/rgb_corrupt.png",
        "folder/rgb_eightbit.png",
        "folder/rgb_good.png",
        "folder/rgb_nodepth.png",
        "folder/rgb_truncated.png",
    ]


def test_good_pair_decodes_exactly(pairs):
    rgb, depth = (
        np.asarray(Image.open(pairs / "rgb_good.png")),
        np.asarray(Image.open(pairs / "depth_good.png")),
    )
    record = _flat(pairs, depth_scale=1000.0).load("folder/rgb_good.png")
    np.testing.assert_array_equal(record.image, rgb)
    np.testing.assert_allclose(record.depth, depth.astype(np.float32) / 1000.0, rtol=1e-6)
    assert record.depth[0, 0] == 0.0
    assert record.intrinsics is None
    assert record.conversions == () and record.group == "."


@pytest.mark.parametrize(
    ("name", "reason", "bad_file"),
    [
        ("corrupt", "unreadable RGB image", "rgb_corrupt.png"),
        ("truncated", "unreadable RGB image", "rgb_truncated.png"),
        ("nodepth", "missing depth file", "depth_nodepth.png"),
        ("eightbit", "must be single-channel 16-bit", "depth_eightbit.png"),
        ("colour", "must be single-channel 16-bit", "depth_colour.png"),
    ],
)
def test_broken_records_raise_record_errors_naming_the_file(pairs, name, reason, bad_file):
    with pytest.raises(RecordError, match=reason) as info:
        _flat(pairs).load(f"folder/rgb_{name}.png")
    assert str(pairs / bad_file) in str(info.value)


def test_truncated_images_are_never_completed_silently(pairs):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(RecordError, match="truncated"):
        _flat(pairs).load("folder/rgb_truncated.png")


def test_colour_modes_are_converted_only_when_lossless_and_reported(tmp_path):
    _save_pair(tmp_path, "grey")
    Image.fromarray(np.full((6, 8), 77, np.uint8)).save(tmp_path / "rgb_grey.png")
    _save_pair(tmp_path, "opaque")
    Image.fromarray(np.full((6, 8, 4), 255, np.uint8)).save(tmp_path / "rgb_opaque.png")
    _save_pair(tmp_path, "translucent")
    Image.fromarray(np.full((6, 8, 4), 200, np.uint8)).save(tmp_path / "rgb_translucent.png")
    source = _flat(tmp_path)
    with pytest.raises(RecordError, match=f"{tmp_path / 'rgb_grey.png'} has mode 'L'"):
        source.load("folder/rgb_grey.png")
    with pytest.raises(RecordError, match="48 of 48 pixels transparent"):
        source.load("folder/rgb_translucent.png")
    record = source.load("folder/rgb_opaque.png")
    assert record.image.shape == (6, 8, 3) and (record.image == 255).all()
    assert record.conversions == ("opaque_alpha_dropped",)


def test_intrinsics_file_is_used_and_scaled_to_the_image(tmp_path):
    _save_pair(tmp_path, "a")
    (tmp_path / "intrinsics.json").write_text(
        json.dumps({"fx": 80.0, "fy": 60.0, "cx": 40.0, "cy": 30.0, "width": 80, "height": 60})
    )
    assert _flat(tmp_path).load("folder/rgb_a.png").intrinsics == pytest.approx((8.0, 6.0, 4.0, 3.0))


def test_broken_intrinsics_file_is_reported(tmp_path):
    _save_pair(tmp_path, "a")
    (tmp_path / "intrinsics.json").write_text('{"fx": 1}')
    with pytest.raises(ValueError, match="intrinsics.json"):
        _flat(tmp_path)


def test_missing_root_and_empty_matches_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        _flat(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="folder.rgb_glob"):
        _flat(tmp_path).list_keys()


def test_malformed_depth_pattern_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="folder.depth_pattern"):
        _flat(tmp_path, depth_pattern="rgb_(.*).png")
    with pytest.raises(ValueError, match="invalid regex"):
        _flat(tmp_path, depth_pattern="rgb_(.png=>x")


def test_foreign_keys_are_record_errors(pairs):
    with pytest.raises(RecordError, match="not a key"):
        _flat(pairs).load("synthetic_rooms/s0/000000")


def test_source_survives_pickling(pairs):
    source = _flat(pairs)
    clone = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(
        clone.load("folder/rgb_good.png").depth, source.load("folder/rgb_good.png").depth
    )


def test_depth_scale_disagreeing_with_intrinsics_file_is_logged(real_rgbd_dir, caplog):
    FolderSource(FolderSourceConfig(root=str(real_rgbd_dir / "kitti_samples"), depth_pattern="^rgb/=>depth/"))
    assert "depth_scale 256.0" in caplog.text


SEVEN_SCENES = {
    "rgb_glob": "*.color.jpg",
    "depth_pattern": r"\.color\.jpg$=>.depth.png",
    "depth_scale": 1000.0,
    "invalid_values": [0, 65535],
}
SEVEN_SCENES_INVALID = 65535


def test_sevenscenes_65535_is_invalid_and_depth_is_in_metres(real_rgbd_dir):
    root = real_rgbd_dir / "sevenscenes_redkitchen"
    source = FolderSource(FolderSourceConfig(root=str(root), **SEVEN_SCENES))
    keys = source.list_keys()
    assert len(keys) == 100
    with_sentinel = []
    for key in keys:
        depth_file = root / key.removeprefix("folder/").replace(".color.jpg", ".depth.png")
        stored = np.asarray(Image.open(depth_file))  # read independently of the source
        if (stored == SEVEN_SCENES_INVALID).any():
            with_sentinel.append((key, stored))
    assert len(with_sentinel) == 5  # the dataset README's count
    for key, stored in with_sentinel:
        record = source.load(key)
        assert record.image.shape[:2] == record.depth.shape == stored.shape == (480, 640)
        sentinel = stored == SEVEN_SCENES_INVALID
        assert (record.depth[sentinel] == 0.0).all() and (record.depth[stored == 0] == 0.0).all()
        measured = (stored > 0) & ~sentinel
        np.testing.assert_allclose(record.depth[measured], stored[measured] / 1000.0, rtol=1e-6)
        assert 0.0 < record.depth.max() < 4.0
        assert record.intrinsics == pytest.approx((585.0, 585.0, 320.0, 240.0))


def test_sevenscenes_groups_as_configured(real_rgbd_dir):
    root = str(real_rgbd_dir / "sevenscenes_redkitchen")
    flat = FolderSource(FolderSourceConfig(root=root, **SEVEN_SCENES))
    assert {flat.group(key) for key in flat.list_keys()} == {"."}  # one sequence, one group
    by_hundred = FolderSource(FolderSourceConfig(root=root, group_pattern=r"^frame-(\d{4})", **SEVEN_SCENES))
    keys = by_hundred.list_keys()
    assert sorted({by_hundred.group(key) for key in keys}) == [f"{index:04d}" for index in range(10)]
    assert by_hundred.load("folder/frame-000860.color.jpg").group == "0008"


@pytest.fixture
def sequences(tmp_path: Path) -> Path:
    """7-Scenes' on-disk layout: <scene>/seq-NN/frame-NNNNNN.color.png + .depth.png, plus a stray frame."""
    for folder in ("redkitchen/seq-01", "redkitchen/seq-02", "chess/seq-01", "stray"):
        (tmp_path / folder).mkdir(parents=True)
        rgb = np.full((6, 8, 3), 100, np.uint8)
        Image.fromarray(rgb).save(tmp_path / folder / "frame-000000.color.png")
        Image.fromarray(np.full((6, 8), 1500, np.uint16)).save(tmp_path / folder / "frame-000000.depth.png")
    return tmp_path


def _sequences(root: Path, **overrides) -> FolderSource:
    config = {
        "root": str(root),
        "rgb_glob": "**/*.color.png",
        "depth_pattern": r"\.color\.png$=>.depth.png",
        **overrides,
    }
    return FolderSource(FolderSourceConfig(**config))


def test_group_is_the_parent_folder_by_default(sequences):
    source = _sequences(sequences)
    groups = {key: source.load(key).group for key in source.list_keys()}
    assert groups == {
        "folder/chess/seq-01/frame-000000.color.png": "chess/seq-01",
        "folder/redkitchen/seq-01/frame-000000.color.png": "redkitchen/seq-01",
        "folder/redkitchen/seq-02/frame-000000.color.png": "redkitchen/seq-02",
        "folder/stray/frame-000000.color.png": "stray",
    }


def test_group_pattern_names_the_group_and_unmatched_paths_are_record_errors(sequences):
    source = _sequences(sequences, group_pattern=r"^(\w+)/seq-")
    assert source.load("folder/redkitchen/seq-02/frame-000000.color.png").group == "redkitchen"
    assert source.group("folder/chess/seq-01/frame-000000.color.png") == "chess"
    with pytest.raises(
        RecordError, match=r"folder.group_pattern '\^\(\\\\w\+\)/seq-' does not match 'stray/frame"
    ):
        source.load("folder/stray/frame-000000.color.png")
    optional = _sequences(sequences, group_pattern=r"^(\w*)/")
    with pytest.raises(RecordError, match="captures an empty group"):
        optional.group("folder//frame.color.png")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("seq-", "needs a capturing group"), ("seq-(", "folder.group_pattern has an invalid regex")],
)
def test_malformed_group_pattern_is_rejected(sequences, pattern, reason):
    with pytest.raises(ValueError, match=reason):
        _sequences(sequences, group_pattern=pattern)


@pytest.mark.parametrize("values", [[-1], [65536], [1.5], ["0"]])
def test_invalid_values_must_be_16_bit_integers(tmp_path, values):
    with pytest.raises(ValueError, match="folder.invalid_values must be stored 16-bit values"):
        _flat(tmp_path, invalid_values=values)


def test_invalid_values_load_as_zero(tmp_path):
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "rgb_a.png")
    Image.fromarray(np.array([[0, 7, 1000], [65535, 2000, 7]], np.uint16)).save(tmp_path / "depth_a.png")
    depth = _flat(tmp_path, invalid_values=[7, 65535]).load("folder/rgb_a.png").depth
    np.testing.assert_allclose(depth, [[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    assert _flat(tmp_path).load("folder/rgb_a.png").depth[1, 0] == pytest.approx(65.535)


def test_every_non_directory_the_glob_finds_is_a_record(pairs):
    (pairs / "rgb_loop.png").symlink_to("rgb_loop.png")
    (pairs / "rgb_dangling.png").symlink_to("gone.png")
    os.mkfifo(pairs / "rgb_fifo.png")
    (pairs / "rgb_folder.png").mkdir()
    source = _flat(pairs)
    keys = source.list_keys()
    assert {"folder/rgb_loop.png", "folder/rgb_dangling.png", "folder/rgb_fifo.png"} <= set(keys)
    assert "folder/rgb_folder.png" not in keys
    for name, reason in (
        ("loop", "is a symbolic link loop"),
        ("dangling", "is a dangling symbolic link to 'gone.png'"),
        ("fifo", "is not a regular file: it is a FIFO"),
    ):
        with pytest.raises(RecordError, match=reason):
            source.load(f"folder/rgb_{name}.png")


def test_manifest_changes_with_the_files_and_only_with_them(pairs):
    source = _flat(pairs)
    first = source.manifest()
    assert first["files"] == 2 * 6 + 1  # RGB and depth of six pairs, intrinsics.json
    assert _flat(pairs).manifest() == first
    touched = pairs / "depth_good.png"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = source.manifest()
    assert second != first
    _save_pair(pairs, "added")
    third = source.manifest()
    assert third["files"] == first["files"] + 2 and third != second
    (pairs / "intrinsics.json").write_text(json.dumps({"fx": 1, "fy": 1, "cx": 1, "cy": 1}))
    assert _flat(pairs).manifest() != third


GIANT_SIDE = 12000
RSS_SCRIPT = """
import json, resource, sys
from PIL import Image
from keras_depth.config import FolderSourceConfig
from keras_depth.sources.base import RecordError
from keras_depth.sources.folder import FolderSource

Image.init()
source = FolderSource(FolderSourceConfig(root=sys.argv[1], rgb_glob="*.png"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    source.load("folder/rgb_giant.png")
    outcome = "loaded"
except RecordError as error:
    outcome = str(error)
peak_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"outcome": outcome, "peak_growth_mb": peak_growth_kb / 1024}))
"""


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_giant_png(path: Path, side: int) -> None:
    """A black side x side RGB PNG, compressed row by row (never held decoded): 420 KB for 12000."""
    row = bytes(1 + 3 * side)  # filter byte 0, then black pixels
    compressor = zlib.compressobj(9)
    idat = b"".join([compressor.compress(row) for _ in range(side)] + [compressor.flush()])
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(
        PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    )


@pytest.mark.e2e
def test_a_12000x12000_png_is_refused_without_decoding_it(tmp_path):
    write_giant_png(tmp_path / "rgb_giant.png", GIANT_SIDE)
    assert (tmp_path / "rgb_giant.png").stat().st_size < 1_000_000
    Image.fromarray(np.full((1, 1), 1000, np.uint16)).save(tmp_path / "depth_giant.png")
    repo_root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(tmp_path)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["outcome"] == (
        f"RGB image {tmp_path / 'rgb_giant.png'} is 12000x12000 = 144000000 pixels, "
        "above max_image_pixels=50000000; not decoded"
    )
    assert measured["peak_growth_mb"] < 50, measured  # decoding would take 412 MB

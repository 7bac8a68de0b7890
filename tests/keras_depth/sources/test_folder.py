"""The folder source on the real RGB-D samples and on small generated pairs, good and broken."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from keras_depth.config import FolderSourceConfig
from keras_depth.sources.base import RecordError
from keras_depth.sources.folder import FolderSource

NYU_PATTERN = r"rgb/rgb_(\w+)\.(jpg|png)$=>depth/sync_depth_\1.png"
FLAT_PATTERN = r"rgb_(\w+)\.png$=>depth_\1.png"


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


def test_greyscale_and_rgba_images_become_rgb(tmp_path):
    _save_pair(tmp_path, "grey")
    Image.fromarray(np.full((6, 8), 77, np.uint8)).save(tmp_path / "rgb_grey.png")
    _save_pair(tmp_path, "rgba")
    Image.fromarray(np.full((6, 8, 4), 200, np.uint8)).save(tmp_path / "rgb_rgba.png")
    source = _flat(tmp_path)
    assert (source.load("folder/rgb_grey.png").image == 77).all()
    assert source.load("folder/rgb_rgba.png").image.shape == (6, 8, 3)


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

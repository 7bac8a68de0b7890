"""The DIODE source on trees in the official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_depth.config import DiodeConfig
from keras_depth.sources.base import RecordError
from keras_depth.sources.diode import INTRINSICS, DiodeSource

# (subset, scene type, scene, scan, images per scan); DIODE's train and val scenes are disjoint.
SCANS = [
    ("train", "indoors", 0, 0, 2),
    ("train", "indoors", 0, 1, 1),
    ("train", "outdoor", 2, 5, 2),
    ("val", "indoors", 19, 183, 2),
    ("val", "outdoor", 22, 190, 1),
]


def test_depth_is_masked_and_aligned_with_rgb(diode_tree, assert_aligned):
    tree = diode_tree(SCANS)
    source = DiodeSource(DiodeConfig(root=str(tree.root)))
    keys = source.list_keys()
    assert keys == sorted(f"diode/{suffix}" for suffix in tree.frames)
    for key in keys:
        index, depth, mask = tree.frames[key.removeprefix("diode/")]
        record = source.load(key)
        stored = np.load(source.source_path(key).removesuffix(".png") + "_depth.npy")  # read independently
        assert stored.shape == (18, 24, 1)
        np.testing.assert_array_equal(record.depth[mask == 1], stored[..., 0][mask == 1])
        np.testing.assert_array_equal(record.depth == 0, mask == 0)  # masked-out pixels are invalid
        assert_aligned(record.image, record.depth, index)
        assert record.group == key.split("/")[3] and record.intrinsics is None
        expected = "train" if key.startswith("diode/train/") else "test"
        assert record.official_split == expected


def test_scene_types_and_split_settings(diode_tree):
    tree = diode_tree(SCANS)
    indoors = DiodeSource(DiodeConfig(root=str(tree.root), scene_types=["indoors"]))
    assert all("/indoors/" in key for key in indoors.list_keys()) and len(indoors.list_keys()) == 5
    as_val = DiodeSource(DiodeConfig(root=str(tree.root), val_split="val"))
    assert (
        as_val.load("diode/val/outdoor/scene_00022/scan_00190/00022_00190_outdoor_000_000").official_split
        == "val"
    )
    hashed = DiodeSource(DiodeConfig(root=str(tree.root), use_official_split=False))
    assert {hashed.load(key).official_split for key in hashed.list_keys()} == {None}
    with pytest.raises(ValueError, match="diode.scene_types must be a non-empty subset"):
        DiodeSource(DiodeConfig(root=str(tree.root), scene_types=["indoor"]))
    with pytest.raises(ValueError, match="diode.val_split must be 'val' or 'test'"):
        DiodeSource(DiodeConfig(root=str(tree.root), val_split="validation"))


def test_real_size_images_carry_the_scanner_intrinsics(diode_tree):
    tree = diode_tree([("val", "indoors", 19, 183, 1)], height=768, width=1024)
    source = DiodeSource(DiodeConfig(root=str(tree.root)))
    assert source.load(source.list_keys()[0]).intrinsics == INTRINSICS


def test_missing_and_mislabelled_files_are_named(diode_tree, tmp_path):
    tree = diode_tree([("train", "indoors", 0, 0, 4)])
    source = DiodeSource(DiodeConfig(root=str(tree.root)))
    keys = source.list_keys()
    stems = [source.source_path(key).removesuffix(".png") for key in keys]
    Path(stems[0] + "_depth_mask.npy").unlink()
    with pytest.raises(RecordError, match=f"missing depth mask file {stems[0]}_depth_mask.npy"):
        source.load(keys[0])
    # the mask saved as the depth map (H, W) and the depth map as the mask
    mask, depth = np.load(stems[1] + "_depth_mask.npy"), np.load(stems[1] + "_depth.npy")
    np.save(stems[1] + "_depth.npy", mask)
    with pytest.raises(
        RecordError, match=rf"depth file {stems[1]}_depth.npy has shape \(18, 24\), expected \(18, 24, 1\)"
    ):
        source.load(keys[1])
    np.save(stems[2] + "_depth_mask.npy", depth[..., 0])
    with pytest.raises(RecordError, match=f"depth mask {stems[2]}_depth_mask.npy must hold only 0 and 1"):
        source.load(keys[2])
    Path(stems[3] + "_depth.npy").write_bytes(b"not an array")
    with pytest.raises(RecordError, match=f"unreadable depth file {stems[3]}_depth.npy: not a .npy array"):
        source.load(keys[3])
    with pytest.raises(
        FileNotFoundError, match=r"no DIODE images under .*\{train,val\}/\{indoors,outdoor\}/scene_\*"
    ):
        DiodeSource(DiodeConfig(root=str(tmp_path))).list_keys()
    with pytest.raises(FileNotFoundError, match="diode.root '' is not an existing folder"):
        DiodeSource(DiodeConfig())


def test_real_7_scenes_pixels_in_the_diode_layout(real_rgbd_dir, tmp_path):
    """Real RGB-D frames (7-Scenes) converted to DIODE's files read back pixel for pixel."""
    samples = real_rgbd_dir / "sevenscenes_redkitchen"
    scan = tmp_path / "diode" / "train" / "indoors" / "scene_00007" / "scan_00001"
    scan.mkdir(parents=True)
    for number, frame in enumerate(("frame-000000", "frame-000500")):
        name = f"00007_00001_indoors_{number:03d}_000"
        rgb = np.asarray(Image.open(samples / f"{frame}.color.jpg"))
        stored = np.asarray(Image.open(samples / f"{frame}.depth.png")).astype(np.float32)
        valid = (stored > 0) & (stored < 65535)
        Image.fromarray(rgb).save(scan / f"{name}.png")
        np.save(scan / f"{name}_depth.npy", (stored / 1000)[..., None])
        np.save(scan / f"{name}_depth_mask.npy", valid.astype(np.float32))
        record = DiodeSource(DiodeConfig(root=str(tmp_path / "diode"))).load(
            f"diode/train/indoors/scene_00007/scan_00001/{name}"
        )
        np.testing.assert_array_equal(record.image, rgb)
        np.testing.assert_array_equal(record.depth, np.where(valid, stored / 1000, 0).astype(np.float32))
        assert 0.5 < valid.mean() and record.depth[valid].min() > 0.3

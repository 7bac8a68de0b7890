"""The KITTI depth source on annotated + raw trees in the official layout."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from components.ingest.split import split_for_record
from keras_depth.config import KittiDepthConfig, SplitMapConfig
from keras_depth.sources.base import RecordError
from keras_depth.sources.kitti_depth import (
    LISTED_WITHOUT_DEPTH,
    NO_ANNOTATED_DEPTH,
    UNLISTED,
    UNLISTED_IN_LISTED_DRIVE,
    KittiDepthSource,
)

DRIVE_1 = "2011_09_26_drive_0001_sync"
DRIVE_2 = "2011_09_26_drive_0002_sync"
DRIVE_5 = "2011_09_28_drive_0005_sync"
DRIVE_71 = "2011_09_29_drive_0071_sync"
# drive -> (annotated subset, raw frames, annotated frames): the annotation leaves out the ends.
DRIVES = {
    DRIVE_1: ("train", 8, range(2, 6)),
    DRIVE_2: ("val", 6, range(1, 5)),
    DRIVE_5: ("train", 5, range(0, 5)),
    DRIVE_71: ("train", 3, range(0, 3)),
}


def source_of(tree, **overrides) -> KittiDepthSource:
    cfg = KittiDepthConfig(annotated_root=str(tree.annotated_root), raw_root=str(tree.raw_root), **overrides)
    return KittiDepthSource(cfg)


def test_annotated_frames_are_joined_with_raw_images(kitti_tree, assert_aligned):
    tree = kitti_tree(DRIVES)
    source = source_of(tree)
    keys = source.list_keys()
    assert len(keys) == 2 * (4 + 4 + 5 + 3) and f"kitti_depth/{DRIVE_1}/image_03/0000000002" in keys
    assert source.skipped_records() == {NO_ANNOTATED_DEPTH: 2 * (4 + 2)}
    for key in keys:
        _, drive, camera, frame = key.split("/")
        record = source.load(key)
        subset = DRIVES[drive][0]
        depth_png = (
            tree.annotated_root / subset / drive / "proj_depth" / "groundtruth" / camera / f"{frame}.png"
        )
        stored = np.asarray(Image.open(depth_png))  # read independently: uint16, metres = value / 256
        np.testing.assert_array_equal(record.depth, stored / np.float32(256))
        np.testing.assert_array_equal(record.depth == 0, stored == 0)  # invalid stays invalid
        assert (record.depth == 0).mean() > 0.5  # sparse, as LiDAR depth is
        assert_aligned(record.image, record.depth, tree.marker_index[(drive, camera, frame)])
        assert record.group == drive and record.official_split is None
        assert record.source_path == str(depth_png)
        assert record.intrinsics == pytest.approx((721.5377, 721.5377, 609.5593, 172.854))


def test_cameras_select_image_02_or_image_03(kitti_tree):
    tree = kitti_tree({DRIVE_5: DRIVES[DRIVE_5]})
    keys = source_of(tree, cameras=["image_03"]).list_keys()
    assert [key.split("/")[2] for key in keys] == ["image_03"] * 5
    with pytest.raises(ValueError, match="kitti_depth.cameras must be a non-empty subset"):
        source_of(tree, cameras=["image_00"])


def _write_list(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_split_files_are_followed_and_no_drive_spans_two_splits(kitti_tree, tmp_path):
    tree = kitti_tree(DRIVES)
    test_list = _write_list(
        tmp_path / "test_files.txt",
        [
            f"2011_09_26/{DRIVE_2} 0000000001 l",
            f"2011_09_26/{DRIVE_2} 2 l",  # monodepth2 writes frame numbers unpadded
            f"2011_09_26/{DRIVE_2} 0000000005 l",  # a raw frame without annotated depth
        ],
    )
    train_list = _write_list(tmp_path / "train_files.txt", [f"2011_09_28/{DRIVE_5} {n} r" for n in range(5)])
    split_files = SplitMapConfig(train=train_list, test=test_list)
    source = source_of(tree, split_files=split_files)
    records = [source.load(key) for key in source.list_keys()]
    official = {record.key: record.official_split for record in records if record.official_split}
    assert official == {
        f"kitti_depth/{DRIVE_2}/image_02/0000000001": "test",
        f"kitti_depth/{DRIVE_2}/image_02/0000000002": "test",
        **{f"kitti_depth/{DRIVE_5}/image_03/{n:010d}": "train" for n in range(5)},
    }
    # drive 1 no list names: hashed by drive; the unlisted frames of listed drives are skipped
    assert {record.key.split("/")[1] for record in records if not record.official_split} == {
        DRIVE_1,
        DRIVE_71,
    }
    assert source.skipped_records() == {
        NO_ANNOTATED_DEPTH: 12,
        LISTED_WITHOUT_DEPTH: 1,
        UNLISTED_IN_LISTED_DRIVE: (8 - 2) + (10 - 5),
    }
    splits_of_drive = defaultdict(set)
    for record in records:
        splits_of_drive[record.group].add(split_for_record(record, 0.5, 0.3))
    assert all(len(splits) == 1 for splits in splits_of_drive.values()), splits_of_drive

    strict = source_of(tree, split_files=split_files, skip_unlisted=True)
    assert len(strict.list_keys()) == len(official)
    assert strict.skipped_records()[UNLISTED] == 2 * (4 + 3)


def test_split_file_errors_name_the_file_and_line(kitti_tree, tmp_path):
    tree = kitti_tree({DRIVE_5: DRIVES[DRIVE_5]})
    bad = _write_list(tmp_path / "bad.txt", [f"2011_09_28/{DRIVE_5} 1 l", f"{DRIVE_5}/0000000001.png"])
    with pytest.raises(ValueError, match=r"bad.txt:2: expected '<date>/<drive> <frame> <l\|r>'"):
        source_of(tree, split_files=SplitMapConfig(test=bad))
    missing = str(tmp_path / "eigen_test_files.txt")
    with pytest.raises(FileNotFoundError, match="kitti_depth.split_files.test .*eigen_test_files.txt"):
        source_of(tree, split_files=SplitMapConfig(test=missing))
    twice = _write_list(tmp_path / "twice.txt", [f"2011_09_28/{DRIVE_5} 1 l"])
    with pytest.raises(ValueError, match="listed for both train and test"):
        source_of(tree, split_files=SplitMapConfig(train=twice, test=twice))


def test_missing_and_mislabelled_files_are_named(kitti_tree, tmp_path):
    tree = kitti_tree({DRIVE_5: DRIVES[DRIVE_5]})
    source = source_of(tree, cameras=["image_02"])
    keys = source.list_keys()
    raw = tree.raw_root / "2011_09_28" / DRIVE_5 / "image_02" / "data"
    (raw / "0000000001.png").unlink()
    with pytest.raises(RecordError, match=f"missing RGB file {raw / '0000000001.png'}"):
        source.load(keys[1])
    groundtruth = tree.annotated_root / "train" / DRIVE_5 / "proj_depth" / "groundtruth" / "image_02"
    Image.fromarray(np.zeros((20, 48, 3), np.uint8)).save(groundtruth / "0000000002.png")  # an RGB image
    with pytest.raises(
        RecordError, match=f"depth image {groundtruth / '0000000002.png'} must be single-channel 16-bit"
    ):
        source.load(keys[2])
    Image.fromarray(np.zeros((10, 48, 3), np.uint8)).save(raw / "0000000003.png")
    with pytest.raises(
        RecordError, match=r"raw image .*0000000003.png is \(10, 48\) .* annotated depth .* \(20, 48\)"
    ):
        source.load(keys[3])
    with pytest.raises(RecordError, match="is not a key of the kitti_depth source"):
        source.load("kitti_depth/2011_01_01_drive_0001_sync/image_02/0000000000")
    with pytest.raises(FileNotFoundError, match="kitti_depth.raw_root '' is not an existing folder"):
        KittiDepthSource(KittiDepthConfig(annotated_root=str(tree.annotated_root)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"no annotated depth under .*empty.*\{train,val\}/<date>_drive"
    ):
        KittiDepthSource(KittiDepthConfig(annotated_root=str(empty), raw_root=str(tree.raw_root))).list_keys()


def test_manifest_changes_when_a_frame_is_added(kitti_tree):
    tree = kitti_tree({DRIVE_5: DRIVES[DRIVE_5]})
    source = source_of(tree)
    before = source.manifest()
    assert before["files"] == 2 * 2 * 5 + 1  # depth + RGB per key, one calibration
    groundtruth = tree.annotated_root / "train" / DRIVE_5 / "proj_depth" / "groundtruth" / "image_02"
    (groundtruth / "0000000004.png").unlink()
    assert source.manifest() != before


def test_real_kitti_samples_arranged_in_the_official_tree(real_rgbd_dir, tmp_path):
    """The real KITTI samples, linked into the annotated + raw layout, read back pixel for pixel."""
    samples = real_rgbd_dir / "kitti_samples"
    camera = json.loads((samples / "intrinsics.json").read_text())
    drive = "2011_10_03_drive_0042_sync"
    groundtruth = tmp_path / "annotated" / "train" / drive / "proj_depth" / "groundtruth" / "image_02"
    raw = tmp_path / "raw" / "2011_10_03" / drive / "image_02" / "data"
    groundtruth.mkdir(parents=True)
    raw.mkdir(parents=True)
    for depth in sorted((samples / "depth").glob("*.png")):
        (groundtruth / depth.name).symlink_to(depth)
        (raw / depth.name).symlink_to(samples / "rgb" / depth.name)
    fx, fy, cx, cy = (camera[name] for name in ("fx", "fy", "cx", "cy"))
    (raw.parents[2] / "calib_cam_to_cam.txt").write_text(
        f"P_rect_02: {fx} 0 {cx} 46 0 {fy} {cy} 0.1 0 0 1 0\nP_rect_03: {fx} 0 {cx} -334 0 {fy} {cy} 2 0 0 1 0\n"
    )
    source = KittiDepthSource(
        KittiDepthConfig(annotated_root=str(tmp_path / "annotated"), raw_root=str(tmp_path / "raw"))
    )
    keys = source.list_keys()
    assert keys == [
        f"kitti_depth/{drive}/image_02/{name}" for name in ("0000000005", "0000000050", "0000000100")
    ]
    for key in keys:
        name = key.rsplit("/", 1)[1]
        record = source.load(key)
        stored = np.asarray(Image.open(samples / "depth" / f"{name}.png"))
        np.testing.assert_array_equal(record.depth, stored / np.float32(camera["depth_scale"]))
        np.testing.assert_array_equal(record.image, np.asarray(Image.open(samples / "rgb" / f"{name}.png")))
        assert 0.1 < (record.depth > 0).mean() < 0.3 and record.depth.max() < 90
        assert record.depth.shape == (375, 1242) and record.group == drive
        assert record.intrinsics == pytest.approx((fx, fy, cx, cy))

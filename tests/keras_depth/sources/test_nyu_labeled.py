"""The NYU Depth v2 labelled source on .mat files in the official layout (HDF5 + MATLAB v5 splits)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from components.ingest.split import key_position
from keras_depth.config import NyuLabeledConfig
from keras_depth.data.layout import SPLITS
from keras_depth.data.schema import decode_example
from keras_depth.sources.base import RecordError
from keras_depth.sources.nyu_labeled import KINECT_RGB_INTRINSICS, NyuLabeledSource, frame_key

REPO_ROOT = Path(__file__).resolve().parents[3]
# 12 frames of 5 scenes; the official split keeps scenes apart, as NYU's does.
SCENES = ["bedroom_0001"] * 3 + ["kitchen_0002"] * 3 + ["office_0003"] * 2 + ["bathroom_0004"] * 2
SCENES += ["living_room_0005"] * 2
TRAIN = [1, 2, 3, 4, 5, 6, 11, 12]
TEST = [7, 8, 9, 10]


def source_of(files, **overrides) -> NyuLabeledSource:
    cfg = NyuLabeledConfig(path=str(files.path), splits_path=str(files.splits_path or ""), **overrides)
    return NyuLabeledSource(cfg)


def test_frames_are_transposed_to_hxw_with_rgb_and_depth_aligned(nyu_labeled_files, assert_aligned):
    files = nyu_labeled_files(SCENES, height=24, width=32)
    with h5py.File(files.path, "r") as file:  # the on-disk layout: [frame][channel][column][row]
        assert file["images"].shape == (12, 3, 32, 24) and file["depths"].shape == (12, 32, 24)
        on_disk_depth = float(file["depths"][4, 17, 5])  # frame 5, column 17, row 5
        on_disk_green = int(file["images"][4, 1, 17, 5])
    source = source_of(files)
    keys = source.list_keys()
    assert keys == [frame_key(frame) for frame in range(1, 13)] and keys[0] == "nyu_labeled/0001"
    for index, key in enumerate(keys):
        record = source.load(key)
        assert record.image.shape == (24, 32, 3) and record.image.dtype == np.uint8
        assert record.depth.shape == (24, 32) and record.depth.dtype == np.float32
        np.testing.assert_array_equal(record.image, files.images[index])
        np.testing.assert_array_equal(record.depth, files.depths[index])
        assert_aligned(record.image, record.depth, index)
        assert record.group == SCENES[index] and record.official_split is None
        assert record.intrinsics is None  # only the original 480 x 640 frames have the Kinect intrinsics
    record = source.load("nyu_labeled/0005")
    assert record.depth[5, 17] == on_disk_depth and record.image[5, 17, 1] == on_disk_green


def test_raw_depth_keeps_its_holes(nyu_labeled_files, assert_aligned):
    files = nyu_labeled_files(SCENES[:4])
    record = source_of(files, depth_field="rawDepths").load("nyu_labeled/0002")
    np.testing.assert_array_equal(record.depth, files.raw_depths[1])
    assert (record.depth == 0).sum() == (files.raw_depths[1] == 0).sum() > 0
    assert_aligned(record.image, record.depth, 1)


def test_official_split_is_followed_verbatim_and_keeps_scenes_apart(nyu_labeled_files):
    files = nyu_labeled_files(SCENES, train=TRAIN, test=TEST)
    source = source_of(files)
    splits = {key: source.load(key).official_split for key in source.list_keys()}
    assert sorted(k for k, split in splits.items() if split == "train") == [frame_key(f) for f in TRAIN]
    assert sorted(k for k, split in splits.items() if split == "test") == [frame_key(f) for f in TEST]
    scenes_by_split = {
        split: {SCENES[int(k[-4:]) - 1] for k, s in splits.items() if s == split} for split in SPLITS
    }
    assert not scenes_by_split["train"] & scenes_by_split["test"]
    assert source.skipped_records() == {}

    hashed = source_of(files, use_official_split=False)
    assert {hashed.load(key).official_split for key in hashed.list_keys()} == {None}


def test_frames_missing_from_splits_mat_are_skipped_and_counted(nyu_labeled_files):
    files = nyu_labeled_files(SCENES, train=TRAIN[:-1], test=TEST)
    source = source_of(files)
    assert frame_key(12) not in source.list_keys()
    assert source.skipped_records() == {"not in splits.mat": 1}


def test_real_size_frames_carry_the_kinect_intrinsics(nyu_labeled_files, assert_aligned):
    files = nyu_labeled_files(["dining_room_0001a", "dining_room_0001a"], height=480, width=640)
    with h5py.File(files.path, "r") as file:
        assert file["images"].shape == (2, 3, 640, 480) and file["rawDepths"].shape == (2, 640, 480)
    record = source_of(files).load("nyu_labeled/0002")
    assert record.image.shape == (480, 640, 3) and record.intrinsics == KINECT_RGB_INTRINSICS
    assert record.group == "dining_room_0001a"
    assert_aligned(record.image, record.depth, 1)


def test_source_pickles_without_its_open_file(nyu_labeled_files):
    files = nyu_labeled_files(SCENES[:3])
    source = source_of(files)
    source.list_keys()  # opens the file in this process
    clone = pickle.loads(pickle.dumps(source))
    assert clone._file is None
    np.testing.assert_array_equal(clone.load("nyu_labeled/0003").depth, files.depths[2])


def test_real_nyu_frames_survive_the_official_layout(real_rgbd_dir, nyu_labeled_files):
    """The real NYU samples, written as nyu_depth_v2_labeled.mat, read back pixel for pixel."""
    root = real_rgbd_dir / "nyu_samples"
    names = ["00000", "00050", "00100", "living_room"]
    images = np.stack([np.asarray(Image.open(next((root / "rgb").glob(f"rgb_{n}.*")))) for n in names])
    depths = np.stack([np.asarray(Image.open(root / "depth" / f"sync_depth_{n}.png")) for n in names])
    depths = depths.astype(np.float32) / 1000
    scenes = ["bedroom_0001"] * 2 + ["kitchen_0003", "living_room_0001"]
    files = nyu_labeled_files(scenes, images=images, depths=depths)
    source = source_of(files, depth_field="rawDepths")
    for index, key in enumerate(source.list_keys()):
        record = source.load(key)
        np.testing.assert_array_equal(record.image, images[index])
        np.testing.assert_array_equal(record.depth, depths[index])
        assert (record.depth == 0).any() and record.intrinsics == KINECT_RGB_INTRINSICS


def test_missing_and_mislabelled_files_are_named(nyu_labeled_files, tmp_path):
    files = nyu_labeled_files(SCENES[:4], train=[1, 2], test=[3, 4])
    missing = tmp_path / "absent.mat"
    with pytest.raises(FileNotFoundError, match=f"nyu_labeled.path '{missing}' is not a file"):
        NyuLabeledSource(NyuLabeledConfig(path=str(missing)))
    with pytest.raises(FileNotFoundError, match=f"nyu_labeled.splits_path '{missing}'"):
        NyuLabeledSource(NyuLabeledConfig(path=str(files.path), splits_path=str(missing)))
    # splits.mat given as the labelled file, and the other way round
    with pytest.raises(ValueError, match=f"{files.splits_path}: not a MATLAB v7.3"):
        NyuLabeledSource(NyuLabeledConfig(path=str(files.splits_path))).list_keys()
    with pytest.raises(ValueError, match=f"{files.path}: not a MATLAB v5 splits.mat"):
        NyuLabeledSource(NyuLabeledConfig(path=str(files.path), splits_path=str(files.path)))
    wrong_names = tmp_path / "wrong_names.mat"
    scipy.io.savemat(wrong_names, {"train": np.ones((2, 1)), "test": np.ones((2, 1))})
    with pytest.raises(ValueError, match=f"{wrong_names}: no variable 'trainNdxs'"):
        NyuLabeledSource(NyuLabeledConfig(path=str(files.path), splits_path=str(wrong_names)))
    with pytest.raises(ValueError, match="nyu_labeled.depth_field must be one of depths, rawDepths"):
        NyuLabeledSource(NyuLabeledConfig(path=str(files.path), depth_field="depth"))


def test_wrong_layouts_and_bad_keys_name_the_field(nyu_labeled_files, tmp_path):
    files = nyu_labeled_files(SCENES[:2])
    broken = tmp_path / "broken.mat"
    with h5py.File(files.path, "r") as source_file, h5py.File(broken, "w") as file:
        file["images"] = source_file["images"][:]
        file["depths"] = source_file["depths"][:, :, :-1]  # one row short
        file["scenes"] = np.zeros((1, 2))
    with pytest.raises(ValueError, match=r"broken.mat: depths must be \(N, W, H\) = \(2, 32, 24\)"):
        NyuLabeledSource(NyuLabeledConfig(path=str(broken))).list_keys()
    with pytest.raises(ValueError, match="broken.mat: no dataset 'rawDepths'"):
        NyuLabeledSource(NyuLabeledConfig(path=str(broken), depth_field="rawDepths")).list_keys()
    source = source_of(files)
    with pytest.raises(RecordError, match="frame 3 is beyond the 2 frames"):
        source.load("nyu_labeled/0003")
    with pytest.raises(RecordError, match="is not a key of the nyu_labeled source"):
        source.load("folder/0001")
    too_long = nyu_labeled_files(SCENES[:2], train=[1, 2], test=[3])
    with pytest.raises(ValueError, match="splits.mat: lists frames up to 3 but .* has 2"):
        source_of(too_long).list_keys()


def _ingest(output_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    command = [sys.executable, "-m", "pipeline.run", "--stage", "ingest", "--config", "configs/smoke.yaml"]
    command += ["--output-dir", str(output_dir), "--set", "mlflow.enabled=false"]
    command += [arg for override in overrides for arg in ("--set", override)]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
def test_ingest_stage_keeps_the_official_split_and_no_scene_in_two_splits(nyu_labeled_files, tmp_path):
    files = nyu_labeled_files(SCENES, train=TRAIN, test=TEST)
    train_scenes = sorted({SCENES[frame - 1] for frame in TRAIN})
    # val_from_train holds out the official train scenes hashed below it: here exactly one of three.
    moved = [scene for scene in train_scenes if key_position(scene) < 0.5]
    assert len(moved) == 1, "pick scene names so that one train scene moves to val"
    result = _ingest(
        tmp_path / "runs",
        "ingest.source=nyu_labeled",
        f"ingest.nyu_labeled.path={files.path}",
        f"ingest.nyu_labeled.splits_path={files.splits_path}",
        "ingest.val_from_train=0.5",
        "ingest.max_failed_fraction=0.0",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (output,) = (tmp_path / "runs" / "pipeline_root" / "ingest").glob("[!.]*")
    stats = json.loads((output / "stats.json").read_text())
    moved_frames = sum(SCENES[frame - 1] in moved for frame in TRAIN)
    assert stats["counts"] == {"train": len(TRAIN) - moved_frames, "val": moved_frames, "test": len(TEST)}
    assert stats["groups"] == {"train": 2, "val": 1, "test": 2}
    assert stats["groups_in_several_splits"] == 0 and stats["records_skipped"] == {}

    groups = {}
    for split in SPLITS:
        records = tf.data.TFRecordDataset(sorted(map(str, (output / split).glob("*.tfrecord.gz"))), "GZIP")
        groups[split] = {decode_example(serialized).group for serialized in records.as_numpy_iterator()}
    assert groups["test"] == {SCENES[frame - 1] for frame in TEST} and groups["val"] == set(moved)
    assert not (
        groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"]
    )
    assert "ingest: 12 records to process from 'nyu_labeled'" in result.stderr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_mat_file_fails_naming_the_file_or_gives_records_and_record_errors(nyu_labeled_files, data):
    """Random damage to the HDF5 bytes: the source refuses the file (naming it) or loads frame by frame."""
    files = nyu_labeled_files(["kitchen_0001", "office_0002"], height=12, width=16)
    sample = bytearray(files.path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6), label="edits")):
        at = data.draw(st.integers(0, len(sample) - 1), label="offset")
        edit = data.draw(st.sampled_from(["flip", "truncate", "zero"]), label="edit")
        if edit == "flip":
            sample[at] ^= 1 << data.draw(st.integers(0, 7))
        elif edit == "truncate":
            del sample[max(at, 1) :]
        else:
            sample[at : at + 16] = bytes(len(sample[at : at + 16]))
    files.path.write_bytes(bytes(sample))
    try:
        source = source_of(files)
        keys = source.list_keys()
    except (ValueError, OSError) as error:
        assert str(files.path) in str(error) or "nyu_labeled" in str(error)
        return
    for key in keys:
        try:
            record = source.load(key)
        except RecordError as error:
            assert str(error)
            continue
        assert record.image.dtype == np.uint8 and record.image.shape[2] == 3
        assert record.depth.shape == record.image.shape[:2]

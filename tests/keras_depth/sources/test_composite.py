"""Several sources in one ingest: the composite source, and NYU raw scenes + the labelled test frames
through the real ingest stage (the paper's set-up)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.ingest.split import key_position
from keras_depth.data.layout import SPLITS
from keras_depth.data.schema import decode_example
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.composite import CompositeSource

REPO_ROOT = Path(__file__).resolve().parents[3]


class ListedSource(DepthSource):
    """A source listing the given ids as ``<name>/<id>`` and loading a 1x1 record."""

    def __init__(self, name: str, ids: list[str], skipped: dict[str, int] | None = None) -> None:
        self.name, self.ids, self.skipped = name, ids, skipped or {}

    def list_keys(self) -> list[str]:
        return [f"{self.name}/{id_}" for id_ in self.ids]

    def source_path(self, key: str) -> str:
        return f"/{self.name}/{key}"

    def manifest(self) -> dict:
        return {"files": len(self.ids)}

    def skipped_records(self) -> dict[str, int]:
        return dict(self.skipped)

    def load(self, key: str) -> RawRecord:
        return RawRecord(
            key, self.source_path(key), np.zeros((1, 1, 3), np.uint8), np.ones((1, 1), np.float32)
        )


def test_composite_lists_loads_and_reports_each_source_under_its_name():
    composite = CompositeSource([ListedSource("a", ["1", "2"], {"no depth": 3}), ListedSource("b", ["1"])])
    composite = pickle.loads(pickle.dumps(composite))
    assert composite.name == "a+b"
    assert composite.list_keys() == ["a/1", "a/2", "b/1"]
    assert composite.load("b/1").source_path == "/b/b/1" and composite.source_path("a/2") == "/a/a/2"
    assert composite.manifest() == {"a": {"files": 2}, "b": {"files": 1}}
    assert composite.skipped_records() == {"a: no depth": 3}
    with pytest.raises(RecordError, match="'c/1' starts with none of the sources a, b"):
        composite.load("c/1")


def test_composite_refuses_repeated_sources_and_foreign_keys():
    with pytest.raises(ValueError, match="distinct sources"):
        CompositeSource([ListedSource("a", []), ListedSource("a", [])])
    foreign = ListedSource("a", [])
    foreign.list_keys = lambda: ["b/1"]
    with pytest.raises(ValueError, match="source 'a' lists keys not starting with 'a/'"):
        CompositeSource([foreign]).list_keys()


# --- NYU raw scenes (folder, "sync" layout) for train/val + the labelled test frames (nyu_labeled) ---

LABELLED_SCENES = [
    "kitchen_0028a",
    "kitchen_0028a",
    "office_0003",
    "bedroom_0001",
    "bedroom_0001",
    "bathroom_0004",
]
LABELLED_TRAIN, LABELLED_TEST = [4, 5, 6], [1, 2, 3]
# Raw scene folders -> frames; kitchen_0028b and Office_0003 are the scenes of labelled test frames.
RAW_SCENES = {
    "kitchen_0028b_out": 2,
    "Office_0003_out": 1,
    "bedroom_0001_out": 2,  # a labelled train scene: may feed training
    "study_0002a_out": 1,
    "study_0002b_out": 1,
    "living_room_0010_out": 2,
    "dining_room_0011_out": 2,
    "classroom_0012_out": 1,
}
TRAIN_FRACTION, VAL_FRACTION = 0.6, 0.2  # renormalised over train + val: train below 0.75


def write_raw_sync_folder(root: Path, marked_frames) -> None:
    """``<root>/<scene>_out/rgb_NNNNN.jpg`` + ``sync_depth_NNNNN.png`` (uint16 millimetres)."""
    images, depths = marked_frames(sum(RAW_SCENES.values()), 24, 32)
    index = 0
    for scene, count in RAW_SCENES.items():
        (root / scene).mkdir(parents=True)
        for number in range(count):
            Image.fromarray(images[index]).save(root / scene / f"rgb_{number:05d}.jpg", quality=95)
            depth_mm = np.round(depths[index] * 1000).astype(np.uint16)
            Image.fromarray(depth_mm).save(root / scene / f"sync_depth_{number:05d}.png")
            index += 1


def read_split(output: Path, split: str) -> list:
    files = sorted(str(path) for path in (output / split).glob("*.tfrecord.gz"))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [decode_example(serialized) for serialized in records.as_numpy_iterator()]


@pytest.mark.e2e
def test_raw_scenes_train_and_labelled_frames_test_with_no_scene_in_two_splits(
    nyu_labeled_files, marked_frames, tmp_path
):
    labelled = nyu_labeled_files(LABELLED_SCENES, train=LABELLED_TRAIN, test=LABELLED_TEST)
    raw_root = tmp_path / "nyu_sync"
    write_raw_sync_folder(raw_root, marked_frames)
    fed_scenes = ["bedroom_0001", "study_0002", "living_room_0010", "dining_room_0011", "classroom_0012"]
    fed_positions = [key_position(scene) for scene in fed_scenes]
    assert min(fed_positions) < 0.75 < max(fed_positions), "pick scene names that hash into train and val"

    overrides = [
        "ingest.sources=[{source: folder, splits: [train, val]}, {source: nyu_labeled, splits: [test]}]",
        f"ingest.folder.root={raw_root}",
        "ingest.folder.rgb_glob='*/rgb_*.jpg'",
        r"ingest.folder.depth_pattern=rgb_(\d+)\.jpg$=>sync_depth_\1.png",
        r"ingest.folder.group_pattern=([^/]+)/rgb_\d+\.jpg$",
        f"ingest.nyu_labeled.path={labelled.path}",
        f"ingest.nyu_labeled.splits_path={labelled.splits_path}",
        f"ingest.train_fraction={TRAIN_FRACTION}",
        f"ingest.val_fraction={VAL_FRACTION}",
        "ingest.max_failed_fraction=0.0",
    ]
    command = [sys.executable, "-m", "pipeline.run", "--stage", "ingest", "--config", "configs/smoke.yaml"]
    command += ["--output-dir", str(tmp_path / "runs"), "--set", "mlflow.enabled=false"]
    command += [arg for override in overrides for arg in ("--set", override)]
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    (output,) = (tmp_path / "runs" / "pipeline_root" / "ingest").glob("[!.]*")
    stats = json.loads((output / "stats.json").read_text())
    records = {split: read_split(output, split) for split in SPLITS}
    groups = {split: {example.group for example in records[split]} for split in SPLITS}

    # test = exactly the labelled test frames; train and val = raw frames of scenes without a test frame
    assert sorted(example.key for example in records["test"]) == [
        f"nyu_labeled/{n:04d}" for n in LABELLED_TEST
    ]
    assert groups["test"] == {"kitchen_0028", "office_0003"}
    assert {example.source for split in ("train", "val") for example in records[split]} == {"folder"}
    expected = {"train": set(), "val": set()}
    for scene, position in zip(fed_scenes, fed_positions, strict=True):
        expected["train" if position < 0.75 else "val"].add(scene)
    assert {split: groups[split] for split in ("train", "val")} == expected  # study_0002a and b together
    assert not any(groups[a] & groups[b] for a, b in [("train", "val"), ("train", "test"), ("val", "test")])
    assert stats["groups_in_several_splits"] == 0

    # every record read is written or skipped, with its reason counted in stats.json
    skipped = stats["records_skipped"]
    assert skipped.pop("nyu_labeled: train split, not among its splits (test)") == len(LABELLED_TRAIN)
    test_scene_frames = RAW_SCENES["kitchen_0028b_out"] + RAW_SCENES["Office_0003_out"]
    assert set(skipped) <= {
        f"folder: group holds a test record (would be {split})" for split in ("train", "val")
    }
    assert sum(skipped.values()) == test_scene_frames
    assert stats["records_skipped_after_read"] == len(LABELLED_TRAIN) + test_scene_frames
    assert stats["records_read"] == len(LABELLED_SCENES) + sum(RAW_SCENES.values())
    assert stats["records_written"] == stats["records_read"] - stats["records_skipped_after_read"]
    assert "from 'folder+nyu_labeled'" in result.stderr

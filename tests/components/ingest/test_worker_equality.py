"""The same ingest on the DirectRunner in memory, with one and with two worker processes gives the same
output: the same records (key -> example bytes) in every split, the same shard bytes, dead letters and
statistics. The ingest mixes what the graph must get right across workers: 28 synthetic scenes, and an
RGB-D folder whose pairs are written, dead-lettered (4 bad files), skipped (a split its source does not
feed) or dropped (train records of a group that holds a test record)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import tensorflow as tf

from components.ingest import STAGE
from components.ingest.config import SourceFeedConfig
from keras_depth.config import SplitMapConfig, SyntheticRoomsConfig
from keras_depth.data.layout import SPLITS

NUM_SCENES = 28  # + the folder's 12 pairs = 40 records
RUNS = {
    "in_memory": (1, "in_memory"),
    "one_worker": (1, "multi_processing"),
    "two_workers": (2, "multi_processing"),
}


def records_by_key(output_dir: Path, split: str) -> dict[str, bytes]:
    """Key -> serialized example of every record of ``split``."""
    files = sorted(str(path) for path in (output_dir / split).iterdir())
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()
    by_key = {}
    for serialized in records:
        key = tf.train.Example.FromString(serialized).features.feature["example/key"].bytes_list.value[0]
        assert key.decode() not in by_key
        by_key[key.decode()] = serialized
    return by_key


def shard_bytes(output_dir: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(output_dir)): path.read_bytes() for path in output_dir.glob("*/*.tfrecord.gz")
    }


@pytest.mark.e2e
def test_in_memory_one_and_two_workers_write_the_same_records(
    rgbd_folder, small_config, make_context, tmp_path
):
    folder = SourceFeedConfig(
        source="folder",
        splits=["train", "test"],
        split_patterns=SplitMapConfig(train="rgb_", val="rgb_007", test="rgb_00[01]"),
    )
    outputs = {}
    for name, (workers, mode) in RUNS.items():
        config = small_config(
            sources=[SourceFeedConfig(source="synthetic_rooms"), folder],
            synthetic=SyntheticRoomsConfig(num_scenes=NUM_SCENES, height=24, width=32),
            folder=replace(
                rgbd_folder.source_config(), group_pattern=r"rgb_(\w)\w*\.png$"
            ),  # 000-007: group 0
            storage_height=24,
            storage_width=32,
            max_failed_fraction=0.5,
            direct_num_workers=workers,
            direct_running_mode=mode,
        )
        context = make_context(tmp_path / name, config)
        counts = STAGE.run(context)
        outputs[name] = (context.output_dir, counts)
        assert not list(context.output_dir.rglob("beam-temp-*")), name

    reference_dir, reference_counts = outputs["in_memory"]
    stats = json.loads((reference_dir / "stats.json").read_text())
    assert stats["records_read"] == NUM_SCENES + 12 and stats["records_failed"] == 4
    assert stats["records_skipped"] == {
        "folder: group holds a test record (would be train)": 5,  # pairs 002-006
        "folder: val split, not among its splits (train, test)": 1,  # pair 007
    }
    reference_records = {split: records_by_key(reference_dir, split) for split in SPLITS}
    assert {"folder/rgb_000.png", "folder/rgb_001.png"} <= set(reference_records["test"])
    for name, (output_dir, counts) in outputs.items():
        assert counts == reference_counts, name
        for split in SPLITS:
            assert records_by_key(output_dir, split) == reference_records[split], (name, split)
        assert shard_bytes(output_dir) == shard_bytes(reference_dir), name
        for report in ("dead_letter.jsonl", "stats.json"):
            assert (output_dir / report).read_text() == (reference_dir / report).read_text(), (name, report)

"""Ingest of RGB-D folders: bad files are dead-lettered with their reasons, real samples pass."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from components.ingest import STAGE
from keras_depth.config import FolderSourceConfig
from keras_depth.data.layout import SPLITS
from keras_depth.data.reader import list_shards
from keras_depth.data.schema import decode_example

NYU_PATTERN = r"rgb/rgb_(\w+)\.(jpg|png)$=>depth/sync_depth_\1.png"
NYU_SIZE = (480, 640)
NUM_NYU_SAMPLES = 4


def written_examples(output_dir) -> list:
    """Every example in the output's shards."""
    shards = list_shards(str(output_dir / "*" / "*.tfrecord.gz"))
    records = tf.data.TFRecordDataset(shards, compression_type="GZIP")
    return [decode_example(serialized) for serialized in records.as_numpy_iterator()]


def read_dead_letters(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bad_pairs_are_dead_lettered_with_their_reasons(rgbd_folder, small_config, make_context, tmp_path):
    config = small_config(
        source="folder", folder=FolderSourceConfig(root=str(rgbd_folder.root)), max_failed_fraction=0.5
    )
    context = make_context(tmp_path, config)
    counts = STAGE.run(context)
    num_bad, num_good = len(rgbd_folder.bad_reasons), len(rgbd_folder.good_keys)
    assert counts["records_read"] == num_good + num_bad and counts["records_failed"] == num_bad
    assert sum(counts[split] for split in SPLITS) == num_good
    assert sorted(example.key for example in written_examples(context.output_dir)) == rgbd_folder.good_keys
    dead_letters = read_dead_letters(context.output_dir / "dead_letter.jsonl")
    assert [entry["key"] for entry in dead_letters] == sorted(rgbd_folder.bad_reasons)
    for entry in dead_letters:
        assert entry["reason"].startswith(rgbd_folder.bad_reasons[entry["key"]]), entry
        assert entry["source_path"] == str(rgbd_folder.root / entry["key"].removeprefix("folder/"))
    stats = json.loads((context.output_dir / "stats.json").read_text())
    assert stats["image_sizes"] == {"60x80": num_good}
    assert (stats["records_read"], stats["records_failed"]) == (num_good + num_bad, num_bad)


def test_too_many_failures_fail_the_stage_and_keep_the_dead_letters(
    rgbd_folder, small_config, make_context, tmp_path
):
    config = small_config(
        source="folder", folder=FolderSourceConfig(root=str(rgbd_folder.root)), max_failed_fraction=0.1
    )
    context = make_context(tmp_path, config)
    kept = context.work_dir / "dead_letter.jsonl"
    first_key = min(rgbd_folder.bad_reasons)
    expected = (
        f"4 of 12 records failed (33.3%), above ingest.max_failed_fraction=0.1; see {kept}: "
        f"{first_key}: {rgbd_folder.bad_reasons[first_key]}"
    )
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        STAGE.run(context)
    assert [entry["key"] for entry in read_dead_letters(kept)] == sorted(rgbd_folder.bad_reasons)


def test_real_nyu_samples_are_all_written(real_rgbd_dir, small_config, make_context, tmp_path):
    root = real_rgbd_dir / "nyu_samples"
    config = small_config(
        source="folder",
        folder=FolderSourceConfig(root=str(root), rgb_glob="rgb/*", depth_pattern=NYU_PATTERN),
        max_failed_fraction=0.0,
    )
    context = make_context(tmp_path, config)
    counts = STAGE.run(context)
    assert counts["records_read"] == NUM_NYU_SAMPLES and counts["records_failed"] == 0
    examples = written_examples(context.output_dir)
    assert len(examples) == NUM_NYU_SAMPLES
    scale = config.ingest.storage_height / NYU_SIZE[0]
    camera = json.loads((root / "intrinsics.json").read_text())
    for example in examples:
        assert example.image.shape == (48, 64, 3)
        assert 0.5 < (example.depth > 0).mean() <= 1.0 and example.depth.max() <= 10.0
        assert example.intrinsics[0] == pytest.approx(camera["fx"] * scale, rel=1e-4)
    stats = json.loads((context.output_dir / "stats.json").read_text())
    assert stats["image_sizes"] == {"480x640": NUM_NYU_SAMPLES}
    assert stats["depth_histogram"]["range_m"] == [0.0, 10.0]
    assert np.sum(stats["depth_histogram"]["counts"]) == sum(int((e.depth > 0).sum()) for e in examples)

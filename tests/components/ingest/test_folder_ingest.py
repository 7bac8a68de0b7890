"""Ingest of RGB-D folders: bad files are dead-lettered with their reasons, real samples pass."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

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
    config = small_config(source="folder", folder=rgbd_folder.source_config(), max_failed_fraction=0.5)
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
    config = small_config(source="folder", folder=rgbd_folder.source_config(), max_failed_fraction=0.1)
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


def test_every_file_the_glob_finds_is_written_or_dead_lettered(
    rgbd_folder, small_config, make_context, tmp_path
):
    root = rgbd_folder.root
    depth = np.full((60, 80), 1500, np.uint16)
    for name, rgb in {
        "opaque": np.full((60, 80, 4), 255, np.uint8),
        "translucent": np.full((60, 80, 4), 128, np.uint8),
        "grey": np.full((60, 80), 128, np.uint8),
    }.items():
        Image.fromarray(rgb).save(root / f"rgb_{name}.png")
        Image.fromarray(depth).save(root / f"depth_{name}.png")
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(root / "rgb_big.png")
    Image.fromarray(np.full((100, 100), 1500, np.uint16)).save(root / "depth_big.png")
    (root / "rgb_loop.png").symlink_to("rgb_loop.png")
    (root / "rgb_dangling.png").symlink_to("gone.png")
    expected_reasons = rgbd_folder.bad_reasons | {
        "folder/rgb_translucent.png": f"RGB image {root / 'rgb_translucent.png'} has 4800 of 4800 pixels transparent",
        "folder/rgb_grey.png": f"RGB image {root / 'rgb_grey.png'} has mode 'L'",
        "folder/rgb_big.png": f"RGB image {root / 'rgb_big.png'} is 100x100 = 10000 pixels, above max_image_pixels=6000",
        "folder/rgb_loop.png": f"RGB file {root / 'rgb_loop.png'} is a symbolic link loop",
        "folder/rgb_dangling.png": f"RGB file {root / 'rgb_dangling.png'} is a dangling symbolic link to 'gone.png'",
    }
    config = small_config(
        source="folder", folder=rgbd_folder.source_config(), max_failed_fraction=0.6, max_image_pixels=6000
    )
    context = make_context(tmp_path, config)
    counts = STAGE.run(context)

    found = sorted(f"folder/{path.name}" for path in root.glob("rgb_*.png"))
    written = sorted(example.key for example in written_examples(context.output_dir))
    dead_letters = read_dead_letters(context.output_dir / "dead_letter.jsonl")
    assert written == sorted([*rgbd_folder.good_keys, "folder/rgb_opaque.png"])
    assert [entry["key"] for entry in dead_letters] == sorted(expected_reasons)
    assert sorted(written + [entry["key"] for entry in dead_letters]) == found  # records lost: 0
    for entry in dead_letters:
        assert entry["reason"].startswith(expected_reasons[entry["key"]]), entry
    assert counts["records_read"] == len(found)
    stats = json.loads((context.output_dir / "stats.json").read_text())
    assert stats["conversions"] == {"opaque_alpha_dropped": 1}

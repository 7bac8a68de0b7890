"""configs/real_samples.yaml: its ingest stage on the real 7-Scenes frames holds out contiguous blocks.

The preset's whole pipeline (a few minutes of training) is too slow for the suite; this runs its
ingest stage from the repository root, as ``make run CONFIG=configs/real_samples.yaml`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from keras_depth.data.layout import SPLITS
from keras_depth.data.schema import decode_example

REPO_ROOT = Path(__file__).resolve().parent.parent
FRAMES = range(0, 1000, 10)  # frame-000000 ... frame-000990


def frame_keys(frames) -> list[str]:
    return [f"folder/frame-{frame:06d}.color.jpg" for frame in frames]


@pytest.mark.e2e
def test_real_samples_ingest_tests_on_the_last_block_of_frames(real_rgbd_dir, tmp_path):
    command = [
        sys.executable,
        "-m",
        "pipeline.run",
        "--stage",
        "ingest",
        "--config",
        "configs/real_samples.yaml",
    ]
    command += ["--output-dir", str(tmp_path / "runs"), "--set", "mlflow.enabled=false"]
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    (output,) = (tmp_path / "runs" / "pipeline_root" / "ingest").glob("[!.]*")
    examples = {}
    for split in SPLITS:
        files = sorted(str(path) for path in (output / split).glob("*.tfrecord.gz"))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()
        examples[split] = [decode_example(serialized) for serialized in records]
    keys = {split: sorted(example.key for example in examples[split]) for split in SPLITS}
    assert keys["test"] == frame_keys(range(800, 1000, 10))
    assert keys["val"] == frame_keys(range(700, 800, 10))
    assert keys["train"] == frame_keys(range(0, 700, 10))

    groups = {split: {example.group for example in examples[split]} for split in SPLITS}
    assert groups["test"] == {"frame-0008", "frame-0009"}
    assert not (
        groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"]
    )
    stats = json.loads((output / "stats.json").read_text())
    assert stats["groups_in_several_splits"] == 0 and stats["records_failed"] == 0
    # 7-Scenes' 65535 holes load as invalid (0), not as 65.5 m
    assert max(example.depth.max() for split in SPLITS for example in examples[split]) < 10.0

"""The on-disk layout of an ingested dataset (GUIDE section 2), shared by the writer and the readers.

``<root>/<split>/data-SSSSS-of-NNNNN.tfrecord.gz`` for the splits ``train``, ``val`` and ``test``, and
``<root>/stats.json``. Pure Python (no TensorFlow), so configs and Beam graph construction can use it.
"""

from __future__ import annotations

from pathlib import Path

TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)
SHARD_PREFIX = "data"
SHARD_SUFFIX = ".tfrecord.gz"
STATS_FILE = "stats.json"


def split_pattern(root: str | Path, split: str) -> str:
    """Glob of every shard of ``split`` under the dataset ``root``."""
    return str(Path(root) / split / f"{SHARD_PREFIX}-*{SHARD_SUFFIX}")

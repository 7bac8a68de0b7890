"""Ingest -> evaluate round trip: the test split's native ground truth is the source's depth, bit for bit."""

from __future__ import annotations

import dataclasses
import io
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.base import StageContext
from components.evaluate.batches import (
    HAS_NATIVE,
    KEY,
    NATIVE_DEPTH,
    NATIVE_SIZE,
    evaluation_batches,
    ground_truths,
)
from components.evaluate.scoring import score_predictors
from components.ingest import STAGE as INGEST
from keras_depth.config import FolderSourceConfig
from keras_depth.data.reader import list_shards
from keras_depth.data.schema import decode_example
from keras_depth.sources.registry import make_source
from pipeline.config import PipelineConfig

NATIVE = (75, 124)  # KITTI-like aspect: stored 24 x 64 after a cover resize to 39 x 64 and a 7-row crop
STORAGE = (24, 64)
INPUT = (16, 40)
# The 16 x 40 input crop starts at stored (4, 12); the frame spans native rows 7 * 75 / 39 = 13.46 to
# 31 * 75 / 39 = 59.62, so the window is rows 13.46 + 4 * 1.923 = 21.15 -> 21 to 13.46 + 20 * 1.923 =
# 51.92 -> 52 and columns 12 * 124 / 64 = 23.25 -> 23 to 52 * 124 / 64 = 100.75 -> 101.
WINDOW_ROWS, WINDOW_COLS = slice(21, 52), slice(23, 101)
# With train_fraction 0.5 the group hash sends scene_a (0.376) and scene_b (0.203) to train, scene_e
# (0.726) and scene_f (0.517) to test.
GROUPS = {"scene_a": 1, "scene_b": 1, "scene_e": 2, "scene_f": 1}
TEST_GROUPS = ("scene_e", "scene_f")


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A folder of sparse millimetre depth PNGs, ingested by the real stage: (output dir, source)."""
    root = tmp_path_factory.mktemp("round_trip")
    data = root / "data"
    rng = np.random.default_rng(7)
    for group, count in GROUPS.items():
        (data / group).mkdir(parents=True)
        for index in range(count):
            depth_mm = rng.integers(500, 60000, NATIVE).astype(np.uint16)
            depth_mm[rng.random(NATIVE) > 0.2] = 0  # sparse: nearest resizing would drop most points
            (data / group / f"rgb_{index:02d}.png").write_bytes(
                _png(rng.integers(0, 256, (*NATIVE, 3), np.uint8))
            )
            (data / group / f"depth_{index:02d}.png").write_bytes(_png(depth_mm))
    config = PipelineConfig()
    folder = FolderSourceConfig(root=str(data), rgb_glob="**/rgb_*.png")
    config.ingest = dataclasses.replace(
        config.ingest,
        source="folder",
        folder=folder,
        storage_height=STORAGE[0],
        storage_width=STORAGE[1],
        train_fraction=0.5,
        val_fraction=0.0,
        shards_per_split=1,
        direct_num_workers=1,
        direct_running_mode="in_memory",
    )
    output_dir = root / "ingest"
    output_dir.mkdir()
    context = StageContext(
        config=config,
        output_dir=output_dir,
        work_dir=root / "work",
        inputs={},
        run_root=root,
        fingerprint="roundtrip",
        log=logging.getLogger("test.round_trip"),
    )
    INGEST.run(context)
    return output_dir, make_source("folder", config.ingest)


def _examples(output_dir, split: str) -> list:
    records = tf.data.TFRecordDataset(
        list_shards(str(output_dir / split / "*.tfrecord.gz")), compression_type="GZIP"
    )
    return [decode_example(serialized) for serialized in records.as_numpy_iterator()]


def test_train_records_stay_at_the_storage_size_only(ingested):
    output_dir, _ = ingested
    train = _examples(output_dir, "train")
    assert len(train) == 2
    for example in train:
        assert example.depth.shape == STORAGE
        assert example.native_depth is None and example.native_frame_box is None


def test_native_test_depth_is_the_source_depth_bit_for_bit(ingested):
    output_dir, source = ingested
    batches = evaluation_batches(str(output_dir / "test" / "*.tfrecord.gz"), 2, *INPUT)
    seen = []
    for batch in batches.as_numpy_iterator():
        assert batch[HAS_NATIVE].all()
        for native, size, key, truth in zip(
            batch[NATIVE_DEPTH], batch[NATIVE_SIZE], batch[KEY], ground_truths(batch, "none"), strict=True
        ):
            source_depth = source.load(key.decode("utf-8")).depth
            assert tuple(size) == NATIVE
            assert native[: size[0], : size[1]].tobytes() == source_depth.astype("<f4").tobytes()
            assert truth.tobytes() == np.ascontiguousarray(source_depth[WINDOW_ROWS, WINDOW_COLS]).tobytes()
            seen.append(key.decode("utf-8").split("/")[1])
    assert sorted(seen) == sorted(group for group in TEST_GROUPS for _ in range(GROUPS[group]))

    def source_depth_predictor(batch):  # the source's own depth in the window (its log; 0 m -> 1 m)
        depth = np.stack(
            [source.load(key.decode("utf-8")).depth[WINDOW_ROWS, WINDOW_COLS] for key in batch[KEY]]
        )
        return np.log(np.where(depth > 0, depth, 1.0))[..., np.newaxis]

    scores = score_predictors(batches, {"source": source_depth_predictor}, "none", 1e-3, 80.0, "source")
    test_keys = [key for key in source.list_keys() if key.split("/")[1] in TEST_GROUPS]
    expected_pixels = sum(
        np.count_nonzero(source.load(key).depth[WINDOW_ROWS, WINDOW_COLS]) for key in test_keys
    )
    assert scores.num_pixels == expected_pixels
    assert scores.pixel["source"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert scores.pixel["source"]["delta1"] == 1.0

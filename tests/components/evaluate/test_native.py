"""Native-resolution ground truth: the network window in native pixels, the crop, and a perfect score.

The windows below are worked out by hand from the storage transform (aspect-preserving cover resize,
centre crop) and the networks' centre input crop, independently of :mod:`components.evaluate.native`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from components.evaluate.batches import NATIVE_DEPTH, evaluation_batches, ground_truths
from components.evaluate.native import Window, input_window, window_ground_truth
from components.evaluate.scoring import score_predictors
from components.ingest.config import IngestConfig
from components.ingest.convert import encode_stored, to_stored
from components.ingest.resize import stored_frame_box
from keras_depth.data.schema import decode_example
from keras_depth.sources.base import RawRecord

KITTI_SIZE = (375, 1242)
KITTI_MAX_DEPTH = 80.0
MIN_DEPTH = 1e-3
# A small KITTI-shaped storage and network input: 375 x 1242 covers 94 x 311 at scale 94 / 375 (the
# width rounds to 311, so no crop) and the 64 x 80 centre crop starts at row (94 - 64) // 2 = 15,
# column (311 - 80) // 2 = 115. In native pixels (x 375 / 94 rows, x 1242 / 311 columns) its edges
# are rows 59.84 -> 60 and 79 * 3.989 = 315.16 -> 315, columns 459.26 -> 459 and 778.75 -> 779.
STORAGE = (94, 311)
INPUT = (64, 80)
KITTI_WINDOW = Window(top=60, bottom=315, left=459, right=779)
# kitti_garg in native pixels: rows floor(0.40810811 * 375) = 153 to floor(0.99189189 * 375) = 371,
# columns floor(0.03594771 * 1242) = 44 to floor(0.96405229 * 1242) = 1197.
SCORED_ROWS, SCORED_COLS = slice(153, 315), slice(459, 779)


def test_window_of_the_nyu_preset():
    # 480 x 640 stored at 240 x 320 (scale 1/2, no crop); the 228 x 304 crop starts at (6, 8):
    # native rows 12:468, columns 16:624.
    box = stored_frame_box(480, 640, 240, 320)
    assert box == (0.0, 0.0, 480.0, 640.0)
    assert input_window(box, (240, 320), (228, 304), (480, 640)) == Window(12, 468, 16, 624)


def test_window_of_the_kitti_preset():
    # 375 x 1242 covers 188 x 621 at scale 188 / 375 = 0.50133: 188 x 623 (rounded), one column cropped
    # on the left, so the frame spans native columns 1 * 1242 / 623 = 1.994 to 622 * 1242 / 623 = 1240.006.
    # The 172 x 576 crop starts at (8, 22): rows 8 * 375 / 188 = 15.96 -> 16 and 180 * 375 / 188 =
    # 359.04 -> 359; columns 1.994 + 22 * 1.99358 = 45.85 -> 46 and 1.994 + 598 * 1.99358 = 1194.15 -> 1194.
    box = stored_frame_box(*KITTI_SIZE, 188, 621)
    assert box == pytest.approx((0.0, 1242 / 623, 375.0, 622 * 1242 / 623))
    assert input_window(box, (188, 621), (172, 576), KITTI_SIZE) == Window(16, 359, 46, 1194)


def test_crop_applies_in_native_coordinates():
    native = np.arange(1, 480 * 640 + 1, dtype=np.float32).reshape(480, 640)
    truth = window_ground_truth(native, Window(12, 468, 16, 624), "nyu_eigen")
    # NYU Eigen crop: rows 45:471, columns 41:601 of 480 x 640; the window ends at row 468.
    expected = np.zeros_like(native)
    expected[45:468, 41:601] = native[45:468, 41:601]
    np.testing.assert_array_equal(truth, expected[12:468, 16:624])


def _sparse_kitti_depth(seed: int = 0) -> np.ndarray:
    """A 375 x 1242 LiDAR-like map: about 20 % valid, 2..90 m (some beyond the 80 m cap)."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(2.0, 90.0, KITTI_SIZE).astype(np.float32)
    depth[rng.random(KITTI_SIZE) > 0.2] = 0.0
    return depth


def _real_kitti_depth(real_rgbd_dir) -> np.ndarray:
    path = sorted((real_rgbd_dir / "kitti_samples" / "depth").glob("*.png"))[0]
    return np.asarray(Image.open(path), dtype=np.float32) / 256.0  # metres = value / 256


@pytest.fixture(params=["synthetic", "real"])
def kitti_depth(request) -> np.ndarray:
    if request.param == "real":
        return _real_kitti_depth(request.getfixturevalue("real_rgbd_dir"))
    return _sparse_kitti_depth()


def _ingest_test_record(depth: np.ndarray) -> bytes:
    """A KITTI-sized record through ingest's own resize and encode step, into the test split."""
    record = RawRecord(
        key="kitti/0", source_path="generated", image=np.zeros((*depth.shape, 3), np.uint8), depth=depth
    )
    config = dataclasses.replace(
        IngestConfig(),
        storage_height=STORAGE[0],
        storage_width=STORAGE[1],
        train_fraction=0.0,
        val_fraction=0.0,
    )
    return encode_stored(to_stored(record, config), "kitti")


def test_native_ground_truth_scores_perfectly_and_every_point_once(kitti_depth, tmp_path, write_records):
    assert 0.15 < np.mean(kitti_depth > 0) < 0.25  # sparse, like KITTI's LiDAR ground truth
    example = decode_example(_ingest_test_record(kitti_depth))
    np.testing.assert_array_equal(example.native_depth, kitti_depth)  # stored untouched
    batches = evaluation_batches(write_records(tmp_path / "test", [example]), 1, *INPUT)

    def equal_to_ground_truth(batch):  # the native depth of the hand-computed window, log metres
        window = batch[NATIVE_DEPTH][
            :, KITTI_WINDOW.top : KITTI_WINDOW.bottom, KITTI_WINDOW.left : KITTI_WINDOW.right
        ]
        return np.log(np.where(window > 0, window, 1.0))[..., np.newaxis]

    batch = next(batches.as_numpy_iterator())
    (truth,) = ground_truths(batch, "kitti_garg")
    expected_truth = np.zeros(KITTI_SIZE, np.float32)
    expected_truth[153:371, 44:1197] = kitti_depth[153:371, 44:1197]
    np.testing.assert_array_equal(truth, expected_truth[60:315, 459:779])  # no value resampled

    scores = score_predictors(
        batches, {"oracle": equal_to_ground_truth}, "kitti_garg", MIN_DEPTH, KITTI_MAX_DEPTH, "oracle"
    )
    scored = kitti_depth[SCORED_ROWS, SCORED_COLS]
    assert scores.num_pixels == np.count_nonzero((scored >= MIN_DEPTH) & (scored <= KITTI_MAX_DEPTH))
    assert scores.ground_truth_sizes == {"375x1242": 1} and scores.images_without_native == 0
    for average in (scores.pixel, scores.image):
        assert average["oracle"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
        assert average["oracle"]["delta1"] == 1.0
        assert average["oracle"]["si_log"] == pytest.approx(0.0, abs=1e-5)

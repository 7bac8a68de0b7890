"""The evaluation view, upsampling and scoring of predictors on a tiny test split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.evaluate.scoring import (
    DEPTH,
    FULL_IMAGE,
    IMAGE,
    KEY,
    constant_predictor,
    evaluation_batches,
    frame_size,
    gather_examples,
    pick_examples,
    score_predictors,
    upsample_depth,
)
from keras_depth.data.reader import make_eval_dataset
from keras_depth.metrics import crop_mask

CROP = "nyu_eigen"


@pytest.fixture
def test_pattern(ingest_artifact) -> str:
    return str(ingest_artifact.path / "test" / "data-*.tfrecord.gz")


@pytest.fixture
def batches(test_pattern, tiny_model):
    return evaluation_batches(test_pattern, 2, tiny_model.input_height, tiny_model.input_width, CROP)


def _all(dataset) -> dict[str, np.ndarray]:
    parts = list(dataset.as_numpy_iterator())
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def test_view_is_the_readers_centre_crop_with_the_eval_crop_applied(test_pattern, batches, tiny, tiny_model):
    assert frame_size(test_pattern) == (tiny.frame_height, tiny.frame_width)
    view = _all(batches)
    stored = _all(make_eval_dataset(test_pattern, batch_size=3))
    # centre_crop_pair: (72 - 64) // 2 = 4 rows and (96 - 80) // 2 = 8 columns off the top and left.
    rows, cols = slice(4, 4 + tiny_model.input_height), slice(8, 8 + tiny_model.input_width)
    np.testing.assert_array_equal(view[FULL_IMAGE], stored["image"])
    np.testing.assert_array_equal(view[IMAGE], stored["image"][:, rows, cols])
    inside = crop_mask(CROP, tiny.frame_height, tiny.frame_width)[:, :, None]
    np.testing.assert_array_equal(view[DEPTH], np.where(inside, stored["depth"], 0.0)[:, rows, cols])
    assert 0 < np.mean(view[DEPTH] == 0) < 0.5  # the crop removed a border, not everything
    np.testing.assert_array_equal(view[KEY], stored["key"])


def test_upsampling_is_bilinear_in_log_depth_then_clipped():
    log_depth = np.log(np.array([1.0, 4.0], np.float32)).reshape(1, 1, 2, 1)
    depth = upsample_depth(log_depth, 1, 4, min_depth=0.1, max_depth=10.0)[0, 0, :, 0]
    # Half-pixel centres: output columns 1 and 2 sample input x = 0.25 and 0.75.
    np.testing.assert_allclose(depth, [1.0, 4.0**0.25, 4.0**0.75, 4.0], rtol=1e-5)
    np.testing.assert_allclose(upsample_depth(log_depth, 1, 4, 1.5, 3.0)[0, 0, [0, 3], 0], [1.5, 3.0])


def test_scores_every_predictor_on_the_same_valid_pixels(batches, tiny):
    def oracle(batch):  # the ground truth itself, at full crop resolution (no resampling)
        return np.log(np.where(batch[DEPTH] > 0, batch[DEPTH], 1.0))

    predictors = {"oracle": oracle, "one_metre": constant_predictor(0.0)}
    scores = score_predictors(
        batches, predictors, min_depth=0.1, max_depth=10.0, ranked_predictor="one_metre"
    )
    assert scores.num_images == tiny.num_test
    assert scores.pixel["oracle"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert scores.pixel["oracle"]["delta1"] == 1.0
    expected_abs_rel = abs(1.0 - tiny.test_depth) / tiny.test_depth
    for average in (scores.pixel, scores.image):
        assert average["one_metre"]["abs_rel"] == pytest.approx(expected_abs_rel)
        assert average["one_metre"]["rmse"] == pytest.approx(tiny.test_depth - 1.0)
        assert average["one_metre"]["si_log"] == pytest.approx(0.0, abs=1e-6)
        assert average["one_metre"]["rmse_log"] == pytest.approx(math.log(tiny.test_depth))
    assert [entry[1] for entry in scores.ranked] == list(range(tiny.num_test))  # ties: by index
    assert scores.ranked[0][2] == "test/0"


def test_pick_examples_best_median_worst():
    ranked = [(0.1 * i, i, f"k{i}") for i in range(5)]
    assert pick_examples(ranked) == {"best": ranked[0], "median": ranked[2], "worst": ranked[4]}
    assert pick_examples([]) == {}


def test_gather_examples_returns_rows_in_the_requested_order(batches, tiny_model):
    predictors = {"one_metre": constant_predictor(0.0)}
    rows = gather_examples(batches, [3, 0], predictors, min_depth=0.1, max_depth=10.0)
    view = _all(batches)
    np.testing.assert_array_equal(rows[IMAGE], view[IMAGE][[3, 0]])
    np.testing.assert_array_equal(rows[DEPTH], view[DEPTH][[3, 0]])
    assert rows["one_metre"].shape == (2, tiny_model.input_height, tiny_model.input_width, 1)
    np.testing.assert_allclose(rows["one_metre"], 1.0)

"""The evaluation view, upsampling and scoring of predictors on a tiny test split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.evaluate.batches import (
    FRAME_BOX,
    FULL_IMAGE,
    HAS_NATIVE,
    IMAGE,
    KEY,
    NATIVE_DEPTH,
    NATIVE_SIZE,
    evaluation_batches,
    ground_truths,
)
from components.evaluate.predictors import constant_predictor
from components.evaluate.scoring import (
    DEPTH,
    gather_examples,
    pick_examples,
    score_predictors,
    upsample_depth,
)
from keras_depth.data.reader import make_eval_dataset, stored_size
from keras_depth.data.schema import DepthExample
from keras_depth.metrics import crop_mask

CROP = "nyu_eigen"


def _pattern(artifact) -> str:
    return str(artifact.path / "test" / "data-*.tfrecord.gz")


@pytest.fixture
def batches(ingest_artifact, tiny_model):
    return evaluation_batches(_pattern(ingest_artifact), 2, tiny_model.input_height, tiny_model.input_width)


def _all(dataset) -> dict[str, np.ndarray]:
    parts = list(dataset.as_numpy_iterator())
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def oracle(crop: str):
    """A predictor returning the scored ground truth itself, at its resolution (resizing is the identity)."""

    def predict(batch):
        truth = np.stack(ground_truths(batch, crop))[..., np.newaxis]
        return np.log(np.where(truth > 0, truth, 1.0))

    return predict


def test_view_is_the_readers_centre_crop_with_native_ground_truth(ingest_artifact, batches, tiny, tiny_model):
    pattern = _pattern(ingest_artifact)
    assert stored_size(pattern) == (tiny.frame_height, tiny.frame_width)
    view = _all(batches)
    stored = _all(make_eval_dataset(pattern, batch_size=3))
    # centre_crop_pair: (72 - 64) // 2 = 4 rows and (96 - 80) // 2 = 8 columns off the top and left.
    rows, cols = slice(4, 4 + tiny_model.input_height), slice(8, 8 + tiny_model.input_width)
    np.testing.assert_array_equal(view[FULL_IMAGE], stored["image"])
    np.testing.assert_array_equal(view[IMAGE], stored["image"][:, rows, cols])
    np.testing.assert_array_equal(view[KEY], stored["key"])
    scale = tiny.native_scale
    native = np.kron(stored["depth"][..., 0], np.ones((1, scale, scale)))
    np.testing.assert_array_equal(view[NATIVE_DEPTH], native)
    np.testing.assert_array_equal(
        view[NATIVE_SIZE], [[tiny.frame_height * scale, tiny.frame_width * scale]] * 5
    )
    np.testing.assert_array_equal(view[FRAME_BOX], [[0, 0, 144, 192]] * tiny.num_test)
    assert view[HAS_NATIVE].all()


def test_ground_truth_is_the_native_window_with_the_crop_in_native_coordinates(batches):
    batch = next(batches.as_numpy_iterator())
    (truth, _) = ground_truths(batch, CROP)
    # The 64 x 80 centre crop of the 72 x 96 frame starts at (4, 8): native rows 8:136, columns 16:176.
    native = batch[NATIVE_DEPTH][0]
    inside = crop_mask(CROP, 144, 192)  # NYU rows 45:471, columns 41:601 of 480 x 640, scaled to 144 x 192
    np.testing.assert_array_equal(truth, np.where(inside, native, 0.0)[8:136, 16:176])
    assert 0 < np.mean(truth == 0) < 0.5  # the crop removed a border, not everything


def test_a_record_without_native_depth_is_scored_on_its_stored_frame(
    legacy_ingest_artifact, tiny, tiny_model
):
    pattern = _pattern(legacy_ingest_artifact)
    batches = evaluation_batches(pattern, 2, tiny_model.input_height, tiny_model.input_width)
    batch = next(batches.as_numpy_iterator())
    assert not batch[HAS_NATIVE].any()
    stored = next(make_eval_dataset(pattern, batch_size=2).as_numpy_iterator())["depth"][..., 0]
    inside = crop_mask(CROP, tiny.frame_height, tiny.frame_width)
    for truth, depth in zip(ground_truths(batch, CROP), stored, strict=True):
        np.testing.assert_array_equal(truth, np.where(inside, depth, 0.0)[4:68, 8:88])
    scores = score_predictors(batches, {"one_metre": constant_predictor(0.0)}, CROP, 0.1, 10.0, "one_metre")
    assert scores.images_without_native == tiny.num_test
    assert scores.ground_truth_sizes == {"72x96": tiny.num_test}


def test_upsampling_is_bilinear_in_log_depth_then_clipped():
    log_depth = np.log(np.array([1.0, 4.0], np.float32)).reshape(1, 1, 2, 1)
    depth = upsample_depth(log_depth, 1, 4, min_depth=0.1, max_depth=10.0)[0, 0, :, 0]
    # Half-pixel centres: output columns 1 and 2 sample input x = 0.25 and 0.75.
    np.testing.assert_allclose(depth, [1.0, 4.0**0.25, 4.0**0.75, 4.0], rtol=1e-5)
    np.testing.assert_allclose(upsample_depth(log_depth, 1, 4, 1.5, 3.0)[0, 0, [0, 3], 0], [1.5, 3.0])


def test_scores_every_predictor_on_the_same_valid_pixels(batches, tiny):
    predictors = {"oracle": oracle(CROP), "one_metre": constant_predictor(0.0)}
    scores = score_predictors(
        batches, predictors, CROP, min_depth=0.1, max_depth=10.0, ranked_predictor="one_metre"
    )
    assert scores.num_images == tiny.num_test and scores.images_without_native == 0
    assert scores.ground_truth_sizes == {"144x192": tiny.num_test}
    inside = crop_mask(CROP, 144, 192)[8:136, 16:176]
    assert scores.num_pixels == tiny.num_test * np.count_nonzero(inside)
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


def test_per_image_si_of_a_constant_differs_from_the_pooled_one(tmp_path, write_records):
    # Three images whose log depths have different means: pooling mixes the between-image spread into
    # the "scale-invariant" error; the paper removes each image's own mean.
    rng = np.random.default_rng(3)
    native = [np.exp(rng.normal(mean, 0.2, (24, 32))).astype(np.float32) for mean in (0.0, 0.8, 1.6)]
    for depth in native:
        depth[rng.random(depth.shape) < 0.3] = 0.0
    examples = [
        DepthExample(
            image=np.zeros((12, 16, 3), np.uint8),
            depth=np.ones((12, 16), np.float32),
            key=f"test/{index}",
            source="test",
            native_depth=depth,
            native_frame_box=(0.0, 0.0, 24.0, 32.0),
        )
        for index, depth in enumerate(native)
    ]
    batches = evaluation_batches(write_records(tmp_path / "test", examples), 2, 12, 16)
    scores = score_predictors(batches, {"mean": constant_predictor(0.7)}, "none", 0.01, 100.0, "mean")

    # A constant's d = log c - log y*: its variance is that of log y*.
    logs = [np.log(depth[depth > 0].astype(np.float64)) for depth in native]
    per_image = np.mean([math.sqrt(np.mean(x**2) - np.mean(x) ** 2) for x in logs])
    pooled = np.concatenate(logs)
    assert scores.num_pixels == pooled.size
    assert scores.image["mean"]["si_log"] == pytest.approx(per_image, rel=1e-7)
    assert scores.pixel["mean"]["si_log"] == pytest.approx(np.std(pooled), rel=1e-7)
    assert scores.pixel["mean"]["si_log"] > scores.image["mean"]["si_log"] + 0.3


def test_pick_examples_best_median_worst():
    ranked = [(0.1 * i, i, f"k{i}") for i in range(5)]
    assert pick_examples(ranked) == {"best": ranked[0], "median": ranked[2], "worst": ranked[4]}
    assert pick_examples([]) == {}


def test_gather_examples_returns_rows_in_the_requested_order(batches, tiny_model):
    predictors = {"one_metre": constant_predictor(0.0)}
    rows = gather_examples(batches, [3, 0], predictors, CROP, min_depth=0.1, max_depth=10.0)
    view = _all(batches)
    np.testing.assert_array_equal(rows[IMAGE], view[IMAGE][[3, 0]])
    np.testing.assert_array_equal(rows[DEPTH], np.stack(ground_truths(view, CROP))[[3, 0]])
    assert rows["one_metre"].shape == (2, 128, 160)  # the native window of the 64 x 80 input
    np.testing.assert_allclose(rows["one_metre"], 1.0)


def test_reports_the_images_scored_after_each_batch(batches, tiny):
    scored = []
    predictors = {"one_metre": constant_predictor(0.0)}
    score_predictors(batches, predictors, CROP, 0.1, 10.0, "one_metre", on_batch=scored.append)
    assert scored == [min(end, tiny.num_test) for end in range(2, tiny.num_test + 2, 2)]

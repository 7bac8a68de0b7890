"""Tests of the depth metrics: hand-computed values, accumulation, averages, crops and the Keras metrics."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_depth.metrics import (
    EDGE_METRIC,
    EVAL_CROPS,
    METRIC_NAMES,
    RMSE,
    AbsRel,
    Delta1,
    DepthMetricsAccumulator,
    SILog,
    compute_depth_metrics,
    crop_mask,
)

KERAS_METRICS = {"delta1": Delta1, "abs_rel": AbsRel, "rmse": RMSE, "si_log": SILog}

# A 2 x 3 image whose last column is invalid (0 and NaN ground truth). The four valid pixels have
# prediction / truth ratios 1, 1.5, 1.8 and 0.5.
HAND_TRUE = np.array([[1.0, 1.0, 0.0], [2.0, 4.0, np.nan]])
HAND_PRED = np.array([[1.0, 1.5, 5.0], [3.6, 2.0, 5.0]])


def _hand_metrics() -> dict[str, float]:
    """The metrics of HAND_PRED / HAND_TRUE worked out by hand."""
    log_errors = [0.0, math.log(1.5), math.log(1.8), math.log(0.5)]
    mean_sq_log = sum(d * d for d in log_errors) / 4
    mean_log = sum(log_errors) / 4
    return {
        "delta1": 1 / 4,  # only ratio 1 is below 1.25
        "delta2": 2 / 4,  # 1.5 < 1.5625; 1.8 is not
        "delta3": 3 / 4,  # 1.8 < 1.953125; 2 is not
        "abs_rel": (0 + 0.5 / 1 + 1.6 / 2 + 2 / 4) / 4,
        "sq_rel": (0 + 0.25 / 1 + 2.56 / 2 + 4 / 4) / 4,
        "rmse": math.sqrt((0 + 0.25 + 2.56 + 4) / 4),
        "rmse_log": math.sqrt(mean_sq_log),
        "si_log": math.sqrt(mean_sq_log - mean_log**2),
    }


def _random_batch(
    rng: np.random.Generator, n: int, height: int = 5, width: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """(pred, true) depth in metres, shape (n, height, width); the truth has holes (0, NaN, inf, 20 m)."""
    true = rng.uniform(0.5, 8.0, size=(n, height, width))
    holes = rng.uniform(size=true.shape) < 0.3
    true[holes] = rng.choice([0.0, np.nan, np.inf, 20.0], size=int(holes.sum()))
    pred = rng.uniform(0.3, 9.0, size=true.shape)
    return pred, true


def _assert_metrics_close(actual: dict[str, float], expected: dict[str, float], rtol: float = 1e-9) -> None:
    assert set(actual) - {EDGE_METRIC} == set(METRIC_NAMES)  # edge_log_grad: test_edge_metrics.py
    for key in METRIC_NAMES:
        np.testing.assert_allclose(actual[key], expected[key], rtol=rtol, atol=1e-12, err_msg=key)


def test_hand_computed_values() -> None:
    metrics = compute_depth_metrics(HAND_PRED, HAND_TRUE)
    assert all(isinstance(value, float) for value in metrics.values())
    _assert_metrics_close(metrics, _hand_metrics())


def test_perfect_prediction() -> None:
    _, true = _random_batch(np.random.default_rng(0), 3)
    pred = np.where(np.isfinite(true), true, 1.0)

    metrics = compute_depth_metrics(pred, true)

    assert metrics["delta1"] == metrics["delta2"] == metrics["delta3"] == 1.0
    for key in ("abs_rel", "sq_rel", "rmse", "rmse_log", "si_log"):
        assert metrics[key] == pytest.approx(0.0, abs=1e-12), key


def test_predictions_are_clipped_to_the_depth_range() -> None:
    # Truths 1 m and 2 m predicted as 0 m and 100 m score as 0.001 m and 10 m.
    metrics = compute_depth_metrics(np.array([[0.0, 100.0]]), np.array([[1.0, 2.0]]), max_depth=10.0)
    assert metrics["abs_rel"] == pytest.approx((0.999 / 1 + 8.0 / 2) / 2)
    assert metrics["rmse"] == pytest.approx(math.sqrt((0.999**2 + 8.0**2) / 2))


def test_valid_mask_and_depth_range_select_pixels() -> None:
    # Only the top-left pixel (error 1 m on 2 m) is inside the mask; 12 m is beyond max_depth anyway.
    true = np.array([[2.0, 12.0], [1.0, 1.0]])
    pred = np.array([[3.0, 12.0], [5.0, 5.0]])
    mask = np.array([[True, True], [False, False]])

    metrics = compute_depth_metrics(pred, true, valid_mask=mask, max_depth=10.0)

    assert metrics["abs_rel"] == pytest.approx(0.5)
    assert metrics["rmse"] == pytest.approx(1.0)


def test_accepts_a_trailing_channel_and_a_broadcast_crop_mask() -> None:
    pred, true = _random_batch(np.random.default_rng(1), 2)
    mask = np.zeros(true.shape[1:], dtype=bool)
    mask[1:4, 2:5] = True

    with_channel = compute_depth_metrics(pred[..., np.newaxis], true[..., np.newaxis], valid_mask=mask)
    selected = compute_depth_metrics(pred[:, 1:4, 2:5], true[:, 1:4, 2:5])

    _assert_metrics_close(with_channel, selected)


def test_shape_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="pred_depth"):
        compute_depth_metrics(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="valid_mask"):
        compute_depth_metrics(np.ones((2, 3)), np.ones((2, 3)), valid_mask=np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="true_depth"):
        compute_depth_metrics(np.ones(4), np.ones(4))


def test_no_valid_pixel_raises() -> None:
    with pytest.raises(ValueError, match="no valid pixel"):
        compute_depth_metrics(np.ones((2, 2)), np.array([[0.0, np.nan], [np.inf, 50.0]]))
    with pytest.raises(ValueError, match="no valid pixel"):
        DepthMetricsAccumulator().result()


def test_accumulator_over_updates_equals_metrics_of_the_concatenation() -> None:
    rng = np.random.default_rng(2)
    batches = [_random_batch(rng, n) for n in (1, 3, 2)]
    accumulator = DepthMetricsAccumulator(min_depth=0.1, max_depth=10.0)

    for pred, true in batches:
        accumulator.update(pred, true)

    all_pred = np.concatenate([pred for pred, _ in batches])
    all_true = np.concatenate([true for _, true in batches])
    expected = compute_depth_metrics(all_pred, all_true, min_depth=0.1, max_depth=10.0)
    _assert_metrics_close(accumulator.result(), expected, rtol=1e-12)
    assert accumulator.num_images == 6
    assert accumulator.num_pixels == int(np.sum(np.isfinite(all_true) & (all_true <= 10.0) & (all_true > 0)))


def test_image_average_weighs_every_image_equally() -> None:
    # Image A: one valid pixel, predicted 3 m for 1 m (abs rel 2). Image B: three perfect pixels.
    true = np.array([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [4.0, 0.0]]])
    pred = np.array([[[3.0, 1.0], [1.0, 1.0]], [[1.0, 2.0], [4.0, 1.0]]])
    accumulator = DepthMetricsAccumulator()
    accumulator.update(pred, true)

    by_pixel = accumulator.result()
    by_image = accumulator.result(average="image")

    assert by_pixel["abs_rel"] == pytest.approx(2.0 / 4)
    assert by_image["abs_rel"] == pytest.approx((2.0 + 0.0) / 2)
    assert by_pixel["delta1"] == pytest.approx(3 / 4)
    assert by_image["delta1"] == pytest.approx((0.0 + 1.0) / 2)
    assert by_image["rmse"] == pytest.approx((2.0 + 0.0) / 2)  # mean of per-image RMSE
    assert by_image["si_log"] == pytest.approx(0.0)  # one pixel and a perfect image: no log variance


def test_image_averaged_si_log_is_the_papers_per_image_error() -> None:
    # A constant prediction over two images of different mean depth: per image, SI log is the spread of
    # each image's log depth around its own mean; pooled, the gap between the two means counts too.
    true = np.array([[[1.0, 2.0], [1.0, 2.0]], [[4.0, 8.0], [4.0, 8.0]]])
    accumulator = DepthMetricsAccumulator()
    accumulator.update(np.full_like(true, 3.0), true)

    log_true = np.log(true.reshape(2, -1))
    per_image = np.mean([np.sqrt(np.mean(x**2) - np.mean(x) ** 2) for x in log_true])  # each image's mean
    assert per_image == pytest.approx(math.log(2.0) / 2)  # log depths +-log(2)/2 around each mean
    assert accumulator.result("image")["si_log"] == pytest.approx(per_image)
    assert accumulator.result("pixel")["si_log"] == pytest.approx(np.std(log_true))
    assert accumulator.result("pixel")["si_log"] == pytest.approx(math.sqrt(5) * math.log(2.0) / 2)


def test_image_average_skips_images_without_valid_pixels() -> None:
    accumulator = DepthMetricsAccumulator()
    accumulator.update(np.ones((1, 2, 2)), np.zeros((1, 2, 2)))
    accumulator.update(np.full((1, 2, 2), 2.0), np.ones((1, 2, 2)))

    assert accumulator.num_images == 1
    assert accumulator.result(average="image")["abs_rel"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="average"):
        accumulator.result(average="batch")


def test_accumulator_reset_forgets_updates() -> None:
    accumulator = DepthMetricsAccumulator()
    accumulator.update(HAND_PRED, HAND_TRUE)
    accumulator.reset()
    accumulator.update(np.full((2, 2), 2.0), np.ones((2, 2)))
    assert accumulator.result()["abs_rel"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "height", "width", "box"),
    [
        ("nyu_eigen", 480, 640, (45, 471, 41, 601)),
        ("nyu_eigen", 240, 320, (22, 235, 20, 300)),  # 22.5, 235.5, 20.5, 300.5 floored
        ("kitti_garg", 375, 1242, (153, 371, 44, 1197)),  # 153.04, 371.96, 44.65, 1197.35 floored
        ("kitti_eigen", 375, 1242, (124, 342, 44, 1197)),  # 124.66, 342.57, 44.65, 1197.35 floored
        ("none", 480, 640, (0, 480, 0, 640)),
    ],
)
def test_crop_boxes(name: str, height: int, width: int, box: tuple[int, int, int, int]) -> None:
    top, bottom, left, right = box
    expected = np.zeros((height, width), dtype=bool)
    expected[top:bottom, left:right] = True

    np.testing.assert_array_equal(crop_mask(name, height, width), expected)
    assert EVAL_CROPS[name].box(height, width) == box


def test_unknown_crop_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="nyu_eigen.*kitti_garg.*kitti_eigen"):
        crop_mask("garg", 375, 1242)


def _keras_results(metric_cls: type, batches: list[tuple[np.ndarray, np.ndarray]], **kwargs) -> float:
    metric = metric_cls(min_depth=0.1, max_depth=10.0)
    for pred, true in batches:
        metric.update_state(true[..., np.newaxis].astype(np.float32), np.log(pred)[..., np.newaxis], **kwargs)
    return float(metric.result())


@pytest.mark.parametrize("key", sorted(KERAS_METRICS))
def test_keras_metric_agrees_with_numpy_over_an_epoch(key: str) -> None:
    rng = np.random.default_rng(3)
    batches = [_random_batch(rng, 2), _random_batch(rng, 3)]
    batches[0][0][0, 0, :2] = [0.01, 50.0]  # predictions outside the depth range are clipped alike

    expected = compute_depth_metrics(
        np.concatenate([pred for pred, _ in batches]),
        np.concatenate([true for _, true in batches]),
        min_depth=0.1,
        max_depth=10.0,
    )

    assert _keras_results(KERAS_METRICS[key], batches) == pytest.approx(expected[key], rel=1e-5)


def test_keras_metric_sample_weight_and_reset() -> None:
    pred, true = _random_batch(np.random.default_rng(4), 2)
    first_image = compute_depth_metrics(pred[:1], true[:1], min_depth=0.1, max_depth=10.0)["si_log"]

    weighted = _keras_results(SILog, [(pred, true)], sample_weight=np.array([1.0, 0.0], dtype=np.float32))

    metric = SILog(min_depth=0.1, max_depth=10.0)
    metric.update_state(true, np.log(pred))
    metric.reset_state()
    assert weighted == pytest.approx(first_image, rel=1e-5)
    assert float(metric.result()) == 0.0


def test_keras_metric_config_round_trip() -> None:
    metric = AbsRel(min_depth=0.5, max_depth=80.0, name="abs_rel_kitti")
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))

    assert isinstance(restored, AbsRel)
    assert restored.get_config() == metric.get_config()
    assert (restored.name, restored.min_depth, restored.max_depth) == ("abs_rel_kitti", 0.5, 80.0)


def test_keras_metrics_in_model_evaluate() -> None:
    rng = np.random.default_rng(5)
    images = rng.uniform(size=(4, 5, 6, 3)).astype(np.float32)
    _, true = _random_batch(rng, 4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 6, 3)), keras.layers.Conv2D(1, 3, padding="same")])
    model.compile(loss="mse", metrics=[cls(min_depth=0.1, max_depth=10.0) for cls in KERAS_METRICS.values()])

    logs = model.evaluate(
        images, true[..., np.newaxis].astype(np.float32), batch_size=2, return_dict=True, verbose=0
    )

    pred = np.exp(model.predict(images, verbose=0)[..., 0].astype(np.float64))
    expected = compute_depth_metrics(pred, true, min_depth=0.1, max_depth=10.0)
    for key in KERAS_METRICS:
        assert logs[key] == pytest.approx(expected[key], rel=1e-4), key

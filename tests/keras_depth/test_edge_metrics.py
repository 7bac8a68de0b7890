"""Tests of the edge measure ``edge_log_grad``: exact zero, blur, scale invariance, validity, pooling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_depth.metrics import (
    EDGE_METRIC,
    DepthMetricsAccumulator,
    compute_depth_metrics,
    edge_errors,
    edge_reach_for,
)

THRESHOLD = math.log(1.25)


def _step_scene(height: int = 12, width: int = 16) -> np.ndarray:
    """(H, W) depth in metres: a 1 m box in front of a 4 m wall, on a gently sloping floor."""
    depth = np.full((height, width), 4.0) + np.linspace(0.0, 0.3, width)[np.newaxis]
    depth[3:8, 4:10] = 1.0
    return depth


def _box_blur(depth: np.ndarray) -> np.ndarray:
    """3x3 mean of the log depth (edge-replicated), as a depth map: a blurred prediction."""
    log_depth = np.pad(np.log(depth), 1, mode="edge")
    height, width = depth.shape
    windows = [log_depth[r : r + height, c : c + width] for r in range(3) for c in range(3)]
    return np.exp(np.mean(windows, axis=0))


def _loop_reference(pred: np.ndarray, true: np.ndarray, valid: np.ndarray, reach: int) -> list[float]:
    """The discontinuity errors by explicit loops over every pixel (an independent computation)."""
    errors = []
    height, width = true.shape
    for row in range(height):
        for col in range(width):
            for d_row, d_col in ((0, 1), (1, 0)):
                row_1, col_1 = row + d_row, col + d_col
                if row_1 >= height or col_1 >= width or not (valid[row, col] and valid[row_1, col_1]):
                    continue
                if abs(math.log(true[row_1, col_1]) - math.log(true[row, col])) <= THRESHOLD:
                    continue
                row_a, col_a = row - d_row * reach, col - d_col * reach
                row_b, col_b = row_1 + d_row * reach, col_1 + d_col * reach
                if min(row_a, col_a) < 0 or row_b >= height or col_b >= width:
                    continue
                if not (valid[row_a, col_a] and valid[row_b, col_b]):
                    continue
                true_step = math.log(true[row_b, col_b]) - math.log(true[row_a, col_a])
                pred_step = math.log(pred[row_b, col_b]) - math.log(pred[row_a, col_a])
                errors.append(abs(pred_step - true_step))
    return errors


def test_zero_for_the_ground_truth_itself_and_any_scale_of_it() -> None:
    true = _step_scene()
    valid = np.ones(true.shape, bool)
    assert edge_errors(true, true, valid).size > 0  # the box has edges
    assert compute_depth_metrics(true, true)[EDGE_METRIC] == 0.0
    # Scale-invariant: a prediction 2x too far everywhere has every step right.
    assert compute_depth_metrics(2.0 * true, true, max_depth=20.0)[EDGE_METRIC] == pytest.approx(
        0.0, abs=1e-12
    )


@pytest.mark.parametrize("reach", [0, 1, 2])
def test_blurred_prediction_matches_a_loop_reference(reach: int) -> None:
    true = _step_scene()
    pred = _box_blur(true)
    valid = np.ones(true.shape, bool)
    valid[0, :5] = False  # discontinuities and end points on an invalid pixel are not scored
    valid[5, 12] = False

    errors = edge_errors(pred, true, valid, THRESHOLD, reach)
    reference = _loop_reference(pred, true, valid, reach)

    assert len(reference) > 0
    np.testing.assert_allclose(np.sort(errors), np.sort(reference), rtol=1e-12)
    assert np.mean(errors) > 0.1  # the blur misses a large part of the 4 m -> 1 m steps (log 4 = 1.39)


def test_a_reach_beyond_the_blur_sees_the_whole_step() -> None:
    """The 3x3 blur moves the pixel on either side of a step; scored 1 pixel out, it is exact."""
    true = np.full((9, 20), 4.0)
    true[:, 10:] = 1.0  # one vertical discontinuity, between columns 9 and 10
    pred = _box_blur(true)
    valid = np.ones(true.shape, bool)
    # On the neighbours the blurred step is log 4 / 3: two thirds of it are missed.
    np.testing.assert_allclose(edge_errors(pred, true, valid, reach=0), 2 * math.log(4.0) / 3)
    np.testing.assert_allclose(edge_errors(pred, true, valid, reach=1), 0.0, atol=1e-12)


def test_smooth_surfaces_have_no_discontinuity_and_the_split_has_no_value() -> None:
    floor = np.tile(np.linspace(1.0, 3.0, 16), (12, 1))  # log steps of at most 0.08 between neighbours
    assert edge_errors(_box_blur(floor), floor, np.ones(floor.shape, bool)).size == 0
    assert EDGE_METRIC not in compute_depth_metrics(_box_blur(floor), floor)


def test_accumulator_pools_discontinuities_and_averages_images() -> None:
    true = np.stack([_step_scene(), _step_scene()])
    true[1, :, 8:] = 0.0  # the second image keeps fewer discontinuities (0 = invalid ground truth)
    pred = np.stack([_box_blur(true[0]), true[1] * 1.5])
    pred[1, 3:8, 4:8] *= 2.0  # the second prediction puts the box half too far
    per_image = [edge_errors(p, t, t > 0) for p, t in zip(pred, true, strict=True)]

    accumulator = DepthMetricsAccumulator(max_depth=10.0)
    accumulator.update(pred[:1], true[:1])
    accumulator.update(pred[1:], true[1:])

    assert accumulator.result("pixel")[EDGE_METRIC] == pytest.approx(np.mean(np.concatenate(per_image)))
    assert accumulator.result("image")[EDGE_METRIC] == pytest.approx(
        np.mean([np.mean(errors) for errors in per_image])
    )
    assert len(per_image[1]) < len(per_image[0])  # so the two averages differ
    assert accumulator.result("pixel")[EDGE_METRIC] != pytest.approx(accumulator.result("image")[EDGE_METRIC])


def test_edge_reach_is_one_predicted_pixel() -> None:
    assert edge_reach_for((114, 152), (26, 36)) == 4  # the default preset: 4.4 and 4.2 native pixels
    assert edge_reach_for((456, 608), (55, 74)) == 8  # NYU's window: 8.3 and 8.2
    assert edge_reach_for((10, 12), (20, 24)) == 1  # at least one pixel

    true = _step_scene()
    pred = _box_blur(true)
    accumulator = DepthMetricsAccumulator(edge_reach=0)
    accumulator.update(pred, true, edge_reach=1)  # a per-update reach overrides the accumulator's
    valid = np.ones(true.shape, bool)
    expected = np.mean(edge_errors(pred, true, valid, reach=1))
    assert accumulator.result()[EDGE_METRIC] == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(np.mean(edge_errors(pred, true, valid, reach=0)))


def test_rejects_bad_arguments() -> None:
    depth = np.ones((4, 4))
    with pytest.raises(ValueError, match="same"):
        edge_errors(depth, depth[:3], depth > 0)
    with pytest.raises(ValueError, match="reach"):
        edge_errors(depth, depth, depth > 0, reach=-1)

"""Tests of keras_depth.visualize: shared colour scale, invalid pixels in black, curves along phases."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from keras_depth.visualize import (
    depth_color_range,
    depth_grid_figure,
    save_depth_grid,
    save_training_curves,
    training_curves_figure,
)

ROWS = 3


def _columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = rng.uniform(1.0, 4.0, size=(ROWS, 6, 8, 1))
    truth[:, 0, 0, 0] = 0.0  # invalid
    truth[1, 2, 3, 0] = np.nan  # invalid
    return {
        "ground truth": truth,
        "coarse": rng.uniform(0.5, 3.0, size=(ROWS, 6, 8)),
        "fine": rng.uniform(2.0, 6.0, size=(ROWS, 6, 8, 1)),
    }


def test_grid_has_rows_of_examples_and_columns_of_maps_with_one_colour_scale():
    columns = _columns()
    images = np.full((ROWS, 24, 32, 3), 128, np.uint8)

    figure = depth_grid_figure(columns, images=images, row_labels=["a", "b", "c"], title="val")

    num_cols = 1 + len(columns)
    grid = np.array(figure.axes[: ROWS * num_cols]).reshape(ROWS, num_cols)  # row-major, colour bar last
    assert [ax.get_title() for ax in grid[0]] == ["RGB", "ground truth", "coarse", "fine"]
    assert [ax.get_ylabel() for ax in grid[:, 0]] == ["a", "b", "c"]
    assert all(ax.get_images()[0].get_array().shape == (24, 32, 3) for ax in grid[:, 0])
    expected_range = depth_color_range(columns.values())
    assert expected_range == pytest.approx((0.5, 6.0), abs=0.1)
    depth_images = [ax.get_images()[0] for ax in grid[:, 1:].ravel()]
    for image in depth_images:
        assert (image.norm.vmin, image.norm.vmax) == pytest.approx(expected_range)
        assert image.get_cmap().get_bad() == pytest.approx((0.0, 0.0, 0.0, 1.0))
    assert len(figure.axes) == ROWS * num_cols + 1  # one shared colour bar


def test_grid_masks_invalid_pixels_so_they_are_drawn_black():
    columns = _columns()
    figure = depth_grid_figure(columns, vmin=1.0, vmax=4.0)

    truth_images = [figure.axes[row * 3].get_images()[0] for row in range(ROWS)]
    masks = [np.ma.getmaskarray(image.get_array()) for image in truth_images]
    assert masks[0][0, 0] and masks[1][0, 0] and masks[1][2, 3]
    assert sum(mask.sum() for mask in masks) == ROWS + 1
    assert truth_images[0].norm.vmin == 1.0 and truth_images[0].norm.vmax == 4.0


def test_saved_grid_draws_an_invalid_region_black(tmp_path):
    truth = np.full((1, 20, 20), 3.0)
    truth[:, :, :10] = 0.0  # left half invalid
    path = save_depth_grid(tmp_path / "grid.png", {"ground truth": truth}, vmin=1.0, vmax=5.0)

    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    black = np.all(pixels < 10, axis=-1)
    # A large black area (the invalid half), far more than axis lines.
    assert black.sum() > 0.05 * black.size


def test_grid_rejects_columns_of_different_lengths():
    with pytest.raises(ValueError, match="same number of examples"):
        depth_grid_figure({"a": np.ones((2, 4, 4)), "b": np.ones((3, 4, 4))})
    with pytest.raises(ValueError, match="'a'"):
        depth_grid_figure({"a": np.ones((4, 4))})


def test_color_range_ignores_invalid_pixels_and_widens_a_constant_map():
    assert depth_color_range([np.array([0.0, 2.0, np.inf, 3.0]), np.array([-1.0, 5.0])]) == (2.0, 5.0)
    assert depth_color_range([np.array([2.0, 2.0])]) == (1.0, 3.0)
    assert depth_color_range([np.zeros(3)]) == (0.0, 1.0)


def test_training_curves_place_phases_one_after_another(tmp_path):
    phases = {
        "coarse": [{"step": 4, "loss": 1.0, "val_loss": 1.2}, {"step": 6, "loss": 0.8, "val_loss": 1.0}],
        "fine": [{"step": 4, "loss": 0.5}, {"step": 5, "loss": 0.4}],
    }

    figure = training_curves_figure(phases, panels=(("loss", ("loss", "val_loss")),))

    lines = {line.get_label(): list(line.get_xdata()) for line in figure.axes[0].get_lines()}
    assert lines["coarse loss"] == [4, 6]
    assert lines["coarse val_loss"] == [4, 6]
    assert lines["fine loss"] == [10, 11]
    assert "fine val_loss" not in lines
    path = save_training_curves(tmp_path / "curves.png", phases)
    assert Image.open(path).size[0] > 0

"""Contact sheets of records."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from keras_depth.sources.base import RawRecord
from keras_depth.sources.contact_sheet import save_contact_sheet, shared_depth_limit
from keras_depth.sources.synthetic_rooms import render_scene


def test_sheet_of_rendered_scenes_is_a_png(tmp_path):
    records = [render_scene(0, i, 60, 80) for i in range(3)]
    path = save_contact_sheet(records, tmp_path / "sheets" / "rooms.png", title="three rooms")
    assert path.stat().st_size > 10_000
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > image.height


def test_depth_scale_is_shared_and_ignores_invalid_pixels():
    depth_a = np.array([[0.0, 2.0], [np.nan, 1.0]], dtype=np.float32)
    depth_b = np.array([[7.5, 0.0], [0.0, np.inf]], dtype=np.float32)
    records = [
        RawRecord(f"k{i}", "p", np.zeros((2, 2, 3), np.uint8), d) for i, d in enumerate((depth_a, depth_b))
    ]
    assert shared_depth_limit(records) == 7.5
    empty = RawRecord("e", "p", np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.float32))
    assert shared_depth_limit([empty]) == 1.0


def test_invalid_depth_is_drawn_black(tmp_path):
    def black_pixels(depth: np.ndarray, name: str) -> int:
        record = RawRecord(name, "p", np.full((40, 40, 3), 255, np.uint8), depth)
        path = save_contact_sheet([record], tmp_path / f"{name}.png", max_depth=5.0, records_per_row=1)
        return int((np.asarray(Image.open(path).convert("RGB")).sum(axis=-1) == 0).sum())

    depth = np.full((40, 40), 3.0, dtype=np.float32)
    all_valid = black_pixels(depth, "valid")
    depth[:, :20] = 0.0
    assert black_pixels(depth, "half") > all_valid + 5000  # half of a ~300 x 250 px depth panel


def test_empty_input_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="at least one record"):
        save_contact_sheet([], tmp_path / "x.png")

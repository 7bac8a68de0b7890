"""Tests of the resize-to-cover and centre crop to the storage size."""

from __future__ import annotations

import numpy as np
import pytest

from components.ingest.resize import cover_size, fit_to_storage, stored_frame_box
from keras_depth.sources.base import RawRecord


def make_record(height: int, width: int, intrinsics=None) -> RawRecord:
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 5.0, (height, width)).astype(np.float32)
    depth[rng.random((height, width)) < 0.3] = 0.0
    return RawRecord(
        key="test/0",
        source_path="generated",
        image=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        depth=depth,
        intrinsics=intrinsics,
    )


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [((480, 640), (48, 64), (48, 64)), ((100, 100), (48, 64), (64, 64)), ((375, 1242), (48, 64), (48, 159))],
)
def test_cover_size_keeps_aspect_and_covers(source, target, expected):
    assert cover_size(*source, *target) == expected


@pytest.mark.parametrize("size", [(480, 640), (100, 100), (20, 30), (48, 64)])
def test_output_has_storage_size_and_dtypes(size):
    stored = fit_to_storage(make_record(*size), 48, 64)
    assert stored.image.shape == (48, 64, 3) and stored.image.dtype == np.uint8
    assert stored.depth.shape == (48, 64) and stored.depth.dtype == np.float32


def test_depth_is_never_interpolated():
    record = make_record(480, 640)
    stored = fit_to_storage(record, 48, 64)
    assert set(np.unique(stored.depth)) <= set(np.unique(record.depth))
    assert (stored.depth == 0).any()


def test_same_size_is_unchanged():
    record = make_record(48, 64, intrinsics=(50.0, 50.0, 31.5, 23.5))
    stored = fit_to_storage(record, 48, 64)
    np.testing.assert_array_equal(stored.image, record.image)
    np.testing.assert_array_equal(stored.depth, record.depth)
    assert stored.intrinsics == record.intrinsics


def test_intrinsics_follow_scale_and_crop():
    # A centred principal point stays centred; focal lengths scale with the resize.
    stored = fit_to_storage(make_record(100, 100, intrinsics=(80.0, 80.0, 49.5, 49.5)), 48, 64)
    assert stored.intrinsics == pytest.approx((51.2, 51.2, 31.5, 23.5))
    downscaled = fit_to_storage(make_record(480, 640, intrinsics=(500.0, 500.0, 319.5, 239.5)), 48, 64)
    assert downscaled.intrinsics == pytest.approx((50.0, 50.0, 31.5, 23.5))


def test_missing_intrinsics_stay_missing():
    assert fit_to_storage(make_record(100, 100), 48, 64).intrinsics is None


@pytest.mark.parametrize("size", [(480, 640), (375, 1242), (100, 100), (48, 64), (20, 30)])
def test_frame_box_maps_each_stored_depth_pixel_to_the_source_pixel_it_came_from(size):
    record = make_record(*size)
    stored = fit_to_storage(record, 48, 64)
    top, left, bottom, right = stored_frame_box(*size, 48, 64)
    # A stored pixel centre (i + 0.5) lies at source row top + (i + 0.5) * (bottom - top) / 48; nearest
    # neighbour takes the source pixel containing it.
    rows = np.floor(top + (np.arange(48) + 0.5) * (bottom - top) / 48).astype(int)
    cols = np.floor(left + (np.arange(64) + 0.5) * (right - left) / 64).astype(int)
    np.testing.assert_array_equal(stored.depth, record.depth[np.ix_(rows, cols)])


def test_frame_box_of_a_cropped_cover():
    # 375 x 1242 covers 48 x 64 at scale 48 / 375: 48 x 159, cropped 47 columns on the left, so the frame
    # spans source columns 47 * 1242 / 159 = 367.13 to 111 * 1242 / 159 = 867.06 and every row.
    assert stored_frame_box(375, 1242, 48, 64) == pytest.approx((0.0, 367.13207, 375.0, 867.05660))

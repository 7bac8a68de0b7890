"""Tests of the record checks that decide what is dead-lettered."""

from __future__ import annotations

import numpy as np
import pytest

from components.ingest.validate import validate_record
from keras_depth.sources.base import RawRecord, RecordError

HEIGHT, WIDTH = 6, 8


def make_record(image=None, depth=None) -> RawRecord:
    return RawRecord(
        key="test/0",
        source_path="/data/0.png",
        image=np.zeros((HEIGHT, WIDTH, 3), np.uint8) if image is None else image,
        depth=np.full((HEIGHT, WIDTH), 2.0, np.float32) if depth is None else depth,
    )


def depth_with(value: float, count: int) -> np.ndarray:
    depth = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    depth.flat[:count] = value
    return depth


def test_good_record_passes_including_holes():
    validate_record(make_record(depth=depth_with(0.0, 10)))


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            make_record(image=np.zeros((HEIGHT, WIDTH, 3), np.float32)),
            r"image must be uint8 \(H, W, 3\), got float32",
        ),
        (
            make_record(image=np.zeros((HEIGHT, WIDTH), np.uint8)),
            r"image must be uint8 \(H, W, 3\), got uint8 \(6, 8\)",
        ),
        (
            make_record(depth=np.ones((HEIGHT, WIDTH + 1), np.float32)),
            r"depth shape \(6, 9\) does not match image size \(6, 8\)",
        ),
        (
            make_record(depth=np.ones((HEIGHT, WIDTH), bool)),
            "depth must be real-valued metres, got dtype bool",
        ),
        (make_record(depth=depth_with(np.nan, 3)), "non-finite pixels: 3 NaN of 48"),
        (make_record(depth=depth_with(np.inf, 2)), "non-finite pixels: 2 inf of 48"),
        (make_record(depth=depth_with(-1.0, 4)), "4 negative pixels of 48"),
        (make_record(depth=np.zeros((HEIGHT, WIDTH), np.float32)), r"no valid pixel \(all 48 are 0\)"),
    ],
)
def test_bad_record_is_rejected_with_reason(record, reason):
    with pytest.raises(RecordError, match=reason):
        validate_record(record)


def test_nan_and_inf_are_both_named():
    depth = depth_with(np.nan, 1)
    depth[-1, -1] = -np.inf
    with pytest.raises(RecordError, match="1 NaN and 1 inf"):
        validate_record(make_record(depth=depth))

"""Tests of the record checks that decide what is dead-lettered, and their property: whatever the
depth values, a record is rejected with a reason or can be stored as float32 metres."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from components.ingest.resize import fit_to_storage
from components.ingest.stats import summarize
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


DEPTH_DTYPES = [np.float16, np.float32, np.float64, np.int16, np.int64, np.uint16, np.uint64]
SPECIAL_DEPTHS = [0.0, -0.0, np.nan, np.inf, -np.inf, -1.0, 1e-45, 5e-324, 3.5e38, 1e300, -1e300]


@st.composite
def depth_maps(draw) -> np.ndarray:
    """Depth maps of any real dtype: valid depths with up to 3 pixels set to NaN, inf, 0,
    negative, tiny, huge or any value of the dtype."""
    dtype = np.dtype(draw(st.sampled_from(DEPTH_DTYPES)))
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    if dtype.kind == "f":
        info = np.finfo(dtype)
        specials = [v for v in SPECIAL_DEPTHS if not np.isfinite(v) or abs(v) <= float(info.max)]
        valid, any_value = st.floats(0.0, 100.0, width=info.bits), st.floats(width=info.bits)
        odd = st.one_of(st.sampled_from(specials), any_value)
    else:
        info = np.iinfo(dtype)
        valid, odd = st.integers(0, 100), st.integers(int(info.min), int(info.max))
    depth = draw(hnp.arrays(dtype, shape, elements=valid))
    for _ in range(draw(st.integers(0, 3))):
        depth[draw(st.integers(0, shape[0] - 1)), draw(st.integers(0, shape[1] - 1))] = draw(odd)
    return depth


@settings(max_examples=200, deadline=None)
@given(depth=depth_maps())
@example(depth=np.array([[2.0, 1e300]]))  # finite, but inf once stored as float32
@example(depth=np.array([[5e-324]]))  # positive, but 0 (invalid) once stored as float32
def test_any_depth_is_rejected_with_a_reason_or_storable(depth):
    record = make_record(image=np.zeros((*depth.shape, 3), np.uint8), depth=depth)
    try:
        validate_record(record)
    except RecordError as error:
        assert str(error)
        return
    stored = fit_to_storage(record, *depth.shape).depth
    assert stored.dtype == np.float32
    assert np.isfinite(stored).all() and (stored >= 0).all() and (stored > 0).any()
    summarize("train", depth.shape, stored)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1e300, r"depth has 1 pixels above 3.403e\+38 m, beyond float32 storage"),
        (5e-324, r"no valid pixel \(all 1 are 0\) as float32"),
    ],
)
def test_depth_beyond_float32_is_rejected(value, reason):
    with pytest.raises(RecordError, match=reason):
        validate_record(make_record(image=np.zeros((1, 1, 3), np.uint8), depth=np.array([[value]])))

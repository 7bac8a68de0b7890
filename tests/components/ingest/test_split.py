"""Tests of the leak-free train/val/test split: by group hash, or by the dataset's official split."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.ingest.split import (
    check_fractions,
    check_split_sizes,
    key_position,
    split_for_key,
    split_for_record,
)
from keras_depth.data.layout import SPLITS, TEST, TRAIN, VAL
from keras_depth.sources.base import RawRecord

KEYS = [f"synthetic_rooms/0/{index}" for index in range(2000)]


def test_split_is_stable_across_calls_and_processes():
    splits = [split_for_key(key, 0.8, 0.1) for key in KEYS[:50]]
    code = (
        "from components.ingest.split import split_for_key\n"
        f"print(','.join(split_for_key(k, 0.8, 0.1) for k in {KEYS[:50]!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().split(",") == splits
    assert [split_for_key(key, 0.8, 0.1) for key in KEYS[:50]] == splits


def test_split_fractions_are_respected():
    splits = [split_for_key(key, 0.7, 0.2) for key in KEYS]
    fractions = {split: splits.count(split) / len(KEYS) for split in SPLITS}
    assert fractions == pytest.approx({"train": 0.7, "val": 0.2, "test": 0.1}, abs=0.03)


def test_key_position_is_sha256_prefix():
    # sha256("a") = ca978112ca1bbdca...
    assert key_position("a") == int("ca978112ca1bbdca", 16) / 2**64


def test_everything_in_train_when_train_fraction_is_one():
    assert {split_for_key(key, 1.0, 0.0) for key in KEYS[:200]} == {TRAIN}


@pytest.mark.parametrize(("train", "val"), [(0.9, 0.2), (-0.1, 0.5), (0.5, 1.5)])
def test_invalid_fractions_are_rejected(train, val):
    with pytest.raises(ValueError, match="ingest.train_fraction"):
        check_fractions(train, val)


def record(key: str, group: str = "", official_split: str | None = None) -> RawRecord:
    return RawRecord(
        key, key, np.zeros((1, 1, 3), np.uint8), np.ones((1, 1), np.float32), None, group, official_split
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["scene_a", "scene_b", "kitchen_0028", "drive_0002", ""]), st.integers(0, 10**6)
        ),
        min_size=1,
        max_size=60,
    ),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_no_group_is_in_two_splits(frames, train_fraction, val_fraction):
    val_fraction = min(val_fraction, 1 - train_fraction)
    splits_of_group = defaultdict(set)
    for group, frame in frames:
        key = f"source/{group}/{frame}"
        split = split_for_record(record(key, group), train_fraction, val_fraction)
        splits_of_group[group or key].add(split)
        assert split == split_for_key(group or key, train_fraction, val_fraction)  # the group is hashed
    assert all(len(splits) == 1 for splits in splits_of_group.values())


def test_the_group_not_the_frame_decides():
    frames = [record(f"nyu/{index:04d}", "bedroom_0001") for index in range(200)]
    assert len({split_for_record(frame, 0.5, 0.25) for frame in frames}) == 1
    # without a group each frame is hashed on its own and the frames spread over the splits
    assert {split_for_record(record(frame.key), 0.5, 0.25) for frame in frames} == set(SPLITS)


def test_official_split_is_used_verbatim():
    # "scene_b" hashes to train with these fractions, yet its official split wins
    assert split_for_key("scene_b", 0.8, 0.1) == TRAIN
    for official in SPLITS:
        assert split_for_record(record("k", "scene_b", official), 0.8, 0.1) == official
    with pytest.raises(ValueError, match="k: official split 'validation' must be one of train, val, test"):
        split_for_record(record("k", "scene_b", "validation"), 0.8, 0.1)


def test_val_from_train_moves_whole_official_train_groups_to_val():
    groups = [f"scene_{index:03d}" for index in range(400)]
    moved = {
        group
        for group in groups
        if split_for_record(record(f"{group}/1", group, TRAIN), 0.8, 0.1, 0.25) == VAL
    }
    assert len(moved) == pytest.approx(100, abs=30)
    assert moved == {group for group in groups if key_position(group) < 0.25}
    for group in groups[:50]:  # official test and val groups never move
        assert split_for_record(record(f"{group}/1", group, TEST), 0.8, 0.1, 0.25) == TEST
        assert split_for_record(record(f"{group}/1", group, VAL), 0.8, 0.1, 1.0) == VAL
    assert split_for_record(record("k", groups[0], TRAIN), 0.8, 0.1, 0.0) == TRAIN
    with pytest.raises(ValueError, match="ingest.val_from_train must be in"):
        check_fractions(0.8, 0.1, 1.5)


def _stats(train: int, val: int, test: int, shared: int = 0) -> dict:
    return {
        "counts": {TRAIN: train, VAL: val, TEST: test},
        "groups": {TRAIN: min(train, 2), VAL: min(val, 2), TEST: min(test, 2)},
        "groups_in_several_splits": shared,
    }


def test_empty_train_fails_and_empty_val_or_test_warns(caplog):
    log = logging.getLogger("test_split")
    with pytest.raises(RuntimeError, match="ingest wrote no train record .train 0 records / 0 groups, val 3"):
        check_split_sizes(_stats(0, 3, 4), log)
    with caplog.at_level(logging.WARNING):
        check_split_sizes(_stats(8, 0, 4, shared=1), log)
    messages = [r.getMessage() for r in caplog.records]
    assert (
        len(messages) == 2
        and "the val split is empty" in messages[0]
        and "ingest.val_from_train" in messages[0]
    )
    assert "1 groups have records in more than one split" in messages[1]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        check_split_sizes(_stats(8, 2, 4), log)
    assert not caplog.records

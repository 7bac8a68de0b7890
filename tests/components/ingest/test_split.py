"""Tests of the hash-based train/val/test split."""

from __future__ import annotations

import subprocess
import sys

import pytest

from components.ingest.split import check_fractions, key_position, split_for_key
from keras_depth.data.layout import SPLITS, TRAIN

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

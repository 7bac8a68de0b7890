"""Tests of the post-pipeline checks on a written ingest artifact."""

from __future__ import annotations

import re

import pytest

from components.ingest.verify import (
    check_consistency,
    check_failed_fraction,
    remove_beam_temp_dirs,
    split_shards,
)

SPLIT_COUNTS = {"train": 8, "val": 1, "test": 1}
STATS = {"records_read": 12, "records_failed": 2, "records_skipped_after_read": 0, "counts": SPLIT_COUNTS}
COUNTERS = {"records_read": 12, "records_failed": 2, "records_written_train": 8}
DEAD_LETTERS = [
    {"key": f"folder/{index}", "source_path": "x", "reason": f"bad {index}"} for index in range(5)
]


def test_consistent_tallies_pass():
    check_consistency(12, SPLIT_COUNTS, 2, STATS, COUNTERS)
    check_consistency(12, SPLIT_COUNTS, 2, STATS, {})  # a runner without metrics
    # records read and then skipped on purpose (a split their source does not feed) are accounted for
    check_consistency(15, SPLIT_COUNTS, 2, {**STATS, "records_read": 15, "records_skipped_after_read": 3}, {})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            (13, SPLIT_COUNTS, 2, STATS, {}),
            "records read (13) != written (10) + dead-lettered (2) + skipped after reading (0)",
        ),
        (
            (12, SPLIT_COUNTS, 2, {**STATS, "counts": {"train": 9, "val": 0, "test": 1}}, {}),
            "stats.json counts {'train': 9, 'val': 0, 'test': 1} != records in the shards",
        ),
        ((12, SPLIT_COUNTS, 2, {**STATS, "records_failed": 1}, {}), "records_failed=1, expected 12 and 2"),
        (
            (12, SPLIT_COUNTS, 2, STATS, {**COUNTERS, "records_written_train": 7}),
            "records_written_train=7, expected 8",
        ),
    ],
)
def test_inconsistent_tallies_are_named(arguments, message):
    with pytest.raises(RuntimeError, match=re.escape(message)):
        check_consistency(*arguments)


def test_failed_fraction_at_the_limit_passes(tmp_path):
    check_failed_fraction(DEAD_LETTERS[:1], 10, 0.1, tmp_path / "dead_letter.jsonl")


def test_failed_fraction_above_the_limit_lists_the_first_reasons(tmp_path):
    path = tmp_path / "dead_letter.jsonl"
    expected = (
        f"5 of 20 records failed (25.0%), above ingest.max_failed_fraction=0.2; see {path}: "
        "folder/0: bad 0; folder/1: bad 1; folder/2: bad 2 (and 2 more)"
    )
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        check_failed_fraction(DEAD_LETTERS, 20, 0.2, path)


def test_nothing_written_fails_even_when_every_failure_is_allowed(tmp_path):
    with pytest.raises(
        RuntimeError, match=re.escape("5 of 5 records failed (100.0%), no record was written")
    ):
        check_failed_fraction(DEAD_LETTERS, 5, 1.0, tmp_path / "dead_letter.jsonl")


def test_split_shards_must_be_exactly_the_named_files(tmp_path):
    split_dir = tmp_path / "train"
    split_dir.mkdir()
    for name in ("data-00000-of-00002.tfrecord.gz", "data-00001-of-00002.tfrecord.gz"):
        (split_dir / name).touch()
    assert [path.name for path in split_shards(tmp_path, "train", 2)][1] == "data-00001-of-00002.tfrecord.gz"
    (split_dir / "data-00002-of-00003.tfrecord.gz").touch()
    with pytest.raises(RuntimeError, match="expected shards"):
        split_shards(tmp_path, "train", 2)
    with pytest.raises(RuntimeError, match="found \\[\\]"):
        split_shards(tmp_path, "val", 2)


def test_beam_temp_dirs_are_removed(tmp_path):
    (tmp_path / "train" / "beam-temp-data-123" / "nested").mkdir(parents=True)
    (tmp_path / "beam-temp-stats.json-456").mkdir()
    (tmp_path / "train" / "data-00000-of-00001.tfrecord.gz").touch()
    removed = remove_beam_temp_dirs(tmp_path)
    assert [path.name for path in removed] == ["beam-temp-stats.json-456", "beam-temp-data-123"]
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["data-00000-of-00001.tfrecord.gz", "train"]

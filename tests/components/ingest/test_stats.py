"""Tests of the dataset statistics and record totals (per-record summaries, outcomes and their CombineFn)."""

from __future__ import annotations

import numpy as np
import pytest

from components.ingest.stats import (
    FAILED,
    HISTOGRAM_BINS,
    SKIPPED,
    WRITTEN,
    IngestTally,
    IngestTallyFn,
    dataset_stats,
    finalize_stats,
    summarize,
)


def tally(outcomes, num_accumulators: int = 2) -> IngestTally:
    """Runs the CombineFn the way a runner does: partial accumulators, then a merge."""
    fn = IngestTallyFn()
    accumulators = [fn.create_accumulator() for _ in range(num_accumulators)]
    for index, outcome in enumerate(outcomes):
        fn.add_input(accumulators[index % num_accumulators], outcome)
    return fn.extract_output(fn.merge_accumulators(accumulators))


def combine(summaries, num_accumulators: int = 2) -> dict:
    """The dataset statistics of records written with these summaries."""
    return dataset_stats(tally([(WRITTEN, summary) for summary in summaries], num_accumulators).stats)


def test_indoor_histogram_counts_splits_sizes_and_valid_fraction():
    depth = np.array([[0.0, 0.05, 2.0, 10.0]], np.float32)
    summaries = [
        summarize("train", (480, 640), depth),
        summarize("train", (480, 640), depth),
        summarize("val", (240, 320), np.array([[9.99, 0.0, 0.0, 0.0]], np.float32)),
    ]
    stats = combine(summaries)
    assert stats["counts"] == {"train": 2, "val": 1, "test": 0}
    assert stats["image_sizes"] == {"240x320": 1, "480x640": 2}
    assert stats["valid_fraction_mean"] == pytest.approx((0.75 + 0.75 + 0.25) / 3)
    histogram = stats["depth_histogram"]
    assert histogram["range_m"] == [0.0, 10.0]
    assert len(histogram["bin_edges_m"]) == HISTOGRAM_BINS + 1 and histogram["bin_edges_m"][1] == 0.1
    counts = histogram["counts"]
    assert (counts[0], counts[20], counts[-1]) == (2, 2, 3)  # 0.05 m; 2 m; 9.99 m and exactly 10 m
    assert sum(counts) == 7 and histogram["above_range"] == 0


def test_outdoor_histogram_switches_to_80_m_and_counts_beyond():
    depth = np.array([[5.0, 30.0, 80.0, 95.0]], np.float32)
    histogram = combine([summarize("test", (375, 1242), depth)])["depth_histogram"]
    assert histogram["range_m"] == [0.0, 80.0]
    assert histogram["bin_edges_m"][1] == 0.8
    counts = histogram["counts"]
    assert (counts[6], counts[37], counts[-1]) == (1, 1, 1)
    assert sum(counts) == 3 and histogram["above_range"] == 1


def test_empty_input_and_totals():
    stats = finalize_stats(combine([], num_accumulators=1), records_read=3, records_failed=3)
    assert stats["records_written"] == 0 and stats["records_read"] == 3 and stats["records_failed"] == 3
    assert stats["counts"] == {"train": 0, "val": 0, "test": 0}
    assert stats["valid_fraction_mean"] == 0.0


def test_groups_are_counted_per_split_and_across_splits():
    depth = np.array([[1.0, 2.0]], np.float32)
    summaries = [
        summarize("train", (1, 2), depth, group="bedroom_0001"),
        summarize("train", (1, 2), depth, group="bedroom_0001"),
        summarize("train", (1, 2), depth, group="kitchen_0002"),
        summarize("test", (1, 2), depth, group="office_0003"),
        summarize("val", (1, 2), depth, group="kitchen_0002"),  # an official split may do this
    ]
    stats = finalize_stats(combine(summaries), 6, 1, records_skipped={"not in splits.mat": 2})
    assert stats["counts"] == {"train": 3, "val": 1, "test": 1}
    assert stats["groups"] == {"train": 2, "val": 1, "test": 1}
    assert stats["groups_in_several_splits"] == 1
    assert stats["records_skipped"] == {"not in splits.mat": 2}


def test_records_skipped_after_reading_join_the_reasons_and_are_totalled():
    summaries = [summarize("test", (1, 2), np.array([[1.0, 2.0]], np.float32), group="kitchen_0028")]
    after_read = {"nyu_labeled: train split, not among its splits (test)": 3, "not in splits.mat": 1}
    stats = finalize_stats(combine(summaries), 5, 0, {"not in splits.mat": 2}, skipped_after_read=after_read)
    assert stats["records_skipped"] == {
        "not in splits.mat": 3,
        "nyu_labeled: train split, not among its splits (test)": 3,
    }
    assert stats["records_skipped_after_read"] == 4
    assert finalize_stats(combine(summaries), 1, 0)["records_skipped_after_read"] == 0


def test_the_tally_counts_every_record_read_as_written_failed_or_skipped():
    summary = summarize("train", (1, 2), np.array([[1.0, 2.0]], np.float32), group="kitchen_0028")
    dead = {"key": "folder/b", "source_path": "b.png", "reason": "unreadable"}
    outcomes = [(WRITTEN, summary), (FAILED, dead), (SKIPPED, "folder: why"), (SKIPPED, "folder: why")]
    report = tally(outcomes, num_accumulators=3).report({"listed but unusable": 1})
    assert (report["records_read"], report["records_written"], report["records_failed"]) == (4, 1, 1)
    assert report["records_skipped"] == {"folder: why": 2, "listed but unusable": 1}
    assert report["records_skipped_after_read"] == 2
    with pytest.raises(ValueError, match="unknown ingest outcome 'lost'"):
        IngestTally().add(("lost", None))


def test_the_valid_fraction_mean_does_not_depend_on_the_order_of_the_sums():
    fractions = np.random.default_rng(0).random(200)
    summaries = [
        summarize("train", (1, 10), np.where(np.arange(10) < 10 * f, 1.0 + f, 0.0)[None].astype(np.float32))
        for f in fractions
    ]
    means = {combine(order, n)["valid_fraction_mean"] for n, order in ((1, summaries), (7, summaries[::-1]))}
    assert len(means) == 1

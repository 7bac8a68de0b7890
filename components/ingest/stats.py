"""Dataset statistics and record totals of one ingest, computed with a Beam ``CombineFn``.

Each stored record is reduced to a small :class:`RecordSummary` (its split and group,
the image size before resizing, its valid-pixel fraction, a fine depth histogram and
the conversions its source applied, e.g. an opaque alpha channel dropped);
:class:`IngestTallyFn` sums the summaries, with the dead letters and the skipped records, so
the statistics are the same however Beam splits the work between bundles and workers. Every
sum is exact (the valid fractions are added as ``fractions.Fraction``), so the statistics are
equal to the last bit whatever the order.

The depth histogram is accumulated in fine 0.1 m bins over [0, 80) m and
reported as ``HISTOGRAM_BINS`` bins over [0, 10] m when no valid depth exceeds
10 m (indoor data such as NYU) or over [0, 80] m otherwise (KITTI); as in
``numpy.histogram`` every bin is half-open except the last, which includes its
right edge. Valid depths above 80 m are counted in ``above_range``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import apache_beam as beam
import numpy as np

from keras_depth.data.layout import SPLITS

INDOOR_RANGE_M = 10.0
OUTDOOR_RANGE_M = 80.0
HISTOGRAM_BINS = 100
FINE_BIN_WIDTH_M = 0.1
FINE_BINS = round(OUTDOOR_RANGE_M / FINE_BIN_WIDTH_M)
_EDGE_DECIMALS = 6
# Outcomes of a record read, as IngestTally counts them.
WRITTEN, FAILED, SKIPPED = "written", "failed", "skipped"


@dataclass(frozen=True)
class RecordSummary:
    """What the statistics need from one stored record.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        original_size: (height, width) in pixels of the image before resizing.
        valid_fraction: Fraction of stored depth pixels that are valid (> 0).
        fine_histogram: int32 (at most FINE_BINS,): valid stored depths in 0.1 m bins from 0 m, up
            to the last non-empty bin (a summary travels between Beam workers: an indoor one is
            about 100 bins, not 800).
        above_range: Valid stored depths above 80 m.
        max_depth: Largest stored depth in metres.
        conversions: What the source changed to make the record storable (``RawRecord.conversions``).
        group: The group the split kept together (``components.ingest.split.record_group``).
    """

    split: str
    original_size: tuple[int, int]
    valid_fraction: float
    fine_histogram: np.ndarray
    above_range: int
    max_depth: float
    conversions: tuple[str, ...] = ()
    group: str = ""


def summarize(
    split: str,
    original_size: tuple[int, int],
    depth: np.ndarray,
    conversions: tuple[str, ...] = (),
    group: str = "",
) -> RecordSummary:
    """Summarizes one stored record.

    Args:
        split: The record's split.
        original_size: (height, width) in pixels before resizing.
        depth: Stored depth, float32 metres (H, W); 0 = invalid.
        conversions: The conversions the source applied to the record.
        group: The record's group (``components.ingest.split.record_group``).
    """
    valid = depth[depth > 0]
    in_range = valid[valid <= OUTDOOR_RANGE_M]
    fine_histogram, _ = np.histogram(in_range, bins=FINE_BINS, range=(0.0, OUTDOOR_RANGE_M))
    used = np.flatnonzero(fine_histogram)
    return RecordSummary(
        split=split,
        original_size=original_size,
        valid_fraction=valid.size / depth.size,
        fine_histogram=fine_histogram[: used[-1] + 1 if used.size else 0].astype(np.int32),
        above_range=int(valid.size - in_range.size),
        max_depth=float(valid.max()),
        conversions=conversions,
        group=group,
    )


@dataclass
class StatsAccumulator:
    """Running sums of :class:`RecordSummary` values (see :func:`dataset_stats`)."""

    split_counts: Counter = field(default_factory=Counter)
    size_counts: Counter = field(default_factory=Counter)
    valid_fraction_sum: Fraction = Fraction(0)
    fine_histogram: np.ndarray = field(default_factory=lambda: np.zeros(FINE_BINS, np.int64))
    above_range: int = 0
    max_depth: float = 0.0
    conversion_counts: Counter = field(default_factory=Counter)
    split_groups: dict[str, set[str]] = field(default_factory=lambda: {split: set() for split in SPLITS})

    def add(self, summary: RecordSummary) -> None:
        """Adds one record's summary."""
        height, width = summary.original_size
        self.split_counts[summary.split] += 1
        self.size_counts[f"{height}x{width}"] += 1
        self.valid_fraction_sum += Fraction(summary.valid_fraction)
        self.fine_histogram[: summary.fine_histogram.size] += summary.fine_histogram
        self.above_range += summary.above_range
        self.max_depth = max(self.max_depth, summary.max_depth)
        self.conversion_counts.update(summary.conversions)
        self.split_groups[summary.split].add(summary.group)

    def merge(self, other: StatsAccumulator) -> None:
        """Adds another accumulator's sums."""
        self.split_counts.update(other.split_counts)
        self.size_counts.update(other.size_counts)
        self.valid_fraction_sum += other.valid_fraction_sum
        self.fine_histogram += other.fine_histogram
        self.above_range += other.above_range
        self.max_depth = max(self.max_depth, other.max_depth)
        self.conversion_counts.update(other.conversion_counts)
        for split, groups in other.split_groups.items():
            self.split_groups[split] |= groups


def depth_histogram(fine_histogram: np.ndarray, above_range: int, max_depth: float) -> dict:
    """The reported histogram: HISTOGRAM_BINS bins over [0, 10] m or [0, 80] m.

    Args:
        fine_histogram: int64 (FINE_BINS,) counts in 0.1 m bins over [0, 80] m.
        above_range: Valid depths above 80 m.
        max_depth: Largest valid depth in metres (picks the range).

    Returns:
        ``range_m`` [0, max], ``bin_edges_m`` (HISTOGRAM_BINS + 1 edges in metres),
        ``counts`` (HISTOGRAM_BINS valid-pixel counts) and ``above_range``.
    """
    range_m = INDOOR_RANGE_M if max_depth <= INDOOR_RANGE_M else OUTDOOR_RANGE_M
    num_fine = round(range_m / FINE_BIN_WIDTH_M)
    counts = fine_histogram[:num_fine].reshape(HISTOGRAM_BINS, -1).sum(axis=1)
    if num_fine < FINE_BINS:
        # No depth exceeds 10 m, so the fine bin [10, 10.1) holds only depths of exactly 10 m,
        # which belong to the closed last bin.
        counts[-1] += fine_histogram[num_fine]
    edges = np.round(np.linspace(0.0, range_m, HISTOGRAM_BINS + 1), _EDGE_DECIMALS)
    return {
        "range_m": [0.0, range_m],
        "bin_edges_m": edges.tolist(),
        "counts": counts.tolist(),
        "above_range": above_range,
    }


def dataset_stats(accumulator: StatsAccumulator) -> dict:
    """The dataset statistics of the summed records.

    Returns:
        ``counts`` per split, ``depth_histogram``, ``valid_fraction_mean``, ``image_sizes`` and
        ``conversions`` (records per conversion the sources applied, see ``keras_depth.sources.decode``),
        ``groups`` (distinct groups per split) and ``groups_in_several_splits`` (groups with records in
        more than one split: 0 unless an official split itself puts one group in two splits).
    """
    num_records = sum(accumulator.split_counts.values())
    groups = accumulator.split_groups
    shared = set.union(*(groups[a] & groups[b] for a, b in itertools.combinations(SPLITS, 2)))
    return {
        "counts": {split: accumulator.split_counts[split] for split in SPLITS},
        "groups": {split: len(groups[split]) for split in SPLITS},
        "groups_in_several_splits": len(shared),
        "depth_histogram": depth_histogram(
            accumulator.fine_histogram, accumulator.above_range, accumulator.max_depth
        ),
        "valid_fraction_mean": float(accumulator.valid_fraction_sum / num_records) if num_records else 0.0,
        "image_sizes": dict(sorted(accumulator.size_counts.items())),
        "conversions": dict(sorted(accumulator.conversion_counts.items())),
    }


@dataclass
class IngestTally:
    """What became of the records read: the statistics of those written, the dead letters and the
    records skipped on purpose after reading, by reason (see :class:`IngestTallyFn`)."""

    stats: StatsAccumulator = field(default_factory=StatsAccumulator)
    dead_letters: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def add(self, outcome: tuple[str, object]) -> None:
        """Adds one record's outcome: ``(WRITTEN, RecordSummary)``, ``(FAILED, dead-letter entry)`` or
        ``(SKIPPED, reason)``."""
        kind, value = outcome
        if kind == WRITTEN:
            self.stats.add(value)
        elif kind == FAILED:
            self.dead_letters.append(value)
        elif kind == SKIPPED:
            self.skipped[value] += 1
        else:
            raise ValueError(f"unknown ingest outcome {kind!r}; expected {WRITTEN}, {FAILED} or {SKIPPED}")

    def merge(self, other: IngestTally) -> None:
        """Adds another tally."""
        self.stats.merge(other.stats)
        self.dead_letters += other.dead_letters
        self.skipped.update(other.skipped)

    def records_read(self) -> int:
        """Records read: each is written, failed or skipped."""
        return sum(self.stats.split_counts.values()) + len(self.dead_letters) + self.skipped.total()

    def report(self, records_skipped: dict[str, int] | None = None) -> dict:
        """The ``stats.json`` content: :func:`dataset_stats` and the totals (:func:`finalize_stats`).

        Args:
            records_skipped: Files the source passed over when listing, by reason.
        """
        return finalize_stats(
            dataset_stats(self.stats),
            records_read=self.records_read(),
            records_failed=len(self.dead_letters),
            records_skipped=records_skipped,
            skipped_after_read=self.skipped,
        )


class IngestTallyFn(beam.CombineFn):
    """Combines the outcomes of the records read (:meth:`IngestTally.add`) into an :class:`IngestTally`."""

    def create_accumulator(self) -> IngestTally:
        return IngestTally()

    def add_input(self, accumulator: IngestTally, outcome: tuple[str, object]) -> IngestTally:
        accumulator.add(outcome)
        return accumulator

    def merge_accumulators(self, accumulators) -> IngestTally:
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator: IngestTally) -> IngestTally:
        return accumulator


def finalize_stats(
    stats: dict,
    records_read: int,
    records_failed: int,
    records_skipped: dict[str, int] | None = None,
    skipped_after_read: dict[str, int] | None = None,
) -> dict:
    """Adds the record totals (read, written, failed, skipped) to the combined statistics.

    Args:
        stats: The :func:`dataset_stats` of the records written.
        records_read: Keys the source listed.
        records_failed: Dead-lettered records.
        records_skipped: Files the source passed over on purpose when listing, by reason
            (``DepthSource.skipped_records``, e.g. KITTI frames without annotated depth).
        skipped_after_read: Records read but not written on purpose, by reason (a split their
            source does not feed, a group holding a test record: ``components.ingest.sources``).

    Returns:
        ``stats`` with ``records_read``, ``records_written``, ``records_failed``,
        ``records_skipped`` (both kinds of skipped records by reason) and
        ``records_skipped_after_read`` (read = written + failed + skipped after read).
    """
    after_read = Counter(skipped_after_read or {})
    return {
        "records_read": records_read,
        "records_written": sum(stats["counts"].values()),
        "records_failed": records_failed,
        "records_skipped": dict(sorted((Counter(records_skipped or {}) + after_read).items())),
        "records_skipped_after_read": after_read.total(),
        **stats,
    }

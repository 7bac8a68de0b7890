"""Checks run on the written artifact after the Beam pipeline finished.

The pipeline's own bookkeeping (``stats.json``, Beam metrics) is compared with
what is actually on disk (records in the shards, lines in ``dead_letter.jsonl``),
so a lost bundle or a half-written shard fails the stage instead of silently
publishing a smaller dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from components.ingest.pipeline_beam import DEAD_LETTER_FILE
from keras_depth.data.layout import SHARD_PREFIX, SHARD_SUFFIX, SPLITS
from keras_depth.data.reader import count_records

BEAM_TEMP_PREFIX = "beam-temp-"
REASONS_IN_MESSAGE = 3


def shard_names(num_shards: int) -> list[str]:
    """File names of one split's shards: ``data-SSSSS-of-NNNNN.tfrecord.gz``."""
    return [f"{SHARD_PREFIX}-{index:05d}-of-{num_shards:05d}{SHARD_SUFFIX}" for index in range(num_shards)]


def split_shards(output_dir: Path, split: str, num_shards: int) -> list[Path]:
    """The shard files of ``split``, in order.

    Raises:
        RuntimeError: naming the split directory when its files are not exactly
            ``data-00000-of-NNNNN`` ... ``data-<N-1>-of-NNNNN``.
    """
    split_dir = output_dir / split
    expected = shard_names(num_shards)
    found = sorted(path.name for path in split_dir.iterdir()) if split_dir.is_dir() else []
    if found != expected:
        raise RuntimeError(f"{split_dir}: expected shards {expected}, found {found}")
    return [split_dir / name for name in expected]


def count_split_records(output_dir: Path, num_shards: int) -> dict[str, int]:
    """Records in each split's shards (see :func:`split_shards`)."""
    return {
        split: count_records([str(path) for path in split_shards(output_dir, split, num_shards)])
        for split in SPLITS
    }


def remove_beam_temp_dirs(output_dir: Path) -> list[Path]:
    """Deletes the ``beam-temp-*`` directories left next to the outputs; returns them.

    The pipeline writes the records' compressed segments to ``beam-temp-ingest-<id>`` and deletes
    it once every shard is committed (as Beam's file sinks do with theirs); this removes any a
    failed attempt or a runner left behind so the published artifact holds only the dataset.
    """
    parents = (output_dir, *(output_dir / split for split in SPLITS))
    leftovers = sorted(path for parent in parents for path in parent.glob(f"{BEAM_TEMP_PREFIX}*"))
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return leftovers


def read_dead_letters(output_dir: Path) -> list[dict]:
    """The entries of ``dead_letter.jsonl`` (``key``, ``source_path``, ``reason``)."""
    lines = (output_dir / DEAD_LETTER_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def check_consistency(
    num_keys: int,
    split_counts: dict[str, int],
    num_dead_letters: int,
    stats: dict,
    counters: dict[str, int],
) -> None:
    """Every listed key was read and either written, dead-lettered or skipped on purpose (a split
    its source does not feed, ``stats.json`` ``records_skipped_after_read``), and every tally agrees.

    Args:
        num_keys: Keys the source listed.
        split_counts: Records found in each split's shards.
        num_dead_letters: Lines in ``dead_letter.jsonl``.
        stats: Parsed ``stats.json``.
        counters: Beam metric counters by name (empty when the runner reports none).

    Raises:
        RuntimeError: listing every mismatch with its numbers.
    """
    written = sum(split_counts.values())
    expected = {
        "records_read": num_keys,
        "records_failed": num_dead_letters,
        **{f"records_written_{split}": count for split, count in split_counts.items()},
    }
    problems = []
    skipped = stats["records_skipped_after_read"]
    if num_keys != written + num_dead_letters + skipped:
        problems.append(
            f"records read ({num_keys}) != written ({written}) + dead-lettered ({num_dead_letters}) "
            f"+ skipped after reading ({skipped})"
        )
    if stats["records_read"] != num_keys or stats["records_failed"] != num_dead_letters:
        problems.append(
            f"stats.json records_read={stats['records_read']} records_failed={stats['records_failed']}, "
            f"expected {num_keys} and {num_dead_letters}"
        )
    if stats["counts"] != split_counts:
        problems.append(f"stats.json counts {stats['counts']} != records in the shards {split_counts}")
    for name, value in sorted(counters.items()):
        if name in expected and value != expected[name]:
            problems.append(f"Beam metric {name}={value}, expected {expected[name]}")
    if problems:
        raise RuntimeError("ingest output is inconsistent: " + "; ".join(problems))


def check_failed_fraction(
    dead_letters: list[dict], num_read: int, max_failed_fraction: float, dead_letter_path: Path
) -> None:
    """Raises RuntimeError when no record was written or more than ``max_failed_fraction`` failed.

    Args:
        dead_letters: Entries of ``dead_letter.jsonl``.
        num_read: Records read (> 0).
        max_failed_fraction: ``ingest.max_failed_fraction``.
        dead_letter_path: Where the full list can be read (named in the message).
    """
    num_failed = len(dead_letters)
    fraction = num_failed / num_read
    if num_failed == num_read:
        verdict = "no record was written"
    elif fraction > max_failed_fraction:
        verdict = f"above ingest.max_failed_fraction={max_failed_fraction}"
    else:
        return
    reasons = "; ".join(f"{entry['key']}: {entry['reason']}" for entry in dead_letters[:REASONS_IN_MESSAGE])
    more = f" (and {num_failed - REASONS_IN_MESSAGE} more)" if num_failed > REASONS_IN_MESSAGE else ""
    raise RuntimeError(
        f"{num_failed} of {num_read} records failed ({100 * fraction:.1f}%), {verdict}; "
        f"see {dead_letter_path}: {reasons}{more}"
    )

"""Deterministic, leak-free train/val/test assignment.

Neighbouring frames of one scene, drive or room are near-duplicates, so a record's
split is decided by its *group* (``RawRecord.group``), never by the frame: every
record of a group lands in the same split. A record without a group (``""``) is
its own group, i.e. its key is hashed.

- A record with an official split (``RawRecord.official_split``, set by a source
  configured to follow its dataset's split) keeps it verbatim, except that with
  ``val_from_train > 0`` the groups of the official ``train`` split whose hash
  position is below ``val_from_train`` go to ``val`` (for datasets whose official
  split has no val split).
- Any other record hashes its group: the first 8 bytes of ``sha256(group)`` read as
  an unsigned integer and divided by 2^64 give a position ``u`` in [0, 1);
  ``u < train_fraction`` is ``train``, ``u < train_fraction + val_fraction`` is
  ``val``, the rest ``test``.

Unlike Python's ``hash()`` (salted per process) this is identical across runs,
processes, machines and Beam worker counts, and a record never changes split when
other records are added to or removed from the dataset.
"""

from __future__ import annotations

import hashlib
import logging

from keras_depth.data.layout import SPLITS, TEST, TRAIN, VAL
from keras_depth.sources.base import RawRecord

_HASH_BYTES = 8
_HASH_RANGE = 2 ** (8 * _HASH_BYTES)


def key_position(key: str) -> float:
    """The key's position in [0, 1): its first 8 sha256 bytes (big-endian) / 2^64."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big") / _HASH_RANGE


def check_fractions(train_fraction: float, val_fraction: float, val_from_train: float = 0.0) -> None:
    """Raises ValueError unless the fractions are each in [0, 1] and train + val is at most 1."""
    if not (0.0 <= train_fraction <= 1.0 and 0.0 <= val_fraction <= 1.0):
        raise ValueError(
            f"ingest.train_fraction={train_fraction} and ingest.val_fraction={val_fraction} "
            "must each be in [0, 1]"
        )
    if train_fraction + val_fraction > 1.0:
        raise ValueError(
            f"ingest.train_fraction + ingest.val_fraction = {train_fraction + val_fraction} "
            "must be at most 1 (the rest is the test split)"
        )
    if not 0.0 <= val_from_train <= 1.0:
        raise ValueError(f"ingest.val_from_train must be in [0, 1], got {val_from_train}")


def split_for_key(key: str, train_fraction: float, val_fraction: float) -> str:
    """The split (``train``, ``val`` or ``test``) that hashing ``key`` gives.

    Args:
        key: A group name, or the key of a record without a group.
        train_fraction: Expected fraction of keys in ``train``.
        val_fraction: Expected fraction of keys in ``val``; the rest is ``test``.
    """
    position = key_position(key)
    if position < train_fraction:
        return TRAIN
    if position < train_fraction + val_fraction:
        return VAL
    return TEST


def record_group(record: RawRecord) -> str:
    """The group the split keeps together: ``record.group``, or the key when it has none."""
    return record.group or record.key


def split_for_record(
    record: RawRecord, train_fraction: float, val_fraction: float, val_from_train: float = 0.0
) -> str:
    """The split of a record (see the module docstring).

    Args:
        record: The record; only ``key``, ``group`` and ``official_split`` are read.
        train_fraction: Expected fraction of hashed groups in ``train``.
        val_fraction: Expected fraction of hashed groups in ``val``; the rest is ``test``.
        val_from_train: Fraction of the official train split's groups moved to ``val``.

    Raises:
        ValueError: naming the record when its official split is not one of ``SPLITS``.
    """
    group = record_group(record)
    official = record.official_split
    if official is None:
        return split_for_key(group, train_fraction, val_fraction)
    if official not in SPLITS:
        raise ValueError(
            f"{record.key}: official split {official!r} must be one of {', '.join(SPLITS)} "
            f"(source path {record.source_path})"
        )
    if official == TRAIN and key_position(group) < val_from_train:
        return VAL
    return official


def check_split_sizes(stats: dict, log: logging.Logger, fed_splits: tuple[str, ...] = SPLITS) -> None:
    """Fails when ``train`` is empty; warns when ``val`` or ``test`` is, or a group spans splits.

    An evaluation-only ingest (its sources feed no ``train`` split: a dataset scored by
    ``evaluate.extra_datasets``) fails when ``test`` is empty instead, and is not warned about the
    splits it does not feed.

    Args:
        stats: ``stats.json`` content: ``counts`` (records per split), ``groups`` (groups per
            split) and ``groups_in_several_splits``.
        log: Receives the warnings.
        fed_splits: The splits the ingest's sources feed (``IngestConfig.fed_splits``).

    Raises:
        RuntimeError: when no record went to ``train`` (``test`` for an evaluation-only ingest),
            with the counts and what decides the split.
    """
    records, groups = stats["counts"], stats["groups"]
    counts = ", ".join(f"{split} {records[split]} records / {groups[split]} groups" for split in SPLITS)
    if TRAIN not in fed_splits:
        if not records[TEST]:
            raise RuntimeError(
                f"ingest wrote no test record ({counts}) for an ingest that feeds only {fed_splits}"
            )
    elif not records[TRAIN]:
        raise RuntimeError(
            f"ingest wrote no train record ({counts}); the split follows the source's official "
            "split when configured, else hashes each group with ingest.train_fraction: check both. "
            "A whole group always lands in one split, so a dataset of one or a few groups (a folder "
            "source groups by parent directory) needs finer groups, e.g. ingest.folder.group_pattern"
        )
    for split in (VAL, TEST):
        if split in fed_splits and not records[split]:
            hint = " (set ingest.val_from_train to hold out groups of an official train split)"
            log.warning("ingest: the %s split is empty (%s)%s", split, counts, hint if split == VAL else "")
    if stats["groups_in_several_splits"]:
        log.warning(
            "ingest: %d groups have records in more than one split: the dataset's official split "
            "(followed verbatim) puts them there",
            stats["groups_in_several_splits"],
        )

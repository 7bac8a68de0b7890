"""Deterministic train/val/test assignment by hashing the example key.

The split of an example depends only on its key and the configured fractions:
the first 8 bytes of ``sha256(key)`` read as an unsigned integer and divided by
2^64 give a number ``u`` in [0, 1), and ``u < train_fraction`` is ``train``,
``u < train_fraction + val_fraction`` is ``val``, the rest ``test``. Unlike
Python's ``hash()`` (salted per process) this is identical across runs,
processes, machines and Beam worker counts, and an example never changes split
when other examples are added to or removed from the dataset.
"""

from __future__ import annotations

import hashlib

from keras_depth.data.layout import TEST, TRAIN, VAL

_HASH_BYTES = 8
_HASH_RANGE = 2 ** (8 * _HASH_BYTES)


def key_position(key: str) -> float:
    """The key's position in [0, 1): its first 8 sha256 bytes (big-endian) / 2^64."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big") / _HASH_RANGE


def check_fractions(train_fraction: float, val_fraction: float) -> None:
    """Raises ValueError unless both fractions are in [0, 1] and sum to at most 1."""
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


def split_for_key(key: str, train_fraction: float, val_fraction: float) -> str:
    """The split (``train``, ``val`` or ``test``) of the example with ``key``.

    Args:
        key: Stable example key, e.g. ``synthetic_rooms/0/17``.
        train_fraction: Expected fraction of keys in ``train``.
        val_fraction: Expected fraction of keys in ``val``; the rest is ``test``.
    """
    position = key_position(key)
    if position < train_fraction:
        return TRAIN
    if position < train_fraction + val_fraction:
        return VAL
    return TEST

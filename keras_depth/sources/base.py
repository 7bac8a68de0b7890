"""The dataset-source contract used by the ingest stage.

A source is a small class in the spirit of a TFDS builder: ``list_keys`` is cheap
and enumerates stable example keys; ``load`` does the expensive work for one key
and either returns a :class:`RawRecord` or raises :class:`RecordError` with a
reason that ends up in the ingest dead-letter file.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


class RecordError(Exception):
    """One record cannot be converted; ``str(error)`` is the dead-letter reason."""


@dataclass
class RawRecord:
    """A decoded record, before resizing to the storage size.

    Attributes:
        key: Stable unique id (``<source>/<relative id>``).
        source_path: File (or generator id) it came from, for error reports.
        image: uint8 RGB, shape (H, W, 3).
        depth: float32 metres, shape (H, W); 0 = invalid pixel. NaN, inf or negative values
            make the whole record invalid (ingest dead-letters it).
        intrinsics: (fx, fy, cx, cy) in pixels of this image, or None.
        group: The group the record belongs to (NYU scene, KITTI drive, DIODE scene, folder sequence,
            synthetic room); neighbouring frames of one group are near-duplicates, so the split hashes
            the group, never the frame. "" = the record is its own group.
        official_split: The dataset's own split of this record (``train``, ``val`` or ``test``) when the
            source is configured to follow it, else None (the split hashes ``group``).
        conversions: What the source changed to make the record storable (e.g. ``opaque_alpha_dropped``,
            see ``keras_depth.sources.decode``); ingest counts them in ``stats.json``.
    """

    key: str
    source_path: str
    image: np.ndarray
    depth: np.ndarray
    intrinsics: tuple[float, float, float, float] | None = None
    group: str = ""
    official_split: str | None = None
    conversions: tuple[str, ...] = ()


class DepthSource(abc.ABC):
    """A dataset of RGB-D records. Instances must be picklable (Beam ships them to workers)."""

    name: str = ""

    @abc.abstractmethod
    def list_keys(self) -> list[str]:
        """Every record's key, in a deterministic order."""

    @abc.abstractmethod
    def source_path(self, key: str) -> str:
        """Where the record with ``key`` is read from (for dead-letter entries)."""

    def manifest(self) -> dict:
        """A cheap summary of the files the records are read from, part of the ingest fingerprint.

        A source that reads files returns something that changes when a file is added, removed
        or modified (names, sizes, modification times; no content hashing), so a rerun sees
        the change instead of reusing a stale dataset. The default, ``{}``, suits generated data.
        """
        return {}

    def skipped_records(self) -> dict[str, int]:
        """Records the last ``list_keys`` passed over on purpose, counted by reason.

        Not failures (they are not dead-lettered): e.g. KITTI raw frames without annotated
        depth, or frames outside an official split list. Ingest writes them to ``stats.json``
        as ``records_skipped``. The default, ``{}``, suits sources that list every record.
        """
        return {}

    @abc.abstractmethod
    def load(self, key: str) -> RawRecord:
        """Reads and decodes one record.

        Raises:
            RecordError: with the reason, when the record is unreadable or malformed.
        """

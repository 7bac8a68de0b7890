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
    """

    key: str
    source_path: str
    image: np.ndarray
    depth: np.ndarray
    intrinsics: tuple[float, float, float, float] | None = None
    group: str = ""
    official_split: str | None = None


class DepthSource(abc.ABC):
    """A dataset of RGB-D records. Instances must be picklable (Beam ships them to workers)."""

    name: str = ""

    @abc.abstractmethod
    def list_keys(self) -> list[str]:
        """Every record's key, in a deterministic order."""

    @abc.abstractmethod
    def source_path(self, key: str) -> str:
        """Where the record with ``key`` is read from (for dead-letter entries)."""

    @abc.abstractmethod
    def load(self, key: str) -> RawRecord:
        """Reads and decodes one record.

        Raises:
            RecordError: with the reason, when the record is unreadable or malformed.
        """

"""Shards written in pieces by the workers and assembled by a commit step, the same for any worker count.

The records never travel through the runner: a worker compresses them straight into files, and only
their keys and small metadata move on.

- **Plan** (:func:`plan_chunks`, before the pipeline runs): each key goes to shard
  ``shard_of_key(key, num_shards)`` (a hash of the key: the same shard index in whichever split the
  record lands), and each shard's keys, sorted, are cut into :class:`Chunk` s of consecutive keys.
- **Write** (a worker, per chunk): the records of each split are framed as TFRecords, in key order,
  and compressed as one raw DEFLATE segment that ends on a byte boundary (a sync flush, no final
  block): :class:`SegmentWriter` -> a :class:`ChunkFile` under the ingest's temporary folder.
- **Commit** (one element per split and shard, :func:`commit_shard`): a gzip header, the shard's
  segments in chunk order, an empty final DEFLATE block and the gzip trailer, whose CRC-32 is
  combined from the segments' (:func:`crc32_combine`), as ``pigz`` writes gzip in parallel. The
  result is one ordinary gzip stream (TensorFlow reads only the first member of a multi-member
  gzip file). A segment holding records that must not be written (their group holds a test record,
  known only once every record is read) is decompressed, filtered and compressed again.

A shard's records are therefore sorted by key, and its bytes depend only on the keys and the
records: not on the worker count, the bundles or the runner. All files go through Beam's
``FileSystems``, so a distributed runner writes them to its shared storage.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from collections.abc import Collection, Sequence
from typing import BinaryIO, NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from keras_depth.data.layout import SHARD_PREFIX, SHARD_SUFFIX
from keras_depth.data.tfrecord_format import frame_record, framed_records

# Beam's gzip level (zlib's default), so shards are as small as WriteToTFRecord's were.
COMPRESSION_LEVEL = zlib.Z_DEFAULT_COMPRESSION
# Chunk sizes: at most MAX_RECORDS_PER_CHUNK records (what a retried bundle redoes), and small
# enough for about TARGET_CHUNKS chunks, so that workers get even shares of a small ingest.
MAX_RECORDS_PER_CHUNK = 32
TARGET_CHUNKS = 128
# gzip member header: magic, DEFLATE, no flags, mtime 0, no extra flags, OS unknown (RFC 1952).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# An empty DEFLATE block marked final: ends a stream of sync-flushed segments.
FINAL_DEFLATE_BLOCK = b"\x03\x00"
_RAW_DEFLATE = -15  # zlib window bits for DEFLATE without zlib or gzip framing
_ZEROS = bytes(1 << 20)


class Chunk(NamedTuple):
    """Consecutive keys (in sort order) of one shard, ingested by one worker in one go.

    Attributes:
        shard: The shard index (in every split) of its records.
        index: Position among the shard's chunks.
        keys: The keys, sorted.
    """

    shard: int
    index: int
    keys: tuple[str, ...]


class ChunkFile(NamedTuple):
    """A chunk's records of one split: a raw DEFLATE segment of framed TFRecords.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        shard: Shard index in the split.
        index: The chunk's position among the shard's chunks.
        path: The segment's file.
        keys: The records' keys, in the order they are stored (sorted).
        crc32: CRC-32 of the uncompressed (framed) bytes.
        length: Number of uncompressed bytes.
    """

    split: str
    shard: int
    index: int
    path: str
    keys: tuple[str, ...]
    crc32: int
    length: int


def shard_of_key(key: str, num_shards: int) -> int:
    """The shard index of ``key``: a hash of the key, uniform over ``range(num_shards)``."""
    digest = hashlib.sha256(f"shard:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def records_per_chunk(num_keys: int) -> int:
    """Keys per chunk for ``num_keys`` keys: about ``TARGET_CHUNKS`` chunks of at most
    ``MAX_RECORDS_PER_CHUNK`` keys."""
    return max(1, min(MAX_RECORDS_PER_CHUNK, math.ceil(num_keys / TARGET_CHUNKS)))


def plan_chunks(keys: Sequence[str], num_shards: int, chunk_size: int) -> list[Chunk]:
    """Every key in exactly one chunk: each shard's sorted keys cut into runs of ``chunk_size``.

    Args:
        keys: The source's keys (distinct).
        num_shards: Shards per split.
        chunk_size: Keys per chunk (the last chunk of a shard may hold fewer).
    """
    by_shard: list[list[str]] = [[] for _ in range(num_shards)]
    for key in keys:
        by_shard[shard_of_key(key, num_shards)].append(key)
    return [
        Chunk(shard, start // chunk_size, tuple(shard_keys[start : start + chunk_size]))
        for shard, shard_keys in enumerate(sorted(keys) for keys in by_shard)
        for start in range(0, len(shard_keys), chunk_size)
    ]


def segment_path(temp_dir: str, split: str, shard: int, index: int) -> str:
    """The file of chunk ``index`` of ``split``'s shard ``shard`` (the same on a retry)."""
    return FileSystems.join(temp_dir, f"{split}-{shard:05d}-{index:05d}.deflate")


def shard_path(output_dir: str, split: str, shard: int, num_shards: int) -> str:
    """``<output_dir>/<split>/data-SSSSS-of-NNNNN.tfrecord.gz``."""
    return FileSystems.join(
        output_dir, split, f"{SHARD_PREFIX}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"
    )


class SegmentWriter:
    """Frames records and compresses them into one raw DEFLATE segment, streamed to a file.

    Args:
        split: The records' split.
        chunk: The chunk they come from.
        path: The segment's file (created now; a retry of the chunk writes it again).
    """

    def __init__(self, split: str, chunk: Chunk, path: str) -> None:
        self._split, self._chunk, self._path = split, chunk, path
        self._compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, _RAW_DEFLATE)
        self._file: BinaryIO = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._keys: list[str] = []
        self._crc32 = 0
        self._length = 0

    def add(self, key: str, serialized: bytes) -> None:
        """Appends the record ``serialized`` with key ``key`` (keys must come in sorted order)."""
        framed = frame_record(serialized)
        self._file.write(self._compressor.compress(framed))
        self._crc32 = zlib.crc32(framed, self._crc32)
        self._length += len(framed)
        self._keys.append(key)

    def close(self) -> ChunkFile:
        """Ends the segment on a byte boundary (sync flush), closes the file and describes it."""
        self._file.write(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        self._file.close()
        chunk = self._chunk
        return ChunkFile(
            self._split, chunk.shard, chunk.index, self._path, tuple(self._keys), self._crc32, self._length
        )


def crc32_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """CRC-32 of ``a + b`` from the CRC-32s of ``a`` and ``b`` and ``len(b)``.

    ``zlib.crc32(b, start)`` is affine in ``start`` with the linear part of ``length_b`` zero bytes, so
    ``crc32(a + b) = crc32(b, crc_a) = crc_b ^ crc32(zeros, crc_a) ^ crc32(zeros, 0)``.
    """
    shifted, zero = crc_a, 0
    for start in range(0, length_b, len(_ZEROS)):
        zeros = _ZEROS[: min(len(_ZEROS), length_b - start)]
        shifted, zero = zlib.crc32(zeros, shifted), zlib.crc32(zeros, zero)
    return crc_b ^ shifted ^ zero


def read_segment(chunk_file: ChunkFile) -> bytes:
    """The compressed bytes of a segment."""
    with FileSystems.open(chunk_file.path, compression_type=CompressionTypes.UNCOMPRESSED) as file:
        return file.read()


def filter_segment(chunk_file: ChunkFile, segment: bytes, keep: Collection[str]) -> tuple[bytes, int, int]:
    """The segment without the records whose key is not in ``keep``.

    Returns:
        (compressed segment, CRC-32, uncompressed length) of the kept records, in their order.

    Raises:
        ValueError: naming the segment's file when its records do not match its keys.
    """
    framed = zlib.decompressobj(_RAW_DEFLATE).decompress(segment)  # a segment has no final block
    records = list(framed_records(framed, chunk_file.path))
    if len(records) != len(chunk_file.keys):
        raise ValueError(f"{chunk_file.path}: {len(records)} records for {len(chunk_file.keys)} keys")
    kept = b"".join(record for key, record in zip(chunk_file.keys, records, strict=True) if key in keep)
    compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, _RAW_DEFLATE)
    return compressor.compress(kept) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(kept), len(kept)


def commit_shard(path: str, chunk_files: Sequence[ChunkFile], keep: Collection[str]) -> int:
    """Writes one shard (a gzip file of TFRecords) from its chunks' segments.

    Args:
        path: The shard file (written whole; a retry writes it again).
        chunk_files: The shard's segments, any order (written in chunk order).
        keep: Keys of the records to write; the segments' other records are left out.

    Returns:
        The number of records written.

    Raises:
        ValueError: when a key of ``keep`` is in no segment (a segment was lost).
    """
    ordered = sorted(chunk_files, key=lambda chunk_file: chunk_file.index)
    missing = set(keep).difference(*(chunk_file.keys for chunk_file in ordered))
    if missing:
        raise ValueError(f"{path}: no segment holds the records {sorted(missing)[:5]}")
    crc32, length, written = 0, 0, 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as file:
        file.write(GZIP_HEADER)
        for chunk_file in ordered:
            kept_keys = [key for key in chunk_file.keys if key in keep]
            if not kept_keys:
                continue
            segment = read_segment(chunk_file)
            segment_crc32, segment_length = chunk_file.crc32, chunk_file.length
            if len(kept_keys) < len(chunk_file.keys):
                segment, segment_crc32, segment_length = filter_segment(chunk_file, segment, keep)
            file.write(segment)
            crc32 = crc32_combine(crc32, segment_crc32, segment_length)
            length += segment_length
            written += len(kept_keys)
        file.write(FINAL_DEFLATE_BLOCK)
        file.write(struct.pack("<II", crc32, length & 0xFFFFFFFF))
    return written

"""Shards written in segments by workers and committed: the plan, the gzip stream the commit builds
from the segments (read by gzip and tf.data), filtering, and bytes independent of the chunking."""

from __future__ import annotations

import gzip
import os
import random
import zlib
from pathlib import Path

import pytest
import tensorflow as tf

from components.ingest.shards import (
    MAX_RECORDS_PER_CHUNK,
    SegmentWriter,
    commit_shard,
    crc32_combine,
    plan_chunks,
    records_per_chunk,
    segment_path,
    shard_of_key,
)
from keras_depth.data.tfrecord_format import frame_record

KEYS = [f"synthetic_rooms/{index:05d}" for index in range(60)]


def record(key: str) -> bytes:
    """A record of varying length whose bytes name its key."""
    return key.encode() * (1 + len(key) * int(key[-2:]) % 7)


def write_segments(temp_dir: Path, keys: list[str], num_shards: int, chunk_size: int, split: str = "train"):
    """Every chunk's segment of ``split`` holding all of its keys' records."""
    chunk_files = []
    for chunk in plan_chunks(keys, num_shards, chunk_size):
        writer = SegmentWriter(split, chunk, segment_path(str(temp_dir), split, chunk.shard, chunk.index))
        for key in chunk.keys:
            writer.add(key, record(key))
        chunk_files.append(writer.close())
    return chunk_files


def test_the_plan_puts_every_key_in_one_chunk_of_its_hashed_shard_in_key_order():
    keys = random.Random(0).sample(KEYS, len(KEYS))
    chunks = plan_chunks(keys, num_shards=3, chunk_size=4)
    assert sorted(key for chunk in chunks for key in chunk.keys) == sorted(keys)
    for shard in range(3):
        shard_chunks = [chunk for chunk in chunks if chunk.shard == shard]
        assert [chunk.index for chunk in shard_chunks] == list(range(len(shard_chunks)))
        ordered = [key for chunk in shard_chunks for key in chunk.keys]
        assert ordered == sorted(key for key in keys if shard_of_key(key, 3) == shard)
        assert (
            all(len(chunk.keys) == 4 for chunk in shard_chunks[:-1]) and 1 <= len(shard_chunks[-1].keys) <= 4
        )
    assert {shard_of_key(key, 3) for key in keys} == {0, 1, 2}


def test_chunks_are_small_for_small_ingests_and_bounded_for_large_ones():
    assert records_per_chunk(1) == records_per_chunk(128) == 1
    assert records_per_chunk(1000) == 8
    assert records_per_chunk(10**6) == MAX_RECORDS_PER_CHUNK


@pytest.mark.parametrize("sizes", [(0, 5), (5, 0), (3, 7), (3_000_000, 2_500_000)])
def test_crc32_combine_gives_the_crc_of_the_concatenation(sizes):
    first, second = (os.urandom(size) for size in sizes)
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)


def test_a_committed_shard_is_one_gzip_stream_of_its_records_in_key_order(tmp_path):
    chunk_files = write_segments(tmp_path / "temp", KEYS, num_shards=2, chunk_size=4)
    for shard in range(2):
        mine = [chunk_file for chunk_file in chunk_files if chunk_file.shard == shard]
        path = tmp_path / f"shard-{shard}.tfrecord.gz"
        keys = sorted(key for chunk_file in mine for key in chunk_file.keys)
        assert commit_shard(str(path), random.Random(shard).sample(mine, len(mine)), set(keys)) == len(keys)
        assert gzip.decompress(path.read_bytes()) == b"".join(frame_record(record(key)) for key in keys)
        read = tf.data.TFRecordDataset(str(path), compression_type="GZIP").as_numpy_iterator()
        assert list(read) == [record(key) for key in keys]


def test_shard_bytes_depend_on_the_records_only_and_their_content_not_on_the_chunking(tmp_path):
    def committed(chunk_size: int) -> bytes:
        chunk_files = write_segments(
            tmp_path / f"temp-{chunk_size}", KEYS, num_shards=1, chunk_size=chunk_size
        )
        path = tmp_path / f"shard-{chunk_size}.tfrecord.gz"
        commit_shard(str(path), chunk_files, set(KEYS))
        return path.read_bytes()

    assert committed(4) == committed(4)  # deterministic: no time stamp, no randomness
    assert len({gzip.decompress(committed(size)) for size in (1, 4, 7, 100)}) == 1


def test_records_left_out_at_the_commit_are_removed_from_their_segments(tmp_path):
    chunk_files = write_segments(tmp_path / "temp", KEYS, num_shards=1, chunk_size=8)
    dropped = set(chunk_files[0].keys) | {KEYS[20], KEYS[-1]}  # a whole segment and single records
    keep = set(KEYS) - dropped
    path = tmp_path / "shard.tfrecord.gz"
    assert commit_shard(str(path), chunk_files, keep) == len(KEYS) - len(dropped)
    assert gzip.decompress(path.read_bytes()) == b"".join(frame_record(record(key)) for key in sorted(keep))


def test_an_empty_shard_is_a_valid_empty_gzip_file(tmp_path):
    path = tmp_path / "val" / "data-00000-of-00001.tfrecord.gz"
    assert commit_shard(str(path), [], set()) == 0
    assert gzip.decompress(path.read_bytes()) == b""
    assert list(tf.data.TFRecordDataset(str(path), compression_type="GZIP")) == []


def test_a_record_whose_segment_is_missing_fails_the_commit_naming_the_shard(tmp_path):
    chunk_files = write_segments(tmp_path / "temp", KEYS[:10], num_shards=1, chunk_size=5)
    path = tmp_path / "shard.tfrecord.gz"
    with pytest.raises(ValueError, match=f"{path}: no segment holds the records \\['{KEYS[0]}'"):
        commit_shard(str(path), chunk_files[1:], set(KEYS[:10]))

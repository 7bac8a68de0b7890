"""The bytes of TFRecord files of ``tf.train.Example`` records, written without TensorFlow.

Ingest workers build records with this module so that they never import TensorFlow (seconds
of start-up and hundreds of MB per worker process); training reads them with ``tf.data``.

- :func:`serialize_example` writes the protobuf wire format of a ``tf.train.Example``
  (``Example.features`` -> ``Features.feature``, a map from name to ``Feature``, whose
  ``bytes_list`` / ``float_list`` / ``int64_list`` are fields 1 / 2 / 3; repeated numbers
  packed), names in sorted order: the bytes of TensorFlow's
  ``SerializeToString(deterministic=True)``.
- :func:`frame_record` wraps one record as TFRecord files store it: uint64 length, uint32
  masked CRC-32C of the length, the data, uint32 masked CRC-32C of the data (little-endian);
  :func:`framed_records` splits framed bytes back into records.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence

import google_crc32c

# Protobuf wire types: varint and length-delimited.
_VARINT, _LENGTH_DELIMITED = 0, 2
# Field numbers of tf.train.Feature's oneof (and 1 = the value list inside each list message).
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3
_VALUES = 1
# Example.features, Features.feature (map entries), and a map entry's key and value.
_FEATURES, _FEATURE_MAP, _MAP_KEY, _MAP_VALUE = 1, 1, 1, 2
_UINT64_MASK = (1 << 64) - 1
# TFRecord framing: length (uint64) and CRC (uint32) sizes, CRC mask (TensorFlow's crc32c::Mask).
_LENGTH_BYTES, _CRC_BYTES = 8, 4
_CRC_MASK_DELTA = 0xA282EAD8
_UINT32_MASK = 0xFFFFFFFF


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int below 2**64."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def bytes_feature(values: Sequence[bytes]) -> bytes:
    """A serialized ``tf.train.Feature`` holding a ``bytes_list``."""
    return _field(_BYTES_LIST, b"".join(_field(_VALUES, value) for value in values))


def int64_feature(values: Sequence[int]) -> bytes:
    """A serialized ``tf.train.Feature`` holding an ``int64_list`` (packed; negatives as two's complement)."""
    packed = b"".join(_varint(int(value) & _UINT64_MASK) for value in values)
    return _field(_INT64_LIST, _field(_VALUES, packed) if values else b"")


def float_feature(values: Sequence[float]) -> bytes:
    """A serialized ``tf.train.Feature`` holding a ``float_list`` (packed little-endian float32)."""
    packed = struct.pack(f"<{len(values)}f", *values)
    return _field(_FLOAT_LIST, _field(_VALUES, packed) if values else b"")


def serialize_example(features: Mapping[str, bytes]) -> bytes:
    """A serialized ``tf.train.Example``.

    Args:
        features: Feature name -> serialized ``tf.train.Feature`` (:func:`bytes_feature`,
            :func:`int64_feature`, :func:`float_feature`).

    Returns:
        The bytes that TensorFlow's ``SerializeToString(deterministic=True)`` gives for the same
        example (map entries sorted by name).
    """
    entries = b"".join(
        _field(_FEATURE_MAP, _field(_MAP_KEY, name.encode("utf-8")) + _field(_MAP_VALUE, features[name]))
        for name in sorted(features, key=lambda name: name.encode("utf-8"))
    )
    return _field(_FEATURES, entries)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``: the CRC rotated right by 15 bits plus a constant."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & _UINT32_MASK


def frame_record(data: bytes) -> bytes:
    """One TFRecord record: length, its masked CRC-32C, ``data``, its masked CRC-32C."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def framed_records(data: bytes, source: str) -> Iterator[bytes]:
    """The framed records in ``data`` (uncompressed TFRecord bytes), each with its frame.

    Args:
        data: Concatenated :func:`frame_record` outputs.
        source: Where ``data`` came from, for the error message.

    Raises:
        ValueError: naming ``source`` when the data ends inside a record or a checksum is wrong.
    """
    offset = 0
    while offset < len(data):
        header_end = offset + _LENGTH_BYTES + _CRC_BYTES
        length_bytes = data[offset : offset + _LENGTH_BYTES]
        (length,) = struct.unpack("<Q", length_bytes) if len(length_bytes) == _LENGTH_BYTES else (None,)
        end = header_end + (length or 0) + _CRC_BYTES
        if length is None or end > len(data):
            raise ValueError(f"{source}: TFRecord data ends inside the record at byte {offset}")
        (length_crc,) = struct.unpack("<I", data[offset + _LENGTH_BYTES : header_end])
        (data_crc,) = struct.unpack("<I", data[end - _CRC_BYTES : end])
        if length_crc != masked_crc32c(length_bytes) or data_crc != masked_crc32c(
            data[header_end : end - _CRC_BYTES]
        ):
            raise ValueError(f"{source}: wrong TFRecord checksum in the record at byte {offset}")
        yield data[offset:end]
        offset = end

"""A prepared TensorFlow Datasets dataset with an image and a depth feature (source ``tfds``).

For example TFDS's ``nyu_depth_v2``: ``image`` (480, 640, 3) uint8 and ``depth``
(480, 640) float16 metres, splits ``train`` (47584 frames of the raw sequences) and
``validation`` (the 654 official test frames). Nothing is downloaded: the dataset
must be prepared in ``data_dir`` (``tfds build <name> --data_dir=<dir>``), and the
error says so, naming the directory, when it is not.

Keys are ``tfds/<dataset>/<its split>/<index>``, the example's position in the split
as TFDS reads it unshuffled (shards in order, records in file order): a prepared
dataset never changes, so neither do the keys. Records come with their split of
ours (``split_map``) as the official split; TFDS datasets carry no scene, so each
record is its own group.

A record is read by its index: TFRecord shards are indexed once per worker (the
offset of every record, from the record headers; no data is read) and the record is
read at its offset; ``array_record`` datasets are read through TFDS's own random
access (``as_data_source``). Images are decoded by :mod:`keras_depth.sources.decode`.
"""

from __future__ import annotations

import bisect
import itertools
import os
import struct
from collections.abc import Callable

import numpy as np

from keras_depth.config import DEFAULT_MAX_IMAGE_PIXELS, TfdsSourceConfig
from keras_depth.data.layout import SPLITS
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.decode import decode_rgb
from keras_depth.sources.manifest import files_manifest

SOURCE_NAME = "tfds"
TFRECORD, ARRAY_RECORD = "tfrecord", "array_record"
# TFRecord framing: uint64 length, uint32 length CRC, data, uint32 data CRC.
_LENGTH_BYTES, _CRC_BYTES = 8, 4
INDEX_DIGITS = 6


def prepared_builder(cfg: TfdsSourceConfig):
    """The TFDS builder of ``cfg.name`` in ``cfg.data_dir``, which must be prepared.

    Raises:
        FileNotFoundError: naming the directory looked in and the command that prepares
            the dataset, when it is not prepared there.
    """
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(cfg.data_dir) if cfg.data_dir else None
    looked_in = os.path.join(data_dir or tfds.core.constants.DATA_DIR, cfg.name.split(":")[0])
    builder = None
    try:
        builder = tfds.builder(cfg.name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        pass
    if builder is not None and builder.is_prepared():
        return builder
    if builder is not None:
        looked_in = str(builder.data_dir)
    command = f"tfds build {cfg.name.split(':')[0]}" + (f" --data_dir={data_dir}" if data_dir else "")
    raise FileNotFoundError(
        f"TFDS dataset {cfg.name!r} (tfds.name) is not prepared in {looked_in}; nothing is downloaded "
        f"during ingest: prepare it first with `{command}`, or set tfds.data_dir to where it is prepared"
    )


def _scan_offsets(path: str, expected: int) -> list[int]:
    """Byte offsets of the records of a TFRecord file, read from their length headers.

    Raises:
        RecordError: naming the file when it is truncated or holds another number of
            records than ``expected`` (from ``dataset_info.json``).
    """
    import tensorflow as tf

    offsets, position = [], 0
    with tf.io.gfile.GFile(path, "rb") as file:
        size = file.size()
        while position < size:
            file.seek(position)
            header = file.read(_LENGTH_BYTES)
            if len(header) < _LENGTH_BYTES:
                raise RecordError(f"TFRecord shard {path} is truncated at byte {position}")
            offsets.append(position)
            (length,) = struct.unpack("<Q", header)
            position += _LENGTH_BYTES + _CRC_BYTES + length + _CRC_BYTES
    if position != size or len(offsets) != expected:
        raise RecordError(
            f"TFRecord shard {path} holds {len(offsets)} records ending at byte {position} of {size}; "
            f"dataset_info.json says {expected}"
        )
    return offsets


class _TfrecordSplit:
    """Random access by index to the records of one split's TFRecord shards (in one process)."""

    def __init__(self, paths: list[str], lengths: list[int]) -> None:
        self.paths, self.lengths = paths, lengths
        self.starts = [0, *itertools.accumulate(lengths)]
        self.offsets: dict[int, list[int]] = {}

    def read(self, index: int) -> bytes:
        shard = bisect.bisect_right(self.starts, index) - 1
        if shard not in self.offsets:
            self.offsets[shard] = _scan_offsets(self.paths[shard], self.lengths[shard])
        import tensorflow as tf

        with tf.io.gfile.GFile(self.paths[shard], "rb") as file:
            file.seek(self.offsets[shard][index - self.starts[shard]])
            (length,) = struct.unpack("<Q", file.read(_LENGTH_BYTES))
            file.seek(_CRC_BYTES, 1)
            data = file.read(length)
        if len(data) != length:
            raise RecordError(f"TFRecord shard {self.paths[shard]} is truncated in record {index}")
        return data


class TfdsSource(DepthSource):
    """The examples of the mapped splits of a prepared TFDS dataset.

    Args:
        cfg: Dataset name, data directory, feature names, depth scale and split map.
        max_image_pixels: Encoded images with more pixels (from the header) are dead-lettered.

    Raises:
        FileNotFoundError: when the dataset is not prepared (see :func:`prepared_builder`).
        ValueError: naming the field when a feature or split does not exist, the split map
            is empty or maps two splits to one, or the file format is not supported.
    """

    name = SOURCE_NAME

    def __init__(self, cfg: TfdsSourceConfig, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        if not cfg.depth_scale > 0:
            raise ValueError(f"tfds.depth_scale must be > 0 (stored value per metre), got {cfg.depth_scale}")
        builder = prepared_builder(cfg)
        info = builder.info
        for field in ("image_feature", "depth_feature"):
            if getattr(cfg, field) not in info.features:
                raise ValueError(
                    f"tfds.{field} {getattr(cfg, field)!r} is not a feature of {cfg.name} "
                    f"(features: {', '.join(info.features)})"
                )
        ours = {split: getattr(cfg.split_map, split) for split in SPLITS if getattr(cfg.split_map, split)}
        for split, theirs in ours.items():
            if theirs not in info.splits:
                raise ValueError(
                    f"tfds.split_map.{split} {theirs!r} is not a split of {cfg.name} "
                    f"(splits: {', '.join(info.splits)})"
                )
        if not ours or len(set(ours.values())) != len(ours):
            raise ValueError(
                f"tfds.split_map must map train, val or test to distinct splits of {cfg.name}, got {ours}"
            )
        self.file_format = info.file_format.value
        if self.file_format not in (TFRECORD, ARRAY_RECORD):
            raise ValueError(
                f"{builder.data_dir}: file format {self.file_format!r} is not supported (tfrecord, array_record)"
            )
        self.cfg = cfg
        self.max_image_pixels = max_image_pixels
        self.dataset_dir = str(builder.data_dir)
        config = builder.builder_config
        self.dataset = builder.name + (f"/{config.name}" if config else "")
        self.official = {theirs: split for split, theirs in ours.items()}
        self.shards = {
            theirs: (
                [str(path) for path in info.splits[theirs].filepaths],
                list(info.splits[theirs].shard_lengths),
            )
            for theirs in self.official
        }
        self._read: Callable[[str, int], dict] | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_read"] = None  # each process builds its own reader
        return state

    def list_keys(self) -> list[str]:
        """``tfds/<dataset>/<split>/<index>`` of every example of the mapped splits."""
        return [
            self._key(theirs, index)
            for theirs, (_, lengths) in self.shards.items()
            for index in range(sum(lengths))
        ]

    def _key(self, theirs: str, index: int) -> str:
        return f"{SOURCE_NAME}/{self.dataset}/{theirs}/{index:0{INDEX_DIGITS}d}"

    def manifest(self) -> dict:
        """Names, sizes and mtimes of the dataset's files (``dataset_info.json`` and the shards)."""
        paths = [os.path.join(self.dataset_dir, "dataset_info.json")]
        paths += [path for shard_paths, _ in self.shards.values() for path in shard_paths]
        return files_manifest(paths, self.dataset_dir)

    def _parse(self, key: str) -> tuple[str, int]:
        head, _, index = key.rpartition("/")
        prefix = f"{SOURCE_NAME}/{self.dataset}/"
        theirs = head.removeprefix(prefix)
        if not head.startswith(prefix) or theirs not in self.shards or not index.isdigit():
            raise RecordError(f"{key!r} is not a key of the {SOURCE_NAME} source for {self.dataset}")
        if int(index) >= sum(self.shards[theirs][1]):
            raise RecordError(
                f"{key!r}: split {theirs} of {self.dataset} has {sum(self.shards[theirs][1])} examples"
            )
        return theirs, int(index)

    def source_path(self, key: str) -> str:
        """The shard holding the example, with the example's index in the split."""
        theirs, index = self._parse(key)
        paths, lengths = self.shards[theirs]
        shard = bisect.bisect_right(list(itertools.accumulate(lengths)), index)
        return f"{paths[shard]}#{index}"

    def _reader(self) -> Callable[[str, int], dict]:
        """This process's reader: (split, index) -> the example's features as numpy values,
        an ``Image`` image feature left encoded (bytes, for the header-checked decoder)."""
        if self._read is not None:
            return self._read
        import tensorflow_datasets as tfds

        builder = tfds.builder_from_directory(self.dataset_dir)
        features = builder.info.features
        skip = isinstance(features[self.cfg.image_feature], tfds.features.Image)
        decoders = {self.cfg.image_feature: tfds.decode.SkipDecoding()} if skip else None
        if self.file_format == TFRECORD:
            splits = {name: _TfrecordSplit(*self.shards[name]) for name in self.shards}

            def read(name: str, index: int) -> dict:
                return features.deserialize_example_np(splits[name].read(index), decoders=decoders)

        else:
            sources = {name: builder.as_data_source(name, decoders=decoders) for name in self.shards}

            def read(name: str, index: int) -> dict:
                return sources[name][index]

        self._read = read
        return read

    def load(self, key: str) -> RawRecord:
        """Reads one example: RGB (H, W, 3) uint8 and depth (H, W) float32 metres.

        Raises:
            RecordError: naming the shard when the example cannot be read or decoded, or
                its image or depth has the wrong shape or type.
        """
        theirs, index = self._parse(key)
        where = self.source_path(key)
        try:
            example = self._reader()(theirs, index)
        except RecordError:
            raise
        except Exception as err:  # TFDS and protobuf raise many types on malformed records
            raise RecordError(f"{where}: cannot read the example ({type(err).__name__}: {err})") from err
        image = example[self.cfg.image_feature]
        if isinstance(image, bytes):
            image = decode_rgb(image, self.max_image_pixels, what=f"{where} {self.cfg.image_feature}").image
        depth = np.asarray(example[self.cfg.depth_feature])
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[..., 0]
        if (
            image.dtype != np.uint8
            or image.ndim != 3
            or image.shape[2] != 3
            or depth.shape != image.shape[:2]
        ):
            raise RecordError(
                f"{where}: expected {self.cfg.image_feature} uint8 (H, W, 3) and {self.cfg.depth_feature} "
                f"(H, W) or (H, W, 1), got {image.dtype} {image.shape} and {depth.dtype} {depth.shape}"
            )
        return RawRecord(
            key=key,
            source_path=where,
            image=image,
            depth=depth.astype(np.float32) / np.float32(self.cfg.depth_scale),
            official_split=self.official[theirs],
        )

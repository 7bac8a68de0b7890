"""The tf.data reader: gzip TFRecord shards -> batches of (image, depth) for Keras.

Records are read from shards ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz`` (see
:mod:`keras_depth.data.schema`). Parsing is batched: ``tf.io.parse_example`` turns
a whole batch of serialized records into feature tensors in one vectorised op
(the "vectorized mapping" of the tf.data performance guide). PNG decoding cannot
be vectorised over images of possibly different sizes, so the batch is then
unbatched and each example is decoded and augmented (or centre-cropped) in a
parallel map before being batched again.

Randomness: every training example gets its own stateless augmentation seed from
``tf.data.Dataset.random``. With ``DataConfig.deterministic`` the file order,
shuffle and seeds all derive from ``DataConfig.seed``, parallel stages keep their
order, and iterating the dataset twice (or building it twice) yields identical
batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from keras_depth.augment import augment_pair, center_crop_pair, resize_depth_nearest
from keras_depth.data.schema import FEATURE_SPEC, decode_features

COMPRESSION = "GZIP"
SEED_SHAPE = 2  # a stateless random seed is an int64 pair
EVAL_PARALLEL_READS = 4  # fixed (not autotuned) so the evaluation order is the same on every machine


def list_shards(pattern: str | Sequence[str]) -> list[str]:
    """The sorted, de-duplicated files matching one glob or a list of globs.

    Raises:
        FileNotFoundError: naming the pattern when nothing matches.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    files = sorted({path for glob in patterns for path in tf.io.gfile.glob(glob)})
    if not files:
        raise FileNotFoundError(f"no TFRecord shards match {pattern!r}")
    return files


def count_records(pattern: str | Sequence[str]) -> int:
    """The number of examples in the gzip TFRecord shards matching ``pattern``."""
    records = tf.data.TFRecordDataset(list_shards(pattern), compression_type=COMPRESSION)
    return int(records.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def _parse_batches(records: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Serialized records -> one decoded example dict per element (see :func:`decode_features`).

    Parses ``batch_size`` records per ``tf.io.parse_example`` call, then decodes
    each example in a parallel map.
    """
    features = records.batch(batch_size).map(
        lambda serialized: tf.io.parse_example(serialized, FEATURE_SPEC),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return features.unbatch().map(decode_features, num_parallel_calls=tf.data.AUTOTUNE)


def make_dataset(
    pattern: str | Sequence[str], cfg: Any, training: bool, batch_size: int | None = None
) -> tf.data.Dataset:
    """Batches of network inputs and loss targets read from TFRecord shards.

    Training: shard order and records are shuffled, the data repeats forever,
    every example is augmented (:func:`keras_depth.augment.augment_pair`) and
    partial batches are dropped. Evaluation: one pass over the shards (read
    interleaved, in a fixed order when deterministic), each example centre-cropped
    at scale 1, the last batch may be smaller.

    Args:
        pattern: Glob, or list of globs, of gzip TFRecord shards.
        cfg: Any config with sections ``model`` (:class:`ModelConfig`: input and
            output sizes), ``data`` (:class:`DataConfig`) and ``augment``
            (:class:`AugmentConfig`), such as :class:`keras_depth.config.DepthConfig`.
        training: Augmented, shuffled and repeated batches when True.
        batch_size: Images per batch; overrides ``cfg.data.batch_size`` (which is per replica: the
            train stage passes the global batch, per-replica size x replicas).

    Returns:
        A dataset of ``(image, depth)``: image float32 [B, input_height,
        input_width, 3] RGB in 0..255; depth float32 [B, output_height,
        output_width, 1] metres, 0 = invalid, nearest-downsampled from the crop.

    Raises:
        FileNotFoundError: naming the pattern when no shard matches.
    """
    model, data = cfg.model, cfg.data
    batch_size = batch_size or data.batch_size
    seed = data.seed if data.deterministic else None
    shards = list_shards(pattern)
    files = tf.data.Dataset.from_tensor_slices(shards)
    if training:
        # Repeat before shuffling: every epoch gets a new order while the whole stream
        # stays a fixed function of the seed, so a second iterator replays it.
        reshuffle = not data.deterministic
        files = files.repeat().shuffle(len(shards), seed=seed, reshuffle_each_iteration=reshuffle)
    records = tf.data.TFRecordDataset(
        files, compression_type=COMPRESSION, num_parallel_reads=data.num_parallel_reads
    )
    if training:
        records = records.shuffle(data.shuffle_buffer, seed=seed, reshuffle_each_iteration=reshuffle)
    examples = _parse_batches(records, batch_size)
    if training:
        examples = tf.data.Dataset.zip(examples, tf.data.Dataset.random(seed=seed).batch(SEED_SHAPE))

    def crop(example, example_seed=None):
        image = tf.cast(example["image"], tf.float32)
        height, width = model.input_height, model.input_width
        if training:
            return augment_pair(image, example["depth"], cfg.augment, height, width, example_seed)
        return center_crop_pair(image, example["depth"], height, width)

    batches = examples.map(crop, num_parallel_calls=tf.data.AUTOTUNE).batch(
        batch_size, drop_remainder=training
    )
    batches = batches.map(
        lambda image, depth: (image, resize_depth_nearest(depth, model.output_height, model.output_width)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    options = tf.data.Options()
    options.deterministic = data.deterministic
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)


def read_examples(pattern: str | Sequence[str], parse_batch_size: int) -> tf.data.Dataset:
    """Every decoded example of the shards, one per element, in a fixed order.

    Args:
        pattern: Glob, or list of globs, of gzip TFRecord shards.
        parse_batch_size: Records parsed per ``tf.io.parse_example`` call.

    Returns:
        A dataset of the dicts of :func:`keras_depth.data.schema.decode_features` (stored ``image``
        uint8 [H, W, 3] and ``depth`` [H, W, 1], ``key``, ``native_depth`` [native H, native W, 1]
        metres and ``native_frame_box`` [4], ...), unbatched: examples may differ in size.

    Raises:
        FileNotFoundError: naming the pattern when no shard matches.
    """
    records = tf.data.TFRecordDataset(
        list_shards(pattern), compression_type=COMPRESSION, num_parallel_reads=EVAL_PARALLEL_READS
    )
    return _parse_batches(records, parse_batch_size)


def make_eval_dataset(pattern: str | Sequence[str], batch_size: int) -> tf.data.Dataset:
    """Full-resolution examples for scoring at the stored ground-truth resolution.

    One pass over the shards in a fixed order, no cropping or resizing. A batch
    stacks examples, so every example of a split must have the same stored size
    (ingest stores a split at one size); use ``batch_size=1`` otherwise.

    Args:
        pattern: Glob, or list of globs, of gzip TFRecord shards.
        batch_size: Examples per batch; the last batch may be smaller.

    Returns:
        A dataset of dicts: ``image`` float32 [B, H, W, 3] RGB in 0..255,
        ``depth`` float32 [B, H, W, 1] metres (0 = invalid) and ``key`` string [B].

    Raises:
        FileNotFoundError: naming the pattern when no shard matches.
    """
    examples = read_examples(pattern, batch_size).map(
        lambda example: {
            "image": tf.cast(example["image"], tf.float32),
            "depth": example["depth"],
            "key": example["key"],
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)

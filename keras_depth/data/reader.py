"""The tf.data reader: gzip TFRecord shards -> batches of (image, depth) for Keras.

Records are read from shards ``<split>/data-SSSSS-of-NNNNN.tfrecord.gz`` (see
:mod:`keras_depth.data.schema`). Parsing is batched: ``tf.io.parse_example`` turns
a whole batch of serialized records into feature tensors in one vectorised op
(the "vectorized mapping" of the tf.data performance guide). PNG decoding cannot
be vectorised, so each example is then decoded in a parallel map. The decoded
examples are batched as stored (uint8 RGB and float32 depth at the stored size:
ingest stores a split at one size) and every batch is augmented, or centre-cropped,
in one map call (:mod:`keras_depth.augment`): one warp per batch, not one per example.

Caching: reading and decoding cost more CPU than augmenting. When the decoded
training split fits ``DataConfig.cache_max_mb`` (:func:`fits_cache`), the decoded
examples are kept in memory after the first pass (``Dataset.cache``) and every later
epoch only shuffles, batches and augments them; a larger split is read and decoded
from the shards again every epoch.

Randomness: every training batch gets its own stateless augmentation seed from
``tf.data.Dataset.random`` (each example of the batch its own draws from it). With
``DataConfig.deterministic`` the file order, shuffle and seeds all derive from
``DataConfig.seed``, parallel stages keep their order, and iterating the dataset
twice (or building it twice) yields identical batches. Cached and streamed training
read the same examples in different orders: the cache holds the split in shard order
and shuffles it with a buffer of the whole split, streaming shuffles the shard order
and a buffer of ``DataConfig.shuffle_buffer`` records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from keras_depth.augment import augment_batch, center_crop_targets
from keras_depth.data.schema import FEATURE_SPEC, decode_features, parse_example

COMPRESSION = "GZIP"
SEED_SHAPE = 2  # a stateless random seed is an int64 pair
EVAL_PARALLEL_READS = 4  # fixed (not autotuned) so the evaluation order is the same on every machine
MEGABYTE = 10**6  # the unit of DataConfig.cache_max_mb
RGB_BYTES = 3  # a decoded pixel: uint8 R, G and B ...
DEPTH_BYTES = 4  # ... and float32 depth in metres

log = logging.getLogger(__name__)


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


def count_records(pattern: str | Sequence[str], stop_after: int | None = None) -> int:
    """The number of examples in the gzip TFRecord shards matching ``pattern``.

    Args:
        pattern: Glob, or list of globs, of gzip TFRecord shards.
        stop_after: Stop reading after this many records (the result is then
            ``min(count, stop_after)``); None reads every shard to the end.
    """
    records = tf.data.TFRecordDataset(list_shards(pattern), compression_type=COMPRESSION)
    if stop_after is not None:
        records = records.take(stop_after)
    return int(records.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def decoded_example_bytes(height: int, width: int) -> int:
    """Memory of one decoded example: uint8 RGB [height, width, 3] plus float32 depth [height, width, 1]."""
    return height * width * (RGB_BYTES + DEPTH_BYTES)


def fits_cache(num_records: int, height: int, width: int, cache_max_mb: float) -> bool:
    """Whether ``num_records`` decoded examples stored at ``height x width`` fit in ``cache_max_mb``.

    Args:
        num_records: Examples in the split.
        height: Stored height in pixels.
        width: Stored width in pixels.
        cache_max_mb: The budget in megabytes (10^6 bytes); 0 caches nothing.

    Returns:
        True when ``num_records x decoded_example_bytes(height, width) <= cache_max_mb x 10^6``.
    """
    return num_records * decoded_example_bytes(height, width) <= cache_max_mb * MEGABYTE


def stored_size(pattern: str | Sequence[str]) -> tuple[int, int]:
    """``(height, width)`` in pixels of the first example in the shards matching ``pattern``.

    Raises:
        FileNotFoundError: naming the pattern when no shard matches.
        ValueError: naming the pattern when the shards hold no record.
    """
    records = tf.data.TFRecordDataset(list_shards(pattern), compression_type=COMPRESSION)
    for record in records.take(1):
        height, width, _ = parse_example(record)["image"].shape
        return height, width
    raise ValueError(f"the TFRecord shards matching {pattern!r} hold no record")


def _shuffle_seed(data: Any) -> int | None:
    """``DataConfig.seed`` when deterministic, else None (a fresh order every run)."""
    return data.seed if data.deterministic else None


def _read_shards(files: Any, data: Any) -> tf.data.Dataset:
    """The serialized records of gzip TFRecord ``files`` (paths, or a dataset of paths).

    ``data.num_parallel_reads`` shards are read at a time.
    """
    return tf.data.TFRecordDataset(
        files, compression_type=COMPRESSION, num_parallel_reads=data.num_parallel_reads
    )


def _parse_batches(
    records: tf.data.Dataset, batch_size: int, decode: Callable[[dict], Any] = decode_features
) -> tf.data.Dataset:
    """Serialized records -> one decoded example per element.

    Parses ``batch_size`` records per ``tf.io.parse_example`` call, then decodes
    each example in a parallel map with ``decode`` (one example's parsed features
    -> its element; default: the dict of :func:`decode_features`).
    """
    features = records.batch(batch_size).map(
        lambda serialized: tf.io.parse_example(serialized, FEATURE_SPEC),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return features.unbatch().map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def _stored_pairs(
    records: tf.data.Dataset, batch_size: int, height: int, width: int, pattern: Any
) -> tf.data.Dataset:
    """Serialized records -> ``(image, depth)`` as stored: uint8 [height, width, 3], float32 [height, width, 1].

    Raises (when iterated):
        tf.errors.InvalidArgumentError: naming the pattern and the example's key when an example is
            not stored at ``height x width``.
    """

    def decode(features: dict) -> tuple[tf.Tensor, tf.Tensor]:
        example = decode_features(features)
        size = tf.shape(example["image"])[:2]
        same_size = tf.debugging.Assert(
            tf.reduce_all(tf.equal(size, [height, width])),
            [
                f"{pattern}: every example must be stored at {height}x{width} (the first record's size; "
                "ingest stores a split at one size), but this one (key, height and width) is not:",
                example["key"],
                size,
            ],
        )
        with tf.control_dependencies([same_size]):
            image = tf.ensure_shape(example["image"], [height, width, 3])
            depth = tf.ensure_shape(example["depth"], [height, width, 1])
        return image, depth

    return _parse_batches(records, batch_size, decode)


def _training_pairs(
    shards: list[str],
    data: Any,
    height: int,
    width: int,
    batch_size: int,
    num_records: int | None,
    pattern: Any,
) -> tf.data.Dataset:
    """The training stream of stored ``(image, depth)`` pairs: shuffled, repeated forever.

    Cached in memory when the decoded split fits ``data.cache_max_mb`` (then shuffled with a buffer
    of the whole split), else streamed from the shards (shard order and a buffer of
    ``data.shuffle_buffer`` records shuffled).
    """
    seed = _shuffle_seed(data)
    # Repeat before shuffling: every epoch gets a new order while the whole stream
    # stays a fixed function of the seed, so a second iterator replays it.
    reshuffle = not data.deterministic
    if num_records is None:
        cacheable = int(data.cache_max_mb * MEGABYTE // decoded_example_bytes(height, width))
        num_records = count_records(pattern, stop_after=cacheable + 1)
    if fits_cache(num_records, height, width, data.cache_max_mb):
        log.info(
            "caching %d decoded examples of %dx%d in memory (%.0f MB of data.cache_max_mb=%g)",
            num_records,
            height,
            width,
            num_records * decoded_example_bytes(height, width) / MEGABYTE,
            data.cache_max_mb,
        )
        cached = _stored_pairs(_read_shards(shards, data), batch_size, height, width, pattern).cache()
        return cached.repeat().shuffle(num_records, seed=seed, reshuffle_each_iteration=reshuffle)
    log.info(
        "reading and decoding the training shards every epoch: decoded, the split needs more than "
        "data.cache_max_mb=%g MB",
        data.cache_max_mb,
    )
    files = tf.data.Dataset.from_tensor_slices(shards).repeat()
    files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=reshuffle)
    records = _read_shards(files, data).shuffle(
        data.shuffle_buffer, seed=seed, reshuffle_each_iteration=reshuffle
    )
    return _stored_pairs(records, batch_size, height, width, pattern)


def make_dataset(
    pattern: str | Sequence[str],
    cfg: Any,
    training: bool,
    batch_size: int | None = None,
    num_records: int | None = None,
) -> tf.data.Dataset:
    """Batches of network inputs and loss targets read from TFRecord shards.

    Training: records are shuffled, the data repeats forever, every batch is
    augmented (:func:`keras_depth.augment.augment_batch`) and partial batches are
    dropped; the decoded examples are cached in memory when they fit
    ``cfg.data.cache_max_mb``. Evaluation: one pass over the shards (read
    interleaved, in a fixed order when deterministic), each example centre-cropped
    at scale 1, the last batch may be smaller.

    Args:
        pattern: Glob, or list of globs, of gzip TFRecord shards. Every example must be
            stored at one size (ingest stores a split at ``storage_height x storage_width``).
        cfg: Any config with sections ``model`` (:class:`ModelConfig`: input and
            output sizes), ``data`` (:class:`DataConfig`) and ``augment``
            (:class:`AugmentConfig`), such as :class:`keras_depth.config.DepthConfig`.
        training: Augmented, shuffled and repeated batches when True.
        batch_size: Images per batch; overrides ``cfg.data.batch_size`` (which is per replica: the
            train stage passes the global batch, per-replica size x replicas).
        num_records: Examples in the shards when known (the train stage passes ``stats.json``'s
            count); None counts them when training, reading at most as many records as fit
            ``cfg.data.cache_max_mb`` (plus one). Only decides whether to cache.

    Returns:
        A dataset of ``(image, depth)``: image float32 [B, input_height,
        input_width, 3] RGB in 0..255; depth float32 [B, output_height,
        output_width, 1] metres, 0 = invalid, nearest-downsampled from the crop.

    Raises:
        FileNotFoundError: naming the pattern when no shard matches.
        ValueError: naming the pattern when the shards hold no record.
    """
    model, data = cfg.model, cfg.data
    batch_size = batch_size or data.batch_size
    shards = list_shards(pattern)
    height, width = stored_size(pattern)
    input_size = (model.input_height, model.input_width)
    output_size = (model.output_height, model.output_width)
    if training:
        pairs = _training_pairs(shards, data, height, width, batch_size, num_records, pattern)
        seeds = tf.data.Dataset.random(seed=_shuffle_seed(data)).batch(SEED_SHAPE)
        batches = tf.data.Dataset.zip(pairs.batch(batch_size, drop_remainder=True), seeds).map(
            lambda pair, seed: augment_batch(*pair, cfg.augment, input_size, output_size, seed),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        pairs = _stored_pairs(_read_shards(shards, data), batch_size, height, width, pattern)
        batches = pairs.batch(batch_size).map(
            lambda images, depths: center_crop_targets(images, depths, input_size, output_size),
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

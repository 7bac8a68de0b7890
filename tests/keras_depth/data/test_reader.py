"""Tests of the tf.data reader on tiny gzip TFRecord shards in the real shard layout."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from keras_depth.augment import center_crop_pair, resize_depth_nearest
from keras_depth.config import AugmentConfig, DataConfig, DepthConfig, ModelConfig
from keras_depth.config_checks import ConfigValueError
from keras_depth.data import make_dataset
from keras_depth.data.reader import (
    count_records,
    decoded_example_bytes,
    fits_cache,
    make_eval_dataset,
    read_examples,
)
from keras_depth.data.schema import DepthExample, encode_example

HEIGHT, WIDTH = 24, 32  # stored size
MODEL = ModelConfig(input_height=20, input_width=28, output_height=5, output_width=7)
SHARD_SIZES = (3, 2)
NUM_EXAMPLES = sum(SHARD_SIZES)
BATCH = 2


def _examples() -> list[DepthExample]:
    rng = np.random.default_rng(0)
    examples = []
    for index in range(NUM_EXAMPLES):
        depth = rng.uniform(0.5, 9.5, (HEIGHT, WIDTH)).astype(np.float32)
        depth[rng.random((HEIGHT, WIDTH)) < 0.2] = 0.0
        image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        examples.append(DepthExample(image=image, depth=depth, key=f"unit/{index}", source="unit"))
    return examples


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[str, dict[str, DepthExample]]:
    """Glob of two gzip shards ``train/data-SSSSS-of-00002.tfrecord.gz`` and the examples by key."""
    split = tmp_path_factory.mktemp("records") / "train"
    split.mkdir()
    examples = iter(_examples())
    by_key = {}
    for shard, size in enumerate(SHARD_SIZES):
        path = split / f"data-{shard:05d}-of-{len(SHARD_SIZES):05d}.tfrecord.gz"
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for _ in range(size):
                example = next(examples)
                by_key[example.key] = example
                writer.write(encode_example(example))
    return str(split / "data-*-of-*.tfrecord.gz"), by_key


def _config(augment: bool = True, **data) -> DepthConfig:
    defaults = {"batch_size": BATCH, "shuffle_buffer": 8, "num_parallel_reads": 2, "deterministic": True}
    return DepthConfig(
        model=MODEL, data=DataConfig(**{**defaults, **data}), augment=AugmentConfig(enabled=augment)
    )


def _take(dataset: tf.data.Dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(image.numpy(), depth.numpy()) for image, depth in dataset.take(count)]


def test_training_batches_have_the_network_shapes(shards):
    pattern, _ = shards
    batches = _take(make_dataset(pattern, _config(), training=True), 4)  # 8 > 5 examples: repeats
    assert len(batches) == 4
    for image, depth in batches:
        assert image.dtype == np.float32 and image.shape == (BATCH, MODEL.input_height, MODEL.input_width, 3)
        assert depth.dtype == np.float32 and depth.shape == (
            BATCH,
            MODEL.output_height,
            MODEL.output_width,
            1,
        )
        assert 0.0 <= image.min() and image.max() <= 255.0
        assert depth.min() >= 0.0 and (depth > 0).any()


def test_batch_size_argument_overrides_the_config(shards):
    pattern, _ = shards
    image, depth = next(iter(make_dataset(pattern, _config(), training=True, batch_size=4)))
    assert image.shape[0] == depth.shape[0] == 4


def _centre_crops(by_key: dict[str, DepthExample]) -> dict[bytes, tuple[str, np.ndarray]]:
    """Each example's network input at scale 1 (its bytes) -> its key and depth target."""
    expected = {}
    for example in by_key.values():
        image, depth = center_crop_pair(
            example.image.astype(np.float32), example.depth[..., None], MODEL.input_height, MODEL.input_width
        )
        target = resize_depth_nearest(depth, MODEL.output_height, MODEL.output_width)
        expected[image.numpy().tobytes()] = (example.key, target.numpy())
    return expected


def _keys_of_centre_crops(batches, by_key: dict[str, DepthExample]) -> list[str]:
    """The key of every example in ``batches`` of centre crops, checking its depth target."""
    expected = _centre_crops(by_key)
    keys = []
    for images, depths in batches:
        for image, depth in zip(images, depths, strict=True):
            key, target = expected[image.tobytes()]
            np.testing.assert_array_equal(depth, target)
            keys.append(key)
    return keys


def test_evaluation_is_one_pass_of_exact_centre_crops(shards):
    pattern, by_key = shards
    batches = _take(make_dataset(pattern, _config(), training=False), NUM_EXAMPLES)
    assert [len(image) for image, _ in batches] == [2, 2, 1]  # the partial batch is kept
    assert sorted(_keys_of_centre_crops(batches, by_key)) == sorted(by_key)


# The default budget caches the tiny split; 0 streams it from the shards every epoch.
CACHED, STREAMED = DataConfig().cache_max_mb, 0.0


@pytest.mark.parametrize("cache_max_mb", [CACHED, STREAMED])
def test_deterministic_mode_repeats_identical_batches(shards, cache_max_mb):
    pattern, _ = shards

    def config(seed):
        return _config(seed=seed, cache_max_mb=cache_max_mb)

    dataset = make_dataset(pattern, config(5), training=True)
    first = _take(dataset, 3)  # 6 > 5 examples: crosses an epoch boundary
    for again in (_take(dataset, 3), _take(make_dataset(pattern, config(5), training=True), 3)):
        for (image, depth), (image_again, depth_again) in zip(first, again, strict=True):
            np.testing.assert_array_equal(image, image_again)
            np.testing.assert_array_equal(depth, depth_again)

    other = _take(make_dataset(pattern, config(6), training=True), 3)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_cached_and_streamed_training_read_the_same_examples(shards):
    pattern, by_key = shards
    epochs = 4
    keys = {}
    for label, cache_max_mb in (("cached", CACHED), ("streamed", STREAMED)):
        config = _config(augment=False, seed=3, cache_max_mb=cache_max_mb)  # centre crops name examples
        batches = _take(make_dataset(pattern, config, training=True), epochs * NUM_EXAMPLES // BATCH)
        keys[label] = _keys_of_centre_crops(batches, by_key)  # also checks every depth target
    assert set(keys["cached"]) == set(keys["streamed"]) == set(by_key)


def test_cache_budget_counts_decoded_image_and_depth_bytes():
    assert decoded_example_bytes(120, 160) == 120 * 160 * (3 + 4)  # uint8 RGB + float32 depth
    split_mb = NUM_EXAMPLES * decoded_example_bytes(HEIGHT, WIDTH) / 1e6
    assert fits_cache(NUM_EXAMPLES, HEIGHT, WIDTH, split_mb)
    assert not fits_cache(NUM_EXAMPLES + 1, HEIGHT, WIDTH, split_mb)
    assert not fits_cache(1, HEIGHT, WIDTH, 0.0)


@pytest.mark.parametrize(
    "cache_max_mb, num_records, cached",
    [
        (CACHED, None, True),  # counted: 5 records fit
        (NUM_EXAMPLES * decoded_example_bytes(HEIGHT, WIDTH) / 1e6, None, True),  # exactly fit
        (NUM_EXAMPLES * decoded_example_bytes(HEIGHT, WIDTH) / 1e6 * 0.99, None, False),
        (CACHED, 10**6, False),  # the count given (a NYU-size split) does not fit
        (STREAMED, None, False),
    ],
)
def test_training_caches_the_decoded_split_only_within_the_budget(
    shards, caplog, cache_max_mb, num_records, cached
):
    pattern, _ = shards
    config = _config(cache_max_mb=cache_max_mb)
    with caplog.at_level(logging.INFO, logger="keras_depth.data.reader"):
        dataset = make_dataset(pattern, config, training=True, num_records=num_records)
    assert ("caching 5 decoded examples of 24x32" in caplog.text) == cached
    assert len(_take(dataset, 3)) == 3


def test_data_config_rejects_a_negative_cache_budget():
    with pytest.raises(ConfigValueError, match="cache_max_mb"):
        DataConfig(cache_max_mb=-1.0).validate()


def test_examples_of_another_stored_size_are_an_error_naming_the_pattern(tmp_path):
    examples = _examples()[:2]
    examples[1] = DepthExample(
        image=examples[1].image[:-2], depth=examples[1].depth[:-2], key="unit/short", source="unit"
    )
    path = tmp_path / "data-00000-of-00001.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for example in examples:
            writer.write(encode_example(example))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"stored at {HEIGHT}x{WIDTH}.*unit/short"):
        _take(make_dataset(str(path), _config(), training=False), 1)


def test_shards_without_records_are_an_error_naming_the_pattern(tmp_path):
    path = tmp_path / "data-00000-of-00001.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), options="GZIP"):
        pass
    with pytest.raises(ValueError, match="data-00000-of-00001.tfrecord.gz.*hold no record"):
        make_dataset(str(path), _config(), training=True)


def test_eval_dataset_yields_stored_resolution_by_key(shards):
    pattern, by_key = shards
    seen = []
    for batch in make_eval_dataset(pattern, batch_size=BATCH):
        assert batch["image"].dtype == tf.float32 and batch["image"].shape[1:] == (HEIGHT, WIDTH, 3)
        assert batch["depth"].dtype == tf.float32 and batch["depth"].shape[1:] == (HEIGHT, WIDTH, 1)
        for image, depth, key in zip(batch["image"], batch["depth"], batch["key"], strict=True):
            example = by_key[key.numpy().decode("utf-8")]
            np.testing.assert_array_equal(image.numpy(), example.image.astype(np.float32))
            np.testing.assert_array_equal(depth.numpy()[..., 0], example.depth)
            seen.append(example.key)
    assert sorted(seen) == sorted(by_key)


def test_read_examples_yields_native_depth_of_any_size_unbatched(tmp_path):
    examples = _examples()[:3]
    for index, example in enumerate(examples):  # native maps of three different sizes
        example.native_depth = np.full((HEIGHT + index, WIDTH * 2), index + 1.0, np.float32)
        example.native_frame_box = (0.0, 0.0, HEIGHT + index, WIDTH * 2.0)
    path = tmp_path / "data-00000-of-00001.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for example in examples:
            writer.write(encode_example(example))
    read = {element["key"].numpy().decode("utf-8"): element for element in read_examples(str(path), BATCH)}
    assert sorted(read) == sorted(example.key for example in examples)
    for example in examples:
        element = read[example.key]
        np.testing.assert_array_equal(element["native_depth"].numpy()[..., 0], example.native_depth)
        np.testing.assert_array_equal(element["native_frame_box"].numpy(), example.native_frame_box)
        np.testing.assert_array_equal(element["depth"].numpy()[..., 0], example.depth)


def test_count_records_counts_every_shard(shards):
    pattern, _ = shards
    assert count_records(pattern) == NUM_EXAMPLES
    first_shard = pattern.replace("data-*-", "data-00000-")
    assert count_records([first_shard, pattern]) == NUM_EXAMPLES  # overlapping globs count a file once
    assert count_records(first_shard) == SHARD_SIZES[0]
    assert count_records(pattern, stop_after=2) == 2
    assert count_records(pattern, stop_after=NUM_EXAMPLES + 3) == NUM_EXAMPLES


@pytest.mark.parametrize(
    "read",
    [
        count_records,
        lambda pattern: make_eval_dataset(pattern, BATCH),
        lambda pattern: make_dataset(pattern, _config(), training=True),
        lambda pattern: make_dataset([pattern], replace(_config(), data=DataConfig()), training=False),
    ],
)
def test_missing_shards_name_the_pattern(tmp_path, read):
    pattern = str(tmp_path / "train" / "data-*.tfrecord.gz")
    with pytest.raises(FileNotFoundError, match="data-\\*"):
        read(pattern)

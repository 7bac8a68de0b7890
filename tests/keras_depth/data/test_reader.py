"""Tests of the tf.data reader on tiny gzip TFRecord shards in the real shard layout."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from keras_depth.augment import center_crop_pair, resize_depth_nearest
from keras_depth.config import DataConfig, DepthConfig, ModelConfig
from keras_depth.data import make_dataset
from keras_depth.data.reader import count_records, make_eval_dataset, read_examples
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


def _config(**data) -> DepthConfig:
    defaults = {"batch_size": BATCH, "shuffle_buffer": 8, "num_parallel_reads": 2, "deterministic": True}
    return DepthConfig(model=MODEL, data=DataConfig(**{**defaults, **data}))


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


def test_evaluation_is_one_pass_of_exact_centre_crops(shards):
    pattern, by_key = shards
    batches = _take(make_dataset(pattern, _config(), training=False), NUM_EXAMPLES)
    assert [len(image) for image, _ in batches] == [2, 2, 1]  # the partial batch is kept

    expected = {}
    for example in by_key.values():
        image, depth = center_crop_pair(
            example.image.astype(np.float32), example.depth[..., None], MODEL.input_height, MODEL.input_width
        )
        target = resize_depth_nearest(depth, MODEL.output_height, MODEL.output_width)
        expected[image.numpy().tobytes()] = target.numpy()
    seen = set()
    for images, depths in batches:
        for image, depth in zip(images, depths, strict=True):
            np.testing.assert_array_equal(depth, expected[image.tobytes()])
            seen.add(image.tobytes())
    assert seen == set(expected)


def test_deterministic_mode_repeats_identical_batches(shards):
    pattern, _ = shards
    dataset = make_dataset(pattern, _config(seed=5), training=True)
    first = _take(dataset, 3)  # 6 > 5 examples: crosses an epoch boundary
    for again in (_take(dataset, 3), _take(make_dataset(pattern, _config(seed=5), training=True), 3)):
        for (image, depth), (image_again, depth_again) in zip(first, again, strict=True):
            np.testing.assert_array_equal(image, image_again)
            np.testing.assert_array_equal(depth, depth_again)

    other = _take(make_dataset(pattern, _config(seed=6), training=True), 3)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


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

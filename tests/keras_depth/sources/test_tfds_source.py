"""The TFDS source on tiny datasets prepared here in the feature layout of TFDS's ``nyu_depth_v2``."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_depth.config import SplitMapConfig, TfdsSourceConfig
from keras_depth.sources.base import RecordError
from keras_depth.sources.tfds_source import TfdsSource

HEIGHT, WIDTH = 480, 640
NAME = "tiny_nyu_depth_v2"


class TinyNyuDepthV2(tfds.core.GeneratorBasedBuilder):
    """TFDS ``nyu_depth_v2``'s features (``image`` uint8 480x640x3, ``depth`` float16 480x640 metres)
    and splits (``train``, ``validation``), with the frames in ``FRAMES``."""

    VERSION = tfds.core.Version("0.0.1")
    # No code folder to look for a checksums file in (TFDS's look-up of one for a builder defined
    # in a test module needs importlib_resources, which Python 3.11 does not need otherwise).
    code_path = None
    FRAMES: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # split -> (images, depths), set before preparing

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(HEIGHT, WIDTH, 3)),
                "depth": tfds.features.Tensor(shape=(HEIGHT, WIDTH), dtype=np.float16),
            }
        )
        return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "depth"))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in self.FRAMES}

    def _generate_examples(self, split):
        images, depths = self.FRAMES[split]
        for index, (image, depth) in enumerate(zip(images, depths, strict=True)):
            yield f"{split}_{index}", {"image": image, "depth": depth.astype(np.float16)}


def prepare(data_dir: Path, frames: dict, file_format: str = "tfrecord") -> Path:
    """Prepares the tiny dataset in ``data_dir`` (two shards per split); returns ``data_dir``."""
    TinyNyuDepthV2.FRAMES = frames
    builder = TinyNyuDepthV2(data_dir=str(data_dir), file_format=file_format)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=2))
    return data_dir


@pytest.fixture(scope="session")
def tiny_frames(marked_frames) -> dict:
    images, depths = marked_frames(8, HEIGHT, WIDTH)
    depths[:, :, -40:] = 0.0  # a band without depth, away from the markers
    return {"train": (images[:5], depths[:5]), "validation": (images[5:], depths[5:])}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_frames) -> Path:
    return prepare(tmp_path_factory.mktemp("tfds"), tiny_frames)


def source_of(data_dir: Path, **overrides) -> TfdsSource:
    return TfdsSource(TfdsSourceConfig(name=NAME, data_dir=str(data_dir), **overrides))


def test_examples_read_by_key_match_tfds_own_reader(tiny_dataset, tiny_frames, assert_aligned):
    source = source_of(tiny_dataset)
    keys = source.list_keys()
    assert keys == [f"tfds/{NAME}/train/{i:06d}" for i in range(5)] + [
        f"tfds/{NAME}/validation/{i:06d}" for i in range(3)
    ]
    assert source_of(tiny_dataset).list_keys() == keys  # stable
    builder = tfds.builder_from_directory(str(tiny_dataset / NAME / "0.0.1"))
    for split, ours in (("train", "train"), ("validation", "test")):
        expected = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
        assert len(expected) == len(tiny_frames[split][0])
        for index, example in enumerate(expected):
            record = source.load(f"tfds/{NAME}/{split}/{index:06d}")
            np.testing.assert_array_equal(record.image, example["image"])
            np.testing.assert_array_equal(record.depth, example["depth"].astype(np.float32))
            assert record.depth.dtype == np.float32 and record.depth.shape == (HEIGHT, WIDTH)
            assert (record.depth[:, -40:] == 0).all()  # invalid stays invalid
            frame = next(
                i for i, image in enumerate(tiny_frames[split][0]) if np.array_equal(image, record.image)
            )
            assert_aligned(record.image, record.depth, frame + (5 if split == "validation" else 0))
            assert record.official_split == ours and record.group == ""


def test_split_map_and_depth_scale(tiny_dataset):
    only_val = source_of(tiny_dataset, split_map=SplitMapConfig(val="validation"))
    keys = only_val.list_keys()
    assert len(keys) == 3 and {only_val.load(key).official_split for key in keys} == {"val"}
    centimetres = source_of(tiny_dataset, depth_scale=100.0)
    key = centimetres.list_keys()[0]
    np.testing.assert_allclose(centimetres.load(key).depth, source_of(tiny_dataset).load(key).depth / 100)
    with pytest.raises(ValueError, match="tfds.split_map.test 'test' is not a split of .*train, validation"):
        source_of(tiny_dataset, split_map=SplitMapConfig(train="train", test="test"))
    with pytest.raises(ValueError, match="tfds.split_map must map train, val or test to distinct splits"):
        source_of(tiny_dataset, split_map=SplitMapConfig(val="validation", test="validation"))
    with pytest.raises(
        ValueError, match="tfds.image_feature 'rgb' is not a feature of .*features: image, depth"
    ):
        source_of(tiny_dataset, image_feature="rgb")


def test_array_record_datasets_read_alike(tmp_path, tiny_frames, tiny_dataset):
    array_record = source_of(prepare(tmp_path, tiny_frames, "array_record"))
    tfrecord = source_of(tiny_dataset)
    assert array_record.list_keys() == tfrecord.list_keys()
    for key in array_record.list_keys()[3:6]:
        np.testing.assert_array_equal(array_record.load(key).image, tfrecord.load(key).image)
        np.testing.assert_array_equal(array_record.load(key).depth, tfrecord.load(key).depth)


def test_source_pickles_without_its_reader(tiny_dataset):
    source = source_of(tiny_dataset)
    key = source.list_keys()[-1]
    depth = source.load(key).depth
    clone = pickle.loads(pickle.dumps(source))
    assert clone._read is None
    np.testing.assert_array_equal(clone.load(key).depth, depth)


def test_unprepared_dataset_names_the_directory_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        TfdsSource(TfdsSourceConfig(name="nyu_depth_v2", data_dir=str(tmp_path)))
    message = str(raised.value)
    assert f"is not prepared in {tmp_path / 'nyu_depth_v2' / '0.0.1'}" in message
    assert f"`tfds build nyu_depth_v2 --data_dir={tmp_path}`" in message
    with pytest.raises(
        FileNotFoundError, match=f"'no_such_dataset' .* not prepared in {tmp_path / 'no_such_dataset'}"
    ):
        TfdsSource(TfdsSourceConfig(name="no_such_dataset", data_dir=str(tmp_path)))


def test_a_truncated_shard_is_named(tiny_dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    source = source_of(copy)
    shard = Path(source.shards["train"][0][1])
    shard.write_bytes(shard.read_bytes()[:-100])
    key = f"tfds/{NAME}/train/{source.shards['train'][1][0]:06d}"  # the first example of the second shard
    with pytest.raises(RecordError, match=f"TFRecord shard {shard} holds"):
        source.load(key)
    assert source.load(f"tfds/{NAME}/train/000000").image.shape == (
        HEIGHT,
        WIDTH,
        3,
    )  # the first shard is whole


def test_real_nyu_frames_through_a_prepared_dataset(real_rgbd_dir, tmp_path):
    root = real_rgbd_dir / "nyu_samples"
    images = np.stack([np.asarray(Image.open(path)) for path in sorted((root / "rgb").glob("rgb_*"))])
    depths = (
        np.stack([np.asarray(Image.open(path)) for path in sorted((root / "depth").glob("*.png"))]) / 1000
    )
    source = source_of(
        prepare(tmp_path, {"train": (images[:2], depths[:2]), "validation": (images[2:], depths[2:])})
    )
    loaded = [source.load(key) for key in source.list_keys()]
    order = [next(i for i, image in enumerate(images) if np.array_equal(image, r.image)) for r in loaded]
    assert sorted(order) == [0, 1, 2, 3]
    for record, index in zip(loaded, order, strict=True):
        np.testing.assert_array_equal(record.depth, depths[index].astype(np.float16).astype(np.float32))
        assert (record.depth == 0).sum() == (depths[index] == 0).sum() > 0

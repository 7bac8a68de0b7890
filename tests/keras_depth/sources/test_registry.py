"""make_source: names to configured sources."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from keras_depth.config import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DiodeConfig,
    FolderSourceConfig,
    KittiDepthConfig,
    NyuLabeledConfig,
    SyntheticRoomsConfig,
    TfdsSourceConfig,
)
from keras_depth.sources.folder import FolderSource
from keras_depth.sources.registry import make_source, source_names
from keras_depth.sources.synthetic_rooms import SyntheticRoomsSource


@dataclass
class _Ingest:
    synthetic: SyntheticRoomsConfig = field(default_factory=SyntheticRoomsConfig)
    folder: FolderSourceConfig = field(default_factory=FolderSourceConfig)
    nyu_labeled: NyuLabeledConfig = field(default_factory=NyuLabeledConfig)
    kitti_depth: KittiDepthConfig = field(default_factory=KittiDepthConfig)
    diode: DiodeConfig = field(default_factory=DiodeConfig)
    tfds: TfdsSourceConfig = field(default_factory=TfdsSourceConfig)
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


def test_synthetic_rooms_gets_its_config_section():
    source = make_source("synthetic_rooms", _Ingest(synthetic=SyntheticRoomsConfig(num_scenes=3, seed=7)))
    assert isinstance(source, SyntheticRoomsSource)
    assert source.list_keys() == [
        "synthetic_rooms/s7/000000",
        "synthetic_rooms/s7/000001",
        "synthetic_rooms/s7/000002",
    ]


def test_folder_gets_its_config_section(tmp_path):
    source = make_source("folder", _Ingest(folder=FolderSourceConfig(root=str(tmp_path))))
    assert isinstance(source, FolderSource) and source.root == tmp_path


@pytest.mark.parametrize(
    ("name", "section", "message"),
    [
        (
            "nyu_labeled",
            NyuLabeledConfig(path="/nonexistent/nyu.mat"),
            "nyu_labeled.path '/nonexistent/nyu.mat'",
        ),
        (
            "kitti_depth",
            KittiDepthConfig(annotated_root="/nonexistent"),
            "kitti_depth.annotated_root '/nonexistent'",
        ),
        ("diode", DiodeConfig(root="/nonexistent"), "diode.root '/nonexistent'"),
        (
            "tfds",
            TfdsSourceConfig(name="nyu_depth_v2", data_dir="/nonexistent"),
            "not prepared in /nonexistent/",
        ),
    ],
)
def test_dataset_sources_read_their_config_section(name, section, message):
    with pytest.raises(FileNotFoundError, match=message):
        make_source(name, _Ingest(**{name: section}))


def test_unknown_name_lists_the_valid_ones():
    assert source_names() == ["diode", "folder", "kitti_depth", "nyu_labeled", "synthetic_rooms", "tfds"]
    with pytest.raises(ValueError, match="unknown dataset source 'nyu_v3'.*folder, kitti_depth"):
        make_source("nyu_v3", _Ingest())

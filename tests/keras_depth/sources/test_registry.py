"""make_source: names to configured sources."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from keras_depth.config import FolderSourceConfig, SyntheticRoomsConfig
from keras_depth.sources.folder import FolderSource
from keras_depth.sources.registry import make_source, source_names
from keras_depth.sources.synthetic_rooms import SyntheticRoomsSource


@dataclass
class _Ingest:
    synthetic: SyntheticRoomsConfig = field(default_factory=SyntheticRoomsConfig)
    folder: FolderSourceConfig = field(default_factory=FolderSourceConfig)


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


def test_unknown_name_lists_the_valid_ones():
    assert source_names() == ["folder", "synthetic_rooms"]
    with pytest.raises(ValueError, match="unknown dataset source 'nyu_v3'.*folder, synthetic_rooms"):
        make_source("nyu_v3", _Ingest())

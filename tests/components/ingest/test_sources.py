"""Multi-source routing: the splits each source feeds, split patterns, group normalisation, skips."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from components.ingest.config import IngestConfig, SourceFeedConfig
from components.ingest.pipeline_beam import WrittenRecord
from components.ingest.sources import (
    SKIPPED_TAG,
    DropTestGroupsFn,
    Routed,
    make_ingest_source,
    normalize_group,
    record_split,
    route,
)
from components.ingest.split import key_position, split_for_record
from components.ingest.stats import summarize
from keras_depth.config import FolderSourceConfig, SplitMapConfig, SyntheticRoomsConfig
from keras_depth.config_checks import ConfigValueError
from keras_depth.sources.base import RawRecord
from keras_depth.sources.composite import CompositeSource
from keras_depth.sources.synthetic_rooms import SyntheticRoomsSource
from pipeline.config import CONFIGS_DIR, ConfigError, load_config

GROUPS = [f"scene_{index:04d}" for index in range(400)]


def record(key: str, group: str = "", official_split: str | None = None) -> RawRecord:
    return RawRecord(
        key, key, np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32), None, group, official_split
    )


def feeding(*feeds: SourceFeedConfig, **fields) -> IngestConfig:
    return IngestConfig(sources=list(feeds), **fields)


def outputs(results) -> tuple[list, dict[str, list]]:
    """Main outputs and tagged outputs (by tag) of a DoFn's ``process``."""
    main, tagged = [], {}
    for result in results:
        if hasattr(result, "tag"):
            tagged.setdefault(result.tag, []).append(result.value)
        else:
            main.append(result)
    return main, tagged


@pytest.mark.parametrize(
    ("group", "normalised"),
    [
        ("kitchen_0028b_out", "kitchen_0028"),  # NYU raw "sync" folder: part letter and _out
        ("Kitchen_0028B_out", "kitchen_0028"),
        ("kitchen_0028b", "kitchen_0028"),  # a raw scene recorded in parts
        ("kitchen_0028_out", "kitchen_0028"),
        ("kitchen_0028", "kitchen_0028"),  # the labelled set's scenes entry
        ("living_room_0005", "living_room_0005"),
        ("2011_09_26_drive_0002_sync", "2011_09_26_drive_0002_sync"),  # a KITTI drive: only lowercased
        ("RedKitchen/seq-01", "redkitchen/seq-01"),
        ("a_1b_out_out", "a_1b_out_out"),
    ],
)
def test_normalize_group_makes_nyu_raw_and_labelled_scene_names_compare(group, normalised):
    assert normalize_group(group) == normalised
    assert normalize_group(normalised) == normalised


def test_one_source_feeding_every_split_splits_as_before():
    config = IngestConfig(train_fraction=0.6, val_fraction=0.25)
    for group in GROUPS:
        plain = record(f"synthetic_rooms/{group}", group)
        assert record_split(plain, config) == split_for_record(plain, 0.6, 0.25)


def test_a_source_feeding_train_and_val_renormalises_the_fractions_over_them():
    config = feeding(SourceFeedConfig("folder", ["train", "val"]), train_fraction=0.6, val_fraction=0.2)
    splits = {group: record_split(record(f"folder/{group}/rgb.png", group), config) for group in GROUPS}
    # train takes 0.6 / (0.6 + 0.2) of the hash range, val the rest; test none
    assert splits == {group: "train" if key_position(group) < 0.75 else "val" for group in GROUPS}
    assert 0.15 < list(splits.values()).count("val") / len(GROUPS) < 0.35


def test_a_source_feeding_one_split_sends_every_hashed_record_there():
    config = feeding(SourceFeedConfig("folder", ["test"]), train_fraction=0.7, val_fraction=0.3)
    assert {record_split(record(f"folder/{group}", group), config) for group in GROUPS} == {"test"}


def test_parts_of_one_scene_hash_together():
    config = feeding(SourceFeedConfig("folder", ["train", "val"]), train_fraction=0.5, val_fraction=0.5)
    splits = {
        record_split(record(f"folder/{group}_out/rgb_{index}.jpg", group), config)
        for group in (f"{scene}{part}" for scene in GROUPS[:50] for part in "ab")
        for index in range(2)
    }
    assert splits == {"train", "val"}
    for scene in GROUPS[:50]:
        parts = {record_split(record(f"folder/{scene}{part}", f"{scene}{part}_out"), config) for part in "ab"}
        assert len(parts) == 1


def test_split_patterns_are_official_splits_checked_test_first():
    patterns = SplitMapConfig(train="frame-", val=r"frame-0007\d0", test=r"frame-000[89]\d0")
    config = feeding(SourceFeedConfig("folder", ["train", "val", "test"], patterns), val_from_train=0.0)
    split = {
        n: record_split(record(f"folder/frame-{n:06d}.color.jpg", "g"), config) for n in range(0, 1000, 10)
    }
    assert [n for n in split if split[n] == "test"] == list(range(800, 1000, 10))
    assert [n for n in split if split[n] == "val"] == list(range(700, 800, 10))
    assert [n for n in split if split[n] == "train"] == list(range(0, 700, 10))
    # an unmatched key falls back to the dataset's official split, else to the hash
    assert record_split(record("folder/other.jpg", "g", "test"), config) == "test"


def test_val_from_train_moves_official_train_groups_of_any_source():
    config = feeding(SourceFeedConfig("nyu_labeled", ["train", "val"]), val_from_train=0.5)
    for group in GROUPS[:40]:
        split = record_split(record(f"nyu_labeled/{group}", group, "train"), config)
        assert split == ("val" if key_position(group) < 0.5 else "train")


def test_route_skips_an_official_split_its_source_does_not_feed_and_reports_test_groups():
    config = feeding(SourceFeedConfig("folder", ["train", "val"]), SourceFeedConfig("nyu_labeled", ["test"]))
    routed = route(record("nyu_labeled/0001", "kitchen_0028", "train"), config)
    assert routed == Routed(None, skipped="nyu_labeled: train split, not among its splits (test)")

    routed = route(record("nyu_labeled/0002", "Kitchen_0028a", "test"), config)
    assert routed.record.group == "kitchen_0028" and routed.test_group == "kitchen_0028"
    assert routed.skipped is None

    routed = route(record("folder/kitchen_0028b_out/rgb_1.jpg", "kitchen_0028b_out"), config)
    assert routed.record.group == "kitchen_0028" and routed.test_group is routed.skipped is None


def test_route_rejects_a_key_of_an_unlisted_source():
    with pytest.raises(ValueError, match="no ingest.sources entry for source 'diode'"):
        route(record("diode/x", "g"), feeding(SourceFeedConfig("folder", ["train"])))


def test_train_and_val_records_in_a_test_group_are_dropped_with_a_reason():
    drop = DropTestGroupsFn()
    test_groups = {"kitchen_0028": True}
    summary = summarize("train", (2, 2), np.ones((2, 2), np.float32))
    stored = {
        name: WrittenRecord(f"{source}/{name}", split, group, 0, summary)
        for name, split, source, group in [
            ("raw_train", "train", "folder", "kitchen_0028"),
            ("raw_val", "val", "folder", "kitchen_0028"),
            ("labelled_test", "test", "nyu_labeled", "kitchen_0028"),
            ("other", "train", "folder", "bedroom_0001"),
        ]
    }
    kept, skipped = {}, []
    for name, item in stored.items():
        main, tagged = outputs(drop.process(item, test_groups))
        kept.update({name: main} if main else {})
        skipped += tagged.get(SKIPPED_TAG, [])
    assert sorted(kept) == ["labelled_test", "other"]
    assert skipped == [
        "folder: group holds a test record (would be train)",
        "folder: group holds a test record (would be val)",
    ]


def test_make_ingest_source_builds_the_single_source_or_a_picklable_composite(tmp_path):
    (tmp_path / "rgb_0.png").touch()
    single = IngestConfig(source="synthetic_rooms")
    assert isinstance(make_ingest_source(single), SyntheticRoomsSource)

    config = feeding(
        SourceFeedConfig("synthetic_rooms", ["train"]),
        SourceFeedConfig("folder", ["test"]),
        synthetic=SyntheticRoomsConfig(num_scenes=3),
        folder=FolderSourceConfig(root=str(tmp_path), rgb_glob="rgb_*.png", depth_pattern="rgb_=>depth_"),
    )
    source = make_ingest_source(config)
    assert isinstance(source, CompositeSource) and source.name == "synthetic_rooms+folder"
    keys = pickle.loads(pickle.dumps(source)).list_keys()
    assert keys[-1] == "folder/rgb_0.png" and len(keys) == 4


@pytest.mark.parametrize(
    ("feeds", "fields", "message"),
    [
        ([SourceFeedConfig("folder"), SourceFeedConfig("folder")], {}, "sources[1].source"),
        ([SourceFeedConfig("folder", [])], {}, "sources[0].splits"),
        ([SourceFeedConfig("folder", ["train", "train"])], {}, "sources[0].splits"),
        (
            [SourceFeedConfig("folder", split_patterns=SplitMapConfig(test="(unclosed"))],
            {},
            "sources[0].split_patterns.test",
        ),
        (
            [SourceFeedConfig("folder", ["val", "test"])],
            {"train_fraction": 1.0, "val_fraction": 0.0},
            "sources[0].splits",
        ),
        ([SourceFeedConfig("folder")], {"source": "diode"}, "source"),  # would be ignored
    ],
)
def test_unusable_sources_entries_are_named(feeds, fields, message):
    with pytest.raises(ConfigValueError, match=f"^{re.escape(message)}"):
        feeding(*feeds, **fields).validate()


def test_sources_load_from_yaml_and_a_wrong_split_name_is_named(tmp_path):
    preset = tmp_path / "two.yaml"
    preset.write_text(
        "ingest:\n  sources:\n    - {source: folder, splits: [train, val]}\n"
        "    - {source: nyu_labeled, splits: [test]}\n"
    )
    config = load_config(preset)
    assert config.ingest.sources == [
        SourceFeedConfig("folder", ["train", "val"]),
        SourceFeedConfig("nyu_labeled", ["test"]),
    ]
    with pytest.raises(ConfigError, match=r"ingest\.sources\[0\]\.splits\[1\]"):
        load_config(preset, ["ingest.sources=[{source: folder, splits: [train, holdout]}]"])


def test_a_preset_with_sources_refuses_a_lone_source_override_unless_sources_is_emptied():
    preset = CONFIGS_DIR / "nyu_eigen2014.yaml"
    with pytest.raises(
        ConfigError, match=r"--set ingest.source=diode: key 'ingest.source' expects the default"
    ):
        load_config(preset, ["ingest.source=diode"])
    assert load_config(preset, ["ingest.source=diode", "ingest.sources=[]"]).ingest.source_names() == [
        "diode"
    ]
    assert load_config(preset).ingest.source_names() == ["folder", "nyu_labeled"]

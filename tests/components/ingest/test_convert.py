"""One key start to finish (``convert_key``): written, dead-lettered at any step, or skipped; and the
ingest graph's worker path imports no TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from components.ingest.config import IngestConfig, SourceFeedConfig
from components.ingest.convert import convert_key
from keras_depth.config import SplitMapConfig
from keras_depth.data.schema import decode_example
from keras_depth.sources.base import DepthSource, RawRecord, RecordError

HEIGHT, WIDTH = 12, 16
INTRINSICS = (20.0, 20.0, 7.5, 5.5)


class ListedSource(DepthSource):
    """A source of given records (or of the exceptions their loading raises), named ``folder``."""

    name = "folder"

    def __init__(self, records: dict[str, RawRecord | Exception]):
        self.records = records

    def list_keys(self) -> list[str]:
        return sorted(self.records)

    def source_path(self, key: str) -> str:
        return f"/data/{key}"

    def load(self, key: str) -> RawRecord:
        loaded = self.records[key]
        if isinstance(loaded, Exception):
            raise loaded
        return loaded


def raw(key: str, group: str = "", official_split: str | None = None, **changes) -> RawRecord:
    rng = np.random.default_rng(0)
    fields = dict(
        image=rng.integers(0, 256, (2 * HEIGHT, 2 * WIDTH, 3), dtype=np.uint8),
        depth=rng.uniform(0.5, 5.0, (2 * HEIGHT, 2 * WIDTH)).astype(np.float32),
        intrinsics=INTRINSICS,
    )
    return RawRecord(key, f"/data/{key}", group=group, official_split=official_split, **(fields | changes))


CONFIG = IngestConfig(source="folder", storage_height=HEIGHT, storage_width=WIDTH)


def test_a_good_record_is_resized_encoded_and_summarized():
    source = ListedSource({"folder/a": raw("folder/a", group="Kitchen_0028b_out", official_split="test")})
    result = convert_key("folder/a", source, CONFIG)
    converted = result.converted
    assert result.dead_letter is result.skipped is None and result.test_group == "kitchen_0028"
    assert (converted.key, converted.split, converted.group) == ("folder/a", "test", "kitchen_0028")
    example = decode_example(converted.serialized)
    assert example.key == "folder/a" and example.source == "folder" and example.group == "kitchen_0028"
    assert example.image.shape == (HEIGHT, WIDTH, 3) and example.native_depth.shape == (2 * HEIGHT, 2 * WIDTH)
    assert converted.summary.split == "test" and converted.summary.original_size == (2 * HEIGHT, 2 * WIDTH)


@pytest.mark.parametrize(
    ("loaded", "reason"),
    [
        (RecordError("unreadable RGB image /data/folder/a"), "unreadable RGB image /data/folder/a"),
        (KeyError("frame"), "KeyError: 'frame'"),  # a bug or an unexpected file: still one record only
        (
            raw("folder/a", depth=np.full((24, 32), np.nan, np.float32)),
            "depth has non-finite pixels: 768 NaN",
        ),
        (
            raw("folder/a", intrinsics=(1.0, 2.0, 3.0)),
            "ValueError: not enough values to unpack",
        ),  # after checks
    ],
)
def test_a_failure_at_any_step_dead_letters_the_record_with_its_reason(loaded, reason):
    result = convert_key("folder/a", ListedSource({"folder/a": loaded}), CONFIG)
    assert result.converted is result.skipped is None
    assert result.dead_letter["key"] == "folder/a" and result.dead_letter["source_path"] == "/data/folder/a"
    assert result.dead_letter["reason"].startswith(reason)


def test_a_test_record_that_fails_later_still_holds_its_group_out_of_training():
    bad = raw("folder/a", group="kitchen_0028", official_split="test", depth=np.zeros((24, 32), np.float32))
    result = convert_key("folder/a", ListedSource({"folder/a": bad}), CONFIG)
    assert result.dead_letter is not None and result.test_group == "kitchen_0028"


def test_a_record_of_a_split_its_source_does_not_feed_is_skipped_with_the_reason():
    config = IngestConfig(
        sources=[SourceFeedConfig("folder", ["train", "val"], SplitMapConfig(test="held"))],
        storage_height=HEIGHT,
        storage_width=WIDTH,
    )
    result = convert_key("folder/held", ListedSource({"folder/held": raw("folder/held")}), config)
    assert result.skipped == "folder: test split, not among its splits (train, val)"
    assert result.converted is result.dead_letter is result.test_group is None


def test_the_ingest_graph_runs_without_importing_tensorflow(tmp_path):
    code = f"""
import sys
from pathlib import Path
import apache_beam as beam
from components.ingest.config import IngestConfig
from components.ingest.pipeline_beam import build_pipeline, pipeline_options
from components.ingest.sources import make_ingest_source
from keras_depth.config import SyntheticRoomsConfig
config = IngestConfig(
    synthetic=SyntheticRoomsConfig(num_scenes=6, height=24, width=32), storage_height=24, storage_width=32,
    direct_num_workers=1, direct_running_mode="in_memory",
)
source = make_ingest_source(config)
pipeline = beam.Pipeline(options=pipeline_options(config, []))
build_pipeline(pipeline, source, source.list_keys(), config, Path({str(tmp_path)!r}))
pipeline.run().wait_until_finish()
print(sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "dead_letter.jsonl",
        "stats.json",
        "test",
        "train",
        "val",
    ]

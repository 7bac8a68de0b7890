"""An evaluation-only ingest (its sources feed only ``test``, for ``evaluate.extra_datasets``): no train
split is required, an empty test split fails, and the splits it does not feed are not warned about."""

from __future__ import annotations

import logging

import pytest

from components.ingest.config import IngestConfig, SourceFeedConfig
from components.ingest.split import check_split_sizes
from keras_depth.data.layout import SPLITS, TEST, TRAIN, VAL

TEST_ONLY = IngestConfig(sources=[SourceFeedConfig(source="folder", splits=[TEST])])


def _stats(test: int) -> dict:
    return {
        "counts": {TRAIN: 0, VAL: 0, TEST: test},
        "groups": {TRAIN: 0, VAL: 0, TEST: min(test, 1)},
        "groups_in_several_splits": 0,
    }


def test_fed_splits_follow_the_sources():
    assert IngestConfig().fed_splits() == SPLITS
    assert TEST_ONLY.fed_splits() == (TEST,)
    both = IngestConfig(
        sources=[SourceFeedConfig(source="folder", splits=[TEST]), SourceFeedConfig(splits=[VAL, TRAIN])]
    )
    assert both.fed_splits() == SPLITS


def test_a_test_only_ingest_needs_test_records_only(caplog):
    log = logging.getLogger("test_evaluation_only")
    with caplog.at_level(logging.WARNING):
        check_split_sizes(_stats(5), log, TEST_ONLY.fed_splits())
    assert not caplog.records
    with pytest.raises(RuntimeError, match=r"ingest wrote no test record .* feeds only \('test',\)"):
        check_split_sizes(_stats(0), log, TEST_ONLY.fed_splits())
    with pytest.raises(RuntimeError, match="ingest wrote no train record"):
        check_split_sizes(_stats(5), log)

"""Strategy selection from ``train.strategy``."""

from __future__ import annotations

import pytest
import tensorflow as tf

from components.train.config import TrainConfig
from components.train.strategy import make_strategy


def test_auto_on_cpu_is_the_default_single_replica_strategy():
    strategy = make_strategy(TrainConfig(strategy="auto"))
    assert strategy.num_replicas_in_sync == 1
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)


def test_multi_worker_is_refused_with_the_reason():
    with pytest.raises(NotImplementedError, match=r"multi_worker is not available.*keras-team/keras#20585"):
        make_strategy(TrainConfig(strategy="multi_worker"))


def test_unknown_strategy_names_the_key():
    with pytest.raises(ValueError, match="train.strategy must be one of"):
        make_strategy(TrainConfig(strategy="tpu"))

"""Strategy selection from ``train.strategy``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from components.train.config import TrainConfig
from components.train.strategy import is_chief, is_multi_worker, make_strategy

REPO_ROOT = Path(__file__).resolve().parents[3]
# A fresh interpreter: creating a MultiWorkerMirroredStrategy configures the process's collective runtime.
MULTI_WORKER_SCRIPT = """
from components.train.config import TrainConfig
from components.train.strategy import is_chief, is_multi_worker, make_strategy

strategy = make_strategy(TrainConfig(strategy="multi_worker"))
print(is_multi_worker(strategy), strategy.num_replicas_in_sync, is_chief(strategy))
"""


def test_auto_on_cpu_is_the_default_single_replica_strategy():
    strategy = make_strategy(TrainConfig(strategy="auto"))
    assert strategy.num_replicas_in_sync == 1
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)
    assert not is_multi_worker(strategy) and is_chief(strategy)


def test_multi_worker_without_tf_config_is_a_single_local_chief_worker():
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run(
        [sys.executable, "-c", MULTI_WORKER_SCRIPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split() == ["True", "1", "True"]


def test_unknown_strategy_names_the_key():
    with pytest.raises(ValueError, match="train.strategy must be one of"):
        make_strategy(TrainConfig(strategy="tpu"))

"""Shared test set-up: quiet TensorFlow, CPU only, the real RGB-D fixtures, and the helpers the stage
tests share -- the tiny model, its networks, test shards in the ingest layout and stage contexts.

Test modules cannot import a conftest (pytest runs with ``--import-mode=importlib``), so each helper
is handed out by a fixture (``tiny_model``, ``build_networks``, ``write_records``, ``stage_context``).
TensorFlow and Keras are imported inside the helpers, so collecting tests that need neither stays fast.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from components.base import Artifact, StageContext
from keras_depth.config import ModelConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_RGBD_DIR = REPO_ROOT.parent / "shared" / "data" / "real_rgbd"

# The smallest real networks: 64x80 input (the coarse net needs at least 63x63), 14x18 output (the
# fine1 map size, so no crop or pad), 1/16 of the paper's channels, 16 fc units.
TINY_MODEL = ModelConfig(
    input_height=64, input_width=80, output_height=14, output_width=18, width_multiplier=0.0625, fc_units=16
)


@pytest.fixture(scope="session")
def real_rgbd_dir() -> Path:
    """``../shared/data/real_rgbd`` (see its README); skips when it is absent."""
    if not REAL_RGBD_DIR.is_dir():
        pytest.skip(f"real RGB-D samples not found at {REAL_RGBD_DIR}")
    return REAL_RGBD_DIR


def tiny_networks(seed: int = 0, model: ModelConfig = TINY_MODEL):
    """Untrained ``(coarse, fine)`` Keras networks of ``model`` with weights seeded by ``seed``."""
    import keras

    from keras_depth.models import build_coarse_model, build_fine_model

    keras.utils.set_random_seed(seed)
    coarse = build_coarse_model(model)
    return coarse, build_fine_model(model, coarse)


def write_records(split_dir: Path, examples: Sequence, num_shards: int = 1) -> str:
    """Writes ``DepthExample``s as gzip TFRecord shards named as ingest names them.

    Args:
        split_dir: ``<root>/<split>/``, created (with parents) if missing.
        examples: ``keras_depth.data.schema.DepthExample``s; example ``i`` goes to shard ``i % num_shards``.
        num_shards: Shards ``data-SSSSS-of-NNNNN.tfrecord.gz`` to write.

    Returns:
        The split's shard glob (``keras_depth.data.layout.split_pattern``).
    """
    import tensorflow as tf

    from keras_depth.data.layout import SHARD_PREFIX, SHARD_SUFFIX, split_pattern
    from keras_depth.data.schema import encode_example

    split_dir.mkdir(parents=True, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for shard in range(num_shards):
        path = split_dir / f"{SHARD_PREFIX}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"
        with tf.io.TFRecordWriter(str(path), options) as writer:
            for example in examples[shard::num_shards]:
                writer.write(encode_example(example))
    return split_pattern(split_dir.parent, split_dir.name)


def stage_context(
    config,
    output_dir: Path,
    inputs: Mapping[str, Artifact] | None = None,
    work_dir: Path | None = None,
    run_root: Path | None = None,
    fingerprint: str = "test",
    tracking: bool = False,
    logger: str = "keras_depth.test",
) -> StageContext:
    """A ``StageContext`` writing into ``output_dir`` (created).

    Args:
        config: The ``PipelineConfig``.
        output_dir: The stage's output directory.
        inputs: Upstream artifacts by stage name (none by default).
        work_dir: The work directory (default ``<output_dir's parent>/work``; not created).
        run_root: The pipeline's output directory (default ``output_dir``'s parent).
        fingerprint: The stage's fingerprint.
        tracking: Whether an MLflow run is active.
        logger: Logger name for the stage's progress lines.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(
        config=config,
        output_dir=output_dir,
        work_dir=work_dir or output_dir.parent / "work",
        inputs=dict(inputs or {}),
        run_root=run_root or output_dir.parent,
        fingerprint=fingerprint,
        tracking=tracking,
        log=logging.getLogger(logger),
    )


@pytest.fixture(scope="session")
def tiny_model() -> ModelConfig:
    """:data:`TINY_MODEL`."""
    return TINY_MODEL


@pytest.fixture(scope="session")
def build_networks():
    """:func:`tiny_networks`."""
    return tiny_networks


@pytest.fixture(scope="session", name="write_records")
def write_records_fixture():
    """:func:`write_records`."""
    return write_records


@pytest.fixture(scope="session", name="stage_context")
def stage_context_fixture():
    """:func:`stage_context`."""
    return stage_context


@pytest.fixture(autouse=True)
def _keep_mlflow_tracking_uri_env():
    """Restores ``$MLFLOW_TRACKING_URI`` after each test.

    ``mlflow.set_tracking_uri`` exports the variable, and restoring MLflow's default URI exports
    ``sqlite:///mlflow.db``, relative: pipelines that later tests start in subprocesses would inherit
    it and write ``mlflow.db`` into the repository root instead of their output directory.
    """
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before

"""Tiny upstream artifacts for the evaluate stage: TFRecord splits and untrained .keras networks.

Sizes: stored frames 72 x 96, network input 64 x 80 (the centre crop), output 14 x 18 log depth.
Test records carry native ground truth at twice the stored size (144 x 192, the stored frame
spanning all of it), as ingest writes it; ``legacy_ingest_artifact`` has none (older artifacts).
Ground truth is constant per split -- 1 m on ``train`` and ``initial_depth`` = 2.5 m
on ``test`` -- with an invalid (0) block in the top-left corner. An untrained network predicts about
``initial_depth`` everywhere (its output layers start at that bias with 1e-3 kernels), so it beats the
mean baseline (exp of the train split's mean log depth, 1 m) by construction while still being
slightly imperfect. ``far_ingest_artifact`` is an evaluation-only dataset (a test split alone) at
``far_depth`` = 5 m, where the untrained networks are off by half and the dataset's own mean baseline
is exact. The model, networks, shard writer and contexts are the shared ones of ``tests/conftest.py``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from components.base import Artifact, StageContext
from keras_depth.data.schema import DepthExample
from pipeline.config import PipelineConfig


@dataclass(frozen=True)
class TinySplits:
    """What the fixtures write (tests read it through the ``tiny`` fixture).

    Attributes:
        frame_height: Stored height in pixels.
        frame_width: Stored width in pixels.
        train_depth: Ground truth of every valid train pixel (metres).
        test_depth: Ground truth of every valid test pixel (metres).
        invalid_block: Rows and columns of the invalid (0) top-left block.
        num_train: Train examples.
        num_test: Test examples.
        native_scale: Native ground truth of the test records is this many times the stored size.
        far_depth: Ground truth of every valid pixel of ``far_ingest_artifact`` (metres).
        num_far: Its test examples.
    """

    frame_height: int = 72
    frame_width: int = 96
    train_depth: float = 1.0
    test_depth: float = 2.5
    invalid_block: int = 6
    num_train: int = 3
    num_test: int = 5
    native_scale: int = 2
    far_depth: float = 5.0
    num_far: int = 3


TINY = TinySplits()


def write_split(
    write_records, directory: Path, count: int, depth_value: float, seed: int, native_scale: int = 0
) -> None:
    """Writes ``count`` random-RGB examples of constant depth as one gzip TFRecord shard (``write_records``).

    With ``native_scale`` > 0 each also carries native depth ``native_scale`` times the stored size
    (every stored pixel a block of native pixels), the stored frame spanning all of it.
    """
    rng = np.random.default_rng(seed)
    examples = []
    for index in range(count):
        depth = np.full((TINY.frame_height, TINY.frame_width), depth_value, np.float32)
        depth[: TINY.invalid_block, : TINY.invalid_block] = 0.0
        image = rng.integers(0, 256, (TINY.frame_height, TINY.frame_width, 3), dtype=np.uint8)
        example = DepthExample(image, depth, f"{directory.name}/{index}", "test")
        if native_scale:
            example.native_depth = np.kron(depth, np.ones((native_scale, native_scale), np.float32))
            example.native_frame_box = (0.0, 0.0, *example.native_depth.shape)
        examples.append(example)
    write_records(directory, examples)


@pytest.fixture(scope="session")
def tiny() -> TinySplits:
    return TINY


@pytest.fixture(scope="session")
def ingest_artifact(tmp_path_factory, write_records, tiny_model) -> Artifact:
    assert tiny_model.initial_depth == TINY.test_depth  # what the untrained networks predict
    root = tmp_path_factory.mktemp("ingest")
    write_split(write_records, root / "train", TINY.num_train, TINY.train_depth, seed=1)
    write_split(
        write_records, root / "test", TINY.num_test, TINY.test_depth, seed=2, native_scale=TINY.native_scale
    )
    return Artifact("ingest", "ingestfp", root, {})


@pytest.fixture(scope="session")
def legacy_ingest_artifact(tmp_path_factory, write_records) -> Artifact:
    """The ingest artifact without native ground truth (written before it was stored)."""
    root = tmp_path_factory.mktemp("legacy_ingest")
    write_split(write_records, root / "train", TINY.num_train, TINY.train_depth, seed=1)
    write_split(write_records, root / "test", TINY.num_test, TINY.test_depth, seed=2)
    return Artifact("ingest", "legacyfp", root, {})


@pytest.fixture(scope="session")
def far_ingest_artifact(tmp_path_factory, write_records) -> Artifact:
    """An evaluation-only ingest artifact (test split alone, native ground truth) at ``far_depth``."""
    root = tmp_path_factory.mktemp("far_ingest")
    write_split(
        write_records, root / "test", TINY.num_far, TINY.far_depth, seed=3, native_scale=TINY.native_scale
    )
    return Artifact("extra_ingest", "farfp", root, {"counts": {"test": TINY.num_far}})


@pytest.fixture(scope="session")
def train_artifact(tmp_path_factory, build_networks) -> Artifact:
    root = tmp_path_factory.mktemp("train")
    coarse, fine = build_networks()
    coarse.save(root / "coarse.keras")
    fine.save(root / "fine.keras")
    return Artifact("train", "trainfp", root, {})


@pytest.fixture
def mlflow_run(tmp_path):
    """An active MLflow run in a throw-away SQLite store (what the runner provides when tracking)."""
    import mlflow

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("test", artifact_location=(tmp_path / "mlartifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        yield run.info.run_id
    mlflow.set_tracking_uri(previous_uri)


@pytest.fixture
def make_context(tmp_path, ingest_artifact, train_artifact, stage_context):
    """Builds an evaluate ``StageContext`` writing into a fresh directory, with evaluate overrides
    (``ingest``: another ingest artifact than ``ingest_artifact``; ``extra_inputs``: the artifacts of
    ``evaluate.extra_datasets`` by input name)."""

    def make(
        serving_root: Path | None = None,
        ingest: Artifact = ingest_artifact,
        extra_inputs: dict[str, Artifact] | None = None,
        **evaluate_overrides,
    ) -> StageContext:
        config = PipelineConfig()
        config.evaluate = dataclasses.replace(
            config.evaluate, min_depth=0.1, max_depth=10.0, batch_size=2, **evaluate_overrides
        )
        config.export = dataclasses.replace(
            config.export, serving_root=str(serving_root or tmp_path / "serving")
        )
        return stage_context(
            config,
            Path(tempfile.mkdtemp(prefix="evaluate_out-", dir=tmp_path)),
            inputs={"ingest": ingest, "train": train_artifact, **(extra_inputs or {})},
            run_root=tmp_path,
            fingerprint="evalfp",
            logger="test.evaluate",
        )

    return make

"""Tiny upstream artifacts for the export stage: an untrained fine network and evaluate decisions.

Sizes: stored frames 72 x 96, network input 64 x 80 (the evaluation centre crop), output 14 x 18
(the shared tiny model of ``tests/conftest.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path

import keras
import pytest

from components.base import Artifact, StageContext
from components.serving_contract import GEOMETRY_KEY, METRICS_FILE, Blessing, ServingGeometry, write_blessing
from pipeline.config import PipelineConfig

GEOMETRY = ServingGeometry(frame_height=72, frame_width=96, input_height=64, input_width=80)


@pytest.fixture(scope="session")
def digests():
    """Maps a directory to {relative path: SHA-256} of every file below it."""

    def compute(directory: Path) -> dict[str, str]:
        return {
            str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }

    return compute


@pytest.fixture(scope="session")
def geometry() -> ServingGeometry:
    return GEOMETRY


@pytest.fixture(scope="session")
def fine_model(build_networks) -> keras.Model:
    """An untrained fine network (seed 0) of the tiny model."""
    return build_networks(seed=0)[1]


@pytest.fixture(scope="session")
def train_artifact(tmp_path_factory, fine_model) -> Artifact:
    root = tmp_path_factory.mktemp("train")
    fine_model.save(root / "fine.keras")
    return Artifact("train", "trainfp", root, {})


@pytest.fixture(scope="session")
def evaluate_artifacts(tmp_path_factory) -> dict[bool, Artifact]:
    """Evaluate artifacts by decision: True -> ``BLESSED``, False -> ``NOT_BLESSED``."""
    artifacts = {}
    for blessed, reason in ((True, "passes: everything"), (False, "fails: abs_rel 0.5 vs served model 0.2")):
        root = tmp_path_factory.mktemp("evaluate")
        (root / METRICS_FILE).write_text(json.dumps({GEOMETRY_KEY: dataclasses.asdict(GEOMETRY)}))
        write_blessing(root, Blessing(blessed=blessed, reasons=(reason,)))
        artifacts[blessed] = Artifact("evaluate", f"evalfp{int(blessed)}", root, {})
    return artifacts


@pytest.fixture
def make_context(tmp_path, train_artifact, evaluate_artifacts, stage_context):
    """Builds an export ``StageContext`` (fresh output directory) for a blessed or unblessed model."""

    def make(blessed: bool, tracking: bool = False, **export_overrides) -> StageContext:
        config = PipelineConfig()
        config.export = dataclasses.replace(
            config.export, serving_root=str(tmp_path / "serving"), **export_overrides
        )
        return stage_context(
            config,
            Path(tempfile.mkdtemp(prefix="export_out-", dir=tmp_path)),
            inputs={"train": train_artifact, "evaluate": evaluate_artifacts[blessed]},
            run_root=tmp_path,
            fingerprint="exportfp",
            tracking=tracking,
            logger="test.export",
        )

    return make

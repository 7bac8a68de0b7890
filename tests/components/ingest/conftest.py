"""Fixtures of the ingest tests: tiny pipeline configs, stage contexts and an RGB-D folder.

Sizes: synthetic scenes are rendered at the storage size, 48 x 64; folder pairs
are 60 x 80 (resized and cropped to 48 x 64 by the ingest).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.base import StageContext
from keras_depth.config import FolderSourceConfig, SyntheticRoomsConfig
from pipeline.config import PipelineConfig

STORAGE_HEIGHT, STORAGE_WIDTH = 48, 64
FOLDER_HEIGHT, FOLDER_WIDTH = 60, 80
NUM_SCENES = 12
NUM_GOOD_PAIRS = 8


@dataclass(frozen=True)
class RgbdFolder:
    """An RGB-D folder in the ``folder`` source's default layout.

    Attributes:
        root: The folder (``rgb_<id>.png`` + ``depth_<id>.png``, 16-bit millimetres).
        good_keys: Keys of the pairs that must be ingested.
        bad_reasons: Key -> expected text in the dead-letter reason, for the pairs
            that must be dead-lettered.
    """

    root: Path
    good_keys: list[str]
    bad_reasons: dict[str, str]

    def source_config(self, **overrides) -> FolderSourceConfig:
        """The ``folder`` source over ``root`` with each pair its own group (by default the
        files of a flat folder form one group, which the split cannot divide)."""
        return FolderSourceConfig(root=str(self.root), group_pattern=r"rgb_(\w+)\.png$", **overrides)


@pytest.fixture(scope="session")
def small_config() -> Callable[..., PipelineConfig]:
    """Builds a pipeline config: 12 tiny synthetic scenes, 48x64 storage, one in-process Beam worker.

    Keyword arguments override ``ingest`` fields.
    """

    def build(**ingest) -> PipelineConfig:
        config = PipelineConfig()
        defaults = {
            "synthetic": SyntheticRoomsConfig(
                num_scenes=NUM_SCENES, height=STORAGE_HEIGHT, width=STORAGE_WIDTH
            ),
            "storage_height": STORAGE_HEIGHT,
            "storage_width": STORAGE_WIDTH,
            "direct_num_workers": 1,
            "direct_running_mode": "in_memory",
        }
        config.ingest = replace(config.ingest, **(defaults | ingest))
        return config

    return build


@pytest.fixture(scope="session")
def make_context(stage_context) -> Callable[..., StageContext]:
    """Builds a stage context writing into ``<root>/out`` (created), work directory ``<root>/work``."""

    def build(root: Path, config: PipelineConfig, tracking: bool = False) -> StageContext:
        return stage_context(config, root / "out", tracking=tracking, logger="keras_depth.ingest")

    return build


def png_bytes(array: np.ndarray) -> bytes:
    """PNG file bytes of a uint8 RGB or uint16 greyscale array."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def rgbd_folder(tmp_path: Path) -> RgbdFolder:
    """8 good pairs, plus a corrupt PNG, a truncated PNG, a depth map of the wrong size and an all-invalid one."""
    root = tmp_path / "rgbd"
    root.mkdir()
    rng = np.random.default_rng(0)

    def write_pair(name: str, depth_mm: np.ndarray) -> bytes:
        rgb = png_bytes(rng.integers(0, 256, (FOLDER_HEIGHT, FOLDER_WIDTH, 3), dtype=np.uint8))
        (root / f"rgb_{name}.png").write_bytes(rgb)
        (root / f"depth_{name}.png").write_bytes(png_bytes(depth_mm.astype(np.uint16)))
        return rgb

    def random_depth_mm(height: int = FOLDER_HEIGHT, width: int = FOLDER_WIDTH) -> np.ndarray:
        depth = rng.integers(500, 8000, (height, width))
        depth[rng.random((height, width)) < 0.2] = 0
        return depth

    good_names = [f"{index:03d}" for index in range(NUM_GOOD_PAIRS)]
    for name in good_names:
        write_pair(name, random_depth_mm())
    write_pair("corrupt", random_depth_mm())
    (root / "rgb_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(500))
    rgb = write_pair("truncated", random_depth_mm())
    (root / "rgb_truncated.png").write_bytes(rgb[: len(rgb) // 2])
    write_pair("wrong_size", random_depth_mm(FOLDER_HEIGHT // 2, FOLDER_WIDTH // 2))
    write_pair("no_depth", np.zeros((FOLDER_HEIGHT, FOLDER_WIDTH)))
    return RgbdFolder(
        root=root,
        good_keys=[f"folder/rgb_{name}.png" for name in good_names],
        bad_reasons={
            "folder/rgb_corrupt.png": f"unreadable RGB image {root / 'rgb_corrupt.png'}",
            "folder/rgb_truncated.png": f"unreadable RGB image {root / 'rgb_truncated.png'}",
            "folder/rgb_wrong_size.png": "depth shape (30, 40) does not match image size (60, 80) (H, W)",
            "folder/rgb_no_depth.png": "depth has no valid pixel (all 4800 are 0)",
        },
    )

"""The built-in synthetic indoor RGB-D dataset (source ``synthetic_rooms``).

Each record is a procedurally generated, furnished box room seen by an NYU-like
Kinect, rendered by numpy ray casting (see ``keras_depth.sources.synthetic``):
perspective, texture gradients, shading and occlusion give the monocular depth
cues of real indoor photographs, and the depth map has the holes of a
structured-light sensor. Scene ``index`` of dataset ``seed`` is a pure function of
the two numbers, so any worker in any order renders the same image.
"""

from __future__ import annotations

import re

from keras_depth.config import SyntheticRoomsConfig
from keras_depth.sources.base import DepthSource, RawRecord, RecordError
from keras_depth.sources.synthetic.render import MAX_DEPTH, render_seeded

SOURCE_NAME = "synthetic_rooms"
_KEY_PATTERN = re.compile(rf"{SOURCE_NAME}/s(\d+)/(\d{{6,}})")


def scene_key(seed: int, index: int) -> str:
    """The record key of scene ``index`` of dataset ``seed``: ``synthetic_rooms/s<seed>/<index:06d>``."""
    return f"{SOURCE_NAME}/s{seed}/{index:06d}"


def render_scene(
    seed: int,
    index: int,
    height: int,
    width: int,
    max_depth: float = MAX_DEPTH,
    close_view_fraction: float = 0.0,
) -> RawRecord:
    """Renders one scene as a record.

    Args:
        seed: Dataset seed (>= 0).
        index: Scene index (>= 0).
        height: Image height in pixels; ``width`` likewise.
        max_depth: Sensor range in metres; farther pixels are invalid (0).
        close_view_fraction: Probability of a close view of a table just in front of the camera
            (``keras_depth.sources.synthetic.scene``).

    Returns:
        The record: uint8 RGB (height, width, 3), float32 z-depth in metres
        (height, width) with 0 where the simulated sensor has no depth, the
        NYU Kinect intrinsics scaled to the image size, and its key as its group
        (each scene is a room sampled on its own: no two scenes share a room).
    """
    layers = render_seeded(seed, index, height, width, max_depth, close_view_fraction)
    key = scene_key(seed, index)
    return RawRecord(
        key=key,
        source_path=key,
        image=layers.image,
        depth=layers.depth,
        intrinsics=layers.intrinsics.as_tuple(),
        group=key,  # every scene is a room of its own
    )


class SyntheticRoomsSource(DepthSource):
    """``cfg.num_scenes`` rendered rooms at ``cfg.height`` x ``cfg.width`` pixels.

    Args:
        cfg: Dataset seed, size and sensor range.
    """

    name = SOURCE_NAME

    def __init__(self, cfg: SyntheticRoomsConfig) -> None:
        if cfg.num_scenes < 0 or cfg.seed < 0:
            raise ValueError(
                f"synthetic.num_scenes and synthetic.seed must be >= 0, got {cfg.num_scenes} and {cfg.seed}"
            )
        if cfg.height < 1 or cfg.width < 1:
            raise ValueError(
                f"synthetic.height and synthetic.width must be >= 1, got {cfg.height}x{cfg.width}"
            )
        self.cfg = cfg

    def list_keys(self) -> list[str]:
        """Keys of scenes ``0 .. num_scenes - 1``."""
        return [scene_key(self.cfg.seed, i) for i in range(self.cfg.num_scenes)]

    def source_path(self, key: str) -> str:
        """The key itself: a rendered record has no file."""
        return key

    def load(self, key: str) -> RawRecord:
        """Renders the scene named by ``key``.

        Raises:
            RecordError: when ``key`` is not one of this dataset's keys.
        """
        match = _KEY_PATTERN.fullmatch(key)
        if (
            match is None
            or int(match.group(1)) != self.cfg.seed
            or int(match.group(2)) >= self.cfg.num_scenes
        ):
            raise RecordError(
                f"{key!r} is not a key of synthetic_rooms with seed {self.cfg.seed} and {self.cfg.num_scenes} scenes"
            )
        return render_scene(
            self.cfg.seed,
            int(match.group(2)),
            self.cfg.height,
            self.cfg.width,
            self.cfg.max_depth,
            self.cfg.close_view_fraction,
        )

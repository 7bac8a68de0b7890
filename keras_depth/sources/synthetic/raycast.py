"""Primary visibility: the nearest surface along every pixel's ray.

The room is intersected for all pixels; each shape only inside the screen
rectangle that bounds its projection, so small and distant furniture costs little.
"""

from __future__ import annotations

import math

import numpy as np

from keras_depth.sources.synthetic.camera import Intrinsics, project_points
from keras_depth.sources.synthetic.primitives import NUM_ROOM_FACES
from keras_depth.sources.synthetic.scene import Scene

NEAR_PLANE = 0.05  # metres; shapes reaching closer than this are traced over the whole image

Window = tuple[slice, slice]


def screen_windows(scene: Scene, intrinsics: Intrinsics, height: int, width: int) -> list[Window | None]:
    """Pixel rectangle (rows, columns) containing each shape's projection.

    Args:
        scene: The scene (camera and shapes).
        intrinsics: Intrinsics of the image.
        height: Image height in pixels; ``width`` likewise.

    Returns:
        Per shape: ``(rows, cols)`` slices, the whole image when the shape reaches
        behind the near plane, or None when it cannot be seen.
    """
    if not scene.shapes:
        return []
    corners = np.concatenate([shape.corners() for shape in scene.shapes])
    u, v, z = (c.reshape(len(scene.shapes), -1) for c in project_points(scene.camera, intrinsics, corners))
    windows: list[Window | None] = []
    for su, sv, sz in zip(u, v, z, strict=True):
        if np.all(sz <= NEAR_PLANE):
            windows.append(None)
            continue
        if np.any(sz <= NEAR_PLANE):
            windows.append((slice(None), slice(None)))
            continue
        u0, u1 = max(0, math.floor(su.min())), min(width, math.ceil(su.max()) + 1)
        v0, v1 = max(0, math.floor(sv.min())), min(height, math.ceil(sv.max()) + 1)
        windows.append((slice(v0, v1), slice(u0, u1)) if u0 < u1 and v0 < v1 else None)
    return windows


def trace(
    scene: Scene, intrinsics: Intrinsics, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of every primary ray.

    Args:
        scene: The scene.
        intrinsics: Intrinsics of the image.
        dx: World ray directions scaled to unit camera z, float32 (H, W); ``dy``,
            ``dz`` likewise (see ``camera.primary_rays``).

    Returns:
        ``(depth, surface)``: z-depth in metres, float32 (H, W), and the surface id
        of the hit, int16 (H, W): room faces ``0 .. NUM_ROOM_FACES - 1``, then shape
        ``k`` as ``NUM_ROOM_FACES + k``.
    """
    ox, oy, oz = scene.camera.position
    depth, surface = scene.room.intersect(ox, oy, oz, dx, dy, dz)
    windows = screen_windows(scene, intrinsics, *dx.shape)
    for k, (shape, window) in enumerate(zip(scene.shapes, windows, strict=True)):
        if window is None:
            continue
        t = shape.intersect(ox, oy, oz, dx[window], dy[window], dz[window])
        nearer = t < depth[window]
        np.copyto(depth[window], t, where=nearer)
        np.copyto(surface[window], np.int16(NUM_ROOM_FACES + k), where=nearer)
    return depth, surface

"""Pinhole camera of the synthetic renderer: intrinsics, pose and primary rays.

Conventions (used by every module of the renderer):

- World frame: metres, ``y`` up, the floor is ``y = 0``; the room spans
  ``[0, width] x [0, height] x [0, depth]`` in ``(x, y, z)``.
- Camera frame: OpenCV style, ``x`` right, ``y`` down, ``z`` forward (optical axis).
- Pixel ``(u, v)`` is column ``u`` and row ``v``, pixel centres at integer coordinates.

Primary rays are *not* normalised: the camera-frame direction of pixel ``(u, v)`` is
``((u - cx) / fx, (v - cy) / fy, 1)``, so the ray parameter ``t`` of a hit is its
z-depth (distance along the optical axis) directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# NYU Depth v2 Kinect colour camera at its native 640 x 480 (Silberman et al. 2012).
NYU_WIDTH = 640
NYU_HEIGHT = 480
NYU_FOCAL = 518.9
NYU_CX = 325.6
NYU_CY = 253.7


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of one image size.

    Attributes:
        fx: Horizontal focal length (pixels).
        fy: Vertical focal length (pixels).
        cx: Principal point column (pixels).
        cy: Principal point row (pixels).
    """

    fx: float
    fy: float
    cx: float
    cy: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(fx, fy, cx, cy)`` as stored in a RawRecord."""
        return (self.fx, self.fy, self.cx, self.cy)


def nyu_intrinsics(height: int, width: int) -> Intrinsics:
    """The NYU Kinect intrinsics resampled from 640 x 480 to ``height`` x ``width``.

    Focal lengths scale with the image size; the principal point is scaled with the
    pixel-centre convention, ``c' = (c + 0.5) * s - 0.5``.

    Args:
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        The intrinsics in pixels of the ``height`` x ``width`` image.
    """
    sx = width / NYU_WIDTH
    sy = height / NYU_HEIGHT
    return Intrinsics(
        fx=NYU_FOCAL * sx,
        fy=NYU_FOCAL * sy,
        cx=(NYU_CX + 0.5) * sx - 0.5,
        cy=(NYU_CY + 0.5) * sy - 0.5,
    )


@dataclass(frozen=True)
class Camera:
    """Camera pose in the world frame.

    Attributes:
        position: Optical centre ``(x, y, z)`` in metres.
        yaw: Heading about the world ``+y`` axis in radians; 0 looks along ``+z``.
        pitch: Elevation of the optical axis in radians; positive looks up.
        roll: Rotation about the optical axis in radians; positive tilts the
            camera's ``x`` axis downwards (the scene appears turned anticlockwise).
    """

    position: tuple[float, float, float]
    yaw: float
    pitch: float
    roll: float

    def rotation(self) -> np.ndarray:
        """Camera-to-world rotation, shape (3, 3); columns are the camera's x, y, z axes."""
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        forward = np.array([sy * cp, sp, cy * cp])
        right = np.array([-cy, 0.0, sy])  # forward x up, normalised (horizontal)
        down = np.cross(forward, right)
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        right_rolled = cr * right + sr * down
        down_rolled = -sr * right + cr * down
        return np.stack([right_rolled, down_rolled, forward], axis=1)


def primary_rays(
    camera: Camera, intrinsics: Intrinsics, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World-frame directions of every pixel's ray, scaled to unit camera z.

    Args:
        camera: Camera pose.
        intrinsics: Intrinsics of the ``height`` x ``width`` image.
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        ``(dx, dy, dz)``, each float32 of shape (height, width): the world-frame
        components of ``R @ ((u - cx) / fx, (v - cy) / fy, 1)``.
    """
    rot = camera.rotation().astype(np.float32)
    a = ((np.arange(width, dtype=np.float32) - intrinsics.cx) / intrinsics.fx)[None, :]
    b = ((np.arange(height, dtype=np.float32) - intrinsics.cy) / intrinsics.fy)[:, None]
    return tuple(rot[i, 0] * a + (rot[i, 1] * b + rot[i, 2]) for i in range(3))


def project_points(
    camera: Camera, intrinsics: Intrinsics, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projects world points into the image.

    Args:
        camera: Camera pose.
        intrinsics: Intrinsics of the image.
        points: World points in metres, shape (N, 3).

    Returns:
        ``(u, v, z)``: pixel column, pixel row and camera z-depth in metres, each
        shape (N,). ``u`` and ``v`` are meaningless where ``z <= 0``.
    """
    cam = (np.asarray(points, dtype=np.float64) - np.asarray(camera.position)) @ camera.rotation()
    z = cam[:, 2]
    safe_z = np.where(z > 0, z, 1.0)
    u = intrinsics.fx * cam[:, 0] / safe_z + intrinsics.cx
    v = intrinsics.fy * cam[:, 1] / safe_z + intrinsics.cy
    return u, v, z

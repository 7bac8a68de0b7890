"""Lighting: Lambertian point lights with distance falloff, ambient light, hard
shadows from the main light and specular highlights on glossy surfaces.

Shading cues (brighter near lights, darker corners, shadows under furniture) are the
other monocular depth cues, beside perspective and texture gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keras_depth.sources.synthetic.primitives import NUM_ROOM_FACES, Shape
from keras_depth.sources.synthetic.scene import Light, Scene

FALLOFF_SOFTENING = 0.6  # metres; irradiance ~ power / (d^2 + s^2) avoids blow-up near a light
SPECULAR_EXPONENT = 40.0  # Blinn-Phong shininess of glossy materials
SPECULAR_STRENGTH = 0.5  # highlight weight relative to the diffuse irradiance
SHADOW_T_MAX = 1.0 - 1e-3  # shadow rays run from the point to the light at t = 1


@dataclass
class SurfacePoints:
    """The visible surface points of an image, flattened to N = H * W.

    Attributes:
        position: World ``(x, y, z)`` in metres, each float32 (N,).
        normal: Unit normals ``(nx, ny, nz)``, each float32 (N,).
        view: Unit vectors from the point towards the camera, each float32 (N,).
        surface: Surface id per point, int16 (N,): room faces first, then shapes.
        albedo: Linear-RGB albedo, channels first, float32 (3, N).
        glossy: Points on glossy materials, bool (N,).
    """

    position: tuple[np.ndarray, np.ndarray, np.ndarray]
    normal: tuple[np.ndarray, np.ndarray, np.ndarray]
    view: tuple[np.ndarray, np.ndarray, np.ndarray]
    surface: np.ndarray
    albedo: np.ndarray
    glossy: np.ndarray


def _cone_members(
    centre: np.ndarray, radius: float, light: Light, ux: np.ndarray, uy: np.ndarray, uz: np.ndarray
) -> np.ndarray | None:
    """Which unit directions from the light point into a sphere's cone.

    Args:
        centre: Sphere centre (3,) in metres; ``radius`` its radius.
        light: The light at the cone's apex.
        ux: Unit direction components from the light, float32 (M,); ``uy``, ``uz`` likewise.

    Returns:
        Indices (into the M directions) inside the cone, or None for all of them
        (the light is inside the sphere).
    """
    cx, cy, cz = (float(c) - float(p) for c, p in zip(centre, light.position, strict=True))
    dist = math.sqrt(cx * cx + cy * cy + cz * cz)
    if dist <= radius:
        return None
    cos_cone = math.sqrt(1.0 - (radius / dist) ** 2)
    return np.flatnonzero(ux * (cx / dist) + uy * (cy / dist) + uz * (cz / dist) >= cos_cone)


def _enclosing_sphere(shapes: tuple[Shape, ...]) -> tuple[np.ndarray, float]:
    """A sphere around all ``shapes``: centre (3,) and radius in metres."""
    if len(shapes) == 1:
        return shapes[0].bounding_sphere()
    corners = np.concatenate([shape.corners() for shape in shapes])
    centre = 0.5 * (corners.min(axis=0) + corners.max(axis=0))
    return centre, float(np.linalg.norm(corners - centre, axis=1).max())


def shadowed(scene: Scene, light: Light, points: SurfacePoints, idx: np.ndarray) -> np.ndarray:
    """Which of the points ``idx`` cannot see ``light`` past the scene's shapes.

    The room itself casts no shadow (it is convex and contains the light). Points
    are culled three ways before exact ray tests: a point and a light both above
    every shape are never blocked; each piece of furniture can only shadow points
    inside the cone from the light around its bounding sphere; each of its shapes
    only points inside the shape's own, narrower cone.

    Args:
        scene: The scene (shapes and their grouping into pieces).
        light: The light.
        points: All surface points.
        idx: Indices into ``points`` to test, int (M,).

    Returns:
        bool (M,), True where the segment from the point to the light is blocked.
    """
    if not scene.shapes:
        return np.zeros(idx.shape[0], dtype=bool)
    top = max(float(shape.corners()[:, 1].max()) for shape in scene.shapes)
    if light.position[1] <= top:
        return _blocked_by_shapes(scene, light, points, idx)
    blocked = np.zeros(idx.shape[0], dtype=bool)
    low = np.flatnonzero(points.position[1][idx] < top)
    blocked[low] = _blocked_by_shapes(scene, light, points, idx[low])
    return blocked


def _blocked_by_shapes(scene: Scene, light: Light, points: SurfacePoints, idx: np.ndarray) -> np.ndarray:
    """``shadowed`` without the height cull: cone culls, then exact ray tests."""
    px, py, pz = (p[idx] for p in points.position)
    surface = points.surface[idx]
    lx, ly, lz = light.position
    # Shadow rays from the points to the light: the light is at t = 1.
    rx, ry, rz = lx - px, ly - py, lz - pz
    inv = -1.0 / np.sqrt(rx * rx + ry * ry + rz * rz)
    ux, uy, uz = rx * inv, ry * inv, rz * inv  # unit directions from the light
    blocked = np.zeros(idx.shape[0], dtype=bool)
    for start, end in scene.shape_groups:
        group = scene.shapes[start:end]
        in_group = _cone_members(*_enclosing_sphere(group), light, ux, uy, uz)
        in_group = np.arange(idx.shape[0]) if in_group is None else in_group
        if in_group.size == 0:
            continue
        group_dirs = (ux[in_group], uy[in_group], uz[in_group]) if len(group) > 1 else None
        for k, shape in enumerate(group, start):
            candidates = in_group
            if group_dirs is not None:
                members = _cone_members(*shape.bounding_sphere(), light, *group_dirs)
                candidates = in_group if members is None else in_group[members]
            candidates = candidates[surface[candidates] != NUM_ROOM_FACES + k]
            if candidates.size == 0:
                continue
            t = shape.intersect(*(a[candidates] for a in (px, py, pz, rx, ry, rz)))
            blocked[candidates] |= t < SHADOW_T_MAX
    return blocked


def shade(scene: Scene, points: SurfacePoints) -> np.ndarray:
    """Outgoing linear-RGB radiance of every point (before exposure).

    Args:
        scene: The scene (lights, ambient level, shapes for shadows).
        points: All visible surface points.

    Returns:
        float32 radiance, channels first: shape (3, N).
    """
    px, py, pz = points.position
    nx, ny, nz = points.normal
    irradiance = np.full((3, px.shape[0]), scene.ambient, dtype=np.float32)
    glossy_idx = np.flatnonzero(points.glossy)
    specular = np.zeros((3, glossy_idx.size), dtype=np.float32)
    for i, light in enumerate(scene.lights):
        lx, ly, lz = light.position[0] - px, light.position[1] - py, light.position[2] - pz
        d2 = lx * lx + ly * ly + lz * lz
        inv_d = 1.0 / np.sqrt(d2)
        lx *= inv_d
        ly *= inv_d
        lz *= inv_d
        lambert = nx * lx + ny * ly + nz * lz
        np.maximum(lambert, 0.0, out=lambert)
        lambert *= light.power / (d2 + FALLOFF_SOFTENING**2)
        if i == 0:
            lit = np.flatnonzero(lambert > 0)
            lambert[lit[shadowed(scene, light, points, lit)]] = 0.0
        colour = np.asarray(light.colour, dtype=np.float32)[:, None]
        irradiance += lambert * colour
        if glossy_idx.size:
            vx, vy, vz = (v[glossy_idx] for v in points.view)
            hx, hy, hz = lx[glossy_idx] + vx, ly[glossy_idx] + vy, lz[glossy_idx] + vz
            n_dot_h = (nx[glossy_idx] * hx + ny[glossy_idx] * hy + nz[glossy_idx] * hz) / np.sqrt(
                hx * hx + hy * hy + hz * hz
            )
            highlight = np.maximum(n_dot_h, 0.0) ** SPECULAR_EXPONENT * lambert[glossy_idx]
            specular += (SPECULAR_STRENGTH * highlight) * colour
    radiance = points.albedo * irradiance
    radiance[:, glossy_idx] += specular
    return radiance

"""Renders a scene: ray casting, surface appearance, shading, then the RGB-D sensor.

All work is vectorised over pixels: visibility per shape inside its screen window,
appearance per visible surface (pixels grouped by surface id), lighting and the
sensor model over the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_depth.sources.synthetic.camera import Intrinsics, nyu_intrinsics, primary_rays
from keras_depth.sources.synthetic.materials import Material
from keras_depth.sources.synthetic.primitives import NUM_ROOM_FACES, WALL_FACES
from keras_depth.sources.synthetic.raycast import trace
from keras_depth.sources.synthetic.scene import Decoration, Scene, sample_scene
from keras_depth.sources.synthetic.sensor import form_image, sensor_depth
from keras_depth.sources.synthetic.shading import SurfacePoints, shade
from keras_depth.sources.synthetic.textures import albedo

MAX_DEPTH = 10.0  # metres; the Kinect's useful range and NYU's evaluation cap


@dataclass
class RenderLayers:
    """A rendered view with the layers tests and tools look at.

    Attributes:
        image: uint8 RGB, (H, W, 3).
        depth: Sensor depth in metres, float32 (H, W); 0 = invalid.
        true_depth: Exact z-depth in metres, float32 (H, W), before the sensor model.
        surface: Surface id per pixel, int16 (H, W): ``primitives.FLOOR`` ... room
            faces, then ``NUM_ROOM_FACES + k`` for the scene's shape ``k``.
        intrinsics: Intrinsics of the image.
    """

    image: np.ndarray
    depth: np.ndarray
    true_depth: np.ndarray
    surface: np.ndarray
    intrinsics: Intrinsics


class _Appearance:
    """Per-pixel albedo and optical flags, filled surface by surface (flat, N = H * W)."""

    def __init__(self, n: int) -> None:
        self.albedo = np.empty((3, n), dtype=np.float32)
        self.glossy = np.zeros(n, dtype=bool)
        self.emissive = np.zeros(n, dtype=bool)

    def paint(self, idx: np.ndarray, material: Material, u: np.ndarray, v: np.ndarray) -> None:
        for dst, src in zip(self.albedo, albedo(material, u, v), strict=True):
            dst[idx] = src  # per channel: 1-D scatters are much faster than (n, 3) ones
        self.glossy[idx] = material.glossy
        self.emissive[idx] = material.emissive

    def decorate(
        self, scene: Scene, decoration: Decoration, idx: np.ndarray, u: np.ndarray, v: np.ndarray
    ) -> None:
        """Paints a window, door or picture (inside and frame) over wall pixels ``idx``."""
        u0, u1, v0, v1 = decoration.rect
        sub = np.flatnonzero((u >= u0) & (u <= u1) & (v >= v0) & (v <= v1))
        if sub.size == 0:
            return
        su, sv = u[sub], v[sub]
        fw = decoration.frame_width
        frame = (su < u0 + fw) | (su > u1 - fw) | (sv < v0 + fw) | (sv > v1 - fw)
        if decoration.cross_bars:
            frame |= (np.abs(su - 0.5 * (u0 + u1)) < 0.5 * fw) | (np.abs(sv - 0.5 * (v0 + v1)) < 0.5 * fw)
        for part, material_index in ((frame, decoration.frame_material), (~frame, decoration.material)):
            part_idx = np.flatnonzero(part)
            self.paint(idx[sub[part_idx]], scene.materials[material_index], su[part_idx], sv[part_idx])


def surface_points(
    scene: Scene, depth: np.ndarray, surface: np.ndarray, rays: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[SurfacePoints, np.ndarray]:
    """Geometry and appearance of every visible point.

    Args:
        scene: The scene.
        depth: z-depth of the hits in metres, float32 (H, W).
        surface: Surface id of the hits, int16 (H, W).
        rays: Primary ray directions ``(dx, dy, dz)``, float32 (H, W) each.

    Returns:
        ``(points, emissive)``: the points flattened to N = H * W, and the window
        pixels, bool (N,).
    """
    n = depth.size
    ox, oy, oz = scene.camera.position
    dx, dy, dz = (d.reshape(-1) for d in rays)
    t = depth.reshape(-1)
    position = (ox + t * dx, oy + t * dy, oz + t * dz)
    inv_len = -1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
    view = (dx * inv_len, dy * inv_len, dz * inv_len)
    normal = tuple(np.empty(n, dtype=np.float32) for _ in range(3))
    look = _Appearance(n)
    ids = surface.reshape(-1)
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=NUM_ROOM_FACES + len(scene.shapes))
    ends = np.cumsum(counts)
    for sid in np.flatnonzero(counts):
        idx = order[ends[sid] - counts[sid] : ends[sid]]
        p = tuple(c[idx] for c in position)
        if sid < NUM_ROOM_FACES:
            patch = scene.room.surface(sid, *p)
            material = scene.materials[scene.room_materials[sid]]
        else:
            shape = scene.shapes[sid - NUM_ROOM_FACES]
            patch = shape.surface(*p)
            material = scene.materials[shape.material]
        for dst, src in zip(normal, patch.normal, strict=True):
            dst[idx] = src
        look.paint(idx, material, *patch.uv)
        if sid in WALL_FACES:
            for decoration in scene.decorations:
                if decoration.face == sid:
                    look.decorate(scene, decoration, idx, *patch.uv)
    points = SurfacePoints(position, normal, view, ids, look.albedo, look.glossy)
    return points, look.emissive


def render_layers(
    scene: Scene, height: int, width: int, rng: np.random.Generator, max_depth: float = MAX_DEPTH
) -> RenderLayers:
    """Renders ``scene`` as the RGB-D sensor would see it.

    Args:
        scene: The scene.
        height: Image height in pixels; ``width`` likewise.
        rng: Random generator for exposure, image noise and depth dropouts.
        max_depth: Sensor range in metres; farther pixels are invalid (0).

    Returns:
        The image, sensor depth and the layers behind them.
    """
    intrinsics = nyu_intrinsics(height, width)
    rays = primary_rays(scene.camera, intrinsics, height, width)
    depth, surface = trace(scene, intrinsics, *rays)
    points, emissive = surface_points(scene, depth, surface, rays)
    radiance = shade(scene, points).reshape(3, height, width)
    emissive = emissive.reshape(height, width)
    image, luminance = form_image(radiance, emissive, points.albedo.reshape(3, height, width), rng)
    cos_incidence = sum(n * v for n, v in zip(points.normal, points.view, strict=True)).reshape(height, width)
    sensor = sensor_depth(
        depth,
        cos_incidence,
        points.glossy.reshape(height, width),
        emissive,
        luminance,
        intrinsics,
        max_depth,
        rng,
    )
    return RenderLayers(image=image, depth=sensor, true_depth=depth, surface=surface, intrinsics=intrinsics)


def render_seeded(
    seed: int,
    index: int,
    height: int,
    width: int,
    max_depth: float = MAX_DEPTH,
    close_view_fraction: float = 0.0,
) -> RenderLayers:
    """Renders scene ``index`` of dataset ``seed``: a pure function of its arguments.

    Args:
        seed: Dataset seed.
        index: Scene index within the dataset.
        height: Image height in pixels; ``width`` likewise.
        max_depth: Sensor range in metres.
        close_view_fraction: Probability of a close view of a table (``scene.sample_scene``).

    Returns:
        The rendered layers.
    """
    rng = np.random.default_rng([seed, index])
    return render_layers(sample_scene(rng, close_view_fraction), height, width, rng, max_depth)

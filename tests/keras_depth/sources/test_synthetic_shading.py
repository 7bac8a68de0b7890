"""Lighting: shadows (culled tests equal brute force) and their effect on the image."""

from __future__ import annotations

import math

import numpy as np

from keras_depth.sources.synthetic import camera, materials, raycast, render, scene, shading
from keras_depth.sources.synthetic.primitives import FLOOR, NUM_ROOM_FACES, Box, Room


def _box_scene() -> scene.Scene:
    """A plain room with one box and a light behind it, seen from the front."""
    plain = materials.Material(materials.PLAIN, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0, seed=0)
    return scene.Scene(
        room=Room(width=4.0, height=3.0, depth=5.0),
        camera=camera.Camera((2.0, 1.5, 0.3), yaw=0.0, pitch=math.radians(-30), roll=0.0),
        lights=(scene.Light((2.0, 2.8, 3.5), (1.0, 1.0, 1.0), 6.0),),
        ambient=0.1,
        materials=(plain,),
        room_materials=(0,) * NUM_ROOM_FACES,
        shapes=(Box((2.0, 0.4, 2.5), (0.4, 0.4, 0.4), 0.0, 0),),
        shape_groups=((0, 1),),
        decorations=(),
    )


def _points(xyz: list[tuple[float, float, float]], surface: int = FLOOR) -> shading.SurfacePoints:
    cols = [np.array(c, dtype=np.float32) for c in zip(*xyz, strict=True)]
    n = len(xyz)
    up = (np.zeros(n, np.float32), np.ones(n, np.float32), np.zeros(n, np.float32))
    return shading.SurfacePoints(
        tuple(cols),
        up,
        up,
        np.full(n, surface, np.int16),
        np.full((3, n), 0.5, np.float32),
        np.zeros(n, bool),
    )


def test_box_shadows_the_floor_between_it_and_the_camera_only():
    box_scene = _box_scene()
    points = _points([(2.0, 0.0, 1.8), (0.5, 0.0, 1.0), (2.0, 0.0, 4.5)])
    blocked = shading.shadowed(box_scene, box_scene.lights[0], points, np.arange(3))
    assert blocked.tolist() == [True, False, False]


def test_shadowed_floor_renders_darker():
    box_scene = _box_scene()
    intr = camera.nyu_intrinsics(60, 80)
    rays = camera.primary_rays(box_scene.camera, intr, 60, 80)
    depth, surface = raycast.trace(box_scene, intr, *rays)
    points, _ = render.surface_points(box_scene, depth, surface, rays)
    radiance = shading.shade(box_scene, points)
    (u_shadow, u_lit), (v_shadow, v_lit), _ = camera.project_points(
        box_scene.camera, intr, np.array([[2.0, 0.0, 1.8], [1.0, 0.0, 1.8]])
    )
    shadow_px, lit_px = (
        int(round(v_shadow)) * 80 + int(round(u_shadow)),
        int(round(v_lit)) * 80 + int(round(u_lit)),
    )
    assert points.surface[shadow_px] == FLOOR and points.surface[lit_px] == FLOOR
    assert radiance[:, shadow_px].sum() < 0.5 * radiance[:, lit_px].sum()


def test_culled_shadow_tests_match_brute_force():
    shadowed_points = 0
    for index in range(6):
        rng = np.random.default_rng([0, index])
        sampled = scene.sample_scene(rng)
        intr = camera.nyu_intrinsics(48, 64)
        rays = camera.primary_rays(sampled.camera, intr, 48, 64)
        depth, surface = raycast.trace(sampled, intr, *rays)
        points, _ = render.surface_points(sampled, depth, surface, rays)
        px, py, pz = points.position
        for light in sampled.lights:
            lx, ly, lz = light.position
            brute = np.zeros(depth.size, dtype=bool)
            for k, shape in enumerate(sampled.shapes):
                t = shape.intersect(px, py, pz, lx - px, ly - py, lz - pz)
                brute |= (t < shading.SHADOW_T_MAX) & (points.surface != NUM_ROOM_FACES + k)
            fast = shading.shadowed(sampled, light, points, np.arange(depth.size))
            np.testing.assert_array_equal(fast, brute)
            shadowed_points += int(brute.sum())
    assert shadowed_points > 100

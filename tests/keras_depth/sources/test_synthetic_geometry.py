"""Unit checks of the renderer's parts: camera, ray-shape intersection, sensor model, textures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_depth.sources.synthetic import materials, sensor
from keras_depth.sources.synthetic.camera import Camera, nyu_intrinsics, primary_rays, project_points
from keras_depth.sources.synthetic.primitives import (
    CEILING,
    FLOOR,
    WALL_X1,
    WALL_Z1,
    Box,
    Cylinder,
    Room,
    Sphere,
)
from keras_depth.sources.synthetic.textures import albedo


def _rays(*directions):
    d = np.asarray(directions, dtype=np.float32)
    return d[:, 0], d[:, 1], d[:, 2]


def test_camera_rotation_is_a_proper_rotation():
    rot = Camera((0, 1, 0), yaw=0.7, pitch=-0.2, roll=0.05).rotation()
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)


def test_pitch_up_moves_the_horizon_down_and_roll_tilts_it():
    intr = nyu_intrinsics(240, 320)
    ahead = np.array([[0.0, 1.5, 10.0]])
    right = np.array([[-3.0, 1.5, 10.0]])  # yaw 0 looks along +z with +x to the left
    _, v, _ = project_points(Camera((0, 1.5, 0), 0.0, math.radians(10), 0.0), intr, ahead)
    assert v[0] > intr.cy + 10
    _, v, _ = project_points(Camera((0, 1.5, 0), 0.0, 0.0, math.radians(5)), intr, right)
    assert v[0] < intr.cy - 5


def test_primary_rays_project_back_to_their_pixels():
    intr = nyu_intrinsics(30, 40)
    camera = Camera((1.0, 1.2, 2.0), yaw=2.0, pitch=-0.3, roll=0.04)
    dx, dy, dz = primary_rays(camera, intr, 30, 40)
    assert dx.dtype == np.float32
    depth = 2.5
    points = np.stack([dx, dy, dz], axis=-1).reshape(-1, 3) * depth + np.asarray(camera.position)
    u, v, z = project_points(camera, intr, points)
    np.testing.assert_allclose(z, depth, rtol=1e-5)
    np.testing.assert_allclose(u.reshape(30, 40), np.broadcast_to(np.arange(40), (30, 40)), atol=1e-3)
    np.testing.assert_allclose(
        v.reshape(30, 40), np.broadcast_to(np.arange(30)[:, None], (30, 40)), atol=1e-3
    )


def test_room_exit_faces_and_distances_including_zero_direction_components():
    room = Room(width=4.0, height=3.0, depth=6.0)
    t, face = room.intersect(2.0, 1.0, 1.0, *_rays((1, 0, 0), (0, 0, 1), (0, -1, 0), (0, 1, 0)))
    np.testing.assert_allclose(t, [2.0, 5.0, 1.0, 2.0])
    assert face.tolist() == [WALL_X1, WALL_Z1, FLOOR, CEILING]


def test_box_hits_front_face_and_turns_with_yaw():
    box = Box((0.0, 0.5, 5.0), (1.0, 0.5, 1.0), 0.0, 0)
    t = box.intersect(0.0, 0.5, 0.0, *_rays((0, 0, 1), (0, 1, 0), (0.2, 0, 1)))
    assert t[0] == pytest.approx(4.0) and np.isinf(t[1]) and t[2] == pytest.approx(4.0)
    turned = Box((0.0, 0.5, 5.0), (1.0, 0.5, 1.0), math.pi / 4, 0)
    t = turned.intersect(0.0, 0.5, 0.0, *_rays((0, 0, 1)))
    assert t[0] == pytest.approx(5.0 - math.sqrt(2), rel=1e-5)
    patch = turned.surface(*(np.array([c], dtype=np.float32) for c in (0.0, 0.5, 5.0 - math.sqrt(2))))
    # The hit is on an edge of the turned box: the normal is one of the two faces meeting there.
    n = np.array([c[0] for c in patch.normal])
    assert np.linalg.norm(n) == pytest.approx(1.0) and n[2] < -0.7


def test_cylinder_side_and_cap_hits():
    cyl = Cylinder((0.0, 4.0), 0.5, 0.0, 1.0, 0)
    t = cyl.intersect(0.0, 0.5, 0.0, *_rays((0, 0, 1), (0, 0.2, 1)))
    assert t[0] == pytest.approx(3.5)
    assert np.isinf(t[1])  # passes over the top (y = 1.3 at z = 4)
    t = cyl.intersect(0.0, 2.0, 4.0, *_rays((0, -1, 0)))
    assert t[0] == pytest.approx(1.0)
    patch = cyl.surface(*(np.array(c, dtype=np.float32) for c in ([0.0, 0.0], [0.5, 1.0], [3.5, 4.0])))
    np.testing.assert_allclose(np.stack(patch.normal), [[0, 0], [0, 1], [-1, 0]], atol=1e-6)


def test_sphere_hits_and_shadow_rays_from_many_origins():
    ball = Sphere((0.0, 1.0, 3.0), 0.5, 0)
    t = ball.intersect(0.0, 1.0, 0.0, *_rays((0, 0, 1), (0, 1, 1)))
    assert t[0] == pytest.approx(2.5) and np.isinf(t[1])
    # Segments to a light at (0, 1, 6): blocked from (0, 1, 0), free from (2, 1, 0).
    ox = np.array([0.0, 2.0], dtype=np.float32)
    t = ball.intersect(
        ox, np.float32(1.0), np.float32(0.0), -ox, np.zeros(2, np.float32), np.full(2, 6.0, np.float32)
    )
    assert t[0] < 1.0 and np.isinf(t[1])


def test_projector_shadow_falls_left_of_a_foreground_object():
    intr = nyu_intrinsics(4, 320)
    depth = np.full((4, 320), 3.0, dtype=np.float32)
    depth[:, 150:200] = 1.0
    shadow = sensor._projector_shadow(depth, intr)
    width = intr.fx * sensor.PROJECTOR_BASELINE * (1 / 1.0 - 1 / 3.0)  # pixels
    row = np.flatnonzero(shadow[0])
    assert row.min() == pytest.approx(150 - width, abs=1.5) and row.max() == 149
    assert not shadow[:, 150:].any()


def test_discontinuities_mark_both_sides_of_a_depth_step_only():
    depth = np.full((10, 320), 2.0, dtype=np.float32)
    depth[:, 160:] = 4.0
    depth[:, :50] = 2.0 + 0.01 * np.arange(50, 0, -1, dtype=np.float32)  # smooth slope: not an edge
    edge = sensor._discontinuities(depth, half_band=1)
    assert edge[:, 159:161].all()
    assert edge.sum() == 20
    # A coarse image's neighbours are farther apart: the same step is no longer a jump.
    assert not sensor._discontinuities(depth[:, ::32], half_band=1).any()


@pytest.mark.parametrize(
    "pattern",
    [materials.PLAIN, materials.TILES, materials.PLANKS, materials.STRIPES, materials.DOTS, materials.NOISE],
)
def test_textures_are_valid_albedos_fixed_to_the_surface(pattern):
    mat = materials.Material(pattern, (0.6, 0.5, 0.4), (0.1, 0.2, 0.3), 0.3, seed=11)
    u, v = (np.random.default_rng(0).uniform(-5, 5, (2, 500))).astype(np.float32)
    out = albedo(mat, u, v)
    assert out.shape == (3, 500) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out, albedo(mat, u.copy(), v.copy()))
    if pattern != materials.PLAIN:
        assert out.std(axis=1).max() > 0.01, "a pattern must vary over the surface"

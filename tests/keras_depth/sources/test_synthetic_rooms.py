"""The synthetic_rooms source: determinism, value ranges, sensor holes, geometry and intrinsics."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_depth.config import SyntheticRoomsConfig
from keras_depth.sources.base import RecordError
from keras_depth.sources.synthetic.primitives import FLOOR
from keras_depth.sources.synthetic.render import render_layers
from keras_depth.sources.synthetic.scene import sample_scene
from keras_depth.sources.synthetic_rooms import SyntheticRoomsSource, render_scene, scene_key

SMALL = {"height": 60, "width": 80}


def _source(**overrides) -> SyntheticRoomsSource:
    return SyntheticRoomsSource(SyntheticRoomsConfig(**{"num_scenes": 6, "seed": 3, **SMALL, **overrides}))


def test_keys_are_stable_and_numbered():
    assert _source().list_keys() == [f"synthetic_rooms/s3/{i:06d}" for i in range(6)]
    assert scene_key(12, 7) == "synthetic_rooms/s12/000007"


def test_each_scene_is_its_own_group():
    source = _source(num_scenes=2, height=12, width=16)
    records = [source.load(key) for key in source.list_keys()]
    assert [record.group for record in records] == source.list_keys()


def test_same_key_renders_identically_in_any_order_and_source():
    keys = _source().list_keys()
    forward = {key: _source().load(key) for key in keys}
    other = _source()
    for key in reversed(keys):
        record = other.load(key)
        np.testing.assert_array_equal(record.image, forward[key].image)
        np.testing.assert_array_equal(record.depth, forward[key].depth)
        assert record.intrinsics == forward[key].intrinsics


def test_different_indices_and_seeds_differ():
    a, b = render_scene(0, 0, **SMALL), render_scene(0, 1, **SMALL)
    c = render_scene(1, 0, **SMALL)
    assert not np.array_equal(a.image, b.image)
    assert not np.array_equal(a.depth, b.depth)
    assert not np.array_equal(a.image, c.image)


def test_rendering_in_a_fresh_process_gives_the_same_scene_without_tensorflow():
    code = textwrap.dedent(
        """
        import hashlib, sys
        from keras_depth.sources.synthetic_rooms import render_scene
        r = render_scene(5, 2, 48, 64)
        print(hashlib.sha256(r.image.tobytes() + r.depth.tobytes()).hexdigest())
        print("tensorflow" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    here = render_scene(5, 2, 48, 64)
    assert out[0] == hashlib.sha256(here.image.tobytes() + here.depth.tobytes()).hexdigest()
    assert out[1] == "False", "the renderer must not import tensorflow"


def test_source_survives_pickling():
    source = _source()
    clone = pickle.loads(pickle.dumps(source))
    key = source.list_keys()[2]
    np.testing.assert_array_equal(clone.load(key).depth, source.load(key).depth)


def test_records_have_the_documented_types_and_ranges():
    source = _source(num_scenes=8)
    fractions = []
    any_invalid = False
    for key in source.list_keys():
        record = source.load(key)
        assert record.key == key and record.source_path == key
        assert record.image.dtype == np.uint8 and record.image.shape == (60, 80, 3)
        assert record.depth.dtype == np.float32 and record.depth.shape == (60, 80)
        assert np.isfinite(record.depth).all()
        valid = record.depth > 0
        assert (record.depth[~valid] == 0).all()
        assert record.depth[valid].max() <= 10.0
        assert record.depth[valid].min() > 0.1
        assert record.image.std() > 10, "the image should not be flat"
        fractions.append(valid.mean())
        any_invalid |= not valid.all()
    assert any_invalid
    assert all(0.5 <= f < 1.0 for f in fractions), fractions
    assert 0.7 <= np.mean(fractions) <= 0.97, fractions


def test_max_depth_caps_valid_depth():
    near = render_scene(0, 4, 120, 160, max_depth=3.0)
    far = render_scene(0, 4, 120, 160)
    assert near.depth.max() <= 3.0
    assert (far.depth > 3.0).any(), "scene 4 should see beyond 3 m"
    assert (near.depth > 0).mean() < (far.depth > 0).mean()


def test_intrinsics_are_nyu_scaled_to_the_render_size():
    fx, fy, cx, cy = render_scene(0, 0, 240, 320).intrinsics
    assert fx == pytest.approx(518.9 / 2) and fy == pytest.approx(518.9 / 2)
    assert cx == pytest.approx((325.6 + 0.5) / 2 - 0.5) and cy == pytest.approx((253.7 + 0.5) / 2 - 0.5)
    assert render_scene(0, 0, 60, 80).intrinsics[0] == pytest.approx(518.9 / 8)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_level_camera_sees_the_floor_farther_towards_the_horizon(index):
    rng = np.random.default_rng([9, index])
    scene = sample_scene(rng)
    scene = dataclasses.replace(scene, camera=dataclasses.replace(scene.camera, pitch=0.0, roll=0.0))
    layers = render_layers(scene, 120, 160, rng)
    _, fy, _, cy = layers.intrinsics.as_tuple()
    floor = layers.surface == FLOOR
    rows = [v for v in range(120) if floor[v].sum() >= 5]
    assert len(rows) > 10
    medians = np.array([np.median(layers.true_depth[v][floor[v]]) for v in rows])
    assert np.all(np.diff(medians) < 0), "floor depth must grow row by row towards the horizon"
    # A level pinhole camera at height h sees the floor of row v at z = h * fy / (v - cy).
    height = scene.camera.position[1]
    expected = height * fy / (np.array(rows) - cy)
    np.testing.assert_allclose(medians, expected, rtol=1e-3)


def test_sampled_cameras_see_the_floor_farther_higher_in_the_image():
    """With the sampled pitch and roll, sensor depth of the floor still falls row by row downwards."""
    checked = 0
    for index in range(12):
        layers = render_layers(
            sample_scene(np.random.default_rng([4, index])), 120, 160, np.random.default_rng(0)
        )
        floor = (layers.surface == FLOOR) & (layers.depth > 0)
        rows = np.flatnonzero(floor.sum(axis=1) >= 5)
        if len(rows) < 12:
            continue  # furniture hides most of the floor
        checked += 1
        medians = [np.median(layers.depth[v][floor[v]]) for v in rows]
        assert np.corrcoef(rows, medians)[0, 1] < -0.8, index
        assert medians[0] > 1.15 * medians[-1], index
    assert checked >= 6


def test_load_rejects_foreign_keys():
    source = _source()
    for key in [
        "synthetic_rooms/s4/000000",
        "synthetic_rooms/s3/000006",
        "folder/a.png",
        "synthetic_rooms/s3/7",
    ]:
        with pytest.raises(RecordError, match="not a key"):
            source.load(key)


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="synthetic.height"):
        _source(height=0)
    with pytest.raises(ValueError, match="synthetic.num_scenes"):
        _source(num_scenes=-1)

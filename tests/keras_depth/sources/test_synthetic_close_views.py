"""Close views of the synthetic rooms (``synthetic.close_view_fraction``): a cluttered table just in
front of a camera that looks down at it, drawn per scene; none by default."""

from __future__ import annotations

import numpy as np
import pytest

from keras_depth.config import SyntheticRoomsConfig
from keras_depth.config_checks import ConfigValueError
from keras_depth.sources.synthetic.render import render_layers
from keras_depth.sources.synthetic.scene import sample_scene
from keras_depth.sources.synthetic_rooms import SyntheticRoomsSource

SCENES = range(16)


def _view(fraction: float, index: int) -> tuple[float, float]:
    """(camera pitch, median true depth in metres of the image's lower half) of one scene."""
    rng = np.random.default_rng([5, index])
    scene = sample_scene(rng, fraction)
    layers = render_layers(scene, 60, 80, rng)
    return scene.camera.pitch, float(np.median(layers.true_depth[30:]))


def test_close_views_look_down_at_a_table_just_in_front():
    pairs = [(_view(1.0, index), _view(0.0, index)) for index in SCENES]
    # the same room and camera position; re-aimed unless the table did not fit in front of the camera
    aimed = [(close, room) for close, room in pairs if close[0] != room[0]]
    assert len(aimed) >= 0.75 * len(pairs)
    assert all(pitch < 0 for (pitch, _), _ in aimed)
    ratios = [close_depth / room_depth for (_, close_depth), (_, room_depth) in aimed]
    assert max(ratios) < 1 and np.median(ratios) < 0.6, ratios


def test_the_fraction_is_drawn_per_scene_and_checked():
    source = SyntheticRoomsSource(
        SyntheticRoomsConfig(num_scenes=4, seed=2, height=30, width=40, close_view_fraction=0.5)
    )
    plain = SyntheticRoomsSource(SyntheticRoomsConfig(num_scenes=4, seed=2, height=30, width=40))
    keys = source.list_keys()
    assert any(not np.array_equal(source.load(key).depth, plain.load(key).depth) for key in keys)
    assert SyntheticRoomsConfig().close_view_fraction == 0
    with pytest.raises(ConfigValueError, match="close_view_fraction"):
        SyntheticRoomsConfig(close_view_fraction=1.5).validate()

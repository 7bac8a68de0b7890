"""Depth file conventions: millimetre PNG, colour scale, intrinsics, PLY."""

from __future__ import annotations

import numpy as np
import pytest

from serving.outputs import (
    NYU_KINECT_INTRINSICS,
    Intrinsics,
    OutputOptions,
    colorize_depth,
    depth_to_millimetres,
    output_stems,
    write_depth_outputs,
)


def test_millimetres_clip_and_mark_invalid():
    depth = np.array([[0.0, -1.0, np.nan, np.inf], [0.0004, 1.2345, 65.535, 100.0]], np.float32)
    np.testing.assert_array_equal(depth_to_millimetres(depth), [[0, 0, 0, 0], [1, 1234, 65535, 65535]])


def test_colour_scale_is_fixed_across_images():
    near_far = colorize_depth(np.array([[1.0, 9.0]]), max_depth_m=10.0)
    alone = colorize_depth(np.array([[1.0]]), max_depth_m=10.0)
    np.testing.assert_array_equal(near_far[0, 0], alone[0, 0])
    assert colorize_depth(np.array([[0.0]]))[0, 0].tolist() == [0, 0, 0]


def test_intrinsics_parse_and_default_scaling(tmp_path):
    assert Intrinsics.parse("500,510,320,240") == Intrinsics(500, 510, 320, 240)
    with pytest.raises(ValueError, match="fx,fy,cx,cy"):
        Intrinsics.parse("1,2,3")
    depth = np.full((48, 64), 2.0, np.float32)  # a 10x downscale of 640x480
    rgb = np.zeros((48, 64, 3), np.uint8)
    paths = write_depth_outputs(
        tmp_path, "frame", depth, rgb, OutputOptions(pointcloud=True, ply_format="ascii")
    )
    rows = np.loadtxt(paths["ply"].read_text().split("end_header\n")[1].splitlines())
    scaled = NYU_KINECT_INTRINSICS.scaled(0.1, 0.1)
    np.testing.assert_allclose(
        rows[0, :3], [-scaled.cx * 2 / scaled.fx, -scaled.cy * 2 / scaled.fy, 2.0], rtol=1e-5
    )


def test_duplicate_stems_are_made_unique(tmp_path):
    assert output_stems([tmp_path / "a" / "x.png", tmp_path / "b" / "x.jpg", tmp_path / "y.png"]) == [
        "x",
        "x_2",
        "y",
    ]

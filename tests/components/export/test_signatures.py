"""The serving SavedModel: signature layout, geometry, and agreement with the Keras fine network.

Tolerances: in-process, the SavedModel runs the same float32 graph as Keras on the same pixels, so log
depth agrees to ``IN_PROCESS_ATOL``; across processes (a fresh TensorFlow that imports no project code)
to ``CROSS_PROCESS_ATOL`` = 1e-4 on log depth (about 0.01 % in depth), which allows for different
kernel choices (e.g. oneDNN) in another process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from components.export.signatures import crop_window, describe_signatures, write_saved_model
from components.serving_contract import BYTES_SIGNATURE, SERVING_DEFAULT, ServingGeometry
from keras_depth.augment import center_crop_pair
from keras_depth.data.schema import encode_png

IN_PROCESS_ATOL = 1e-5
CROSS_PROCESS_ATOL = 1e-4
BIN = f"{sys.prefix}/bin"
PROJECT_PACKAGES = ("keras_depth", "components", "pipeline", "serving")


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory, fine_model, geometry):
    return write_saved_model(fine_model, geometry, True, tmp_path_factory.mktemp("sm") / "saved_model")


@pytest.fixture(scope="module")
def loaded(saved_model_dir):
    return tf.saved_model.load(str(saved_model_dir))


@pytest.fixture(scope="module")
def frames(geometry) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (2, geometry.frame_height, geometry.frame_width, 3)).astype(np.float32)


def _window(height, width, geometry):
    return tuple(int(v) for v in crop_window(tf.constant(height), tf.constant(width), geometry))


def test_crop_window_is_the_evaluation_crop_scaled_to_the_request(geometry):
    # At the stored size: center_crop_pair's (72 - 64) // 2 = 4 rows, (96 - 80) // 2 = 8 columns.
    assert _window(72, 96, geometry) == (4, 8, 64, 80)
    assert _window(144, 192, geometry) == (8, 16, 128, 160)  # twice the frame: twice the window
    assert _window(36, 48, geometry) == (2, 4, 32, 40)
    assert _window(100, 96, geometry) == (18, 8, 64, 80)  # taller: s = min(100/72, 96/96) = 1
    assert _window(72, 200, geometry) == (4, 60, 64, 80)  # wider: extra width cropped


def test_crop_window_matches_center_crop_pair_with_an_odd_leftover():
    odd = ServingGeometry(frame_height=71, frame_width=95, input_height=64, input_width=80)
    top, left, height, width = _window(71, 95, odd)
    rows = tf.reshape(tf.range(71 * 95, dtype=tf.float32), [71, 95, 1])
    image, _ = center_crop_pair(tf.tile(rows, [1, 1, 3]), rows, 64, 80)
    np.testing.assert_array_equal(
        image[..., 0].numpy(), rows[top : top + height, left : left + width, 0].numpy()
    )
    assert (top, left, height, width) == (3, 7, 64, 80)


def test_signature_layout(saved_model_dir):
    description = describe_signatures(saved_model_dir)
    per_image = {"dtype": "float32", "shape": [None, 14, 18]}
    outputs = {
        "depth": per_image,
        "log_depth": per_image,
        "depth_full": {"dtype": "float32", "shape": [None] * 3},
    }
    assert description[SERVING_DEFAULT] == {
        "inputs": {"images": {"dtype": "float32", "shape": [None, None, None, 3]}},
        "outputs": outputs,
    }
    assert description[BYTES_SIGNATURE] == {
        "inputs": {"image_bytes": {"dtype": "string", "shape": [None]}},
        "outputs": outputs,
    }


def test_without_upsampling_there_is_no_depth_full(tmp_path, fine_model, geometry):
    description = describe_signatures(write_saved_model(fine_model, geometry, False, tmp_path / "sm"))
    for name in (SERVING_DEFAULT, BYTES_SIGNATURE):
        assert set(description[name]["outputs"]) == {"depth", "log_depth"}


def test_stored_size_request_equals_the_keras_model_on_the_evaluation_crop(loaded, fine_model, frames):
    outputs = loaded.signatures[SERVING_DEFAULT](images=tf.constant(frames))
    expected = fine_model.predict_on_batch(frames[:, 4:68, 8:88])[..., 0]
    np.testing.assert_allclose(outputs["log_depth"].numpy(), expected, atol=IN_PROCESS_ATOL)
    np.testing.assert_allclose(outputs["depth"].numpy(), np.exp(expected), rtol=IN_PROCESS_ATOL)


def test_depth_full_is_pixel_aligned_and_zero_outside_the_window(loaded, frames):
    images = tf.image.resize(frames, [144, 192])  # twice the stored size: window rows 8:136, cols 16:176
    outputs = loaded.signatures[SERVING_DEFAULT](images=images)
    full = outputs["depth_full"].numpy()
    assert full.shape == (2, 144, 192)
    inside = np.zeros(full.shape, bool)
    inside[:, 8:136, 16:176] = True
    assert np.all(full[~inside] == 0.0) and np.all(full[inside] > 0.0)
    upsampled = tf.exp(tf.image.resize(outputs["log_depth"][..., None], [128, 160]))[..., 0]
    np.testing.assert_allclose(full[:, 8:136, 16:176], upsampled.numpy(), rtol=1e-5)


def test_bytes_signature_gives_the_same_depth_as_the_float_signature(loaded, frames):
    pixels = frames.astype(np.uint8)
    png = tf.constant([encode_png(image) for image in pixels])
    from_bytes = loaded.signatures[BYTES_SIGNATURE](image_bytes=png)
    from_floats = loaded.signatures[SERVING_DEFAULT](images=tf.constant(pixels.astype(np.float32)))
    for name in ("depth", "log_depth", "depth_full"):
        np.testing.assert_array_equal(from_bytes[name].numpy(), from_floats[name].numpy())
    jpeg = tf.io.encode_jpeg(tf.constant(pixels[0]))
    assert loaded.signatures[BYTES_SIGNATURE](image_bytes=tf.stack([jpeg]))["depth"].shape == (1, 14, 18)


@pytest.mark.e2e
def test_saved_model_cli_lists_both_signatures(saved_model_dir):
    shown = subprocess.run(
        [f"{BIN}/saved_model_cli", "show", "--all", "--dir", str(saved_model_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    for name, (input_name, dtype, shape) in {
        SERVING_DEFAULT: ("images", "DT_FLOAT", "(-1, -1, -1, 3)"),
        BYTES_SIGNATURE: ("image_bytes", "DT_STRING", "(-1)"),
    }.items():
        section = shown.split(f"signature_def['{name}']:")[1].split("signature_def[")[0]
        assert (
            f"inputs['{input_name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in section
        )
        for output, out_shape in (
            ("depth", "(-1, 14, 18)"),
            ("log_depth", "(-1, 14, 18)"),
            ("depth_full", "(-1, -1, -1)"),
        ):
            assert (
                f"outputs['{output}'] tensor_info:\n        dtype: DT_FLOAT\n        shape: {out_shape}"
                in section
            )
        assert "Method name is: tensorflow/serving/predict" in section


@pytest.mark.e2e
def test_loads_in_a_process_without_project_code(saved_model_dir, fine_model, frames, tmp_path):
    np.save(tmp_path / "images.npy", frames)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf

        model = tf.saved_model.load({str(saved_model_dir)!r})
        outputs = model.signatures["serving_default"](images=tf.constant(np.load({str(tmp_path / "images.npy")!r})))
        np.savez({str(tmp_path / "out.npz")!r}, **{{k: v.numpy() for k, v in outputs.items()}})
        loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({PROJECT_PACKAGES!r}))
        print("PROJECT_MODULES", loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PROJECT_MODULES []" in result.stdout
    outputs = np.load(tmp_path / "out.npz")
    expected = fine_model.predict_on_batch(frames[:, 4:68, 8:88])[..., 0]
    np.testing.assert_allclose(outputs["log_depth"], expected, atol=CROSS_PROCESS_ATOL)
    np.testing.assert_allclose(outputs["depth"], np.exp(expected), rtol=CROSS_PROCESS_ATOL)
    assert outputs["depth_full"].shape == frames.shape[:3]

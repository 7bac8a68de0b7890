"""The TFLite model: parity with the SavedModel on stored frames, float16 weights, the predict CLI.

Measured on the tiny untrained network (depth about 2.5 m, 20 random frames), the largest depth
difference from the SavedModel's ``serving_default`` on the same frame was 1.7e-6 m with float32
weights and 5.5e-4 m with float16 weights; through ``serving.predict --tflite``, 7e-7 m on a
frame-sized image and 1e-4 m (up to 3.4e-3 m at 480x640) on images of other sizes, which are
resampled twice instead of once. The bounds below leave room for other weights and CPUs.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.export.signatures import write_saved_model
from components.export.tflite import write_tflite
from serving import predict
from serving.tflite_predictor import open_interpreter

# Largest accepted |depth difference| from the SavedModel on the same frame, metres.
MAX_DEPTH_DIFFERENCE_M = {False: 1e-4, True: 1e-2}  # float32 weights, float16 weights
# Largest accepted |log depth difference| (natural log of metres; relative depth difference).
MAX_LOG_DEPTH_DIFFERENCE = {False: 1e-4, True: 5e-3}
# An image of another size goes through two resamplings (to the frame, then the crop) instead of one:
# the depth may move a little more.
MAX_RESIZED_DEPTH_DIFFERENCE_M = 0.05


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, fine_model, geometry):
    path = write_saved_model(fine_model, geometry, False, tmp_path_factory.mktemp("sm") / "saved_model")
    return tf.saved_model.load(str(path)), path


@pytest.fixture(scope="module")
def tflite_models(tmp_path_factory, fine_model, geometry):
    """float16 weights (bool) -> ``model.tflite`` path."""
    root = tmp_path_factory.mktemp("tflite")
    return {
        float16: write_tflite(fine_model, geometry, root / f"model_{float16}.tflite", float16)
        for float16 in (False, True)
    }


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("float16", [False, True], ids=["float32", "float16"])
def test_tflite_matches_the_saved_model_on_a_stored_frame(saved_model, tflite_models, geometry, float16):
    runner = open_interpreter(tflite_models[float16]).get_signature_runner("serving_default")
    assert list(runner.get_input_details()["images"]["shape"]) == [1, 72, 96, 3]
    serving_default = saved_model[0].signatures["serving_default"]
    rng = np.random.default_rng(0)
    for _ in range(2):
        frame = rng.uniform(0, 255, (1, geometry.frame_height, geometry.frame_width, 3)).astype(np.float32)
        expected = serving_default(images=tf.constant(frame))
        outputs = runner(images=frame)
        assert set(outputs) == {"depth", "log_depth"}
        assert outputs["depth"].shape == (1, 14, 18)
        depth_error = np.max(np.abs(outputs["depth"] - expected["depth"].numpy()))
        log_error = np.max(np.abs(outputs["log_depth"] - expected["log_depth"].numpy()))
        assert depth_error <= MAX_DEPTH_DIFFERENCE_M[float16]
        assert log_error <= MAX_LOG_DEPTH_DIFFERENCE[float16]


def test_float16_weights_halve_the_file(tflite_models):
    sizes = {float16: path.stat().st_size for float16, path in tflite_models.items()}
    assert sizes[True] < 0.6 * sizes[False]


def test_predict_cli_with_tflite_writes_the_saved_models_depth(
    tmp_path, saved_model, tflite_models, geometry
):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (geometry.frame_height, geometry.frame_width, 3), dtype=np.uint8)
    larger = np.asarray(Image.fromarray(frame).resize((2 * geometry.frame_width, 2 * geometry.frame_height)))
    images = {"frame": frame, "larger": np.pad(larger, ((10, 10), (0, 0), (0, 0)), mode="edge")}
    for name, rgb in images.items():
        (tmp_path / f"{name}.png").write_bytes(_png(rgb))
    out = tmp_path / "out"
    paths = [str(tmp_path / f"{name}.png") for name in images]
    assert predict.main([*paths, "--tflite", str(tflite_models[False]), "--out", str(out)]) == 0
    bytes_signature = saved_model[0].signatures["predict_image_bytes"]
    for name in images:
        depth = np.load(out / f"{name}_depth.npy")
        assert (out / f"{name}_depth.png").is_file() and (out / f"{name}_depth_color.png").is_file()
        encoded = (tmp_path / f"{name}.png").read_bytes()
        expected = bytes_signature(image_bytes=tf.constant([encoded]))["depth"].numpy()[0]
        bound = MAX_DEPTH_DIFFERENCE_M[False] if name == "frame" else MAX_RESIZED_DEPTH_DIFFERENCE_M
        assert depth.shape == expected.shape == (14, 18)
        assert np.max(np.abs(depth - expected)) <= bound, name


def test_predict_cli_names_a_file_that_is_no_tflite_model(tmp_path, capsys):
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"not a flatbuffer")
    (tmp_path / "a.png").write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    args = [str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]
    assert predict.main([*args, "--tflite", str(bogus)]) == predict.EXIT_BAD_INPUT
    assert f"{bogus}: not a TFLite model" in capsys.readouterr().err
    assert predict.main([*args, "--tflite", str(tmp_path / "missing.tflite")]) == predict.EXIT_BAD_INPUT
    assert "missing.tflite: no such TFLite model file" in capsys.readouterr().err

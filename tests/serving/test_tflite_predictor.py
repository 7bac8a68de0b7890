"""The TFLite predictor on a stand-in model: how images are mapped onto its input, outputs, errors.

The stand-in takes float32 [1, 6, 8, 3] and returns ``depth = 1 + mean(image) / 255`` per pixel
(and its log) on the same 6x8 grid; the parity with a real export is tested in
``tests/components/export/test_tflite.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from serving.tflite_predictor import TfliteDepthPredictor, frame_view

FRAME_HW = (6, 8)


@pytest.fixture(scope="module")
def standin_tflite(tmp_path_factory):
    @tf.function(input_signature=[tf.TensorSpec([1, *FRAME_HW, 3], tf.float32, name="images")])
    def serve(images):
        depth = 1.0 + tf.reduce_mean(images, axis=-1) / 255.0
        return {"depth": depth, "log_depth": tf.math.log(depth)}

    root = tmp_path_factory.mktemp("tflite")
    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, str(root / "saved_model"), signatures={"serving_default": serve})
    path = root / "model.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(root / "saved_model")).convert())
    return path


def test_frame_view_is_the_savedmodels_window():
    rng = np.random.default_rng(0)
    frame = rng.uniform(0, 255, (*FRAME_HW, 3)).astype(np.float32)
    np.testing.assert_array_equal(frame_view(tf.constant(frame), *FRAME_HW).numpy()[0], frame)
    wide = rng.uniform(0, 255, (6, 20, 3)).astype(np.float32)  # s = 1: the centred 6x8, not resized
    np.testing.assert_array_equal(frame_view(tf.constant(wide), *FRAME_HW).numpy()[0], wide[:, 6:14])
    tall = np.full((30, 16, 3), 40.0, np.float32)  # s = 2: the centred 12x16, halved
    tall[:9], tall[21:] = 200.0, 200.0
    np.testing.assert_allclose(frame_view(tf.constant(tall), *FRAME_HW).numpy(), 40.0, atol=1e-4)


def test_predicts_depth_of_an_encoded_image(standin_tflite, image_codec):
    predictor = TfliteDepthPredictor(standin_tflite)
    assert predictor.input_size == FRAME_HW
    outputs = predictor.predict(image_codec(np.full((12, 16, 3), 51, np.uint8), "PNG"), "grey.png")
    assert sorted(outputs) == ["depth", "log_depth"]
    np.testing.assert_allclose(outputs["depth"], np.full(FRAME_HW, 1.2), rtol=1e-6)


def test_errors_name_the_file(standin_tflite, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        TfliteDepthPredictor(tmp_path / "missing.tflite")
    (tmp_path / "bogus.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="bogus.tflite: not a TFLite model"):
        TfliteDepthPredictor(tmp_path / "bogus.tflite")
    with pytest.raises(ValueError, match="cannot decode|decode"):
        TfliteDepthPredictor(standin_tflite).predict(b"\x89PNG\r\n\x1a\nbroken", "broken.png")

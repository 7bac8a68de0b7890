"""The TensorFlow Lite model: ``model.tflite``, the network on one fixed input size, for on-device use.

TFLite wants static shapes, and the SavedModel's ``serving_default`` graph (:mod:`.signatures`) does not
convert: its window arithmetic runs on float64 (``RealDiv``, ``Round``, ``Minimum``, which only TF Select
kernels run) and its antialiased resize is ``ScaleAndTranslate``, for which TFLite has no kernel at
all. So the TFLite model is the bare fine network (coarse inside it) behind a static centre crop:

- signature ``serving_default``, input ``images``: float32 [1, frame_height, frame_width, 3], RGB
  0..255 -- one stored frame of the size evaluation scored (the ``ServingGeometry`` the SavedModel
  serves);
- the evaluation centre crop of the frame, ``input_height x input_width`` (a static slice);
- outputs ``depth`` float32 [1, h, w] (metres) and ``log_depth`` [1, h, w] (natural log of metres) on
  the network's output grid. There is no ``depth_full``: where the window lies in an image of another
  size is exactly the dynamic computation that does not convert.

Why the frame size and not the network input size: for a frame-sized image the SavedModel's window is
the evaluation crop and its resize the identity, so on the same frame the two models compute the same
depth (``tests/components/export/test_tflite.py`` bounds the difference), and the one input shape
carries the whole geometry. A model taking the network input would need the frame geometry beside it
to cut the window of an image as the SavedModel does. Images of another size are mapped onto the frame
by the caller the way the SavedModel maps them (``serving.predict --tflite``: the centred window of the
frame's aspect ratio, resized bilinearly with antialiasing).

Conversion goes through a second SavedModel holding only that static signature, written to a
temporary directory and converted with ``tf.lite.TFLiteConverter.from_saved_model``; with
``float16`` the weights are stored as float16 (``Optimize.DEFAULT`` with float16 as the supported
type) and dequantized to float32 when the interpreter loads them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from components.export.signatures import RGB_CHANNELS
from components.serving_contract import (
    DEPTH_OUTPUT,
    IMAGES_INPUT,
    LOG_DEPTH_OUTPUT,
    SERVING_DEFAULT,
    ServingGeometry,
)

TFLITE_FILE = "model.tflite"
# The TFLite model takes one image per call.
TFLITE_BATCH = 1


def write_tflite(
    model: keras.Model, geometry: ServingGeometry, path: str | Path, float16: bool = False
) -> Path:
    """Converts ``model`` behind the static centre crop (module docstring) and writes the flatbuffer.

    Args:
        model: The fine network: [N, input_height, input_width, 3] float32 RGB 0..255 to
            [N, h, w, 1] log depth.
        geometry: Stored frame and network input sizes.
        path: The ``.tflite`` file to write.
        float16: Store the weights as float16.

    Returns:
        ``path``.
    """
    path = Path(path)
    top, left = geometry.frame_window()

    def serve_frame(images: tf.Tensor) -> dict[str, tf.Tensor]:
        window = images[:, top : top + geometry.input_height, left : left + geometry.input_width, :]
        log_depth = tf.cast(model(window, training=False), tf.float32)[..., 0]
        return {DEPTH_OUTPUT: tf.exp(log_depth), LOG_DEPTH_OUTPUT: log_depth}

    spec = tf.TensorSpec(
        [TFLITE_BATCH, geometry.frame_height, geometry.frame_width, RGB_CHANNELS],
        tf.float32,
        name=IMAGES_INPUT,
    )
    with tempfile.TemporaryDirectory(prefix=".tflite-", dir=path.parent) as staging:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SERVING_DEFAULT, serve_frame, input_signature=[spec])
        archive.write_out(staging, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(staging, signature_keys=[SERVING_DEFAULT])
        if float16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        path.write_bytes(converter.convert())
    return path

"""Offline prediction with the exported TFLite model (``python -m serving.predict --tflite model.tflite``).

The export stage writes ``model.tflite`` beside the SavedModel: signature ``serving_default`` taking
``images``, float32 [1, H, W, 3] RGB 0..255 of one fixed size (the stored frame size the SavedModel
serves), and returning ``depth`` (metres) and ``log_depth`` [1, h, w] on the network's output grid.
An image of another size is mapped onto H x W the way the SavedModel's ``serving_default`` maps a
request onto the stored frame: treated as the frame scaled by ``s = min(height / H, width / W)``,
centred, the excess of another aspect ratio cropped, and the ``round(s * H) x round(s * W)`` window
resized to H x W (bilinear with antialiasing). On an H x W image the answer is the SavedModel's.
The model has no ``depth_full``, so the depth written is the output grid's.

Images are decoded with ``tf.io.decode_image`` (channels 3), as the SavedModel's bytes signature
decodes them. The interpreter is ``ai_edge_litert``'s when that package is installed, else
``tf.lite.Interpreter`` (deprecated in favour of LiteRT but shipped with TensorFlow 2.21; its
deprecation warning is silenced).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.contract import IMAGES_INPUT, SERVING_DEFAULT
from serving.outputs import ImageReadError
from serving.servable import op_error_message

RGB_CHANNELS = 3
# Expected input shape: [1, H, W, 3].
INPUT_RANK = 4


def open_interpreter(model_path: str | Path):
    """A TFLite interpreter of ``model_path`` (LiteRT's when installed, else TensorFlow's)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
        return Interpreter(model_path=str(model_path))


def frame_view(image: tf.Tensor, frame_height: int, frame_width: int) -> tf.Tensor:
    """An image mapped onto the model's input size as the SavedModel maps a request onto the frame.

    Args:
        image: float32 [height, width, 3], RGB 0..255.
        frame_height: Model input height H (pixels).
        frame_width: Model input width W (pixels).

    Returns:
        float32 [1, H, W, 3]: the centred ``round(s * H) x round(s * W)`` window,
        ``s = min(height / H, width / W)``, resized bilinearly with antialiasing (unchanged at s = 1).
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    scale = min(height / frame_height, width / frame_width)
    window_height = min(max(round(scale * frame_height), 1), height)
    window_width = min(max(round(scale * frame_width), 1), width)
    top, left = (height - window_height) // 2, (width - window_width) // 2
    window = image[tf.newaxis, top : top + window_height, left : left + window_width, :]
    return tf.image.resize(window, [frame_height, frame_width], method="bilinear", antialias=True)


class TfliteDepthPredictor:
    """Runs the exported ``model.tflite`` in-process.

    Args:
        model_path: The ``.tflite`` file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: naming the file, when it is no TFLite model or lacks the ``serving_default``
            signature with an ``images`` input of shape [1, H, W, 3].
    """

    def __init__(self, model_path: str | Path):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"{self.model_path}: no such TFLite model file")
        try:
            interpreter = open_interpreter(self.model_path)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{self.model_path}: not a TFLite model: {error}") from error
        signatures = interpreter.get_signature_list()
        if IMAGES_INPUT not in signatures.get(SERVING_DEFAULT, {}).get("inputs", []):
            raise ValueError(
                f"{self.model_path}: expected signature {SERVING_DEFAULT!r} with input {IMAGES_INPUT!r}, "
                f"has {signatures}"
            )
        self._runner = interpreter.get_signature_runner(SERVING_DEFAULT)
        shape = [int(size) for size in self._runner.get_input_details()[IMAGES_INPUT]["shape"]]
        if len(shape) != INPUT_RANK or shape[0] != 1 or shape[-1] != RGB_CHANNELS:
            raise ValueError(
                f"{self.model_path}: input {IMAGES_INPUT!r} has shape {shape}, expected [1, H, W, 3]"
            )
        self.input_size = (shape[1], shape[2])

    def predict(self, encoded: bytes, source: str) -> dict[str, np.ndarray]:
        """Outputs for one encoded image.

        Args:
            encoded: PNG/JPEG bytes.
            source: The file name, for error messages.

        Returns:
            Output name -> array for this image (``depth`` [h, w] metres and ``log_depth``).

        Raises:
            ImageReadError: If the bytes do not decode.
        """
        try:
            image = tf.io.decode_image(encoded, channels=RGB_CHANNELS, expand_animations=False)
        except tf.errors.InvalidArgumentError as error:
            raise ImageReadError(f"{source}: cannot decode this image: {op_error_message(error)}") from error
        inputs = frame_view(tf.cast(image, tf.float32), *self.input_size)
        outputs = self._runner(**{IMAGES_INPUT: inputs.numpy()})
        return {name: np.asarray(value)[0] for name, value in outputs.items()}

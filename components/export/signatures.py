"""The serving SavedModel: the fine network behind two signatures, with preprocessing in the graph.

Signatures (TF Serving names; the names live in :mod:`components.serving_contract`):

- ``serving_default``: input ``images`` float32 [N, H, W, 3], RGB in 0..255, any H and W (one size per
  request);
- ``predict_image_bytes``: input ``image_bytes`` string [N], PNG or JPEG bytes, decoded with
  ``tf.io.decode_image(channels=3, expand_animations=False)`` (all images of a request must decode to
  the same size).

Both return ``depth`` float32 [N, out_h, out_w] (metres, ``exp(log_depth)``, not clipped) and
``log_depth`` float32 [N, out_h, out_w] (natural log of metres), for the centre window described
below; with ``upsample_to_input`` also ``depth_full`` float32 [N, H, W]: pixel-aligned with the request,
the window's log depth bilinearly upsampled to the window's size in request pixels (then exp), and 0
(the dataset's "no depth" value) outside the window.

Geometry, the same as evaluation: the evaluation view of a stored ``frame_height x frame_width`` test
image is its centre ``input_height x input_width`` crop at scale 1 (``keras_depth.augment
.center_crop_pair``). A request of H x W pixels is treated as that frame scaled by
``s = min(H / frame_height, W / frame_width)`` (centred; the excess of a request with a different
aspect ratio is cropped), so the window is the centre ``round(s * input_height) x round(s * input_width)``
crop -- always of the network input's aspect ratio -- resized to ``input_height x input_width``
(bilinear with antialiasing). At the stored size (s = 1) the window is exactly the evaluation crop and
the resize is the identity, so a served prediction equals the evaluated one; at other sizes the network
sees the same field of view, at the same apparent scale, as in training and evaluation.

The graph uses TensorFlow ops only: the SavedModel loads with ``tf.saved_model.load`` in a process that
imports neither Keras nor this project.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from components.serving_contract import (
    BYTES_INPUT,
    BYTES_SIGNATURE,
    DEPTH_FULL_OUTPUT,
    DEPTH_OUTPUT,
    IMAGES_INPUT,
    LOG_DEPTH_OUTPUT,
    SERVING_DEFAULT,
    ServingGeometry,
)

RGB_CHANNELS = 3
# Outside the prediction window ``depth_full`` holds the dataset's "invalid depth" value.
NO_DEPTH = 0.0

IMAGES_SPEC = tf.TensorSpec([None, None, None, RGB_CHANNELS], tf.float32, name=IMAGES_INPUT)
BYTES_SPEC = tf.TensorSpec([None], tf.string, name=BYTES_INPUT)


def crop_window(height: tf.Tensor, width: tf.Tensor, geometry: ServingGeometry) -> tuple[tf.Tensor, ...]:
    """The network's input window in an image of ``height x width`` pixels.

    Args:
        height: int32 scalar, image height in pixels.
        width: int32 scalar, image width in pixels.
        geometry: Stored frame and network input sizes.

    Returns:
        int32 scalars ``(top, left, window_height, window_width)``; at the stored frame size this is the
        ``center_crop_pair`` crop (an odd leftover row or column is dropped at the bottom or right).
    """
    scale = tf.minimum(
        tf.cast(height, tf.float64) / geometry.frame_height,
        tf.cast(width, tf.float64) / geometry.frame_width,
    )
    window_height = tf.clip_by_value(tf.cast(tf.round(scale * geometry.input_height), tf.int32), 1, height)
    window_width = tf.clip_by_value(tf.cast(tf.round(scale * geometry.input_width), tf.int32), 1, width)
    return (height - window_height) // 2, (width - window_width) // 2, window_height, window_width


def predict_depth(
    model: keras.Model, images: tf.Tensor, geometry: ServingGeometry, upsample_to_input: bool
) -> dict[str, tf.Tensor]:
    """Runs the network on the centre window of each image (the serving graph, traceable).

    Args:
        model: Maps [N, input_height, input_width, 3] float32 RGB 0..255 to [N, h, w, 1] log depth.
        images: float32 [N, H, W, 3], RGB in 0..255.
        geometry: Stored frame and network input sizes.
        upsample_to_input: Also return ``depth_full`` [N, H, W].

    Returns:
        ``depth`` and ``log_depth`` float32 [N, h, w] (metres, log metres), and ``depth_full``
        float32 [N, H, W] metres (0 outside the window) when ``upsample_to_input``.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    top, left, window_height, window_width = crop_window(height, width, geometry)
    window = images[:, top : top + window_height, left : left + window_width, :]
    inputs = tf.image.resize(
        window, [geometry.input_height, geometry.input_width], method="bilinear", antialias=True
    )
    log_depth = tf.cast(model(inputs, training=False), tf.float32)
    outputs = {LOG_DEPTH_OUTPUT: log_depth[..., 0], DEPTH_OUTPUT: tf.exp(log_depth[..., 0])}
    if upsample_to_input:
        window_depth = tf.exp(tf.image.resize(log_depth, [window_height, window_width], method="bilinear"))
        padding = [[0, 0], [top, height - top - window_height], [left, width - left - window_width], [0, 0]]
        outputs[DEPTH_FULL_OUTPUT] = tf.pad(window_depth, padding, constant_values=NO_DEPTH)[..., 0]
    return outputs


def decode_images(image_bytes: tf.Tensor) -> tf.Tensor:
    """Decodes a batch of PNG/JPEG strings [N] to float32 [N, H, W, 3] RGB in 0..255 (one size)."""
    decoded = tf.map_fn(
        lambda data: tf.io.decode_image(data, channels=RGB_CHANNELS, expand_animations=False),
        image_bytes,
        fn_output_signature=tf.TensorSpec([None, None, RGB_CHANNELS], tf.uint8),
    )
    return tf.cast(decoded, tf.float32)


def write_saved_model(
    model: keras.Model, geometry: ServingGeometry, upsample_to_input: bool, export_dir: str | Path
) -> Path:
    """Writes the serving SavedModel (both signatures) of ``model``.

    Args:
        model: The fine network (any Keras model with the documented input and output).
        geometry: Stored frame and network input sizes.
        upsample_to_input: Add the ``depth_full`` output.
        export_dir: Directory to create (must not exist or be empty).

    Returns:
        ``export_dir``.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict_depth(model, images, geometry, upsample_to_input)

    def serve_image_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict_depth(model, decode_images(image_bytes), geometry, upsample_to_input)

    archive.add_endpoint(SERVING_DEFAULT, serve_images, input_signature=[IMAGES_SPEC])
    archive.add_endpoint(BYTES_SIGNATURE, serve_image_bytes, input_signature=[BYTES_SPEC])
    archive.write_out(str(export_dir), verbose=False)
    return Path(export_dir)


def describe_signatures(export_dir: str | Path) -> dict[str, dict]:
    """The inputs and outputs of every signature of a SavedModel, as plain JSON-able dicts.

    Args:
        export_dir: A SavedModel directory.

    Returns:
        ``{signature: {"inputs": {name: {"dtype", "shape"}}, "outputs": {...}}}``; unknown dimensions
        are ``None``.
    """
    loaded = tf.saved_model.load(str(export_dir))

    def spec(tensor_spec: tf.TensorSpec) -> dict:
        return {"dtype": tensor_spec.dtype.name, "shape": tensor_spec.shape.as_list()}

    description = {}
    for name, function in loaded.signatures.items():
        _, input_specs = function.structured_input_signature
        description[name] = {
            "inputs": {key: spec(value) for key, value in sorted(input_specs.items())},
            "outputs": {key: spec(value) for key, value in sorted(function.structured_outputs.items())},
        }
    return description

"""Offline prediction: ``python -m serving.predict IMAGE... (--model DIR | --tflite FILE) --out DIR``.

Loads the exported SavedModel with ``tf.saved_model.load`` (``DIR`` is a version directory or a
model base path, whose highest version is used), runs its ``predict_image_bytes`` signature on
each file and writes the files described in ``serving.outputs`` (console script
``keras-depth-predict``). With ``--tflite`` it runs the export artifact's ``model.tflite`` instead
(``serving.tflite_predictor``: one fixed input size, depth on the output grid). Exit codes: 0
success, 2 missing or unreadable model, or unreadable/undecodable image (the message names the path).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving.contract import BYTES_INPUT, BYTES_SIGNATURE
from serving.outputs import (
    ImageReadError,
    add_output_arguments,
    output_options,
    predict_image_files,
)
from serving.servable import SERVE_TAG, op_error_message, resolve_saved_model_dir
from serving.tflite_predictor import TfliteDepthPredictor

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class DepthPredictor:
    """Runs an exported model's bytes signature in-process.

    Args:
        model_path: A SavedModel directory or a base path of integer versions.

    Raises:
        FileNotFoundError: If no SavedModel is found (the message names the path).
        KeyError: If the SavedModel has no ``predict_image_bytes`` signature.
    """

    def __init__(self, model_path: str | Path):
        self.saved_model_dir = resolve_saved_model_dir(model_path)
        self._module = tf.saved_model.load(str(self.saved_model_dir), tags=[SERVE_TAG])
        if BYTES_SIGNATURE not in self._module.signatures:
            raise KeyError(
                f"{self.saved_model_dir}: no {BYTES_SIGNATURE!r} signature (has {sorted(self._module.signatures)})"
            )
        self._signature = self._module.signatures[BYTES_SIGNATURE]

    def predict(self, encoded: bytes, source: str) -> dict[str, np.ndarray]:
        """Outputs for one encoded image.

        Args:
            encoded: PNG/JPEG bytes.
            source: The file name, for error messages.

        Returns:
            Output name -> array for this image (``depth`` [h, w] metres, ``log_depth``, and
            ``depth_full`` [H, W] when exported).

        Raises:
            ImageReadError: If the model cannot decode the bytes.
        """
        try:
            outputs = self._signature(**{BYTES_INPUT: tf.constant([encoded])})
        except tf.errors.InvalidArgumentError as error:
            raise ImageReadError(
                f"{source}: the model cannot decode this image: {op_error_message(error)}"
            ) from error
        return {name: tensor.numpy()[0] for name, tensor in outputs.items()}


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.predict",
        description="Depth for images from an exported SavedModel (or its TFLite model), offline.",
    )
    parser.add_argument("images", nargs="+", type=Path, help="PNG/JPEG files.")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", type=Path, help="SavedModel directory or model base path.")
    model.add_argument(
        "--tflite",
        type=Path,
        help="TFLite model (model.tflite of the export artifact) instead of a SavedModel; fixed input size, "
        "depth at the model's output resolution.",
    )
    add_output_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    options = output_options(args)
    try:
        predictor = TfliteDepthPredictor(args.tflite) if args.tflite else DepthPredictor(args.model)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        predict_image_files(
            args.images, args.out, options, lambda encoded, path: predictor.predict(encoded, str(path))
        )
    except ImageReadError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

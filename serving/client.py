"""REST client: ``python -m serving.client IMAGE... --url URL --model NAME --out DIR``.

Sends each image as ``{"b64": ...}`` to ``POST {url}/v1/models/{model}[/versions/{v}|/labels/{l}]:predict``
with signature ``predict_image_bytes`` (row format, one image per request, so images of different
sizes work) and writes the same files as ``serving.predict`` (see ``serving.outputs``). Only the
standard TF Serving REST API is used, so it works unchanged against ``tensorflow_model_server``.
The signature's outputs are read once from ``.../metadata`` and all of them are requested in
``output_filter`` (our server computes ``depth_full``, the input-resolution depth written here,
only when asked).

Connection failures, timeouts and HTTP 503 are retried with exponential backoff
(``--backoff * 2**attempt`` seconds, ``--attempts`` tries in all). Exit codes: 0 success,
1 error response from the server (its status and ``error`` text are printed), 2 bad input
(unreadable image, invalid flags), 3 server unreachable after all attempts.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests

from serving.contract import BYTES_SIGNATURE, DEPTH_OUTPUT
from serving.outputs import (
    ImageReadError,
    add_output_arguments,
    output_options,
    predict_image_files,
)

DEFAULT_URL = "http://127.0.0.1:8501"
DEFAULT_MODEL = "depth"
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 0.5
DEFAULT_TIMEOUT_S = 120.0
RETRIED_HTTP_STATUS = 503
EXIT_OK = 0
EXIT_SERVER_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3


class ServerError(RuntimeError):
    """The server answered with an error status.

    Attributes:
        status: HTTP status code.
        message: The body's ``error`` text (or the raw body when it is not TF Serving JSON).
    """

    def __init__(self, status: int, message: str):
        super().__init__(f"server returned HTTP {status}: {message}")
        self.status = status
        self.message = message


class ServerUnreachable(RuntimeError):
    """No answer after every attempt."""


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)


class PredictClient:
    """Calls one model's ``:predict`` endpoint with retries.

    Args:
        url: Server root, e.g. ``http://127.0.0.1:8501``.
        model: Model name.
        version: Specific version, or None for the highest.
        label: Version label (exclusive with ``version``).
        attempts: Tries per request (>= 1).
        backoff_s: First retry delay in seconds; doubles on each retry.
        timeout_s: Per-try HTTP timeout in seconds.
        log: Where retry messages go (default: stderr).
    """

    def __init__(
        self,
        url: str,
        model: str,
        version: int | None = None,
        label: str | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_s: float = DEFAULT_BACKOFF_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        log: Callable[[str], None] | None = None,
    ):
        selector = f"/versions/{version}" if version is not None else f"/labels/{label}" if label else ""
        model_url = f"{url.rstrip('/')}/v1/models/{model}{selector}"
        self.predict_url = f"{model_url}:predict"
        self.metadata_url = f"{model_url}/metadata"
        self._output_names: list[str] | None = None
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._log = log or (lambda message: print(message, file=sys.stderr))
        self._session = requests.Session()

    def _request(self, url: str, payload: dict | None = None) -> dict:
        """GET ``url`` (POST ``payload`` when given) with retries; the JSON answer."""
        for attempt in range(1, self.attempts + 1):
            try:
                if payload is None:
                    response = self._session.get(url, timeout=self.timeout_s)
                else:
                    response = self._session.post(url, json=payload, timeout=self.timeout_s)
                if response.status_code != RETRIED_HTTP_STATUS:
                    break
                failure = f"HTTP {response.status_code}: {_error_text(response)}"
            except (requests.ConnectionError, requests.Timeout) as error:
                failure = f"{type(error).__name__}: {error}"
            if attempt == self.attempts:
                raise ServerUnreachable(f"no answer from {url} after {self.attempts} attempts: {failure}")
            delay = self.backoff_s * 2 ** (attempt - 1)
            self._log(
                f"attempt {attempt}/{self.attempts} to {url} failed ({failure}); retrying in {delay:.2f} s"
            )
            time.sleep(delay)
        if not response.ok:
            raise ServerError(response.status_code, _error_text(response))
        return response.json()

    def output_names(self) -> list[str]:
        """The bytes signature's outputs, from the model metadata (read once; [] when not listed)."""
        if self._output_names is None:
            signatures = self._request(self.metadata_url)["metadata"]["signature_def"]["signature_def"]
            self._output_names = sorted(signatures.get(BYTES_SIGNATURE, {}).get("outputs", {}))
        return self._output_names

    def predict_image(self, encoded: bytes) -> dict[str, np.ndarray]:
        """Depth outputs for one encoded image.

        Args:
            encoded: PNG or JPEG file bytes.

        Returns:
            Output name -> float32 array for this image (``depth`` [h, w] metres, ``log_depth``,
            and ``depth_full`` [H, W] when the model provides it).

        Raises:
            ServerError: On an error response.
            ServerUnreachable: When every attempt failed to connect, timed out or got 503.
        """
        payload = {
            "signature_name": BYTES_SIGNATURE,
            "instances": [{"b64": base64.b64encode(encoded).decode("ascii")}],
        }
        if self.output_names():
            payload["output_filter"] = self.output_names()
        prediction = self._request(self.predict_url, payload)["predictions"][0]
        if not isinstance(prediction, dict):  # a single-output signature returns the bare value
            prediction = {DEPTH_OUTPUT: prediction}
        return {name: np.asarray(value, dtype=np.float32) for name, value in prediction.items()}


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.client",
        description="Depth for images from a TF Serving REST endpoint (predict_image_bytes).",
    )
    parser.add_argument("images", nargs="+", type=Path, help="PNG/JPEG files.")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"Server root (default {DEFAULT_URL}).")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"Model name (default {DEFAULT_MODEL!r}).")
    selector = parser.add_mutually_exclusive_group()
    selector.add_argument("--version", type=int, default=None, help="Model version (default: highest).")
    selector.add_argument("--label", default=None, help="Version label from the server's model config.")
    parser.add_argument(
        "--attempts", type=int, default=DEFAULT_ATTEMPTS, help="Tries per request on connection errors/503."
    )
    parser.add_argument(
        "--backoff", type=float, default=DEFAULT_BACKOFF_S, help="First retry delay (s); doubles per retry."
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="Per-request timeout (s).")
    add_output_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the client; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.attempts < 1:
        parser.error("--attempts must be >= 1")
    options = output_options(args)
    client = PredictClient(
        args.url, args.model, args.version, args.label, args.attempts, args.backoff, args.timeout
    )
    try:
        predict_image_files(
            args.images, args.out, options, lambda encoded, path: client.predict_image(encoded)
        )
    except ImageReadError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ServerError as error:
        print(f"error: server returned HTTP {error.status}: {error.message}", file=sys.stderr)
        return EXIT_SERVER_ERROR
    except ServerUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

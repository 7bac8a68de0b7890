"""Size limits of one predict request, checked before any large tensor is built or image decoded.

A small request must not be able to take the server down, so three limits (server flags) bound
what a request may make the model allocate:

- ``--max_rows_per_request``: examples (the batch axis) in one request;
- ``--max_pixels_per_image``: pixels of one example -- for an encoded image (PNG, JPEG, GIF, BMP,
  WebP) its width x height as read from the file header, for a numeric input of shape
  [N, d1, ..., dk] the product d1 x ... x d(k-1) (the last axis is the channels: NHWC gives H x W);
  numeric inputs of rank < 3 count one pixel per example;
- ``--max_pixels_per_request``: the sum over every example of every input.

Encoded images are measured from their headers only (PIL's image file classes read the header on
opening, not the pixel data), so a decompression bomb is refused without being decoded. The format's
class is used directly rather than ``Image.open``, whose own bomb check (over ~179 MP) would hide the
size. A string that starts
with an image format's magic bytes (the formats ``tf.io.decode_image`` recognises) but whose header
cannot be read is refused too, since the model would decode it without the check. Other strings are
not images and count no pixels.

A refused request gets HTTP 413 naming the flag, e.g. ``{"error": "'instances' has 10000 rows,
which exceeds --max_rows_per_request=64"}``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from serving.errors import PAYLOAD_TOO_LARGE, ServingError, invalid_argument

DEFAULT_MAX_ROWS_PER_REQUEST = 64
DEFAULT_MAX_PIXELS_PER_IMAGE = 4096 * 4096  # 16.8 MP: a 12 MP (4000x3000) photo passes
DEFAULT_MAX_PIXELS_PER_REQUEST = 2 * DEFAULT_MAX_PIXELS_PER_IMAGE
# The signatures ``tf.io.decode_image`` sniffs (WebP is ``RIFF....WEBP``) -> PIL's reader.
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
}
_RIFF, _WEBP = b"RIFF", b"WEBP"
_READERS = {
    "PNG": PngImagePlugin.PngImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
}


@dataclass(frozen=True)
class RequestLimits:
    """The largest request the server runs.

    Attributes:
        max_rows_per_request: Examples (batch rows) per request.
        max_pixels_per_image: Pixels (width x height) of one example.
        max_pixels_per_request: Pixels of all examples of all inputs of one request.
    """

    max_rows_per_request: int = DEFAULT_MAX_ROWS_PER_REQUEST
    max_pixels_per_image: int = DEFAULT_MAX_PIXELS_PER_IMAGE
    max_pixels_per_request: int = DEFAULT_MAX_PIXELS_PER_REQUEST

    def __post_init__(self) -> None:
        for name in ("max_rows_per_request", "max_pixels_per_image", "max_pixels_per_request"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"RequestLimits.{name} must be an integer >= 1, got {value!r}")


def too_large(message: str) -> ServingError:
    """A request over one of the limits (HTTP 413)."""
    return ServingError(PAYLOAD_TOO_LARGE, message)


def image_format(data: bytes) -> str | None:
    """The image format ``data`` starts with (``"PNG"``, ``"JPEG"``...), or None when it is no image."""
    if data[:4] == _RIFF and data[8:12] == _WEBP:
        return "WEBP"
    return next((name for magic, name in _IMAGE_MAGIC.items() if data.startswith(magic)), None)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from an encoded image's header, without decoding its pixels.

    Args:
        data: Encoded image bytes.

    Returns:
        The size, or None when ``data`` is not an image (no known magic bytes).

    Raises:
        ServingError: INVALID_ARGUMENT when ``data`` starts like an image but its header is unreadable.
    """
    kind = image_format(data)
    if kind is None:
        return None
    try:
        with _READERS[kind](io.BytesIO(data)) as image:
            return image.size
    except Exception as error:  # PIL raises many types for a broken header
        raise invalid_argument(f"unreadable {kind} image header: {error}") from error


def nested_shape(value: object) -> tuple[int, ...]:
    """The shape a nested list claims, following the first element of each level (no copies).

    Ragged lists claim the shape of their first elements; building the tensor rejects them later.
    """
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)


class LimitChecker:
    """Checks one request's inputs against the limits as they are decoded.

    Args:
        limits: The server's limits.
    """

    def __init__(self, limits: RequestLimits):
        self.limits = limits
        self.pixels = 0

    def check_rows(self, rows: int, where: str) -> None:
        """Refuses more than ``max_rows_per_request`` examples in ``where`` (e.g. ``'instances'``)."""
        if rows > self.limits.max_rows_per_request:
            raise too_large(
                f"{where} has {rows} rows, which exceeds --max_rows_per_request={self.limits.max_rows_per_request}"
            )

    def check_numeric(self, shape: tuple[int, ...], name: str) -> None:
        """Checks a numeric input of (claimed) shape [N, d1, ..., dk] before its tensor is built."""
        if not shape:
            return
        self.check_rows(shape[0], f"input '{name}'")
        per_example = math.prod(shape[1:-1]) if len(shape) >= 3 else 1
        self._add(per_example, shape[0], f"input '{name}' of shape {list(shape)}")

    def check_encoded(self, data: bytes, name: str, index: int) -> None:
        """Checks one string element; an encoded image counts its header's width x height."""
        try:
            size = image_size(data)
        except ServingError as error:
            raise ServingError(error.code, f"input '{name}'[{index}]: {error.message}") from error
        if size is not None:
            width, height = size
            self._add(width * height, 1, f"input '{name}'[{index}], a {width}x{height} image,")

    def _add(self, per_example: int, rows: int, what: str) -> None:
        if per_example > self.limits.max_pixels_per_image:
            raise too_large(
                f"{what} has {per_example} pixels per example, which exceeds "
                f"--max_pixels_per_image={self.limits.max_pixels_per_image}"
            )
        self.pixels += per_example * rows
        if self.pixels > self.limits.max_pixels_per_request:
            raise too_large(
                f"the request has at least {self.pixels} pixels, which exceeds "
                f"--max_pixels_per_request={self.limits.max_pixels_per_request}"
            )

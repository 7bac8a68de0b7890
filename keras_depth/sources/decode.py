"""Safe decoding of dataset image files: checks before any pixel is decoded, explicit modes.

Every source that reads image files (RGB PNG/JPEG, 16-bit depth PNG) goes through
this module, so untrusted files are handled the same way everywhere:

- the path must open as a regular file: a missing file, a dangling symbolic link, a
  symbolic-link loop, a directory or a FIFO (which would block the reader) is a
  :class:`~keras_depth.sources.base.RecordError` naming the path;
- the size is read from the file header and checked against ``max_pixels`` *before*
  decoding, so a small file that inflates to gigabytes (a 12000 x 12000 PNG of zeros
  is 420 KB) costs no memory. Pillow's own decompression-bomb guard
  (``Image.MAX_IMAGE_PIXELS``, a process-wide warning at 89 MP and error at 179 MP)
  is bypassed: ``max_pixels`` is the only limit;
- only the formats in ``ACCEPTED_FORMATS`` are parsed;
- colour modes are never converted silently. RGB passes; a palette image is
  expanded and an image whose alpha channel is fully opaque drops it, each reported
  in ``DecodedRgb.conversions`` (ingest counts them in ``stats.json``); an image with
  transparent pixels, a greyscale image or any other mode is a RecordError;
- any decoder failure (corrupt or truncated data) is a RecordError; a truncated
  file is never completed with grey pixels.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageFile

from keras_depth.config import DEFAULT_MAX_IMAGE_PIXELS
from keras_depth.sources.base import RecordError

ACCEPTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "PPM")
DEPTH_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")
UINT16_MAX = 65535
# Conversions reported in DecodedRgb.conversions.
OPAQUE_ALPHA_DROPPED = "opaque_alpha_dropped"
PALETTE_EXPANDED = "palette_expanded"
# Exceptions Pillow raises on malformed data, depending on where the data breaks.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)
_HEADER_PREFIX_BYTES = 16
_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}

ImageSource = str | os.PathLike | bytes

# Truncated files must fail to decode (and be dead-lettered), never be completed with grey pixels.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class DecodedRgb(NamedTuple):
    """An RGB image and what was done to make it RGB.

    Attributes:
        image: uint8 RGB, shape (H, W, 3).
        conversions: Names of the conversions applied (``OPAQUE_ALPHA_DROPPED``,
            ``PALETTE_EXPANDED``); empty when the file was RGB.
    """

    image: np.ndarray
    conversions: tuple[str, ...]


def check_pixel_count(height: int, width: int, max_pixels: int, what: str, name: str) -> None:
    """Raises RecordError when an image of ``height`` x ``width`` pixels is empty or over the limit.

    Sources that read arrays from other containers (``.npy``, ``.mat``) call it with the
    shape from their header, before reading the data.

    Args:
        height: Height in pixels from the header.
        width: Width in pixels from the header.
        max_pixels: The limit (``ingest.max_image_pixels``).
        what: What the image is (``RGB``, ``depth``), for the message.
        name: The file, for the message.
    """
    pixels = height * width
    if pixels <= 0:
        raise RecordError(f"{what} image {name} has no pixels ({width}x{height})")
    if pixels > max_pixels:
        raise RecordError(
            f"{what} image {name} is {width}x{height} = {pixels} pixels, above "
            f"max_image_pixels={max_pixels}; not decoded"
        )


def _open_error(path: Path, what: str, err: OSError) -> RecordError:
    if err.errno == errno.ELOOP:
        return RecordError(f"{what} file {path} is a symbolic link loop")
    if err.errno == errno.ENOENT and path.is_symlink():
        return RecordError(f"{what} file {path} is a dangling symbolic link to {os.readlink(path)!r}")
    if err.errno == errno.ENOENT:
        return RecordError(f"missing {what} file {path}")
    return RecordError(f"cannot open {what} file {path}: {err.strerror or err}")


def open_regular_file(path: str | os.PathLike, what: str) -> BinaryIO:
    """Opens ``path`` for reading after checking (on the open descriptor) that it is a regular file.

    Non-blocking open, so a FIFO is reported instead of blocking the reader.

    Args:
        path: The file.
        what: What the file holds (``RGB``, ``depth``), for the message.

    Returns:
        The open binary file; the caller closes it.

    Raises:
        RecordError: naming the path when it is missing, a dangling symbolic link, a
            symbolic-link loop, unreadable, or not a regular file.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise _open_error(path, what, err) from err
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _FILE_KINDS.get(stat.S_IFMT(mode), "of an unknown type")
        raise RecordError(f"{what} file {path} is not a regular file: it is {kind}")
    return os.fdopen(fd, "rb")


def _parse_header(fp: BinaryIO, name: str, what: str) -> ImageFile.ImageFile:
    """Opens the image in ``fp`` with the plugin of its format, without Pillow's global size guard."""
    Image.init()  # registers every format plugin (idempotent)
    prefix = fp.read(_HEADER_PREFIX_BYTES)
    for image_format in ACCEPTED_FORMATS:
        factory, accept = Image.OPEN[image_format]
        accepted = accept is None or accept(prefix)
        if not accepted or isinstance(accepted, str):  # a str is Pillow's reason for refusing
            continue
        fp.seek(0)
        try:
            return factory(fp, name)
        except _DECODE_ERRORS as err:
            raise RecordError(f"unreadable {what} image {name}: bad {image_format} header ({err})") from err
    raise RecordError(
        f"unreadable {what} image {name}: not a {'/'.join(ACCEPTED_FORMATS)} file (starts with {prefix[:8]!r})"
    )


@contextmanager
def _opened(source: ImageSource, what: str, max_pixels: int) -> Iterator[tuple[ImageFile.ImageFile, str]]:
    """The size-checked, not yet decoded image of ``source`` and its name; closes the file after."""
    if isinstance(source, bytes):
        name, fp = f"<{what} bytes>", io.BytesIO(source)
    else:
        name, fp = str(source), open_regular_file(source, what)
    with fp:
        image = _parse_header(fp, name, what)
        width, height = image.size
        check_pixel_count(height, width, max_pixels, what, name)
        yield image, name


def _decode(image: ImageFile.ImageFile, name: str, what: str) -> None:
    try:
        image.load()
    except _DECODE_ERRORS as err:
        raise RecordError(f"unreadable {what} image {name}: {err}") from err


def _rgb_from_alpha(image: Image.Image, name: str, what: str) -> np.ndarray:
    """uint8 RGB of an image with an alpha channel that is fully opaque, else RecordError."""
    rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
    transparent = int((rgba[..., 3] < 255).sum())
    if transparent:
        raise RecordError(
            f"{what} image {name} has {transparent} of {rgba[..., 3].size} pixels transparent "
            f"(alpha < 255; mode {image.mode}); composite it onto a background and save it as RGB"
        )
    return np.ascontiguousarray(rgba[..., :3])


def decode_rgb(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, what: str = "RGB"
) -> DecodedRgb:
    """Decodes an RGB image file (PNG, JPEG, ...) after checking its header.

    Args:
        source: A path or the file's bytes.
        max_pixels: Images with more pixels (width x height from the header) are refused
            before decoding.
        what: What the image is, for messages.

    Returns:
        uint8 RGB (H, W, 3) and the conversions applied: a palette is expanded
        (``PALETTE_EXPANDED``), a fully opaque alpha channel dropped (``OPAQUE_ALPHA_DROPPED``).

    Raises:
        RecordError: naming the file when it cannot be opened, is over ``max_pixels``,
            corrupt or truncated, has transparent pixels, or is greyscale or another
            non-colour mode.
    """
    with _opened(source, what, max_pixels) as (image, name):
        _decode(image, name, what)
        if image.mode == "RGB":
            return DecodedRgb(np.asarray(image, dtype=np.uint8), ())
        if image.mode == "P" and "transparency" not in image.info:
            return DecodedRgb(np.asarray(image.convert("RGB"), dtype=np.uint8), (PALETTE_EXPANDED,))
        if image.mode in ("RGBA", "PA", "P"):
            conversions = (PALETTE_EXPANDED,) if image.mode != "RGBA" else ()
            return DecodedRgb(_rgb_from_alpha(image, name, what), (*conversions, OPAQUE_ALPHA_DROPPED))
        raise RecordError(
            f"{what} image {name} has mode {image.mode!r} with bands {image.getbands()}; expected "
            "colour RGB (greyscale and other modes are not converted: save the file as RGB)"
        )


def decode_depth16(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, what: str = "depth"
) -> np.ndarray:
    """Decodes a single-channel 16-bit image (a depth PNG) to its stored values.

    Args:
        source: A path or the file's bytes.
        max_pixels: Images with more pixels are refused before decoding.
        what: What the image is, for messages.

    Returns:
        uint16 (H, W): the stored values, unscaled.

    Raises:
        RecordError: naming the file when it cannot be opened, is over ``max_pixels``,
            corrupt or truncated, or not single-channel 16-bit.
    """
    with _opened(source, what, max_pixels) as (image, name):
        _decode(image, name, what)
        if image.mode in DEPTH_MODES_16BIT:
            return np.asarray(image).astype(np.uint16)
        if image.mode == "I" and image.format == "PNG":
            # Some Pillow versions open 16-bit greyscale PNGs as 32-bit "I".
            raw = np.asarray(image)
            if raw.size and (raw.min() < 0 or raw.max() > UINT16_MAX):
                raise RecordError(f"{what} image {name} has values outside the 16-bit range")
            return raw.astype(np.uint16)
        raise RecordError(
            f"{what} image {name} must be single-channel 16-bit, got mode {image.mode!r} "
            f"with bands {image.getbands()}"
        )


def depth_to_metres(
    stored: np.ndarray, depth_scale: float, invalid_values: tuple[int, ...] = (0,)
) -> np.ndarray:
    """Stored depth values to metres, with the values that mean "no measurement" set to 0.

    Args:
        stored: Stored values, e.g. uint16 (H, W) from :func:`decode_depth16`.
        depth_scale: Stored value per metre (1000 for millimetres, 256 for KITTI).
        invalid_values: Stored values meaning invalid (7-Scenes: 0 and 65535).

    Returns:
        float32 (H, W) metres; 0 = invalid.
    """
    metres = stored.astype(np.float32) * np.float32(1.0 / depth_scale)
    metres[np.isin(stored, invalid_values)] = 0.0
    return metres

"""The shared image decoder: header checks before decoding, explicit modes, unusual files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from keras_depth.sources.base import RecordError
from keras_depth.sources.decode import (
    OPAQUE_ALPHA_DROPPED,
    PALETTE_EXPANDED,
    check_pixel_count,
    decode_depth16,
    decode_rgb,
    depth_to_metres,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def encoded(image: Image.Image, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def test_rgb_png_decodes_exactly_from_bytes_and_from_a_path(tmp_path):
    data = encoded(Image.fromarray(RGB))
    (tmp_path / "a.png").write_bytes(data)
    for source in (data, tmp_path / "a.png", str(tmp_path / "a.png")):
        image, conversions = decode_rgb(source)
        np.testing.assert_array_equal(image, RGB)
        assert image.dtype == np.uint8 and conversions == ()


def test_rgb_jpeg_decodes_to_rgb():
    image, conversions = decode_rgb(encoded(Image.fromarray(RGB), "JPEG", quality=95))
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8 and conversions == ()


def test_opaque_alpha_is_dropped_and_reported():
    rgba = np.dstack([RGB, np.full((6, 8), 255, np.uint8)])
    image, conversions = decode_rgb(encoded(Image.fromarray(rgba)))
    np.testing.assert_array_equal(image, RGB)
    assert conversions == (OPAQUE_ALPHA_DROPPED,)


def test_transparent_pixels_are_refused_with_their_count():
    alpha = np.full((6, 8), 255, np.uint8)
    alpha[0, :3] = 0
    with pytest.raises(RecordError, match=r"<RGB bytes> has 3 of 48 pixels transparent"):
        decode_rgb(encoded(Image.fromarray(np.dstack([RGB, alpha]))))


def test_palette_images_are_expanded_and_reported():
    palette = Image.fromarray(RGB).quantize(colors=16)
    image, conversions = decode_rgb(encoded(palette))
    np.testing.assert_array_equal(image, np.asarray(palette.convert("RGB")))
    assert conversions == (PALETTE_EXPANDED,)


def test_palette_transparency_is_checked_like_alpha():
    palette = Image.fromarray(RGB).quantize(colors=16)
    used = np.asarray(palette)[0, 0]
    with pytest.raises(RecordError, match="transparent"):
        decode_rgb(encoded(palette, transparency=int(used)))
    unused = next(index for index in range(256) if index not in np.asarray(palette))
    _, conversions = decode_rgb(encoded(palette, transparency=unused))
    assert conversions == (PALETTE_EXPANDED, OPAQUE_ALPHA_DROPPED)


@pytest.mark.parametrize(
    ("image", "mode"),
    [
        (Image.fromarray(RGB[..., 0]), "L"),
        (Image.fromarray(RGB[..., :2]).convert("LA"), "LA"),
        (Image.fromarray(RGB).convert("1"), "1"),
        (Image.fromarray(RGB[..., 0].astype(np.uint16)), "I;16"),
    ],
)
def test_greyscale_images_are_refused_not_converted(image, mode):
    with pytest.raises(RecordError, match=f"has mode '{mode}'.*save the file as RGB"):
        decode_rgb(encoded(image))


def test_cmyk_jpeg_is_refused():
    with pytest.raises(RecordError, match="mode 'CMYK'"):
        decode_rgb(encoded(Image.fromarray(RGB).convert("CMYK"), "JPEG"))


def test_depth16_keeps_the_stored_values():
    stored = RNG.integers(0, 65536, (6, 8), dtype=np.uint16)
    stored[0, :2] = (0, 65535)
    raw = decode_depth16(encoded(Image.fromarray(stored)))
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, stored)


@pytest.mark.parametrize("image", [Image.fromarray(RGB), Image.fromarray(RGB[..., 0])])
def test_depth_must_be_single_channel_16_bit(image):
    with pytest.raises(RecordError, match="must be single-channel 16-bit"):
        decode_depth16(encoded(image))


def test_depth_to_metres_zeroes_the_invalid_values():
    stored = np.array([[0, 1000, 65535, 2500]], np.uint16)
    np.testing.assert_allclose(depth_to_metres(stored, 1000.0, (0, 65535)), [[0.0, 1.0, 0.0, 2.5]])
    np.testing.assert_allclose(depth_to_metres(stored, 1000.0), [[0.0, 1.0, 65.535, 2.5]])


def test_size_over_the_limit_is_refused_before_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    data = encoded(Image.fromarray(RGB))
    with pytest.raises(RecordError, match=r"is 8x6 = 48 pixels, above max_image_pixels=47; not decoded"):
        decode_rgb(data, max_pixels=47)
    with pytest.raises(RecordError, match=r"depth image <depth bytes> is 8x6 = 48 pixels"):
        decode_depth16(encoded(Image.fromarray(RGB[..., 0].astype(np.uint16))), max_pixels=47)


def test_pillow_decompression_bomb_guard_is_not_the_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would refuse 48 pixels
    image, _ = decode_rgb(encoded(Image.fromarray(RGB)), max_pixels=48)
    assert image.shape == (6, 8, 3)


def test_empty_size_is_refused():
    with pytest.raises(RecordError, match=r"has no pixels \(0x6\)"):
        check_pixel_count(6, 0, 100, "RGB", "x.png")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a PNG/JPEG/TIFF/BMP/PPM file"),
        (b"GIF89a" + bytes(100), "not a PNG/JPEG/TIFF/BMP/PPM file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "unreadable RGB image <RGB bytes>"),
    ],
)
def test_unaccepted_and_corrupt_data_are_record_errors(data, reason):
    with pytest.raises(RecordError, match=reason):
        decode_rgb(data)


def test_truncated_data_is_never_completed():
    data = encoded(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(RecordError, match="truncated"):
        decode_rgb(data[: len(data) // 2])


def test_unusual_files_are_record_errors_naming_the_path(tmp_path: Path):
    (tmp_path / "loop.png").symlink_to("loop.png")
    (tmp_path / "dangling.png").symlink_to("gone.png")
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "folder.png").mkdir()
    expected = {
        "loop.png": "is a symbolic link loop",
        "dangling.png": "is a dangling symbolic link to 'gone.png'",
        "fifo.png": "is not a regular file: it is a FIFO",
        "folder.png": "is not a regular file: it is a directory",
        "missing.png": "missing RGB file",
    }
    for name, reason in expected.items():
        with pytest.raises(RecordError, match=reason) as info:
            decode_rgb(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)

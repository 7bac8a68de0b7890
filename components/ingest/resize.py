"""Brings a record to the storage size: aspect-preserving resize to cover, then centre crop.

The image is resized with PIL's bilinear filter (which widens its support when
shrinking, so downscaling averages like an area filter); depth is resized with
nearest neighbour, so a valid pixel is never mixed with a hole (0) or with a
surface at another distance. Intrinsics follow the pixel-centre convention PIL
uses: a pixel coordinate u becomes (u + 0.5) * s - 0.5 - crop offset.

:func:`stored_frame_box` inverts the geometry for evaluation: where the stored frame lies in the
source image (the resize maps pixel edges linearly onto pixel edges).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from keras_depth.sources.base import RawRecord


def cover_size(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int]:
    """The smallest aspect-preserving (height, width) that covers the target size.

    Args:
        height: Source height in pixels.
        width: Source width in pixels.
        target_height: Storage height in pixels.
        target_width: Storage width in pixels.

    Returns:
        (height, width) in pixels, each at least the target's.
    """
    scale = max(target_height / height, target_width / width)
    return max(target_height, round(height * scale)), max(target_width, round(width * scale))


def storage_layout(
    height: int, width: int, target_height: int, target_width: int
) -> tuple[int, int, int, int]:
    """The resize and crop that bring a ``height x width`` source to the storage size.

    Args:
        height: Source height in pixels.
        width: Source width in pixels.
        target_height: Storage height in pixels.
        target_width: Storage width in pixels.

    Returns:
        (resized_height, resized_width, top, left): the :func:`cover_size` and the offsets in resized
        pixels of the centred ``target_height x target_width`` crop.
    """
    resized_height, resized_width = cover_size(height, width, target_height, target_width)
    return (
        resized_height,
        resized_width,
        (resized_height - target_height) // 2,
        (resized_width - target_width) // 2,
    )


def stored_frame_box(
    height: int, width: int, target_height: int, target_width: int
) -> tuple[float, float, float, float]:
    """Where the stored frame lies in its ``height x width`` source image.

    Args:
        height: Source height in pixels.
        width: Source width in pixels.
        target_height: Storage height in pixels.
        target_width: Storage width in pixels.

    Returns:
        (top, left, bottom, right) in source pixel-edge coordinates (the source spans [0, height] x
        [0, width]): stored row edge y lies at source row ``top + y * (bottom - top) / target_height``,
        likewise columns.
    """
    resized_height, resized_width, top, left = storage_layout(height, width, target_height, target_width)
    rows_per_pixel, cols_per_pixel = height / resized_height, width / resized_width
    return (
        top * rows_per_pixel,
        left * cols_per_pixel,
        (top + target_height) * rows_per_pixel,
        (left + target_width) * cols_per_pixel,
    )


def fit_to_storage(record: RawRecord, target_height: int, target_width: int) -> RawRecord:
    """Resizes and centre-crops a validated record to exactly the storage size.

    Args:
        record: A record that passed ``validate_record``: image uint8 (H, W, 3),
            depth metres (H, W).
        target_height: Storage height in pixels.
        target_width: Storage width in pixels.

    Returns:
        The record with image uint8 (target_height, target_width, 3), depth float32
        metres (target_height, target_width) and intrinsics in stored-image pixels.
    """
    height, width = record.depth.shape
    resized_height, resized_width, top, left = storage_layout(height, width, target_height, target_width)
    image, depth = record.image, np.asarray(record.depth, dtype=np.float32)
    if (resized_height, resized_width) != (height, width):
        size = (resized_width, resized_height)
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        depth = np.asarray(Image.fromarray(depth).resize(size, Image.Resampling.NEAREST))
    intrinsics = record.intrinsics
    if intrinsics is not None:
        scale_x, scale_y = resized_width / width, resized_height / height
        fx, fy, cx, cy = intrinsics
        intrinsics = (
            fx * scale_x,
            fy * scale_y,
            (cx + 0.5) * scale_x - 0.5 - left,
            (cy + 0.5) * scale_y - 0.5 - top,
        )
    return replace(
        record,
        image=np.ascontiguousarray(image[top : top + target_height, left : left + target_width]),
        depth=np.ascontiguousarray(depth[top : top + target_height, left : left + target_width]),
        intrinsics=intrinsics,
    )

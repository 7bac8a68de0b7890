"""Native-resolution ground truth: where the network's window lies in the source depth map.

Ingest stores every test record twice (``keras_depth.data.schema``): the frame at the storage size
(aspect-preserving resize to cover, centre crop; what the networks see) and the source's depth map
untouched at its native resolution (``depth_native/*``, e.g. 480 x 640 NYU, 375 x 1242 KITTI), with
the stored frame's box in native pixel-edge coordinates (``components.ingest.resize.stored_frame_box``).

The networks see the centre ``input_height x input_width`` crop of the stored frame (offsets
``(H - h) // 2``, ``(W - w) // 2``, as ``keras_depth.augment.center_crop_pair``). The storage resize
maps pixel edges linearly onto pixel edges, so that crop's edges map into the native map through the
frame box; each is rounded to the nearest native pixel edge (at most half a native pixel off), which
gives the :class:`Window` of native pixels the prediction is upsampled onto. The ground truth scored
is the native depth of that window, with every pixel outside the evaluation crop (``evaluate.crop``,
applied to the whole native map, e.g. NYU rows 45:471, columns 41:601 of 480 x 640) set to 0
(invalid). No ground-truth value is ever resampled.

A record without native depth (ingested before native ground truth was stored) is scored on its
stored frame instead: frame box (0, 0, H, W), so the window is exactly the centre crop and the
evaluation crop applies at the stored size, the protocol of earlier versions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keras_depth.metrics import crop_mask


@dataclass(frozen=True)
class Window:
    """A box of native pixels, half-open: rows [top, bottom), columns [left, right).

    Attributes:
        top: First row.
        bottom: End row (exclusive).
        left: First column.
        right: End column (exclusive).
    """

    top: int
    bottom: int
    left: int
    right: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.bottom - self.top, self.right - self.left


def _nearest_edge(coordinate: float) -> int:
    """The pixel edge nearest ``coordinate`` (halves round up, unlike Python's ``round``)."""
    return math.floor(coordinate + 0.5)


def _native_span(
    box_start: float, box_end: float, frame_size: int, input_size: int, native_size: int
) -> tuple[int, int]:
    """The native [first, end) pixels of the centre ``input_size`` of a ``frame_size`` axis."""
    first = (frame_size - input_size) // 2
    native_per_stored = (box_end - box_start) / frame_size
    start = _nearest_edge(box_start + first * native_per_stored)
    end = _nearest_edge(box_start + (first + input_size) * native_per_stored)
    return max(start, 0), min(end, native_size)


def input_window(
    frame_box: Sequence[float],
    frame_size: tuple[int, int],
    input_size: tuple[int, int],
    native_size: tuple[int, int],
) -> Window:
    """The native pixels covered by the networks' centre input crop of the stored frame.

    Args:
        frame_box: (top, left, bottom, right) of the stored frame in native pixel-edge coordinates.
        frame_size: (height, width) of the stored frame in pixels.
        input_size: (height, width) of the network input (the centre crop) in stored pixels.
        native_size: (height, width) of the native depth map in pixels.

    Returns:
        The window, clipped to the native map.
    """
    top, left, bottom, right = (float(value) for value in frame_box)
    rows = _native_span(top, bottom, frame_size[0], input_size[0], native_size[0])
    cols = _native_span(left, right, frame_size[1], input_size[1], native_size[1])
    return Window(top=rows[0], bottom=rows[1], left=cols[0], right=cols[1])


def window_ground_truth(native_depth: np.ndarray, window: Window, crop: str) -> np.ndarray:
    """The native ground truth of a window, 0 outside the evaluation crop.

    Args:
        native_depth: float32 [native H, native W] metres, 0 = invalid.
        window: From :func:`input_window`.
        crop: Evaluation crop name (``keras_depth.metrics.EVAL_CROPS``), applied in native coordinates.

    Returns:
        float32 [window height, window width] metres; values copied unchanged, 0 outside the crop.
    """
    inside = crop_mask(crop, *native_depth.shape)
    rows, cols = slice(window.top, window.bottom), slice(window.left, window.right)
    return np.where(inside[rows, cols], native_depth[rows, cols], np.float32(0.0))

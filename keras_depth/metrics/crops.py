"""Named evaluation crops: the image regions scored by the standard NYU and KITTI protocols.

Each crop is stored as fractions of the image height and width, so it scales to any ground-truth size:

- ``"none"``: the whole image;
- ``"nyu_eigen"``: rows 45:471, columns 41:601 of the 480 x 640 NYU Depth v2 images (Eigen et al.);
- ``"kitti_garg"``: the crop of Garg et al. (2016), used by most KITTI results;
- ``"kitti_eigen"``: the crop of Eigen et al. (2014) on KITTI.

Box edges are ``floor(fraction * size)``, the rounding of the reference KITTI evaluation code. The
protocols define the crops on the ground truth at its native resolution (480 x 640, 375 x 1242), so
pass the native size to apply them as published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Added before flooring so that exact fractions such as 471 / 480 give 471 at 480 rows despite float rounding.
_ROUNDING_SLACK = 1e-6

NYU_HEIGHT = 480
NYU_WIDTH = 640


@dataclass(frozen=True)
class EvalCrop:
    """A crop box as fractions of the image size, half-open: rows [top, bottom), columns [left, right).

    Attributes:
        top: First row, as a fraction of the height.
        bottom: End row (exclusive), as a fraction of the height.
        left: First column, as a fraction of the width.
        right: End column (exclusive), as a fraction of the width.
    """

    top: float
    bottom: float
    left: float
    right: float

    def box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The crop in pixels of a ``height`` x ``width`` image: (top, bottom, left, right)."""
        return (
            _edge(self.top, height),
            _edge(self.bottom, height),
            _edge(self.left, width),
            _edge(self.right, width),
        )


def _edge(fraction: float, size: int) -> int:
    return math.floor(fraction * size + _ROUNDING_SLACK)


EVAL_CROPS: dict[str, EvalCrop] = {
    "none": EvalCrop(top=0.0, bottom=1.0, left=0.0, right=1.0),
    "nyu_eigen": EvalCrop(
        top=45 / NYU_HEIGHT, bottom=471 / NYU_HEIGHT, left=41 / NYU_WIDTH, right=601 / NYU_WIDTH
    ),
    "kitti_garg": EvalCrop(top=0.40810811, bottom=0.99189189, left=0.03594771, right=0.96405229),
    "kitti_eigen": EvalCrop(top=0.3324324, bottom=0.91351351, left=0.0359477, right=0.96405229),
}


def crop_mask(name: str, height: int, width: int) -> np.ndarray:
    """The pixels of a ``height`` x ``width`` image inside the named evaluation crop.

    Args:
        name: One of ``EVAL_CROPS`` (``"none"``, ``"nyu_eigen"``, ``"kitti_garg"``, ``"kitti_eigen"``).
        height: Ground-truth image height in pixels.
        width: Ground-truth image width in pixels.

    Returns:
        Bool array of shape (height, width), True inside the crop; usable as ``valid_mask`` of
        :func:`~keras_depth.metrics.compute_depth_metrics`.

    Raises:
        ValueError: for an unknown ``name``, listing the valid names.
    """
    if name not in EVAL_CROPS:
        raise ValueError(f"unknown evaluation crop {name!r}; valid names: {', '.join(EVAL_CROPS)}")
    top, bottom, left, right = EVAL_CROPS[name].box(height, width)
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask

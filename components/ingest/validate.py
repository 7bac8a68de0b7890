"""Checks that a decoded record can be stored: shapes, dtypes and depth values.

Every failure raises :class:`~keras_depth.sources.base.RecordError` whose text is
the dead-letter reason, so a reader of ``dead_letter.jsonl`` sees what was wrong
without rerunning anything.
"""

from __future__ import annotations

import numpy as np

from keras_depth.sources.base import RawRecord, RecordError


def validate_record(record: RawRecord) -> None:
    """Raises RecordError unless ``record`` is storable.

    A storable record has an image of dtype uint8 and shape (H, W, 3), a real-valued
    depth map of shape (H, W) in metres with no NaN, no inf and no negative value,
    and at least one valid (> 0) depth pixel.

    Args:
        record: A record as returned by ``DepthSource.load``.

    Raises:
        RecordError: naming the first check that failed and the offending values.
    """
    image, depth = np.asarray(record.image), np.asarray(record.depth)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise RecordError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if depth.shape != image.shape[:2]:
        raise RecordError(f"depth shape {depth.shape} does not match image size {image.shape[:2]} (H, W)")
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise RecordError(f"depth must be real-valued metres, got dtype {depth.dtype}")
    num_nan, num_inf = int(np.isnan(depth).sum()), int(np.isinf(depth).sum())
    if num_nan or num_inf:
        found = [f"{count} {name}" for count, name in ((num_nan, "NaN"), (num_inf, "inf")) if count]
        raise RecordError(f"depth has non-finite pixels: {' and '.join(found)} of {depth.size}")
    num_negative = int((depth < 0).sum())
    if num_negative:
        raise RecordError(f"depth has {num_negative} negative pixels of {depth.size}")
    if not (depth > 0).any():
        raise RecordError(f"depth has no valid pixel (all {depth.size} are 0)")

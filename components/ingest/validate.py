"""Checks that a decoded record can be stored: shapes, dtypes and depth values.

Every failure raises :class:`~keras_depth.sources.base.RecordError` whose text is
the dead-letter reason, so a reader of ``dead_letter.jsonl`` sees what was wrong
without rerunning anything.
"""

from __future__ import annotations

import numpy as np

from keras_depth.sources.base import RawRecord, RecordError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def validate_record(record: RawRecord) -> None:
    """Raises RecordError unless ``record`` is storable.

    A storable record has an image of dtype uint8 and shape (H, W, 3), a real-valued
    depth map of shape (H, W) in metres with no NaN, no inf, no negative value and no
    value beyond float32 (the stored type), and at least one pixel that is still valid
    (> 0) as float32.

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
    wider = np.issubdtype(depth.dtype, np.floating) and np.finfo(depth.dtype).bits > 32
    num_huge = int((depth > FLOAT32_MAX).sum()) if wider else 0
    if num_huge:
        raise RecordError(f"depth has {num_huge} pixels above {FLOAT32_MAX:.4g} m, beyond float32 storage")
    if not (depth.astype(np.float32) > 0).any():
        tiny = " as float32 (the positive ones are below its smallest value)" if (depth > 0).any() else ""
        raise RecordError(f"depth has no valid pixel (all {depth.size} are 0){tiny}")

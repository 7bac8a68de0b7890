"""TFRecord schema and the tf.data reader.

The reader's functions are imported on first use (module ``__getattr__``), so that the modules of
this package without TensorFlow (``layout``, ``tfrecord_format``, ``schema``'s encoder) can be
imported by ingest workers without importing TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["count_records", "make_dataset", "make_eval_dataset"]

# The functions of keras_depth.data.reader, declared here (no value: __getattr__ provides them).
count_records: Callable[..., int]
make_dataset: Callable[..., Any]
make_eval_dataset: Callable[..., Any]


def __getattr__(name: str):
    """``count_records``, ``make_dataset`` and ``make_eval_dataset`` of :mod:`keras_depth.data.reader`."""
    if name in __all__:
        return getattr(importlib.import_module("keras_depth.data.reader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

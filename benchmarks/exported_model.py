"""An exported serving SavedModel of a preset's untrained network, and timing calls to it in process.

:func:`export_untrained` writes the SavedModel exactly as the export stage does
(:func:`components.export.signatures.write_saved_model`) around a freshly built, seeded fine network:
the weights do not matter for speed, the graph (preprocessing, coarse and fine networks, upsampling)
is the served one. :func:`call_latencies_ms` times it loaded as the server loads it
(:class:`serving.servable.Servable`), computing the outputs a REST request gets by default.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from components.export.signatures import write_saved_model
from components.serving_contract import ServingGeometry
from keras_depth.models import build_coarse_model, build_fine_model
from serving.request_codec import select_outputs
from serving.rest_api import ApiOptions
from serving.servable import Servable

SEED = 0


def untrained_fine_model(config: Any) -> keras.Model:
    """``config.model``'s fine network (the coarse one inside), untrained, weights seeded by :data:`SEED`."""
    keras.utils.set_random_seed(SEED)
    return build_fine_model(config.model, build_coarse_model(config.model))


def export_untrained(config: Any, export_dir: Path) -> Path:
    """Exports :func:`untrained_fine_model` as a serving SavedModel, as the export stage does.

    Args:
        config: A ``PipelineConfig`` (``model``, ``ingest`` storage size, ``export.upsample_to_input``).
        export_dir: The version directory to create, e.g. ``<base>/<model>/1``.

    Returns:
        ``export_dir``.
    """
    fine = untrained_fine_model(config)
    geometry = ServingGeometry(
        frame_height=config.ingest.storage_height,
        frame_width=config.ingest.storage_width,
        input_height=config.model.input_height,
        input_width=config.model.input_width,
    )
    return write_saved_model(fine, geometry, config.export.upsample_to_input, export_dir)


def default_outputs(servable: Servable, signature_name: str) -> tuple[str, ...]:
    """The outputs the server computes for a request without ``output_filter`` (its default options)."""
    return select_outputs(servable.signature(signature_name).output_names, None, ApiOptions.opt_in_outputs)


def latencies_ms(call: Callable[[], object], calls: int, warmup: int) -> np.ndarray:
    """Milliseconds of each of ``calls`` calls of ``call`` after ``warmup`` untimed ones.

    ``call`` must wait for its result (fetch it to numpy): GPU kernels run asynchronously.

    Returns:
        float64 [calls] latencies in milliseconds.
    """
    for _ in range(warmup):
        call()
    latencies = np.empty(calls)
    for index in range(calls):
        started = time.perf_counter()
        call()
        latencies[index] = time.perf_counter() - started
    return latencies * 1e3


def call_latencies_ms(
    servable: Servable, signature_name: str, inputs: Mapping[str, np.ndarray], calls: int, warmup: int
) -> np.ndarray:
    """Milliseconds of each of ``calls`` calls of a signature (outputs fetched to numpy), after ``warmup``.

    Args:
        servable: The loaded SavedModel version.
        signature_name: The signature to call.
        inputs: Its inputs, e.g. ``{"images": float32 [N, H, W, 3]}``.
        calls: Timed calls.
        warmup: Untimed calls first (tracing the pruned function, warming caches).

    Returns:
        float64 [calls] latencies in milliseconds.
    """
    outputs = default_outputs(servable, signature_name)
    return latencies_ms(lambda: servable.run(signature_name, inputs, outputs), calls, warmup)

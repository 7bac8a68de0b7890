"""The evaluate stage: the paper's metrics on the test split and the blessing decision.

``STAGE`` is defined here, importing only configuration, so that loading a pipeline config (which
imports :mod:`components.evaluate.config`) does not load TensorFlow; the work is in
:mod:`components.evaluate.component`, imported when the stage runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from components.base import StageContext, StageDefinition


def parameters(config: Any) -> dict:
    """The settings that determine the evaluate output (part of its fingerprint).

    Args:
        config: The resolved ``PipelineConfig``.

    Returns:
        ``config.evaluate`` as a dict, plus ``export.model_name`` and ``export.serving_root`` when the
        served model takes part in the blessing (``compare_with_served``).
    """
    values = asdict(config.evaluate)
    if config.evaluate.compare_with_served:
        values["served_model_name"] = config.export.model_name
        values["serving_root"] = config.export.serving_root
    return values


def run(ctx: StageContext) -> dict:
    """Runs :func:`components.evaluate.component.run` (imported here: it loads TensorFlow)."""
    from components.evaluate.component import run as run_evaluate

    return run_evaluate(ctx)


STAGE = StageDefinition(name="evaluate", inputs=("ingest", "train"), parameters=parameters, run=run)

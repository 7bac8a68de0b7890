"""The evaluate stage: the paper's metrics on the test split and the blessing decision.

The work is in :mod:`components.evaluate.component`, imported when the stage runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from components.base import StageDefinition, run_from


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


STAGE = StageDefinition(
    name="evaluate",
    inputs=("ingest", "train"),
    parameters=parameters,
    run=run_from("components.evaluate.component"),
)

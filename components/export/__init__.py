"""The export stage: the serving SavedModel (pushed to the serving root when blessed) and a TFLite model.

The work is in :mod:`components.export.component`, imported when the stage runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from components.base import StageDefinition, run_from


def parameters(config: Any) -> dict:
    """``config.export`` as a dict: the settings that determine the export output (its fingerprint)."""
    return asdict(config.export)


STAGE = StageDefinition(
    name="export",
    inputs=("train", "evaluate"),
    parameters=parameters,
    run=run_from("components.export.component"),
)

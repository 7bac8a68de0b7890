"""The export stage: SavedModel with serving signatures, pushed to the serving root when blessed.

``STAGE`` is defined here, importing only configuration, so that loading a pipeline config (which
imports :mod:`components.export.config`) does not load TensorFlow; the work is in
:mod:`components.export.component`, imported when the stage runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from components.base import StageContext, StageDefinition


def parameters(config: Any) -> dict:
    """``config.export`` as a dict: the settings that determine the export output (its fingerprint)."""
    return asdict(config.export)


def run(ctx: StageContext) -> dict:
    """Runs :func:`components.export.component.run` (imported here: it loads TensorFlow)."""
    from components.export.component import run as run_export

    return run_export(ctx)


STAGE = StageDefinition(name="export", inputs=("train", "evaluate"), parameters=parameters, run=run)

"""The train stage: coarse network first, then the fine network with the coarse one frozen.

The work is in :mod:`components.train.component`, imported when the stage runs.
"""

from __future__ import annotations

import dataclasses

from components.base import StageDefinition, run_from

# Config sections whose values determine the trained models (the stage's fingerprint).
PARAMETER_SECTIONS = ("model", "optimizer", "loss", "augment", "data", "train")
# TrainConfig fields that only change how training is executed, not its result.
EXECUTION_ONLY_FIELDS = ("checkpoint_every_steps",)


def parameters(config) -> dict:
    """The config sections that define the stage's output (see ``PARAMETER_SECTIONS``)."""
    params = {section: dataclasses.asdict(getattr(config, section)) for section in PARAMETER_SECTIONS}
    for name in EXECUTION_ONLY_FIELDS:
        del params["train"][name]
    return params


STAGE = StageDefinition(
    name="train", inputs=("ingest",), parameters=parameters, run=run_from("components.train.component")
)

__all__ = ["STAGE"]

"""The train stage: coarse network first, then the fine network with the coarse one frozen."""

from components.base import StageDefinition
from components.train.component import parameters, run

STAGE = StageDefinition(name="train", inputs=("ingest",), parameters=parameters, run=run)

__all__ = ["STAGE"]

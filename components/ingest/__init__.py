"""The ingest stage: dataset source -> validated, resized, split gzip TFRecord shards (Apache Beam).

Output (``<stage>/<fingerprint>/``): ``{train,val,test}/data-SSSSS-of-NNNNN.tfrecord.gz``
in the schema of :mod:`keras_depth.data.schema`, ``stats.json``,
``dead_letter.jsonl`` and ``contact_sheet.png``.

``STAGE`` imports only configuration, so that loading a pipeline config (which
imports :mod:`components.ingest.config`) loads neither Beam nor TensorFlow; the
work is in :mod:`components.ingest.component`, imported when the stage runs.
"""

from __future__ import annotations

from components.base import StageContext, StageDefinition
from components.ingest.config import output_parameters


def run(context: StageContext) -> dict:
    """Runs the ingest stage (see :func:`components.ingest.component.run`)."""
    from components.ingest.component import run as run_ingest

    return run_ingest(context)


STAGE = StageDefinition(name="ingest", inputs=(), parameters=output_parameters, run=run)

__all__ = ["STAGE"]

"""The ingest stage: dataset source -> validated, resized, split gzip TFRecord shards (Apache Beam).

Output (``<stage>/<fingerprint>/``): ``{train,val,test}/data-SSSSS-of-NNNNN.tfrecord.gz``
in the schema of :mod:`keras_depth.data.schema`, ``stats.json``,
``dead_letter.jsonl`` and ``contact_sheet.png``. The work is in :mod:`components.ingest.component`.
"""

from __future__ import annotations

from components.base import StageDefinition, run_from
from components.ingest.config import output_parameters

STAGE = StageDefinition(
    name="ingest", inputs=(), parameters=output_parameters, run=run_from("components.ingest.component")
)

__all__ = ["STAGE"]

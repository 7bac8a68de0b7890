"""The ingest artifact as an MLflow dataset: the run's dataset input, shown in the runs table.

:func:`ingest_dataset` describes a completed ingest artifact: name = its sources (``synthetic_rooms``,
``nyu_labeled+kitti_depth``), digest = its fingerprint (the same data gives the same digest in every
run), source = its directory, schema = one record as the TFRecord schema stores it (``image`` uint8
[H, W, 3], ``depth`` float32 [H, W] metres), profile = its counts (records read and failed, records per
split). The runner logs it into each pipeline run that ingests or reads the artifact, also when ingest
itself was reused (:func:`log_dataset`).
"""

from __future__ import annotations

import json
from typing import Any

import mlflow
import numpy as np
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.types import Schema, TensorSpec

from components.base import Artifact
from components.tracking import best_effort

# Context tag of the run's dataset input: the one artifact feeds the train, val and test splits.
DATASET_CONTEXT = "ingest"
RECORD_SCHEMA = Schema(
    [
        TensorSpec(np.dtype(np.uint8), (-1, -1, 3), "image"),
        TensorSpec(np.dtype(np.float32), (-1, -1), "depth"),
    ]
)


class IngestDataset(MetaDataset):
    """An MLflow dataset that describes data it does not hold: a schema and a profile of counts.

    Args:
        source: Where the data is (the ingest artifact's directory).
        name: The dataset's name.
        digest: Its digest (the ingest fingerprint).
        profile: Counts by name (JSON-serialisable).
    """

    def __init__(self, source: LocalArtifactDatasetSource, name: str, digest: str, profile: dict[str, Any]):
        self._profile = profile
        super().__init__(source=source, name=name, digest=digest, schema=RECORD_SCHEMA)

    @property
    def profile(self) -> dict[str, Any]:
        """The counts: ``records_read``, ``records_failed`` and records per split."""
        return self._profile

    def to_dict(self) -> dict[str, str]:
        """MetaDataset's fields (name, digest, source, schema) plus the profile as JSON."""
        return {**super().to_dict(), "profile": json.dumps(self._profile)}


def dataset_name(artifact: Artifact) -> str:
    """The sources the artifact was ingested from, joined by ``+`` (its ``metadata.json`` parameters)."""
    parameters = artifact.metadata.get("parameters", {})
    sources = [feed["source"] for feed in parameters.get("sources", [])] or [
        parameters.get("source", "ingest")
    ]
    return "+".join(sources)


def ingest_dataset(artifact: Artifact) -> IngestDataset:
    """The MLflow dataset of a completed ingest artifact (see the module docstring)."""
    return IngestDataset(
        source=LocalArtifactDatasetSource(str(artifact.path)),
        name=dataset_name(artifact),
        digest=artifact.fingerprint,
        profile=artifact.metadata.get("counts", {}),
    )


@best_effort
def log_dataset(artifact: Artifact) -> None:
    """Logs the ingest artifact as a dataset input of the active MLflow run (context ``ingest``)."""
    mlflow.log_input(ingest_dataset(artifact), context=DATASET_CONTEXT)

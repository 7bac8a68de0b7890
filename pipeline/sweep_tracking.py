"""A sweep in MLflow: one parent run, one child run per variant, the comparison logged to the parent.

- The parent (:func:`sweep_parent_run`) is created with the MLflow client and is not the active run, so
  each variant's pipeline run (``pipeline.tracking.pipeline_run``) starts as usual, as its child
  (:class:`SweepChild`): tag ``mlflow.parentRunId``, the swept values as params and tags
  ``sweep.<key>``, named like ``loss.lam=0.5``. The parent's lifecycle (store fallback,
  ``mlflow.required``, the open-run record, FINISHED/FAILED/KILLED) is the pipeline run's
  (``pipeline.tracking.tracked_run``).
- When the variants have ended, :func:`child_run_ids` finds the children, :func:`complete_child_metrics`
  logs to each the compared metrics it lacks, and :func:`log_comparison` logs the comparison files as
  the parent's artifacts and its Markdown table as the parent's description. These three are
  best-effort (``components.tracking.best_effort``): the comparison is on disk whatever MLflow does.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.tracking import best_effort
from pipeline import mlflow_ui
from pipeline.config import PipelineConfig
from pipeline.tracking import ensure_experiment, store_uris, tracked_run

# A child run's params and tags ``sweep.<key>``; the parent's tags.
SWEEP_PREFIX = "sweep."
SWEEP_KEYS_TAG = "sweep.keys"
SWEEP_VARIANTS_TAG = "sweep.variants"
# The MLflow UI shows this tag of a run (Markdown) as the run's description.
DESCRIPTION_TAG = "mlflow.note.content"

log = logging.getLogger("keras_depth.pipeline")


@dataclass(frozen=True)
class SweepRun:
    """The parent MLflow run of a sweep.

    Attributes:
        tracking_uri: The store it lives in (its variants' child runs go there too).
        run_id: Its id.
    """

    tracking_uri: str
    run_id: str


def variant_name(values: Mapping[str, str]) -> str:
    """A sweep variant's name, that of its child run: ``loss.lam=0.5`` (several keys joined by ", ").

    Args:
        values: Swept config key -> value as given on the command line.
    """
    return ", ".join(f"{key}={value}" for key, value in values.items())


@dataclass(frozen=True)
class SweepChild:
    """Makes a pipeline execution's MLflow run a child run of a sweep (``pipeline.tracking.pipeline_run``).

    Attributes:
        parent: The sweep's parent run.
        values: Swept config key -> value as given on the command line, e.g. ``{"loss.lam": "0.5"}``.
    """

    parent: SweepRun
    values: Mapping[str, str]

    @property
    def name(self) -> str:
        """The child run's name (:func:`variant_name`)."""
        return variant_name(self.values)

    def params(self) -> dict[str, str]:
        """The swept values as params and tags: ``{"sweep.loss.lam": "0.5"}``."""
        return {f"{SWEEP_PREFIX}{key}": value for key, value in self.values.items()}


@contextlib.contextmanager
def sweep_parent_run(
    config: PipelineConfig, output_dir: Path, name: str, keys: Sequence[str], tags: Mapping[str, str]
) -> Iterator[SweepRun | None]:
    """Runs the block (the sweep's variants) inside the sweep's parent MLflow run.

    Args:
        config: The sweep's config without the swept values (its ``mlflow`` section is every variant's).
        output_dir: The pipeline's ``--output-dir``.
        name: The run name, e.g. ``sweep loss.lam=0,0.5,1``.
        keys: The swept keys (tag ``sweep.keys``, joined by ",").
        tags: More tags.

    Yields:
        The parent run, or None without tracking.

    Raises:
        TrackingUnavailable: ``mlflow.required`` is true and the configured store cannot be used.
    """
    if not config.mlflow.enabled:
        yield None
        return
    from mlflow.tracking import MlflowClient

    def start(uri: str) -> str:
        experiment_id = ensure_experiment(config, output_dir, uri)
        run_tags = {SWEEP_KEYS_TAG: ",".join(keys), **tags}
        run_id = MlflowClient(uri).create_run(experiment_id, tags=run_tags, run_name=name).info.run_id
        log.info("MLflow sweep run page: %s", mlflow_ui.run_page(uri, experiment_id, run_id))
        return run_id

    def end(uri: str, run_id: str, status: str) -> None:
        MlflowClient(uri).set_terminated(run_id, status)

    with tracked_run(config, output_dir, store_uris(config, output_dir), start, end) as started:
        yield None if started is None else SweepRun(*started)


@best_effort
def child_run_ids(parent: SweepRun) -> dict[str, str]:
    """The parent's child runs: run name (the variant's name) -> run id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(parent.tracking_uri)
    experiment_id = client.get_run(parent.run_id).info.experiment_id
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.run_id}'"
    )
    return {run.info.run_name: run.info.run_id for run in children}


@best_effort
def complete_child_metrics(parent: SweepRun, rows: Sequence[Mapping]) -> None:
    """Logs to each child run the compared metrics it lacks, so that every row matches its run.

    A variant whose evaluate artifact was reused logged no metrics (nor one whose tracking failed
    while evaluate logged).

    Args:
        parent: The sweep's parent run (its store).
        rows: ``comparison.json`` rows (``run_id``, ``metrics``: MLflow name -> value).
    """
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(parent.tracking_uri)
    now_ms = int(time.time() * 1000)
    for row in rows:
        if row["run_id"] is None:
            continue
        logged = client.get_run(row["run_id"]).data.metrics
        missing = [
            Metric(key, value, now_ms, 0) for key, value in row["metrics"].items() if key not in logged
        ]
        if missing:
            client.log_batch(row["run_id"], metrics=missing)


@best_effort
def log_comparison(parent: SweepRun, paths: Sequence[Path], markdown: str) -> None:
    """Logs the comparison files as the parent run's artifacts and its table as the run's description."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(parent.tracking_uri)
    for path in paths:
        client.log_artifact(parent.run_id, str(path))
    client.set_tag(parent.run_id, DESCRIPTION_TAG, markdown)

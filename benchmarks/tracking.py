"""One MLflow run per ``make bench`` in the experiment ``benchmarks``.

The run holds each entry's ``value``, ``baseline`` and ``ratio`` as metrics named
``<entry name>/<field>`` (:func:`metric_key`), the device, host and versions as params and tags, and
the report's JSON and Markdown files as artifacts. The store is ``--tracking-uri``, else
``$MLFLOW_TRACKING_URI``, else the SQLite store ``make run`` uses (``runs/mlflow.db``); the artifacts
of a SQLite store go to ``mlartifacts/`` beside the database, as the pipeline's do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.tracking import HTTP_LIMITS, MLFLOW_ARTIFACTS, local_store_uri

EXPERIMENT = "benchmarks"
ENTRY_METRICS = ("value", "baseline", "ratio")
SQLITE_PREFIX = "sqlite:///"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS_DIR = REPO_ROOT / "runs"


def tracking_uri(flag: str | None) -> str:
    """``flag``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<repo>/runs/mlflow.db``."""
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri(DEFAULT_RUNS_DIR)


def metric_key(entry_name: str, field: str) -> str:
    """``"input pipeline, NYU preset"``, ``"ratio"`` -> ``"input_pipeline_nyu_preset/ratio"``."""
    return f"{re.sub(r'[^a-z0-9]+', '_', entry_name.lower()).strip('_')}/{field}"


def _artifact_location(uri: str) -> str | None:
    """``mlartifacts/`` beside a SQLite database (MLflow's default would be ``./mlruns`` of the cwd)."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    return (Path(uri.removeprefix(SQLITE_PREFIX)).resolve().parent / MLFLOW_ARTIFACTS).as_uri()


def log_report(report: Mapping, files: Sequence[Path], uri: str) -> str:
    """Logs the report as one finished run of :data:`EXPERIMENT`; returns the run id.

    An HTTP store that does not answer fails within seconds (the pipeline's :data:`HTTP_LIMITS`, unless
    the environment sets them), not after MLflow's minutes of retries.

    Args:
        report: The report (:mod:`benchmarks.report`): environment, entries and failed modules.
        files: Files to attach as artifacts (the report's JSON and Markdown).
        uri: The tracking URI (:func:`tracking_uri`).
    """
    for name, value in HTTP_LIMITS.items():
        os.environ.setdefault(name, value)
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(EXPERIMENT, artifact_location=_artifact_location(uri))
    )
    run_name = f"bench-{report['host']}-{report['date']}"
    tags = {
        "device": report["device"],
        "host": report["host"],
        "git_commit": report["versions"]["git_commit"],
    }
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    params = {"device": report["device"], "cpu": report["cpu"], "cpu_cores": report["cpu_cores"]}
    params |= {f"version.{name}": version for name, version in report["versions"].items()}
    params["quick"] = bool(report.get("quick"))
    timestamp = run.info.start_time
    metrics = [
        Metric(metric_key(entry["name"], field), float(entry[field]), timestamp, 0)
        for entry in report["entries"]
        for field in ENTRY_METRICS
    ]
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[Param(name, str(value)) for name, value in params.items()],
        tags=[RunTag("failed", ",".join(report["failed"]))] if report["failed"] else [],
    )
    for path in files:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FAILED" if report["failed"] else "FINISHED")
    return run_id

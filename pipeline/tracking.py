"""One MLflow run per pipeline execution; stages log into it with stage-prefixed keys.

A sweep's variants are child runs of its parent run (``pipeline.sweep_tracking``): the same runs,
started under ``mlflow.parentRunId`` with the swept values as params and tags.

The experiment gets the tags of :mod:`pipeline.mlflow_ui` (model-training kind, a saved runs-table view
of the headline metrics), and the links to the run's page and that view are logged when the run starts.

Tracking is best-effort unless ``mlflow.required`` is true: an unreachable server at the start is
replaced by the local SQLite store, and a failure while stages log only warns
(``components.tracking``). During the run MLflow's HTTP client gives up after ``HTTP_LIMITS`` (a few
seconds) instead of its default of minutes of retries.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from components import tracking
from pipeline import mlflow_ui
from pipeline.config import PipelineConfig, config_to_dict, flatten
from pipeline.open_runs import STATUS_KILLED, forget_open_run, orphaned_runs, record_open_run
from pipeline.version import package_version

if TYPE_CHECKING:
    from pipeline.sweep_tracking import SweepChild

MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"
MAX_PARAM_LENGTH = 6000
RESOLVED_CONFIG_ARTIFACT = "config.yaml"
STATUS_RUNNING = "RUNNING"
STATUS_FINISHED = "FINISHED"
STATUS_FAILED = "FAILED"
# Seconds the start-up probe of an HTTP tracking server waits for an answer.
PROBE_TIMEOUT_S = 3
# MLflow's HTTP client settings during a pipeline run (its defaults retry for minutes): 2 retries with
# 1 s backoff and a 10 s timeout per request. Variables already set in the environment win.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}

log = logging.getLogger("keras_depth.pipeline")


class TrackingUnavailable(RuntimeError):
    """``mlflow.required`` is true and the tracking store cannot be reached or used."""


def local_store_uri(output_dir: Path) -> str:
    """The SQLite store in ``output_dir`` (the default, and the fallback for an unreachable server)."""
    return f"sqlite:///{Path(output_dir).resolve() / MLFLOW_DB}"


def resolve_tracking_uri(config: PipelineConfig, output_dir: Path) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else a SQLite store in ``output_dir``."""
    if config.mlflow.tracking_uri:
        return config.mlflow.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return local_store_uri(output_dir)


def git_commit() -> str:
    """The repository's HEAD commit, or "unknown" outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def run_name(config: PipelineConfig) -> str:
    """A name that tells runs apart in the UI: preset, dataset, lambda, model size, time."""
    model = config.model
    return (
        f"{config.preset}-{'+'.join(config.ingest.source_names())}-lam{config.loss.lam:g}"
        f"-w{model.width_multiplier:g}-{model.input_width}x{model.input_height}"
        f"-{time.strftime('%Y%m%d-%H%M%S')}"
    )


def run_tags(config: PipelineConfig, stages: list[str]) -> dict[str, str]:
    model = config.model
    return {
        "preset": config.preset,
        "dataset": "+".join(config.ingest.source_names()),
        "lambda": f"{config.loss.lam:g}",
        "model_size": f"w{model.width_multiplier:g}-fc{model.fc_units}-{model.input_width}x{model.input_height}",
        "stages": ",".join(stages),
        "git_commit": git_commit(),
    }


def run_params(config: PipelineConfig) -> dict[str, str]:
    """The whole resolved config flattened, plus package, Python and platform versions."""
    params = {key: str(value)[:MAX_PARAM_LENGTH] for key, value in flatten(config_to_dict(config)).items()}
    params["version.keras_depth"] = package_version()
    params["version.python"] = platform.python_version()
    return params


@contextlib.contextmanager
def pipeline_run(
    config: PipelineConfig, output_dir: Path, stages: list[str], sweep: SweepChild | None = None
) -> Iterator[str | None]:
    """Runs the block inside the pipeline's MLflow run; yields its id, or None without tracking.

    The HTTP limits of :data:`HTTP_LIMITS` apply inside the block (unless the environment sets them).
    When the configured store cannot be reached (:func:`unreachable`) or the run cannot be started
    there, ``mlflow.required: false`` warns and falls back to the local SQLite store (then to no
    tracking); ``mlflow.required: true`` raises :class:`TrackingUnavailable` before the block runs.
    The run is recorded in ``pipeline.open_runs`` until it has been ended, so that the next run can
    close it if this process is killed; ending it is best-effort too. It ends ``FINISHED``,
    ``FAILED`` when the block raises an exception, ``KILLED`` on ``KeyboardInterrupt`` or ``SystemExit``.

    Args:
        config: The resolved config (``mlflow`` section: store, experiment, required).
        output_dir: The pipeline's ``--output-dir``.
        stages: The stages that run (the ``stages`` tag).
        sweep: Makes the run a child of a sweep's parent run, in the parent's store (without a
            fallback: a child elsewhere would lose its parent), named and tagged by the swept values
            (``pipeline.sweep_tracking``).

    Raises:
        TrackingUnavailable: ``mlflow.required`` is true and the configured store cannot be used.
    """
    if not config.mlflow.enabled:
        yield None
        return

    def end(uri: str, run_id: str, status: str) -> None:
        import mlflow

        mlflow.end_run(status)  # the active run: this one

    uris = [sweep.parent.tracking_uri] if sweep is not None else store_uris(config, output_dir)
    start = functools.partial(_start_run, config, output_dir, stages=stages, sweep=sweep)
    with tracked_run(config, output_dir, uris, start, end) as started:
        yield None if started is None else started[1]


def check_required_store(config: PipelineConfig, output_dir: Path) -> None:
    """With ``mlflow.required``, fails within ``PROBE_TIMEOUT_S`` when an HTTP tracking server is silent.

    Raises:
        TrackingUnavailable: naming the URI and why.
    """
    if config.mlflow.enabled and config.mlflow.required:
        uri = resolve_tracking_uri(config, output_dir)
        reason = unreachable(uri)
        if reason is not None:
            raise _unavailable(uri, reason)


def _unavailable(uri: str, reason: str) -> TrackingUnavailable:
    return TrackingUnavailable(
        f"MLflow tracking store {uri} cannot be used ({reason}) and mlflow.required is true"
    )


def unreachable(uri: str) -> str | None:
    """Why an HTTP(S) tracking server does not answer within ``PROBE_TIMEOUT_S``, or None.

    Any HTTP response (even an error status) counts as an answer; other stores (SQLite, files) are
    not probed (None): starting the run tells.
    """
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        return None
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as err:
        return str(err.reason)
    except (OSError, ValueError) as err:  # timeouts, malformed URLs
        return tracking.first_line(err)
    return None


def close_orphaned_runs(output_dir: Path) -> list[str]:
    """Ends the MLflow runs that exited processes left RUNNING (``pipeline.open_runs``).

    A run whose store cannot be reached now keeps its marker and is tried again next time.

    Returns:
        The ids of the runs whose markers were settled (closed now, or found already closed).
    """
    settled = []
    for record in orphaned_runs(output_dir):
        run_id, uri = record["run_id"], record["tracking_uri"]
        try:
            reason = unreachable(uri)
            if reason is not None:
                raise ConnectionError(reason)
            from mlflow.tracking import MlflowClient  # only when a run was left open

            with _http_limits():
                client = MlflowClient(uri)
                if client.get_run(run_id).info.status == STATUS_RUNNING:
                    client.set_terminated(run_id, record.get("status", STATUS_KILLED))
                    log.info(
                        "closed MLflow run %s left running by exited process %s", run_id, record.get("owner")
                    )
        except Exception as err:  # cleanup of an old run must never stop this one
            log.warning(
                "could not close MLflow run %s at %s (%s); trying next time",
                run_id,
                uri,
                tracking.first_line(err),
            )
            continue
        forget_open_run(output_dir, run_id)
        settled.append(run_id)
    return settled


@contextlib.contextmanager
def _http_limits() -> Iterator[None]:
    """Sets :data:`HTTP_LIMITS` in the environment for the block, where the environment does not."""
    added = {name: value for name, value in HTTP_LIMITS.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _restored_tracking_uri() -> Iterator[None]:
    """Restores MLflow's tracking URI (and ``$MLFLOW_TRACKING_URI``) after the block.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` to the environment; without the
    restore, a later pipeline run in the same process (or a child process) would inherit this run's store.
    """
    import mlflow

    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    previous_uri = mlflow.get_tracking_uri()
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


def store_uris(config: PipelineConfig, output_dir: Path) -> list[str]:
    """The configured store, then the local one (the fallback), without repeats."""
    return list(dict.fromkeys([resolve_tracking_uri(config, output_dir), local_store_uri(output_dir)]))


@contextlib.contextmanager
def tracked_run(
    config: PipelineConfig,
    output_dir: Path,
    uris: list[str],
    start: Callable[[str], str],
    end: Callable[[str, str, str], None],
) -> Iterator[tuple[str, str] | None]:
    """Starts a run with ``start(uri)`` in the first of ``uris`` that works, yields ``(uri, run id)``
    (None when none works), and ends it with ``end(uri, run_id, status)``.

    The lifecycle of every run of the pipeline: HTTP limits, store fallback, ``mlflow.required``, the
    open-run record and the final status, as :func:`pipeline_run` describes them.
    """
    with _http_limits(), _restored_tracking_uri():
        started = _start_first_reachable(config, output_dir, uris, start)
        if started is None:
            yield None
            return
        uri, run_id = started
        record_open_run(output_dir, run_id, uri)
        tracking.reset()
        status = STATUS_KILLED  # KeyboardInterrupt, SystemExit
        try:
            yield started
            status = STATUS_FINISHED
        except Exception:
            status = STATUS_FAILED
            raise
        finally:
            _end_run(output_dir, uri, run_id, status, end)


def _start_first_reachable(
    config: PipelineConfig, output_dir: Path, uris: list[str], start: Callable[[str], str]
) -> tuple[str, str] | None:
    """Starts the run with ``start(uri)`` in the first of ``uris`` that works (``mlflow.required``:
    in the first one only).

    Returns:
        ``(tracking URI, run id)``, or None when no store works (each failure was warned about).

    Raises:
        TrackingUnavailable: ``mlflow.required`` and the first store cannot be used.
    """
    import mlflow

    for index, uri in enumerate(uris):
        reason = unreachable(uri)
        if reason is None:
            mlflow.set_tracking_uri(uri)
            try:
                return uri, start(uri)
            except Exception as err:  # any store failure: fall back, or fail in one line
                reason = tracking.first_line(err)
        if config.mlflow.required:
            raise _unavailable(uri, reason)
        fallback = (
            f"logging to {uris[index + 1]} instead"
            if index + 1 < len(uris)
            else "running without MLflow tracking"
        )
        log.warning("MLflow tracking store %s cannot be used (%s); %s", uri, reason, fallback)
    return None


def ensure_experiment(config: PipelineConfig, output_dir: Path, uri: str) -> str:
    """The id of the config's experiment in the store ``uri``, created if needed (artifacts of a SQLite
    store go to ``<output_dir>/mlartifacts``), with the tags of :mod:`pipeline.mlflow_ui`."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(config.mlflow.experiment_name)
    if experiment is None:
        artifact_location = None
        if uri.startswith("sqlite:"):
            artifact_location = (Path(output_dir).resolve() / MLFLOW_ARTIFACTS).as_uri()
        experiment_id = mlflow.create_experiment(
            config.mlflow.experiment_name,
            artifact_location=artifact_location,
            tags=mlflow_ui.experiment_tags({}),
        )
    else:
        experiment_id = experiment.experiment_id
        for key, value in mlflow_ui.experiment_tags(experiment.tags).items():
            mlflow.MlflowClient(uri).set_experiment_tag(experiment_id, key, value)
    return experiment_id


def _start_run(
    config: PipelineConfig, output_dir: Path, uri: str, *, stages: list[str], sweep: SweepChild | None
) -> str:
    """Starts the pipeline's run (a sweep's child run with ``sweep``), logs the config; returns the run
    id (the run is ended again if logging fails)."""
    import mlflow

    experiment_id = ensure_experiment(config, output_dir, uri)
    tags, params = run_tags(config, stages), run_params(config)
    if sweep is not None:
        tags.update(sweep.params())
        params.update(sweep.params())
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name(config) if sweep is None else sweep.name,
        tags=tags,
        parent_run_id=None if sweep is None else sweep.parent.run_id,
    )
    try:
        mlflow.log_params(params)
        mlflow.log_dict(config_to_dict(config), RESOLVED_CONFIG_ARTIFACT)
    except Exception:
        with contextlib.suppress(Exception):
            mlflow.end_run("FAILED")
        raise
    log.info("MLflow run page: %s", mlflow_ui.run_page(uri, experiment_id, run.info.run_id))
    log.info("MLflow runs with their headline metrics: %s", mlflow_ui.runs_table_page(uri, experiment_id))
    return run.info.run_id


def _end_run(
    output_dir: Path, uri: str, run_id: str, status: str, end: Callable[[str, str, str], None]
) -> None:
    """Ends the run with ``end(uri, run_id, status)``; when the store is gone, records the status for
    the next run."""
    try:
        end(uri, run_id, status)
    except Exception as err:  # the stages are done: never fail the pipeline here
        log.warning("could not end MLflow run %s (%s); the next run will", run_id, tracking.first_line(err))
        record_open_run(output_dir, run_id, uri, status)
        return
    forget_open_run(output_dir, run_id)

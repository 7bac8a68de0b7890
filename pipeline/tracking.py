"""One MLflow run per pipeline execution; stages log into it with stage-prefixed keys."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import PipelineConfig, config_to_dict, flatten
from pipeline.version import package_version

MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"
MAX_PARAM_LENGTH = 6000
RESOLVED_CONFIG_ARTIFACT = "config.yaml"


def resolve_tracking_uri(config: PipelineConfig, output_dir: Path) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else a SQLite store in ``output_dir``."""
    if config.mlflow.tracking_uri:
        return config.mlflow.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(output_dir).resolve() / MLFLOW_DB}"


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
        f"{config.preset}-{config.ingest.source}-lam{config.loss.lam:g}"
        f"-w{model.width_multiplier:g}-{model.input_width}x{model.input_height}"
        f"-{time.strftime('%Y%m%d-%H%M%S')}"
    )


def run_tags(config: PipelineConfig, stages: list[str]) -> dict[str, str]:
    model = config.model
    return {
        "preset": config.preset,
        "dataset": config.ingest.source,
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
def pipeline_run(config: PipelineConfig, output_dir: Path, stages: list[str]) -> Iterator[str | None]:
    """Starts the pipeline's MLflow run (yields its id) or yields None when tracking is disabled."""
    if not config.mlflow.enabled:
        yield None
        return
    uri = resolve_tracking_uri(config, output_dir)
    with _tracking_uri(uri), _started_run(config, output_dir, uri, stages) as run_id:
        yield run_id


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Points MLflow at ``uri`` for the block only.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` to the environment; without the
    restore, a later pipeline run in the same process (or a child process) would inherit this run's store.
    """
    import mlflow

    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


@contextlib.contextmanager
def _started_run(config: PipelineConfig, output_dir: Path, uri: str, stages: list[str]) -> Iterator[str]:
    """Creates the experiment if needed (artifacts of a SQLite store go to ``<output_dir>/mlartifacts``)
    and runs the block inside a new run."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(config.mlflow.experiment_name)
    if experiment is None:
        artifact_location = None
        if uri.startswith("sqlite:"):
            artifact_location = (Path(output_dir).resolve() / MLFLOW_ARTIFACTS).as_uri()
        experiment_id = mlflow.create_experiment(
            config.mlflow.experiment_name, artifact_location=artifact_location
        )
    else:
        experiment_id = experiment.experiment_id
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name(config), tags=run_tags(config, stages)
    ) as run:
        mlflow.log_params(run_params(config))
        mlflow.log_dict(config_to_dict(config), RESOLVED_CONFIG_ARTIFACT)
        yield run.info.run_id

"""The export stage in MLflow: the SavedModel as a logged model, and a push as a registered version.

- :func:`log_model`: the exported SavedModel as an MLflow 3 logged model of the pipeline run (its
  output): a ``pyfunc`` model (:mod:`.pyfunc_model`, which loads without this project) with the
  signature ``images`` float32 [-1, -1, -1, 3] -> ``depth`` float32 [-1, -1, -1], the run's params,
  the source tags of :func:`components.export.component.push_source`, and as its metrics the
  evaluation of the exported network from the evaluate artifact's ``metrics.json``: the headline
  ``test_*`` (``components.tracking.headline_metrics``) and ``evaluate/coarse_fine/<metric>``, on the
  run's dataset (the ingest artifact the runner logged as its input).
- :func:`register_push`: MLflow's counterpart of a push. The pushed model becomes a version of the
  registered model ``mlflow.registered_model_name``, tagged with its push source and serving version,
  and the alias :data:`CHAMPION_ALIAS` moves to it. A push that reused a served version (same push
  source) finds the registered version with those source tags and only moves the alias: one registered
  version per pushed model.

Both are best-effort (``components.tracking.best_effort``) and log into the runner's active run.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import mlflow
import numpy as np
import tensorflow as tf
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import Model, ModelSignature
from mlflow.types import Schema, TensorSpec

from components.export.signatures import RGB_CHANNELS
from components.serving_contract import DEPTH_OUTPUT, IMAGES_INPUT, METRICS_FILE
from components.tracking import HEADLINE_NETWORK, best_effort, headline_metrics

CHAMPION_ALIAS = "champion"
# The logged model's code (run by MLflow when it loads the model) and its SavedModel artifact's key.
PYFUNC_MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
SAVED_MODEL_ARTIFACT = "saved_model"
MODEL_TYPE = "monocular-depth"
# Tag prefix of the push source (train fingerprint, export settings) on logged models and registered versions.
SOURCE_TAG_PREFIX = "push_source."
SERVING_VERSION_TAG = "serving_version"
EVALUATE_PREFIX = "evaluate"
SIGNATURE = ModelSignature(
    inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1, RGB_CHANNELS), IMAGES_INPUT)]),
    outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1), DEPTH_OUTPUT)]),
)


def source_tags(source: dict) -> dict[str, str]:
    """``push_source.<key>`` tags of a push source (the identity of the served model)."""
    return {f"{SOURCE_TAG_PREFIX}{key}": str(value) for key, value in source.items()}


def evaluation_metrics(evaluate_dir: Path) -> dict[str, float]:
    """The exported network's test metrics from the evaluate artifact: the headline ``test_*`` and
    ``evaluate/coarse_fine/<metric>``; empty when ``metrics.json`` has no entry for the network."""
    network = json.loads((evaluate_dir / METRICS_FILE).read_text()).get(HEADLINE_NETWORK)
    if network is None:
        return {}
    return {
        **headline_metrics(network),
        **{f"{EVALUATE_PREFIX}/{HEADLINE_NETWORK}/{key}": float(value) for key, value in network.items()},
    }


def log_export(saved_model: Path, evaluate_dir: Path, record: dict, source: dict, config) -> None:
    """Logs the exported model (:func:`log_model`) and, when it was pushed, registers it (:func:`register_push`).

    Args:
        saved_model: The exported SavedModel directory.
        evaluate_dir: The evaluate artifact that scored the model.
        record: The push record (``push.json``: ``pushed``, ``version``).
        source: The model's push source.
        config: The pipeline config (reads ``export.model_name`` and ``mlflow.registered_model_name``).
    """
    model_id = log_model(saved_model, evaluate_dir, config.export.model_name, source)
    if record["pushed"] and model_id is not None:
        register_push(model_id, config.mlflow.registered_model_name, source, record["version"])


@best_effort
def log_model(saved_model: Path, evaluate_dir: Path, name: str, source: dict) -> str:
    """Logs the SavedModel as a logged model of the active run (see the module docstring).

    Args:
        saved_model: The exported SavedModel directory.
        evaluate_dir: The evaluate artifact that scored (and blessed or not) the model.
        name: The logged model's name (``export.model_name``).
        source: The push source of the model (:func:`components.export.component.push_source`).

    Returns:
        The logged model's id.
    """
    run_id = mlflow.active_run().info.run_id
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    model = mlflow.initialize_logged_model(
        name=name,
        source_run_id=run_id,
        tags=source_tags(source),
        params=run.data.params,
        model_type=MODEL_TYPE,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            # The signature describes the input; an input example would only add a copy of an image.
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            local = Path(tmp) / "model"
            mlflow.pyfunc.save_model(
                local,
                python_model=str(PYFUNC_MODEL_CODE),
                artifacts={SAVED_MODEL_ARTIFACT: str(saved_model)},
                signature=SIGNATURE,
                pip_requirements=[f"mlflow=={mlflow.__version__}", f"tensorflow=={tf.__version__}"],
                mlflow_model=Model(
                    artifact_path=model.artifact_location,
                    run_id=run_id,
                    model_uuid=model.model_id,
                    model_id=model.model_id,
                ),
            )
            client.log_model_artifacts(model.model_id, str(local))
    except Exception:
        mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id=run_id, models=[LoggedModelOutput(model.model_id, step=0)])
    metrics = evaluation_metrics(evaluate_dir)
    if metrics:
        datasets = [dataset_input.dataset for dataset_input in run.inputs.dataset_inputs]
        dataset = datasets[0] if len(datasets) == 1 else None
        mlflow.log_metrics(metrics, model_id=model.model_id, dataset=dataset)
    return model.model_id


@best_effort
def register_push(model_id: str, registered_name: str, source: dict, serving_version: int) -> str:
    """Registers a pushed model (once per push source) and moves the alias ``champion`` to it.

    Args:
        model_id: The logged model of this export.
        registered_name: The registered model (``mlflow.registered_model_name``).
        source: The pushed model's push source.
        serving_version: The version it is served as under the serving root.

    Returns:
        The registered version that the alias now points to.
    """
    client = mlflow.MlflowClient()
    tags = source_tags(source)
    version = _registered_version(client, registered_name, tags)
    if version is None:
        tags[SERVING_VERSION_TAG] = str(serving_version)
        version = mlflow.register_model(f"models:/{model_id}", registered_name, tags=tags).version
    client.set_registered_model_alias(registered_name, CHAMPION_ALIAS, version)
    return str(version)


def _registered_version(
    client: mlflow.MlflowClient, registered_name: str, tags: dict[str, str]
) -> str | None:
    """The version of ``registered_name`` with all of ``tags``, or None."""
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    for version in client.search_model_versions(query):
        if version.name == registered_name:
            return str(version.version)
    return None

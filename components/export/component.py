"""The export stage: the serving SavedModel of the fine network, pushed to serving when blessed.

Always writes ``saved_model/`` (signatures in :mod:`.signatures`) and ``signatures.json`` (their
inputs and outputs) into the artifact, and ``model.tflite`` (:mod:`.tflite`) unless ``export.tflite``
is off. When the evaluate artifact holds ``BLESSED``, the SavedModel is pushed to
``<serving_root>/<model_name>/<next version>/`` (:mod:`.push`); otherwise it is not, and the log says
why. The push names the model by :func:`push_source` (its train fingerprint and the export
settings that shape the SavedModel): when the highest served version already holds that model (a rerun
after a crash between the push and the publish of this artifact, or ``--force``), it is reused, not
pushed again. ``push.json`` records the outcome: ``pushed``, ``version``, ``path`` (null when not
pushed), ``reused`` (the version already held this model) and ``reason`` (the blessing decision).
With MLflow tracking, the SavedModel is logged as the run's MLflow model, and a push is registered as a
version of the registered model with the alias ``champion`` (:mod:`.tracking`).
"""

from __future__ import annotations

import json
from pathlib import Path

from components.base import Artifact, StageContext
from components.export.push import push_saved_model
from components.export.signatures import describe_signatures, write_saved_model
from components.export.tflite import TFLITE_FILE, write_tflite
from components.export.tracking import log_export
from components.failpoints import failpoint
from components.serving_contract import read_blessing, read_geometry, resolve_serving_root
from components.tracking import best_effort
from keras_depth.saving import load_depth_model

SAVED_MODEL_DIR = "saved_model"
SIGNATURES_FILE = "signatures.json"
PUSH_FILE = "push.json"
FINE_FILE = "fine.keras"
MLFLOW_PREFIX = "export"


def check_evaluated_model(train: Artifact, evaluate: Artifact) -> None:
    """Makes sure the evaluate artifact scored (and blessed or not) this train artifact's model.

    Raises:
        ValueError: naming both artifacts when ``evaluate``'s ``metadata.json`` records another train
            fingerprint (e.g. ``--stage export`` after a newer train run that was not evaluated).
    """
    evaluated = evaluate.metadata.get("inputs", {}).get("train", {}).get("fingerprint")
    if evaluated is not None and evaluated != train.fingerprint:
        raise ValueError(
            f"evaluate artifact {evaluate.path} scored train artifact {evaluated}, not {train.path}; "
            "run the evaluate stage on this model first (e.g. --stage all)"
        )


def push_source(train: Artifact, upsample_to_input: bool) -> dict:
    """The identity of the served model: its train artifact (fingerprint) and the SavedModel's outputs.

    The evaluate artifact is not part of it: re-evaluating (say, new blessing thresholds) does not
    change the model. The train fingerprint covers the dataset, the model config and the package version.
    """
    return {"train_fingerprint": train.fingerprint, "upsample_to_input": upsample_to_input}


def run(ctx: StageContext) -> dict:
    """Exports the SavedModel and pushes it when the evaluated model is blessed.

    Args:
        ctx: Stage context; reads ``config.export``.

    Returns:
        Counts for ``metadata.json``: ``pushed`` and ``version`` (None when not pushed).
    """
    cfg = ctx.config.export
    check_evaluated_model(ctx.inputs["train"], ctx.inputs["evaluate"])
    train_dir, evaluate_dir = ctx.inputs["train"].path, ctx.inputs["evaluate"].path
    blessing = read_blessing(evaluate_dir)
    model_path = train_dir / FINE_FILE
    if not model_path.is_file():
        raise FileNotFoundError(f"train artifact {train_dir} has no {FINE_FILE}")
    model = load_depth_model(model_path)
    geometry = read_geometry(evaluate_dir)
    if tuple(model.input_shape[1:3]) != (geometry.input_height, geometry.input_width):
        raise ValueError(
            f"{model_path} takes {model.input_shape[1:3]} inputs but {evaluate_dir} evaluated "
            f"{geometry.input_height}x{geometry.input_width} inputs"
        )

    saved_model = write_saved_model(model, geometry, cfg.upsample_to_input, ctx.output_dir / SAVED_MODEL_DIR)
    signatures = describe_signatures(saved_model)
    (ctx.output_dir / SIGNATURES_FILE).write_text(json.dumps(signatures, indent=2, sort_keys=True) + "\n")
    ctx.log.info("wrote SavedModel %s with signatures %s", saved_model, ", ".join(sorted(signatures)))
    if cfg.tflite:
        ctx.log.info("converting the model to TFLite")
        tflite = write_tflite(model, geometry, ctx.output_dir / TFLITE_FILE, cfg.tflite_float16)
        ctx.log.info(
            "wrote TFLite model %s (%s weights)", tflite, "float16" if cfg.tflite_float16 else "float32"
        )

    record = {"pushed": False, "version": None, "path": None, "reused": False, "reason": blessing.summary()}
    if blessing.blessed:
        failpoint("export.before_push")
        pushed = push_saved_model(
            saved_model,
            resolve_serving_root(ctx.config, ctx.run_root) / cfg.model_name,
            source=push_source(ctx.inputs["train"], cfg.upsample_to_input),
        )
        record.update(pushed=True, version=pushed.version, path=str(pushed.path), reused=pushed.reused)
        if pushed.reused:
            ctx.log.info(
                "version %d at %s already serves this model; not pushed again", pushed.version, pushed.path
            )
        else:
            ctx.log.info("pushed version %d to %s", pushed.version, pushed.path)
        failpoint("export.after_push")
    else:
        ctx.log.info("not pushed: %s", blessing.summary())
    (ctx.output_dir / PUSH_FILE).write_text(json.dumps(record, indent=2) + "\n")

    if ctx.tracking:
        _log_to_mlflow(ctx.output_dir, record)
        source = push_source(ctx.inputs["train"], cfg.upsample_to_input)
        log_export(saved_model, evaluate_dir, record, source, ctx.config)
    return {"pushed": record["pushed"], "version": record["version"]}


@best_effort
def _log_to_mlflow(out: Path, record: dict) -> None:
    """The signature and push records as artifacts under ``export/``, and the outcome.

    The SavedModel itself is logged as the run's MLflow model (:mod:`.tracking`), not as run artifacts.
    """
    import mlflow  # the runner has started the run; imported only when tracking is on

    mlflow.log_artifact(str(out / SIGNATURES_FILE), artifact_path=MLFLOW_PREFIX)
    mlflow.log_artifact(str(out / PUSH_FILE), artifact_path=MLFLOW_PREFIX)
    mlflow.set_tag(f"{MLFLOW_PREFIX}/pushed", str(record["pushed"]))
    if record["pushed"]:
        mlflow.log_metric(f"{MLFLOW_PREFIX}/version", record["version"])
        mlflow.set_tag(f"{MLFLOW_PREFIX}/path", record["path"])

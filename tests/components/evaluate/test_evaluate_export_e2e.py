"""Evaluate -> export -> evaluate -> export in one MLflow run, as the runner chains them: metrics, files,
the logged models and the registered champion that the run leaves in MLflow."""

from __future__ import annotations

import dataclasses
import json

import pytest
from mlflow.tracking import MlflowClient

import components.evaluate
import components.export
from components.base import Artifact


def _export_context(evaluate_ctx, train_artifact):
    return dataclasses.replace(
        evaluate_ctx,
        output_dir=evaluate_ctx.output_dir.parent / f"export-{evaluate_ctx.output_dir.name}",
        inputs={
            "train": train_artifact,
            "evaluate": Artifact("evaluate", "evalfp", evaluate_ctx.output_dir, {}),
        },
    )


@pytest.mark.e2e
def test_chain_pushes_then_compares_with_the_served_model(make_context, train_artifact, tmp_path, mlflow_run):
    serving_root = tmp_path / "serving"
    pushed = []
    for _ in range(2):
        evaluate_ctx = dataclasses.replace(make_context(serving_root=serving_root), tracking=True)
        assert components.evaluate.STAGE.run(evaluate_ctx)["blessed"] is True
        export_ctx = _export_context(evaluate_ctx, train_artifact)
        export_ctx.output_dir.mkdir()
        pushed.append(components.export.STAGE.run(export_ctx))
    # The same train artifact both times: the second export reuses version 1 instead of pushing a copy.
    assert pushed == [{"pushed": True, "version": 1}, {"pushed": True, "version": 1}]
    # The second evaluation scored the served version 1 (the same model) and found it not better.
    metrics = json.loads((evaluate_ctx.output_dir / "metrics.json").read_text())
    assert metrics["served_model"] == {"version": 1, "path": str(serving_root / "depth" / "1")}

    client = MlflowClient()
    run = client.get_run(mlflow_run)
    assert run.data.metrics["evaluate/coarse_fine/abs_rel"] == pytest.approx(
        metrics["coarse_fine"]["abs_rel"]
    )
    assert run.data.metrics["evaluate/served/abs_rel"] == pytest.approx(metrics["served"]["abs_rel"])
    assert run.data.metrics["evaluate/image_averaged/baseline/rmse"] == pytest.approx(
        metrics["image_averaged"]["baseline"]["rmse"]
    )
    assert run.data.metrics["evaluate/blessed"] == 1 and run.data.metrics["export/version"] == 1
    assert run.data.tags["evaluate/blessing"].startswith("BLESSED: passes:")
    assert run.data.tags["export/pushed"] == "True"
    evaluate_files = {item.path for item in client.list_artifacts(mlflow_run, "evaluate")}
    assert {
        f"evaluate/{name}" for name in ("metrics.json", "report.md", "predictions.png", "BLESSED")
    } <= evaluate_files
    export_files = {item.path for item in client.list_artifacts(mlflow_run, "export")}
    assert {"export/signatures.json", "export/push.json"} <= export_files
    assert run.data.metrics["test_abs_rel"] == pytest.approx(metrics["coarse_fine"]["abs_rel"])

    # Each export logged the SavedModel as a model of the run, with the evaluation as its metrics ...
    models = client.search_logged_models([run.info.experiment_id])
    assert sorted(output.model_id for output in run.outputs.model_outputs) == sorted(
        m.model_id for m in models
    )
    assert len(models) == 2
    for model in models:
        linked = {metric.key: metric.value for metric in model.metrics}
        assert linked["test_delta1"] == pytest.approx(metrics["coarse_fine"]["delta1"])
        assert {item.path for item in client.list_logged_model_artifacts(model.model_id)} >= {
            "MLmodel",
            "pyfunc_model.py",
        }
        saved_model = client.list_logged_model_artifacts(model.model_id, "artifacts/saved_model")
        assert "artifacts/saved_model/saved_model.pb" in {item.path for item in saved_model}
    # ... and the two pushes of one model (version 1, then reused) are one registered version, the champion.
    (version,) = client.search_model_versions("name = 'keras-depth'")
    champion = client.get_model_version_by_alias("keras-depth", "champion")
    assert str(champion.version) == str(version.version) == "1" and champion.tags["serving_version"] == "1"

"""What the MLflow UI shows of a pipeline run, read back through the client from a real tracking server.

One smoke pipeline (``configs/smoke.yaml``: blessed and pushed) runs in a subprocess against
``mlflow server``; the tests read what its UI would show: a model-training experiment, the run's
dataset, its headline metrics, its logged model and the registered champion, which must load and
predict in a process without project code exactly as the served SavedModel does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow.artifacts import download_artifacts
from mlflow.entities import LoggedModelStatus, Run
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from components.serving_contract import METRICS_FILE
from pipeline.config import CONFIGS_DIR, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE = CONFIGS_DIR / "smoke.yaml"
PIPELINE_TIMEOUT_S = 600
# The loaded champion and the served SavedModel run the same graph on the same input.
DEPTH_ATOL_M = 1e-5

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class SmokeRun:
    """The smoke pipeline's outcome.

    Attributes:
        client: A client of the tracking server.
        tracking_uri: The server's URI.
        output_dir: The pipeline's ``--output-dir``.
        run: The pipeline's MLflow run.
        registered_name: ``mlflow.registered_model_name`` of the smoke config.
    """

    client: MlflowClient
    tracking_uri: str
    output_dir: Path
    run: Run
    registered_name: str

    def artifact(self, stage: str) -> Path:
        """The stage's one completed artifact directory."""
        (path,) = [
            p for p in (self.output_dir / "pipeline_root" / stage).iterdir() if not p.name.startswith(".")
        ]
        return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, serve_mlflow) -> SmokeRun:
    root = tmp_path_factory.mktemp("mlflow_ui")
    output_dir = root / "runs"
    with serve_mlflow(root) as server:
        command = [
            sys.executable,
            "-m",
            "pipeline.run",
            "--config",
            str(SMOKE),
            "--output-dir",
            str(output_dir),
        ]
        command += ["--set", f"mlflow.tracking_uri={server.uri}", "--set", "mlflow.required=true"]
        env = {name: value for name, value in os.environ.items() if name != "MLFLOW_TRACKING_URI"}
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=PIPELINE_TIMEOUT_S
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        assert "MLflow logging failed" not in result.stderr, result.stderr[-4000:]
        client = MlflowClient(server.uri)
        experiment = client.get_experiment_by_name(load_config(SMOKE).mlflow.experiment_name)
        (run,) = client.search_runs([experiment.experiment_id])
        yield SmokeRun(client, server.uri, output_dir, run, load_config(SMOKE).mlflow.registered_model_name)


def test_the_experiment_is_for_model_training_with_a_headline_metrics_view(smoke):
    experiment = smoke.client.get_experiment(smoke.run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(experiment.tags["mlflow.sharedViewState.keras-depth-headline"])
    assert "metrics.`test_abs_rel`" in json.loads(view["state"])["selectedColumns"]


def test_the_run_shows_the_ingest_artifact_as_its_dataset(smoke):
    ingest = smoke.artifact("ingest")
    counts = json.loads((ingest / "metadata.json").read_text())["counts"]
    (dataset_input,) = smoke.run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert (dataset.name, dataset.digest) == ("synthetic_rooms", ingest.name)
    assert json.loads(dataset.source) == {"uri": str(ingest)}
    profile = json.loads(dataset.profile)
    assert {split: profile[split] for split in ("train", "val", "test")} == {
        split: counts[split] for split in ("train", "val", "test")
    }
    assert sum(profile[split] for split in ("train", "val", "test")) == profile["records_read"] > 0
    schema = {spec["name"]: spec["tensor-spec"] for spec in json.loads(dataset.schema)["mlflow_colspec"]}
    assert schema == {
        "image": {"dtype": "uint8", "shape": [-1, -1, 3]},
        "depth": {"dtype": "float32", "shape": [-1, -1]},
    }


def _coarse_fine(smoke) -> dict[str, float]:
    return json.loads((smoke.artifact("evaluate") / METRICS_FILE).read_text())["coarse_fine"]


def test_headline_test_metrics_sit_beside_the_namespaced_set(smoke):
    scored, metrics = _coarse_fine(smoke), smoke.run.data.metrics
    for name in ("delta1", "abs_rel", "rmse", "si_log"):
        assert metrics[f"test_{name}"] == pytest.approx(scored[name])
        assert metrics[f"evaluate/coarse_fine/{name}"] == metrics[f"test_{name}"]


def test_the_exported_model_is_the_runs_logged_model_with_signature_and_metrics(smoke, tmp_path):
    (output,) = smoke.run.outputs.model_outputs
    model = smoke.client.get_logged_model(output.model_id)
    assert model.source_run_id == smoke.run.info.run_id and model.status == LoggedModelStatus.READY
    assert model.tags["push_source.train_fingerprint"] == smoke.artifact("train").name
    linked = {metric.key: metric.value for metric in model.metrics}
    assert {(metric.dataset_name, metric.dataset_digest) for metric in model.metrics} == {
        ("synthetic_rooms", smoke.artifact("ingest").name)
    }
    scored = _coarse_fine(smoke)
    assert linked["test_delta1"] == pytest.approx(scored["delta1"])
    assert linked["evaluate/coarse_fine/rmse"] == pytest.approx(scored["rmse"])
    mlmodel = download_artifacts(
        f"{model.artifact_location}/MLmodel", dst_path=str(tmp_path), tracking_uri=smoke.tracking_uri
    )
    signature = Model.load(mlmodel).signature.to_dict()
    assert json.loads(signature["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, -1, -1, 3]}, "name": "images"}
    ]
    assert json.loads(signature["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, -1, -1]}, "name": "depth"}
    ]


def test_the_pushed_model_is_the_registered_champion(smoke):
    (version,) = smoke.client.search_model_versions(f"name = '{smoke.registered_name}'")
    champion = smoke.client.get_model_version_by_alias(smoke.registered_name, "champion")
    (output,) = smoke.run.outputs.model_outputs
    assert str(champion.version) == str(version.version) == "1"
    assert champion.source == f"models:/{output.model_id}" and champion.run_id == smoke.run.info.run_id
    push = json.loads((smoke.artifact("export") / "push.json").read_text())
    assert push["pushed"] and champion.tags["serving_version"] == str(push["version"])


# Runs in a fresh interpreter outside the repository: MLflow, NumPy and TensorFlow only.
LOAD_AND_PREDICT = textwrap.dedent(
    """
    import json, sys
    import mlflow, numpy as np, tensorflow as tf

    tracking_uri, model_uri, served_dir, out = sys.argv[1:]
    mlflow.set_tracking_uri(tracking_uri)
    image = np.random.default_rng(0).uniform(0, 255, (1, 60, 90, 3)).astype(np.float32)
    champion = mlflow.pyfunc.load_model(model_uri).predict(image)
    serving = tf.saved_model.load(served_dir).signatures["serving_default"]
    served = serving(images=tf.constant(image))["depth"].numpy()
    np.savez(out, champion=champion, served=served)
    project = sorted(m for m in sys.modules if m.split(".")[0] in ("components", "keras_depth", "pipeline"))
    print(json.dumps(project))
    """
)


def test_the_champion_loads_without_project_code_and_predicts_the_served_depth(smoke, tmp_path):
    served_dir = smoke.output_dir / "serving" / "depth" / "1"
    out = tmp_path / "predictions.npz"
    model_uri = f"models:/{smoke.registered_name}@champion"
    env = {
        name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")
    }
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, smoke.tracking_uri, model_uri, str(served_dir), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    predictions = np.load(out)
    assert predictions["champion"].shape == predictions["served"].shape == (1, 14, 18)
    np.testing.assert_allclose(predictions["champion"], predictions["served"], rtol=0, atol=DEPTH_ATOL_M)
    assert np.all(predictions["champion"] > 0)

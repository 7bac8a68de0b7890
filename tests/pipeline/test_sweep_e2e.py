"""`make ablation`'s lambda sweep, on the smoke preset, in a fresh process, against a real MLflow server.

The command is the one `make -n ablation` prints. Read back through the MLflow client: one parent run and three child runs with the swept values as
params and tags, each with the evaluate metrics; the parent's comparison artifacts, whose rows match
the children's metrics; ingest ran once.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from components.tracking import HEADLINE_METRICS, HEADLINE_PREFIX
from pipeline.sweep_report import COMPARISON_JSON, COMPARISON_MARKDOWN, COMPARISON_PLOT
from pipeline.sweep_tracking import DESCRIPTION_TAG, SWEEP_KEYS_TAG

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ("0", "0.5", "1")


def _ablation_command(output_dir: Path) -> list[str]:
    """`make ablation`'s command with the smoke preset, as `make -n` prints it (run by this Python)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    variables = ["CONFIG=configs/smoke.yaml", f"OUTPUT_DIR={output_dir}", f"PY={sys.executable}"]
    printed = subprocess.run(
        ["make", "-n", "ablation", *variables], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    (line,) = [line for line in printed.splitlines() if " -m pipeline.run " in line]
    return shlex.split(line)


def _completed(root: Path, stage: str) -> list[Path]:
    """The completed artifacts of ``stage`` (temporary directories start with a dot)."""
    return [path for path in (root / stage).iterdir() if not path.name.startswith(".")]


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_a_lambda_sweep_is_one_parent_and_three_child_runs_in_mlflow(tmp_path, mlflow_server):
    out = tmp_path / "runs"
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    command = [*_ablation_command(out), "--set", f"mlflow.tracking_uri={mlflow_server.uri}"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]

    client = MlflowClient(mlflow_server.uri)
    runs = client.search_runs([client.get_experiment_by_name("keras-depth").experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = {run.data.params["sweep.loss.lam"]: run for run in runs if run is not parent}
    assert len(runs) == 4 and sorted(children) == sorted(LAMBDAS)
    assert parent.info.run_name == "sweep loss.lam=0,0.5,1" and parent.info.status == "FINISHED"
    assert parent.data.tags[SWEEP_KEYS_TAG] == "loss.lam"
    for lam, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.run_name == f"loss.lam={lam}" and child.info.status == "FINISHED"
        assert child.data.tags["sweep.loss.lam"] == lam
        assert child.data.params["loss.lam"] == str(float(lam))
        assert {f"{HEADLINE_PREFIX}{name}" for name in HEADLINE_METRICS} <= set(child.data.metrics)

    artifacts = {artifact.path for artifact in client.list_artifacts(parent.info.run_id)}
    assert artifacts == {COMPARISON_JSON, COMPARISON_MARKDOWN, COMPARISON_PLOT}
    downloaded = Path(client.download_artifacts(parent.info.run_id, COMPARISON_JSON, str(tmp_path / "dl")))
    document = json.loads(downloaded.read_text())
    assert [row["values"] for row in document["rows"]] == [{"loss.lam": lam} for lam in LAMBDAS]
    for row in document["rows"]:
        child = children[row["values"]["loss.lam"]]
        assert row["status"] == "FINISHED" and row["run_id"] == child.info.run_id
        assert len(row["metrics"]) == len(document["columns"])
        for metric, value in row["metrics"].items():
            assert child.data.metrics[metric] == pytest.approx(value, rel=1e-12), metric

    # Ingest ran once, in the first variant; train and evaluate ran per variant; nothing was exported.
    assert [children[lam].data.tags["stages"] for lam in LAMBDAS] == [
        "ingest,train,evaluate",
        "train,evaluate",
        "train,evaluate",
    ]
    root = out / "pipeline_root"
    assert [len(_completed(root, stage)) for stage in ("ingest", "train", "evaluate")] == [1, 3, 3]
    assert not (root / "export").exists()

    (table,) = (out / "sweeps").glob(f"*/{COMPARISON_MARKDOWN}")
    assert parent.data.tags[DESCRIPTION_TAG] in table.read_text()
    assert parent.data.tags[DESCRIPTION_TAG] in result.stdout

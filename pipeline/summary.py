"""The end-of-run summary: evaluation table, where every artifact is, how to look and serve."""

from __future__ import annotations

import json
from pathlib import Path

from components.base import Artifact
from pipeline.config import PipelineConfig
from pipeline.tracking import resolve_tracking_uri

REPORT_FILE = "report.md"
PUSH_FILE = "push.json"


def format_summary(config: PipelineConfig, artifacts: dict[str, Artifact], output_dir: Path) -> str:
    """A human-readable summary of one pipeline execution."""
    lines = ["", "=" * 72, "keras-depth pipeline summary", "=" * 72]
    evaluate = artifacts.get("evaluate")
    if evaluate is not None and (evaluate.path / REPORT_FILE).is_file():
        lines += ["", (evaluate.path / REPORT_FILE).read_text().strip()]
    lines += ["", "Artifacts:"]
    for name, artifact in artifacts.items():
        lines.append(f"  {name:<9} {artifact.path}")
    export = artifacts.get("export")
    if export is not None and (export.path / PUSH_FILE).is_file():
        push = json.loads((export.path / PUSH_FILE).read_text())
        if push.get("pushed"):
            lines.append(f"  serving   {push['path']} (version {push['version']})")
        else:
            lines.append(f"  serving   not pushed: {push.get('reason', 'model not blessed')}")
    uri = resolve_tracking_uri(config, output_dir)
    lines += [
        "",
        "MLflow UI:",
        f"  make mlflow-ui OUTPUT_DIR={output_dir}",
        f"  (or: mlflow ui --backend-store-uri {uri})",
        "",
        "Serve the model (TF Serving REST API on http://127.0.0.1:8501):",
        f"  make serve OUTPUT_DIR={output_dir} MODEL_NAME={config.export.model_name}",
        "=" * 72,
    ]
    return "\n".join(lines)

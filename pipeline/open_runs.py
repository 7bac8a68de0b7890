"""Open MLflow runs of an output directory, so that the run of a killed process does not stay RUNNING.

When the pipeline starts its MLflow run it writes ``<output_dir>/.mlflow-runs/<run_id>.json``
(run id, tracking URI, owner ``<pid>@<host>``, the status to close it with) and deletes the file
when it has ended the run. A process killed in between (SIGKILL, out of memory, a pre-empted machine)
leaves the file, and the run stays RUNNING in MLflow. The next pipeline run on the same output
directory closes every such run whose owner has exited (``components.owners``; the closing is
``pipeline.tracking.close_orphaned_runs``): as ``KILLED``, or with the recorded status when the process
ended its work but could not reach the server to say so.
"""

from __future__ import annotations

import json
from pathlib import Path

from components.owners import is_gone, owner_tag

OPEN_RUNS_DIR = ".mlflow-runs"
STATUS_KILLED = "KILLED"


def _marker(output_dir: Path, run_id: str) -> Path:
    return Path(output_dir) / OPEN_RUNS_DIR / f"{run_id}.json"


def record_open_run(output_dir: Path, run_id: str, tracking_uri: str, status: str = STATUS_KILLED) -> Path:
    """Writes (or rewrites) the marker of an open run owned by this process.

    Args:
        output_dir: The pipeline's ``--output-dir``.
        run_id: The MLflow run.
        tracking_uri: The store the run lives in.
        status: The status a later run closes it with if this process cannot: ``KILLED`` while the
            run is going on, the final status once the process tried and failed to end it.

    Returns:
        The marker file.
    """
    path = _marker(output_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "tracking_uri": tracking_uri, "owner": owner_tag(), "status": status}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def forget_open_run(output_dir: Path, run_id: str) -> None:
    """Deletes the marker of a run that was ended."""
    _marker(output_dir, run_id).unlink(missing_ok=True)


def orphaned_runs(output_dir: Path) -> list[dict]:
    """The recorded open runs whose owner process has exited (unreadable markers are skipped).

    Args:
        output_dir: The pipeline's ``--output-dir``.

    Returns:
        Their records: ``run_id``, ``tracking_uri``, ``owner`` and ``status`` (to close them with).
    """
    directory = Path(output_dir) / OPEN_RUNS_DIR
    records = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if (
            isinstance(record, dict)
            and {"run_id", "tracking_uri"} <= set(record)
            and is_gone(record.get("owner"))
        ):
            records.append(record)
    return records

"""How MLflow's UI (3.17) presents the pipeline's experiment: its kind, a saved runs-table view, page links.

- Kind: the experiment tag ``mlflow.experimentKind: custom_model_development`` marks a model-training
  experiment. The 3.17 UI itself opens in its GenAI view until the user picks "Model training" in the
  sidebar (remembered per browser, not per experiment); the query parameter :data:`UI_VIEW_QUERY` of
  a page link opens the model-training view directly, so every link here carries it.
- Saved view: the runs table shows no metric columns until the user picks some. The experiment tag
  ``mlflow.sharedViewState.`` + :data:`HEADLINE_VIEW_KEY` is a view the UI lists under "Views" as
  :data:`HEADLINE_VIEW_NAME`: the Dataset and Models columns and the headline test metrics
  (``components.tracking.headline_metrics``), best ``test_abs_rel`` first. It is written in the format
  the UI stores a view a user saves (an envelope with ``name``, ``createdAt``, ``updatedAt`` and
  ``state``, the view's settings as a JSON string); the link :func:`runs_table_page` opens it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Mapping

from components.tracking import HEADLINE_METRICS, HEADLINE_PREFIX

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
UI_VIEW_QUERY = "workflowType=machine_learning"
SAVED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
HEADLINE_VIEW_KEY = "keras-depth-headline"
HEADLINE_VIEW_NAME = "Headline test metrics"
# Where `make mlflow-ui` (`mlflow ui`) serves a local store.
LOCAL_UI = "http://127.0.0.1:5000"


def _column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: ``metrics.`test_delta1```."""
    return f"{kind}.`{key}`"


def headline_view(now_ms: int) -> str:
    """The saved view's tag value (see the module docstring), created at ``now_ms`` (Unix milliseconds)."""
    metrics = [_column("metrics", f"{HEADLINE_PREFIX}{name}") for name in HEADLINE_METRICS]
    state = {
        "selectedColumns": [_column("attributes", "Dataset"), _column("attributes", "Models"), *metrics],
        "orderByKey": _column("metrics", f"{HEADLINE_PREFIX}abs_rel"),
        "orderByAsc": True,
    }
    return json.dumps(
        {"name": HEADLINE_VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(state)}
    )


def experiment_tags(existing: Mapping[str, str]) -> dict[str, str]:
    """The tags to set on an experiment that has the tags ``existing``.

    The kind, unless it is already set to it; the saved view, unless present (a user may have changed it).
    """
    tags = {}
    if existing.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        tags[EXPERIMENT_KIND_TAG] = EXPERIMENT_KIND
    if SAVED_VIEW_TAG_PREFIX + HEADLINE_VIEW_KEY not in existing:
        tags[SAVED_VIEW_TAG_PREFIX + HEADLINE_VIEW_KEY] = headline_view(int(time.time() * 1000))
    return tags


def _ui_base(uri: str) -> str:
    """An HTTP(S) tracking server serves the UI itself; a local store is shown by ``make mlflow-ui``."""
    return uri.rstrip("/") if urllib.parse.urlsplit(uri).scheme in ("http", "https") else LOCAL_UI


def run_page(uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the model-training view of the UI that shows the tracking store ``uri``."""
    return f"{_ui_base(uri)}/#/experiments/{experiment_id}/runs/{run_id}?{UI_VIEW_QUERY}"


def runs_table_page(uri: str, experiment_id: str) -> str:
    """The experiment's runs table in the saved view :data:`HEADLINE_VIEW_NAME`."""
    return f"{_ui_base(uri)}/#/experiments/{experiment_id}/runs?viewStateShareKey={HEADLINE_VIEW_KEY}&{UI_VIEW_QUERY}"

"""Links into MLflow's UI and the saved runs-table view, in the form MLflow 3.17's UI reads them."""

from __future__ import annotations

import json

from pipeline.mlflow_ui import headline_view, run_page, runs_table_page


def test_links_open_the_model_training_view_on_the_server_or_the_local_ui():
    assert run_page("http://tracking.example:5000/", "7", "abc") == (
        "http://tracking.example:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    )
    assert runs_table_page("sqlite:////runs/mlflow.db", "7") == (
        "http://127.0.0.1:5000/#/experiments/7/runs?viewStateShareKey=keras-depth-headline"
        "&workflowType=machine_learning"
    )


def test_the_headline_view_shows_dataset_models_and_test_metrics_best_abs_rel_first():
    envelope = json.loads(headline_view(now_ms=1_700_000_000_000))
    assert envelope["name"] == "Headline test metrics"
    assert envelope["createdAt"] == envelope["updatedAt"] == 1_700_000_000_000
    state = json.loads(envelope["state"])
    assert state["selectedColumns"] == [
        "attributes.`Dataset`",
        "attributes.`Models`",
        "metrics.`test_delta1`",
        "metrics.`test_abs_rel`",
        "metrics.`test_rmse`",
        "metrics.`test_si_log`",
    ]
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`test_abs_rel`", True)

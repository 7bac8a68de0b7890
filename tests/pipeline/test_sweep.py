"""Sweeps: parsing ``--sweep`` flags, their product, errors naming the flag, and the sweep's MLflow runs.

The runs here use small stand-in stages (as the runner's tests do) with the real runner and a real
MLflow SQLite store; ``test_sweep_e2e.py`` runs the real stages through the CLI against a real server.
"""

from __future__ import annotations

import json
import logging
import socket

import pytest
from mlflow.tracking import MlflowClient

from components.base import StageDefinition
from components.serving_contract import METRICS_FILE
from pipeline import run as cli
from pipeline.config import CONFIGS_DIR, ConfigError, load_config
from pipeline.open_runs import OPEN_RUNS_DIR
from pipeline.sweep import (
    SweepFailed,
    plan_sweep,
    run_sweep,
    split_values,
    stages_through,
)
from pipeline.sweep_report import (
    COMPARISON_JSON,
    COMPARISON_MARKDOWN,
    COMPARISON_PLOT,
    comparison_columns,
    markdown_table,
)
from pipeline.sweep_tracking import DESCRIPTION_TAG, SWEEP_KEYS_TAG

SMOKE = CONFIGS_DIR / "smoke.yaml"
STAGES = ["ingest", "train", "evaluate"]


def _plan(*flags: str, overrides: tuple[str, ...] = ()):
    return plan_sweep(load_config(SMOKE, list(overrides)), SMOKE, list(overrides), list(flags))


def test_values_split_at_commas_outside_brackets_and_quotes():
    assert split_values("0, 0.5,1") == ["0", "0.5", "1"]
    assert split_values("[/gpu:0,/gpu:1],[]") == ["[/gpu:0,/gpu:1]", "[]"]
    assert split_values("{a: 1, b: 2},'x,y',\"u,v\"") == ["{a: 1, b: 2}", "'x,y'", '"u,v"']


def test_the_product_of_several_flags_in_flag_order_applied_after_set():
    sweep = _plan("loss.lam=0,1", "train.fine_samples=8,16,24", overrides=("loss.lam=0.5",))
    assert sweep.name == "sweep loss.lam=0,1 train.fine_samples=8,16,24"
    assert sweep.keys == ["loss.lam", "train.fine_samples"]
    assert [variant.name for variant in sweep.variants] == [
        f"loss.lam={lam}, train.fine_samples={samples}" for lam in (0, 1) for samples in (8, 16, 24)
    ]
    assert [(v.config.loss.lam, v.config.train.fine_samples) for v in sweep.variants] == [
        (lam, samples) for lam in (0.0, 1.0) for samples in (8, 16, 24)
    ]
    assert sweep.variants[0].values == {"loss.lam": "0", "train.fine_samples": "8"}
    assert sweep.config.loss.lam == 0.5, "the parent's config has no swept value"
    assert all(v.config.preset == "smoke" and v.config.model.input_height == 64 for v in sweep.variants)


def test_list_values_are_swept_whole():
    sweep = _plan("train.devices=[],[/cpu:0]")
    assert [variant.config.train.devices for variant in sweep.variants] == [[], ["/cpu:0"]]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["loss.lam"], "--sweep: 'loss.lam' is not of the form section.key=value1,value2,..."),
        (["loss.lam=0,,1"], "--sweep loss.lam=0,,1: empty value"),
        (["loss.lam=[0,1"], "--sweep loss.lam=[0,1: value '[0,1' is not valid YAML"),
        (["loss.lam=0,0.0"], "--sweep loss.lam=0,0.0: value '0.0' repeats an earlier value"),
        (["mlflow.experiment_name=a,b"], "--sweep mlflow.experiment_name=a,b: the 'mlflow' section cannot"),
        (
            ["loss.lam=0,1", "loss.lam=0.5"],
            "--sweep loss.lam=0.5: key 'loss.lam' is swept by --sweep loss.lam=0,1",
        ),
        (["loss.lamb=0,1"], "--sweep loss.lamb=0,1: unknown key 'loss.lamb'"),
        (["loss.lam=0,x"], "--sweep loss.lam=0,x: key 'loss.lam' expects float, got str 'x'"),
        (["loss.lam=0,2"], "--sweep loss.lam=0,2: key 'loss.lam' expects a value in [0, 1], got 2.0"),
        (
            ["model.input_height=64,100"],
            "--sweep model.input_height=64,100: key 'model.input_height' expects a value <= "
            "ingest.storage_height (72), got 100",
        ),
    ],
)
def test_a_bad_flag_key_or_value_names_its_sweep_flag(flags, message):
    with pytest.raises(ConfigError) as raised:
        _plan(*flags)
    assert str(raised.value).startswith(message)


def test_the_cli_checks_every_variant_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "runs"
    code = cli.main(["--config", str(SMOKE), "--output-dir", str(out), "--sweep", "loss.lam=0,0.5,7"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "config error: --sweep loss.lam=0,0.5,7: key 'loss.lam' expects a value in [0, 1], got 7.0"
    )
    assert not out.exists()
    assert cli.main(["--set", "loss.lam=x", "--sweep", "train.fine_samples=8,16"]) == 2
    assert "config error: --set loss.lam=x: key 'loss.lam' expects float" in capsys.readouterr().err


def test_print_config_prints_one_document_per_variant(capsys):
    assert cli.main(["--config", str(SMOKE), "--sweep", "loss.lam=0,1", "--print-config"]) == 0
    documents = capsys.readouterr().out.split("--- # ")[1:]
    assert [document.splitlines()[0] for document in documents] == ["loss.lam=0", "loss.lam=1"]
    assert "  lam: 1.0\n" in documents[1]


def test_a_variant_runs_every_stage_up_to_the_one_named():
    assert stages_through("evaluate") == ["ingest", "train", "evaluate"]
    assert stages_through("ingest") == ["ingest"]
    assert stages_through("all") == ["ingest", "train", "evaluate", "export"]


def _metrics(lam: float) -> dict:
    """A ``metrics.json`` whose numbers depend on lambda, with the predictors evaluate writes."""
    network = {"delta1": 0.5 + lam / 10, "abs_rel": 0.3 - lam / 10, "rmse": 1.0 + lam, "si_log": 0.2}
    return {
        "coarse_fine": {**network, "edge_log_grad": 0.1},
        "coarse": {**network, "edge_log_grad": 0.2},
        "baseline": {"delta1": 0.4, "abs_rel": 0.5, "rmse": 2.0, "si_log": 0.3},
    }


def _stages(calls: list[str], interrupt_at: float | None = None, fail_at: float | None = None):
    """Ingest (independent of lambda), train (fails or is interrupted at one lambda) and an evaluate
    that writes ``metrics.json``, all recording their calls."""

    def ingest(ctx):
        calls.append("ingest")

    def train(ctx):
        lam = ctx.config.loss.lam
        calls.append(f"train {lam:g}")
        if lam == fail_at:
            raise ValueError(f"loss diverged at lambda {lam:g}")
        if lam == interrupt_at:
            raise KeyboardInterrupt

    def evaluate(ctx):
        calls.append("evaluate")
        (ctx.output_dir / METRICS_FILE).write_text(json.dumps(_metrics(ctx.config.loss.lam)))

    return {
        "ingest": StageDefinition("ingest", (), lambda config: {}, ingest),
        "train": StageDefinition("train", ("ingest",), lambda config: {"lam": config.loss.lam}, train),
        "evaluate": StageDefinition("evaluate", ("ingest", "train"), lambda config: {}, evaluate),
    }


def _sweep_runs(out, parent_run_id: str | None = None) -> tuple:
    """The parent run in the store of ``out`` (the only one, or ``parent_run_id``) and its child runs
    by name."""
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("keras-depth").experiment_id])
    (parent,) = [
        run
        for run in runs
        if "mlflow.parentRunId" not in run.data.tags and parent_run_id in (None, run.info.run_id)
    ]
    children = {
        run.info.run_name: run
        for run in runs
        if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    return parent, children


@pytest.fixture
def local_store(monkeypatch):
    """Tracking goes to the output directory's SQLite store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_a_failed_variant_is_a_failed_row_and_run_and_the_others_complete(tmp_path, local_store):
    calls: list[str] = []
    out = tmp_path / "runs"
    sweep = _plan("loss.lam=0,0.5,1")
    with pytest.raises(SweepFailed, match=r"1 of 3 sweep variants failed \(loss.lam=0.5\)") as raised:
        run_sweep(sweep, STAGES, out, registry=_stages(calls, fail_at=0.5))
    assert calls == ["ingest", "train 0", "evaluate", "train 0.5", "train 1", "evaluate"]

    report = raised.value.report
    rows = report.document["rows"]
    assert [(row["variant"], row["status"]) for row in rows] == [
        ("loss.lam=0", "FINISHED"),
        ("loss.lam=0.5", "FAILED"),
        ("loss.lam=1", "FINISHED"),
    ]
    assert rows[1]["error"] == "ValueError: loss diverged at lambda 0.5" and rows[1]["metrics"] == {}
    assert rows[2]["metrics"]["test_delta1"] == pytest.approx(0.6)
    assert rows[2]["metrics"]["evaluate/coarse/edge_log_grad"] == 0.2
    assert rows[2]["metrics"]["evaluate/baseline/rmse"] == 2.0
    assert {path.name for path in report.directory.iterdir()} == {
        COMPARISON_JSON,
        COMPARISON_MARKDOWN,
        COMPARISON_PLOT,
    }
    assert report.directory.parent == out.resolve() / "sweeps"
    assert json.loads((report.directory / COMPARISON_JSON).read_text()) == report.document
    assert (report.directory / COMPARISON_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "- loss.lam=0.5: ValueError: loss diverged at lambda 0.5" in report.markdown

    parent, children = _sweep_runs(out)
    assert parent.info.run_name == "sweep loss.lam=0,0.5,1" and parent.info.status == "FAILED"
    assert parent.data.tags[SWEEP_KEYS_TAG] == "loss.lam"
    assert parent.data.tags[DESCRIPTION_TAG] == report.markdown
    assert sorted(children) == sorted(row["variant"] for row in rows)
    for row in rows:
        child = children[row["variant"]]
        assert child.info.status == row["status"] and child.info.run_id == row["run_id"]
        assert (
            child.data.params["sweep.loss.lam"]
            == child.data.tags["sweep.loss.lam"]
            == row["values"]["loss.lam"]
        )
        assert child.data.metrics == row["metrics"]
    assert not list((out / OPEN_RUNS_DIR).glob("*.json")), "every run was ended"


def test_a_rerun_reuses_every_stage_and_still_has_a_child_run_with_metrics_per_variant(tmp_path, local_store):
    calls: list[str] = []
    out = tmp_path / "runs"
    sweep = _plan("loss.lam=0,1")
    first = run_sweep(sweep, STAGES, out, registry=_stages(calls))
    calls.clear()
    second = run_sweep(sweep, STAGES, out, registry=_stages(calls))
    assert calls == [], "every stage of every variant is reused"
    assert second.directory != first.directory
    assert [row["metrics"] for row in second.document["rows"]] == [
        row["metrics"] for row in first.document["rows"]
    ]
    _, children = _sweep_runs(out, second.parent.run_id)
    assert len(children) == 2
    for row in second.document["rows"]:
        child = children[row["variant"]]
        assert child.info.run_id == row["run_id"] and child.data.metrics == row["metrics"]
        assert child.data.tags["stages"] == "", "no stage ran"


def test_an_interrupt_ends_the_parent_and_the_running_child_killed(tmp_path, local_store):
    out = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(_plan("loss.lam=0,1"), STAGES, out, registry=_stages([], interrupt_at=1.0))
    parent, children = _sweep_runs(out)
    assert parent.info.status == "KILLED"
    assert {name: child.info.status for name, child in children.items()} == {
        "loss.lam=0": "FINISHED",
        "loss.lam=1": "KILLED",
    }
    assert not list((out / OPEN_RUNS_DIR).glob("*.json"))
    assert not (out / "sweeps").exists()


def test_without_tracking_the_comparison_is_still_written(tmp_path):
    out = tmp_path / "runs"
    sweep = _plan("loss.lam=0,1", overrides=("mlflow.enabled=false",))
    report = run_sweep(sweep, STAGES, out, registry=_stages([]))
    assert report.parent is None and not (out / "mlflow.db").exists()
    assert [row["run_id"] for row in report.document["rows"]] == [None, None]
    assert (report.directory / COMPARISON_MARKDOWN).read_text().startswith("# sweep loss.lam=0,1\n")


def test_the_markdown_table_has_one_row_per_variant_and_a_dash_for_no_value():
    columns = comparison_columns()
    assert [column.metric for column in columns[:5]] == [
        "test_delta1",
        "test_abs_rel",
        "test_rmse",
        "test_si_log",
        "evaluate/coarse_fine/edge_log_grad",
    ]
    document = {
        "keys": ["loss.lam"],
        "columns": [vars(column) for column in columns],
        "rows": [
            {
                "variant": "loss.lam=0",
                "values": {"loss.lam": "0"},
                "status": "FINISHED",
                "metrics": {"test_delta1": 0.61234},
            },
        ],
    }
    header, rule, row, *_ = markdown_table(document).splitlines()
    assert header.startswith("| loss.lam | status | c+f delta1 | c+f abs_rel |")
    assert rule.count("|") == len(columns) + 3
    assert row.startswith("| 0 | FINISHED | 0.612 | - |")


def test_an_unreachable_server_puts_the_parent_and_its_children_in_the_local_store(
    tmp_path, local_store, caplog
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once the socket is closed
    out = tmp_path / "runs"
    sweep = _plan("loss.lam=0,1", overrides=(f"mlflow.tracking_uri={uri}",))
    with caplog.at_level(logging.WARNING, logger="keras_depth.pipeline"):
        report = run_sweep(sweep, STAGES, out, registry=_stages([]))
    assert caplog.text.count(f"MLflow tracking store {uri} cannot be used") == 1, "the parent's start only"
    assert report.parent.tracking_uri == f"sqlite:///{out.resolve() / 'mlflow.db'}"
    parent, children = _sweep_runs(out)
    assert parent.info.status == "FINISHED" and sorted(children) == ["loss.lam=0", "loss.lam=1"]

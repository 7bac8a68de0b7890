"""The evaluate stage end to end on tiny artifacts: files, metrics, blessing against a served model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.evaluate import STAGE, parameters
from components.export.push import push_saved_model
from components.export.signatures import write_saved_model
from components.serving_contract import BLESSED_FILE, NOT_BLESSED_FILE, ServingGeometry
from keras_depth.metrics import METRIC_NAMES
from pipeline.config import PipelineConfig

PREDICTORS = ("baseline", "coarse", "coarse_fine")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _serve(model, tiny, tiny_model, serving_root, tmp_path, name):
    """Exports ``model`` and pushes it as the next version of the default model name."""
    geometry = ServingGeometry(
        tiny.frame_height, tiny.frame_width, tiny_model.input_height, tiny_model.input_width
    )
    saved = write_saved_model(model, geometry, upsample_to_input=False, export_dir=tmp_path / name)
    return push_saved_model(saved, serving_root / PipelineConfig().export.model_name)


def test_parameters_include_the_served_model_only_when_compared():
    config = PipelineConfig()
    assert parameters(config)["served_model_name"] == config.export.model_name
    config.evaluate.compare_with_served = False
    assert parameters(config) == {**vars(config.evaluate)}
    assert STAGE.name == "evaluate" and STAGE.inputs == ("ingest", "train")


def test_blesses_a_model_that_beats_the_baseline_when_nothing_is_served(make_context, tiny):
    ctx = make_context(paper_table="nyu", min_delta1=0.9, max_abs_rel=0.1)
    counts = STAGE.run(ctx)

    assert counts == {"num_images": tiny.num_test, "blessed": True}
    metrics = json.loads((ctx.output_dir / "metrics.json").read_text())
    assert set(metrics) == {
        *PREDICTORS,
        "image_averaged",
        "si_log_per_image",
        "protocol",
        "num_images",
        "baseline_depth",
        "geometry",
        "examples",
        "blessed",
        "blessing_reasons",
    }
    for name in PREDICTORS:
        assert set(metrics[name]) == set(METRIC_NAMES)
        assert set(metrics["image_averaged"][name]) == set(METRIC_NAMES)
    assert metrics["num_images"] == tiny.num_test
    for name in PREDICTORS:
        assert metrics["si_log_per_image"][name] == metrics["image_averaged"][name]["si_log"]
    # Native ground truth (144 x 192): the 64 x 80 input crop of the 72 x 96 frame is its rows 8:136 and
    # columns 16:176, clear of the invalid 12 x 12 corner block; no evaluation crop.
    assert metrics["protocol"] == {
        "crop": "none",
        "min_depth": 0.1,
        "max_depth": 10.0,
        "ground_truth_sizes": {"144x192": tiny.num_test},
        "images_without_native_depth": 0,
        "num_pixels": tiny.num_test * 128 * 160,
    }
    assert metrics["baseline_depth"] == pytest.approx(tiny.train_depth)
    # Baseline: 1 m against 2.5 m everywhere; the untrained networks predict about 2.5 m.
    assert metrics["baseline"]["abs_rel"] == pytest.approx(0.6)
    assert metrics["coarse_fine"]["abs_rel"] < 0.1 and metrics["coarse_fine"]["delta1"] > 0.9
    assert metrics["geometry"] == {
        "frame_height": 72,
        "frame_width": 96,
        "input_height": 64,
        "input_width": 80,
    }
    assert set(metrics["examples"]) == {"best", "median", "worst"}
    assert metrics["examples"]["best"]["abs_rel"] <= metrics["examples"]["worst"]["abs_rel"]

    assert (ctx.output_dir / BLESSED_FILE).is_file() and not (ctx.output_dir / NOT_BLESSED_FILE).exists()
    report = (ctx.output_dir / "report.md").read_text()
    assert (
        "| metric | mean | coarse | coarse+fine | paper mean | paper coarse | paper coarse+fine |" in report
    )
    assert "| abs rel (lower is better) | 0.600 |" in report
    assert (ctx.output_dir / "predictions.png").read_bytes().startswith(PNG_MAGIC)


def test_records_without_native_depth_are_scored_on_the_stored_frame_with_a_warning(
    make_context, legacy_ingest_artifact, tiny, caplog
):
    ctx = make_context(ingest=legacy_ingest_artifact, compare_with_served=False)
    with caplog.at_level("WARNING", logger=ctx.log.name):
        STAGE.run(ctx)
    assert f"{tiny.num_test} of {tiny.num_test} test records" in caplog.text and "rerun ingest" in caplog.text
    metrics = json.loads((ctx.output_dir / "metrics.json").read_text())
    assert metrics["protocol"]["images_without_native_depth"] == tiny.num_test
    # The stored frame's 64 x 80 centre crop (rows 4:68, columns 8:88), clear of the invalid 6 x 6 corner.
    assert metrics["protocol"]["num_pixels"] == tiny.num_test * 64 * 80
    assert metrics["baseline"]["abs_rel"] == pytest.approx(0.6)
    assert "no native ground truth" in (ctx.output_dir / "report.md").read_text()


def test_not_blessed_below_thresholds(make_context):
    ctx = make_context(compare_with_served=False, min_delta1=1.01)
    assert STAGE.run(ctx)["blessed"] is False
    reasons = (ctx.output_dir / NOT_BLESSED_FILE).read_text()
    assert "min_delta1=1.01" in reasons and "baseline" not in reasons


def test_compares_with_the_highest_served_version(
    make_context, train_artifact, build_networks, tiny, tiny_model, tmp_path
):
    import keras

    serving_root = tmp_path / "serving"
    candidate = keras.saving.load_model(train_artifact.path / "fine.keras")
    # Version 1 is the candidate itself: re-scored through the SavedModel it must not count as worse.
    _serve(candidate, tiny, tiny_model, serving_root, tmp_path, "same")
    ctx = make_context(serving_root=serving_root)
    assert STAGE.run(ctx)["blessed"] is True
    metrics = json.loads((ctx.output_dir / "metrics.json").read_text())
    assert metrics["served_model"]["version"] == 1
    for name in METRIC_NAMES:
        assert metrics["served"][name] == pytest.approx(metrics["coarse_fine"][name], abs=1e-6)

    # Version 2 is better: fine4's kernel zeroed, so it predicts exactly initial_depth = the test depth.
    _, better = build_networks(seed=1)
    fine4 = better.get_layer("fine4")
    fine4.kernel.assign(np.zeros(fine4.kernel.shape, np.float32))
    assert _serve(better, tiny, tiny_model, serving_root, tmp_path, "better").version == 2
    ctx = make_context(serving_root=serving_root)
    assert STAGE.run(ctx) == {"num_images": tiny.num_test, "blessed": False}
    metrics = json.loads((ctx.output_dir / "metrics.json").read_text())
    assert metrics["served_model"]["version"] == 2
    assert metrics["served"]["abs_rel"] < 1e-5 < metrics["coarse_fine"]["abs_rel"]
    reasons = (ctx.output_dir / NOT_BLESSED_FILE).read_text().splitlines()
    assert len(reasons) == 1 and reasons[0].startswith("fails: abs_rel") and "vs served model" in reasons[0]
    assert "| metric | mean | coarse | coarse+fine | served |" in (ctx.output_dir / "report.md").read_text()


def test_unknown_paper_table_fails_before_any_work(make_context):
    ctx = make_context(paper_table="make3d")
    with pytest.raises(ValueError, match="evaluate.paper_table"):
        STAGE.run(ctx)
    assert list(ctx.output_dir.iterdir()) == []

"""Cross-dataset evaluation on tiny artifacts: an extra dataset's column set in ``metrics.json``, the
report and MLflow, its own mean baseline, and a blessing that looks at the test split only."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from mlflow.tracking import MlflowClient

from components.evaluate import STAGE
from components.evaluate.config import ExtraDatasetConfig
from components.evaluate.extra_datasets import score_extra_dataset
from components.serving_contract import BLESSED_FILE
from keras_depth.metrics import METRIC_NAMES

PREDICTORS = ("baseline", "coarse", "coarse_fine")
# The stage reads the artifact from its inputs; ``artifact`` is what the pipeline resolved it from.
FAR = ExtraDatasetConfig(name="far_rooms", artifact="far_rooms_ingest")
# Thresholds the test split passes (the untrained networks predict its 2.5 m) and the far dataset fails.
THRESHOLDS = {"compare_with_served": False, "min_delta1": 0.9, "max_abs_rel": 0.1}


def _metrics(ctx) -> dict:
    return json.loads((ctx.output_dir / "metrics.json").read_text())


def test_extra_dataset_is_scored_logged_and_reported_without_changing_the_blessing(
    make_context, far_ingest_artifact, tiny, mlflow_run
):
    alone = make_context(**THRESHOLDS)
    STAGE.run(alone)
    ctx = dataclasses.replace(
        make_context(extra_inputs={FAR.input_name: far_ingest_artifact}, extra_datasets=[FAR], **THRESHOLDS),
        tracking=True,
    )
    counts = STAGE.run(ctx)

    assert counts == {
        "num_images": tiny.num_test,
        "blessed": True,
        "extra_num_images": {FAR.name: tiny.num_far},
    }
    metrics, before = _metrics(ctx), _metrics(alone)
    far = metrics["extra_datasets"][FAR.name]
    assert set(far) == {
        *PREDICTORS,
        "image_averaged",
        "si_log_per_image",
        "protocol",
        "num_images",
        "baseline_depth",
        "frame",
        "ingest",
    }
    for name in PREDICTORS:
        assert set(far[name]) == set(METRIC_NAMES)
    assert far["num_images"] == tiny.num_far
    assert far["frame"] == {"height": tiny.frame_height, "width": tiny.frame_width}
    assert far["ingest"] == {
        "path": str(far_ingest_artifact.path),
        "fingerprint": far_ingest_artifact.fingerprint,
    }
    assert far["protocol"]["ground_truth_sizes"] == {"144x192": tiny.num_far}
    # The dataset's own mean depth (5 m) is exact; the networks' 2.5 m is off by half.
    assert far["baseline_depth"] == pytest.approx(tiny.far_depth)
    assert far["baseline"]["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert far["coarse_fine"]["abs_rel"] == pytest.approx(0.5, abs=0.05)

    # The blessing and the test split's numbers are those of the run without the extra dataset.
    assert metrics["blessing_reasons"] == before["blessing_reasons"]
    assert (ctx.output_dir / BLESSED_FILE).is_file()
    for key in (*PREDICTORS, "protocol", "baseline_depth", "num_images"):
        assert metrics[key] == before[key]
    assert "extra_datasets" not in before

    report = (ctx.output_dir / "report.md").read_text()
    assert "## Cross-dataset" not in (alone.output_dir / "report.md").read_text()
    assert (
        "| metric | test mean | test coarse | test coarse+fine "
        "| far_rooms mean | far_rooms coarse | far_rooms coarse+fine |" in report
    )
    assert f"| abs rel (lower is better) | 0.600 | {metrics['coarse']['abs_rel']:.3f} |" in report
    assert (
        f"- **far_rooms**: {tiny.num_far} images" in report and "the mean baseline predicts 5.000 m" in report
    )

    logged = MlflowClient().get_run(mlflow_run).data.metrics
    assert logged["far_rooms_abs_rel"] == pytest.approx(far["coarse_fine"]["abs_rel"])
    assert logged["far_rooms_si_log"] == pytest.approx(far["coarse_fine"]["si_log"])
    assert logged["evaluate/far_rooms/coarse/delta1"] == pytest.approx(far["coarse"]["delta1"])
    assert logged["evaluate/far_rooms/baseline/si_log_per_image"] == pytest.approx(
        far["si_log_per_image"]["baseline"]
    )
    assert logged["evaluate/far_rooms/image_averaged/coarse_fine/rmse"] == pytest.approx(
        far["image_averaged"]["coarse_fine"]["rmse"]
    )
    assert logged["evaluate/far_rooms/num_images"] == tiny.num_far
    assert logged["evaluate/far_rooms/num_pixels"] == far["protocol"]["num_pixels"]
    # The test split keeps its names.
    assert logged["test_abs_rel"] == pytest.approx(metrics["coarse_fine"]["abs_rel"])
    assert logged["evaluate/coarse_fine/abs_rel"] == pytest.approx(metrics["coarse_fine"]["abs_rel"])


def test_frames_smaller_than_the_network_input_fail_naming_the_dataset(
    make_context, far_ingest_artifact, tiny
):
    cfg = make_context().config.evaluate
    too_large = (tiny.frame_height + 8, tiny.frame_width)
    with pytest.raises(
        ValueError, match=rf"far_rooms: its frames are stored at 72x96 .*{too_large[0]}x96 network"
    ):
        score_extra_dataset(FAR, far_ingest_artifact, {}, cfg, too_large, (14, 18), logging.getLogger("test"))

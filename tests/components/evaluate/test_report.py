"""The Markdown report in the paper's table layout."""

from __future__ import annotations

import pytest

from components.evaluate.report import (
    METRIC_LABELS,
    PAPER_DEFINITIONS,
    PRETRAINING_NOTE,
    REPORT_METRICS,
    metrics_table,
    paper_protocol_columns,
    render_report,
)
from keras_depth.metrics import METRIC_NAMES


def _metrics(offset: float) -> dict[str, float]:
    return {name: offset + index / 100 for index, name in enumerate(METRIC_NAMES)}


COLUMNS = {"baseline": _metrics(0.1), "coarse": _metrics(0.2), "coarse_fine": _metrics(0.3)}


def _rows(table: str) -> dict[str, list[str]]:
    """Metric label -> the cells after it, from a Markdown table."""
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].rsplit(" (", 1)[0]] = cells[1:]
    return rows


def test_table_has_every_metric_and_the_nyu_paper_columns():
    table = metrics_table(COLUMNS, paper_table="nyu")
    header = table.splitlines()[0]
    assert header == (
        "| metric | mean | coarse | coarse+fine | paper mean | paper coarse | paper coarse+fine |"
    )
    rows = _rows(table)
    assert list(rows) == [METRIC_LABELS[name] for name in REPORT_METRICS]
    assert rows["delta < 1.25"] == ["0.100", "0.200", "0.300", "0.418", "0.618", "0.611"]
    assert rows["abs rel"] == ["0.130", "0.230", "0.330", "0.408", "0.228", "0.215"]
    assert rows["SI log"] == ["0.170", "0.270", "0.370", "0.304", "0.221", "0.219"]


def test_kitti_columns_leave_metrics_the_paper_omits_blank():
    rows = _rows(metrics_table(COLUMNS, paper_table="kitti"))
    assert rows["RMSE (m)"][3:] == ["9.635", "–", "7.156"]
    assert rows["sq rel"][3:] == ["–", "–", "1.515"]


def test_served_column_and_no_paper_column():
    table = metrics_table(COLUMNS, served=_metrics(0.5))
    assert table.splitlines()[0] == "| metric | mean | coarse | coarse+fine | served |"
    assert _rows(table)["delta < 1.25"][-1] == "0.500"


def test_unknown_paper_table_names_the_field():
    with pytest.raises(ValueError, match="evaluate.paper_table"):
        metrics_table(COLUMNS, paper_table="make3d")


RESULTS = {
    **COLUMNS,
    "image_averaged": {name: _metrics(0.6) for name in COLUMNS},
    "si_log_per_image": {"baseline": 0.901, "coarse": 0.902, "coarse_fine": 0.903},
    "protocol": {
        "crop": "nyu_eigen",
        "min_depth": 0.001,
        "max_depth": 10.0,
        "ground_truth_sizes": {"480x640": 7},
        "images_without_native_depth": 0,
        "num_pixels": 12345,
    },
    "geometry": {"frame_height": 240, "frame_width": 320, "input_height": 228, "input_width": 304},
    "num_images": 7,
    "baseline_depth": 2.345,
}


def test_paper_columns_use_per_image_si_and_pooled_other_metrics():
    columns = paper_protocol_columns(RESULTS)
    assert columns["coarse"] == {**COLUMNS["coarse"], "si_log": 0.902}


def test_report_has_the_protocol_three_tables_the_note_and_the_decision():
    report = render_report(RESULTS, "nyu", "BLESSED: passes: all")
    assert (
        "7 images, 12345 ground-truth pixels" in report
        and "native resolution (480x640 for 7 images)" in report
    )
    assert "`nyu_eigen`, applied in native coordinates" in report and "[0.001, 10] m" in report
    assert "centre 228x304 crop of the 240x320 stored frame" in report and "2.345 m" in report
    assert "no native ground truth" not in report
    assert PAPER_DEFINITIONS in report and PRETRAINING_NOTE in report
    paper, pooled, image = report.split("\n## ")[1:4]
    assert paper.startswith("The paper's definitions") and pooled.startswith("Pixel-pooled")
    assert image.startswith("Image-averaged")
    # Beside the paper: pooled delta, per-image SI log; the pooled table keeps the pooled SI log.
    assert "| delta < 1.25 (higher is better) | 0.100 | 0.200 | 0.300 | 0.418 | 0.618 | 0.611 |" in paper
    assert "| SI log (lower is better) | 0.901 | 0.902 | 0.903 | 0.304 | 0.221 | 0.219 |" in paper
    assert "| SI log (lower is better) | 0.170 | 0.270 | 0.370 |" in pooled
    assert "| delta < 1.25 (higher is better) | 0.600 | 0.600 | 0.600 |" in image
    assert report.endswith("**Blessing:** BLESSED: passes: all\n")


def test_report_says_when_images_lack_native_ground_truth():
    protocol = {**RESULTS["protocol"], "images_without_native_depth": 3, "ground_truth_sizes": {"240x320": 7}}
    report = render_report({**RESULTS, "protocol": protocol}, "", "BLESSED: passes: all")
    assert "**3 of 7 images have no native ground truth**" in report
    assert "Paper columns" not in report

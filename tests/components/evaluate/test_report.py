"""The Markdown report in the paper's table layout."""

from __future__ import annotations

import pytest

from components.evaluate.report import METRIC_LABELS, PRETRAINING_NOTE, metrics_table, render_report
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
    assert list(rows) == [METRIC_LABELS[name] for name in METRIC_NAMES]
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


def test_report_has_both_averages_the_note_and_the_decision():
    results = {
        **COLUMNS,
        "image_averaged": {name: _metrics(0.6) for name in COLUMNS},
        "num_images": 7,
        "baseline_depth": 2.345,
    }
    report = render_report(results, "nyu_eigen", (0.001, 10.0), "nyu", "BLESSED: passes: all")
    assert "7 images" in report and "`nyu_eigen`" in report and "2.345 m" in report
    assert PRETRAINING_NOTE in report
    assert report.count("| delta < 1.25 (higher is better) |") == 2
    assert "| delta < 1.25 (higher is better) | 0.600 | 0.600 | 0.600 |" in report
    assert report.endswith("**Blessing:** BLESSED: passes: all\n")

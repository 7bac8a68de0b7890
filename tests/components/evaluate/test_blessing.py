"""Blessing decisions from metric dicts (the decision file is tested with components.serving_contract)."""

from __future__ import annotations

import pytest

from components.evaluate.blessing import SERVED_TOLERANCE, decide_blessing
from components.serving_contract import BLESSED_FILE, NOT_BLESSED_FILE

BASELINE = {"delta1": 0.40, "abs_rel": 0.40, "rmse": 1.20}
GOOD = {"delta1": 0.60, "abs_rel": 0.20, "rmse": 0.90}
THRESHOLDS = {"min_delta1": 0.5, "max_abs_rel": 0.3}


def test_blesses_a_model_that_beats_the_baseline_when_nothing_is_served():
    blessing = decide_blessing(GOOD, BASELINE, **THRESHOLDS, served=None)
    assert blessing.blessed
    assert blessing.file_name == BLESSED_FILE
    assert all(reason.startswith("passes:") for reason in blessing.reasons)


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ({**GOOD, "abs_rel": 0.40}, "abs_rel 0.4000 vs mean baseline"),
        ({**GOOD, "rmse": 1.30}, "rmse 1.3000 m vs mean baseline"),
        ({**GOOD, "delta1": 0.45}, "min_delta1=0.5"),
        ({**GOOD, "abs_rel": 0.35}, "max_abs_rel=0.3"),
        ({**GOOD, "abs_rel": float("nan")}, "abs_rel nan vs mean baseline"),
    ],
)
def test_each_failed_rule_is_a_reason(candidate, reason):
    blessing = decide_blessing(candidate, BASELINE, **THRESHOLDS)
    assert not blessing.blessed
    assert any(reason in text and text.startswith("fails:") for text in blessing.reasons), blessing.reasons


def test_without_the_baseline_rule_a_model_worse_than_the_baseline_is_blessed():
    worse = {**GOOD, "abs_rel": 0.25, "rmse": 1.30}
    assert not decide_blessing(worse, BASELINE, **THRESHOLDS).blessed
    blessing = decide_blessing(worse, None, **THRESHOLDS)
    assert blessing.blessed
    assert not any("baseline" in reason for reason in blessing.reasons)


def test_refuses_a_model_worse_than_the_served_one():
    served = {**GOOD, "abs_rel": 0.15}
    blessing = decide_blessing(GOOD, BASELINE, **THRESHOLDS, served=served)
    assert not blessing.blessed
    assert blessing.reasons == ("fails: abs_rel 0.2000 vs served model 0.1500",)
    assert blessing.summary() == f"{NOT_BLESSED_FILE}: fails: abs_rel 0.2000 vs served model 0.1500"


def test_not_worse_than_served_within_tolerance_is_blessed():
    served = {**GOOD, "abs_rel": GOOD["abs_rel"] - SERVED_TOLERANCE / 2}
    assert decide_blessing(GOOD, BASELINE, **THRESHOLDS, served=served).blessed
    slightly_better = {**GOOD, "abs_rel": GOOD["abs_rel"] - 2 * SERVED_TOLERANCE}
    assert not decide_blessing(GOOD, BASELINE, **THRESHOLDS, served=slightly_better).blessed

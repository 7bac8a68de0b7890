"""Configuration of the evaluate stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from keras_depth.config_checks import check_at_least, check_fraction, check_order


@dataclass
class EvaluateConfig:
    """Evaluate stage: the paper's metrics on the test split and the blessing decision.

    Attributes:
        crop: Evaluation crop: ``none``, ``nyu_eigen``, ``kitti_garg`` or ``kitti_eigen``.
        min_depth: Ground truth below this (metres) is not scored.
        max_depth: Ground truth above this is not scored; predictions are capped to it.
        batch_size: Images per inference batch.
        min_delta1: Blessing threshold: coarse+fine delta1 must reach this.
        max_abs_rel: Blessing threshold: coarse+fine abs rel must not exceed this.
        require_beats_baseline: Require lower abs rel and RMSE than the constant mean-depth
            baseline (off only for presets whose tiny models are not meant to learn, e.g. smoke).
        compare_with_served: Also require not being worse (abs rel) than the model
            currently served under the serving root.
        paper_table: Paper column to print beside ours: ``nyu``, ``kitti`` or empty.
    """

    crop: Literal["none", "nyu_eigen", "kitti_garg", "kitti_eigen"] = "none"
    min_depth: float = 1e-3
    max_depth: float = 10.0
    batch_size: int = 16
    min_delta1: float = 0.0
    max_abs_rel: float = 10.0
    require_beats_baseline: bool = True
    compare_with_served: bool = True
    paper_table: Literal["", "nyu", "kitti"] = ""

    def validate(self) -> None:
        """Raises ``ConfigValueError`` naming the first field outside its range."""
        check_at_least(self, 0, "min_depth", "max_abs_rel")
        check_order(self, "min_depth", "max_depth")
        check_at_least(self, 1, "batch_size")
        check_fraction(self, "min_delta1")

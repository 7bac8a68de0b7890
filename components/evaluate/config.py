"""Configuration of the evaluate stage."""

from __future__ import annotations

from dataclasses import dataclass


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
        compare_with_served: Also require not being worse (abs rel) than the model
            currently served under the serving root.
        paper_table: Paper column to print beside ours: ``nyu``, ``kitti`` or empty.
    """

    crop: str = "none"
    min_depth: float = 1e-3
    max_depth: float = 10.0
    batch_size: int = 16
    min_delta1: float = 0.0
    max_abs_rel: float = 10.0
    compare_with_served: bool = True
    paper_table: str = ""

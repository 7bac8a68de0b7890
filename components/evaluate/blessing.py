"""The blessing decision: may the evaluated coarse+fine model be pushed to serving?

A model is blessed when every rule holds (metrics pixel-averaged over the test split):

1. it beats the constant mean-log-depth baseline: lower ``abs_rel`` AND lower ``rmse`` (unless
   ``evaluate.require_beats_baseline`` is off);
2. it meets the configured thresholds: ``delta1 >= min_delta1`` and ``abs_rel <= max_abs_rel``;
3. when a model is currently served (and the comparison is enabled), it is not worse than that
   model on the same test images scored the same way: ``abs_rel <= served abs_rel + SERVED_TOLERANCE``.

The decision is a file in the evaluate artifact: ``BLESSED`` (its text says why) or ``NOT_BLESSED``
(one failed rule per line), written here and read back by the export stage with
:mod:`components.serving_contract` (``write_blessing``, ``read_blessing``).
"""

from __future__ import annotations

from collections.abc import Mapping

from components.serving_contract import Blessing

# Slack (abs_rel, unitless) that lets re-evaluating the served model itself count as "not worse"
# despite float round-off between the Keras and the SavedModel path.
SERVED_TOLERANCE = 1e-6


def decide_blessing(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    min_delta1: float,
    max_abs_rel: float,
    served: Mapping[str, float] | None = None,
) -> Blessing:
    """Applies the blessing rules to pixel-averaged metric dicts.

    Args:
        candidate: Metrics of the coarse+fine model (``delta1``, ``abs_rel``, ``rmse`` in metres).
        baseline: Metrics of the constant mean-log-depth prediction on the same pixels, or None when the
            model need not beat it.
        min_delta1: Smallest acceptable ``delta1`` (fraction, 0..1).
        max_abs_rel: Largest acceptable ``abs_rel``.
        served: Metrics of the currently served model on the same pixels, or None when no model
            is served or the comparison is disabled.

    Returns:
        The decision, with one reason per rule that failed (or per rule that held when blessed).
    """
    checks = []
    if baseline is not None:
        checks += [
            (
                candidate["abs_rel"] < baseline["abs_rel"],
                f"abs_rel {candidate['abs_rel']:.4f} vs mean baseline {baseline['abs_rel']:.4f}",
            ),
            (
                candidate["rmse"] < baseline["rmse"],
                f"rmse {candidate['rmse']:.4f} m vs mean baseline {baseline['rmse']:.4f} m",
            ),
        ]
    checks += [
        (
            candidate["delta1"] >= min_delta1,
            f"delta1 {candidate['delta1']:.4f} vs threshold min_delta1={min_delta1:g}",
        ),
        (
            candidate["abs_rel"] <= max_abs_rel,
            f"abs_rel {candidate['abs_rel']:.4f} vs threshold max_abs_rel={max_abs_rel:g}",
        ),
    ]
    if served is not None:
        checks.append(
            (
                candidate["abs_rel"] <= served["abs_rel"] + SERVED_TOLERANCE,
                f"abs_rel {candidate['abs_rel']:.4f} vs served model {served['abs_rel']:.4f}",
            )
        )
    failed = tuple(f"fails: {text}" for ok, text in checks if not ok)
    if failed:
        return Blessing(blessed=False, reasons=failed)
    return Blessing(blessed=True, reasons=tuple(f"passes: {text}" for _, text in checks))

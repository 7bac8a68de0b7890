"""The blessing decision: may the evaluated coarse+fine model be pushed to serving?

A model is blessed when every rule holds (metrics pixel-averaged over the test split):

1. it beats the constant mean-log-depth baseline: lower ``abs_rel`` AND lower ``rmse`` (unless
   ``evaluate.require_beats_baseline`` is off);
2. it meets the configured thresholds: ``delta1 >= min_delta1`` and ``abs_rel <= max_abs_rel``;
3. when a model is currently served (and the comparison is enabled), it is not worse than that
   model on the same test images scored the same way: ``abs_rel <= served abs_rel + SERVED_TOLERANCE``.

The decision is a file in the evaluate artifact: ``BLESSED`` (its text says why) or ``NOT_BLESSED``
(one failed rule per line). The export stage reads it back with :func:`read_blessing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"
# Slack (abs_rel, unitless) that lets re-evaluating the served model itself count as "not worse"
# despite float round-off between the Keras and the SavedModel path.
SERVED_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Blessing:
    """A blessing decision.

    Attributes:
        blessed: True when every rule holds.
        reasons: Why: the failed rules when not blessed, the rules that held when blessed.
    """

    blessed: bool
    reasons: tuple[str, ...]

    @property
    def file_name(self) -> str:
        """``BLESSED`` or ``NOT_BLESSED``."""
        return BLESSED_FILE if self.blessed else NOT_BLESSED_FILE

    def summary(self) -> str:
        """One line: ``BLESSED: ...`` or ``NOT_BLESSED: <reason>; <reason>``."""
        return f"{self.file_name}: {'; '.join(self.reasons)}"


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


def write_blessing(output_dir: str | Path, blessing: Blessing) -> Path:
    """Writes ``BLESSED`` or ``NOT_BLESSED`` (one reason per line) into ``output_dir``."""
    path = Path(output_dir) / blessing.file_name
    path.write_text("".join(f"{reason}\n" for reason in blessing.reasons))
    return path


def read_blessing(artifact_dir: str | Path) -> Blessing:
    """Reads the decision written by :func:`write_blessing`.

    Args:
        artifact_dir: An evaluate artifact directory.

    Returns:
        The decision and its reasons.

    Raises:
        FileNotFoundError: If the directory has neither ``BLESSED`` nor ``NOT_BLESSED``.
        ValueError: If it has both.
    """
    artifact_dir = Path(artifact_dir)
    present = [name for name in (BLESSED_FILE, NOT_BLESSED_FILE) if (artifact_dir / name).is_file()]
    if not present:
        raise FileNotFoundError(f"{artifact_dir}: no {BLESSED_FILE} or {NOT_BLESSED_FILE} file")
    if len(present) > 1:
        raise ValueError(f"{artifact_dir}: has both {BLESSED_FILE} and {NOT_BLESSED_FILE}")
    (name,) = present
    reasons = tuple(line for line in (artifact_dir / name).read_text().splitlines() if line)
    return Blessing(blessed=name == BLESSED_FILE, reasons=reasons)

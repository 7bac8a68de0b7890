"""The result of one benchmark module: entries, each two numbers measured in one run and their ratio.

Every ``benchmarks/bench_*.py`` writes ``{"entries": [entry, ...], "details": {...}}`` to its ``--out``
file; the runner (:mod:`benchmarks.run`) collects the entries of every module. An entry::

    {"name": "input pipeline, default preset",
     "what": "train steps/s fed by make_dataset ... / fed from in-memory tensors",
     "value": 3.9, "baseline": 4.1, "unit": "steps/s", "ratio": 0.951,
     "goal": 0.95, "goal_op": ">=", "goal_met": true,
     "notes": "what limits it when the goal is missed"}

``goal`` always applies to ``ratio`` (value / baseline); ``goal`` and ``goal_met`` are null for a ratio
without a fixed goal (``notes`` says why). ``details`` holds whatever else the module measured.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Mapping, Sequence
from pathlib import Path

GOAL_OPS = {">=": operator.ge, "<=": operator.le}
ENTRY_FIELDS = ("name", "what", "value", "baseline", "unit", "ratio", "goal", "goal_op", "goal_met", "notes")
RATIO_DIGITS = 3
VALUE_DIGITS = 4  # significant digits of value and baseline


def _significant(number: float, digits: int = VALUE_DIGITS) -> float:
    """``number`` rounded to ``digits`` significant digits (0 stays 0)."""
    if number == 0 or not math.isfinite(number):
        return number
    return round(number, digits - 1 - math.floor(math.log10(abs(number))))


def make_entry(
    name: str,
    what: str,
    value: float,
    baseline: float,
    unit: str,
    goal: float | None,
    goal_op: str = ">=",
    notes: str = "",
) -> dict:
    """One benchmark entry (see the module docstring).

    Args:
        name: Short unique name, e.g. ``"serving REST p50, default preset"``.
        what: What ``value`` and ``baseline`` are, as "<value> / <baseline>".
        value: The measured number.
        baseline: The number it is compared with, measured in the same run (or a fixed target).
        unit: Unit of ``value`` and ``baseline`` (``steps/s``, ``ms``, ...).
        goal: The bound on ``ratio``, or None when there is no fixed goal.
        goal_op: ``">="`` or ``"<="``: how ``ratio`` must compare with ``goal``.
        notes: What limits the ratio (required reading when the goal is missed) or why there is no goal.

    Returns:
        The entry as a JSON-able dict with ``ratio = value / baseline`` and ``goal_met``.

    Raises:
        ValueError: naming the entry and the field: a baseline that is not a positive number or an
            unknown ``goal_op``.
    """
    if goal_op not in GOAL_OPS:
        raise ValueError(f"entry {name!r}: goal_op must be one of {sorted(GOAL_OPS)}, got {goal_op!r}")
    if not (isinstance(baseline, int | float) and baseline > 0 and math.isfinite(baseline)):
        raise ValueError(f"entry {name!r}: baseline must be a positive number, got {baseline!r}")
    ratio = round(value / baseline, RATIO_DIGITS)
    return {
        "name": name,
        "what": what,
        "value": _significant(float(value)),
        "baseline": _significant(float(baseline)),
        "unit": unit,
        "ratio": ratio,
        "goal": goal,
        "goal_op": goal_op,
        "goal_met": None if goal is None else bool(GOAL_OPS[goal_op](ratio, goal)),
        "notes": notes,
    }


def check_entry(entry: Mapping, source: str) -> None:
    """Raises ValueError naming ``source`` and the field when ``entry`` lacks a field of :data:`ENTRY_FIELDS`."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{source}: an entry must be a JSON object, got {type(entry).__name__}")
    missing = [name for name in ENTRY_FIELDS if name not in entry]
    if missing:
        raise ValueError(f"{source}: entry {entry.get('name', '?')!r} lacks {', '.join(missing)}")


def read_result(path: Path) -> tuple[list[dict], dict]:
    """The ``(entries, details)`` a benchmark module wrote to ``path``.

    Raises:
        ValueError: naming the file when it is not JSON of the form ``{"entries": [...], "details": {...}}``
            or an entry lacks a field.
    """
    try:
        result = json.loads(Path(path).read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(result, dict) or not isinstance(result.get("entries"), list):
        raise ValueError(f'{path}: expected {{"entries": [...], "details": {{...}}}}')
    for entry in result["entries"]:
        check_entry(entry, str(path))
    return result["entries"], result.get("details", {})


def write_result(path: Path, entries: Sequence[dict], details: Mapping) -> None:
    """Writes ``{"entries": ..., "details": ...}`` to ``path`` (parents created) and prints each ratio."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"entries": list(entries), "details": dict(details)}, indent=2) + "\n")
    for entry in entries:
        print(
            f"{entry['name']}: {entry['value']:g} / {entry['baseline']:g} {entry['unit']} = {entry['ratio']:g}"
        )

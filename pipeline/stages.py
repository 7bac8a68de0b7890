"""The stage graph: which stages exist, in which order, and where their components live."""

from __future__ import annotations

import importlib

from components.base import StageDefinition

STAGE_ORDER = ("ingest", "train", "evaluate", "export")


def load_stage(name: str) -> StageDefinition:
    """The ``STAGE`` of ``components.<name>``.

    Raises:
        ValueError: naming the stages when ``name`` is none of them.
    """
    if name not in STAGE_ORDER:
        raise ValueError(f"unknown stage '{name}'; expected one of: {', '.join(STAGE_ORDER)}")
    return importlib.import_module(f"components.{name}").STAGE


def default_registry() -> dict[str, StageDefinition]:
    """Every stage's definition by name, in pipeline order."""
    return {name: load_stage(name) for name in STAGE_ORDER}

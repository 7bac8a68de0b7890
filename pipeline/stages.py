"""The stage graph: which stages exist, in which order, and where their components live."""

from __future__ import annotations

import importlib

from components.base import StageDefinition

STAGE_ORDER = ("ingest", "train", "evaluate", "export")


def load_stage(name: str) -> StageDefinition | None:
    """The ``STAGE`` of ``components.<name>``, or None while that component is not implemented."""
    if name not in STAGE_ORDER:
        raise ValueError(f"unknown stage '{name}'; expected one of: {', '.join(STAGE_ORDER)}")
    module = importlib.import_module(f"components.{name}")
    return getattr(module, "STAGE", None)


def default_registry() -> dict[str, StageDefinition]:
    """Every implemented stage by name (missing stages are left out)."""
    registry = {}
    for name in STAGE_ORDER:
        definition = load_stage(name)
        if definition is not None:
            registry[name] = definition
    return registry

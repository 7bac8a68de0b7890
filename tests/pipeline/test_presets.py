"""Presets in ``configs/`` name only what differs from the dataclass defaults, and load."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from pipeline.config import CONFIGS_DIR, PipelineConfig, load_config

PRESETS = sorted(CONFIGS_DIR.glob("*.yaml"))


def repeated_defaults(values: dict, defaults, prefix: str = "") -> list[str]:
    """Keys of a preset mapping whose value equals the dataclass default it overrides.

    Args:
        values: A preset's mapping (or a section of it).
        defaults: The dataclass instance holding the defaults of that mapping's keys.
        prefix: Key prefix for the returned names.

    Returns:
        ``section.key`` names (``ingest.sources[0].splits`` for list items) that repeat a default.
    """
    hints = typing.get_type_hints(type(defaults))
    repeated = []
    for name, value in values.items():
        key = f"{prefix}{name}"
        default = getattr(defaults, name)
        item_type = typing.get_args(hints[name])[0] if typing.get_origin(hints[name]) is list else None
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            repeated += repeated_defaults(value, default, f"{key}.")
        elif dataclasses.is_dataclass(item_type) and isinstance(value, list) and value != default:
            for index, item in enumerate(value):
                repeated += repeated_defaults(item, item_type(), f"{key}[{index}].")
        elif value == default:
            repeated.append(key)
    return repeated


@pytest.mark.parametrize("preset", PRESETS, ids=lambda path: path.name)
def test_presets_name_only_what_differs_from_the_defaults(preset):
    assert repeated_defaults(yaml.safe_load(preset.read_text()), PipelineConfig()) == []
    load_config(preset)


def test_the_check_finds_repeated_defaults():
    preset = {
        "model": {"input_height": 228, "input_width": 100},
        "ingest": {"sources": [{"source": "folder", "splits": ["train", "val", "test"]}]},
        "evaluate": {"crop": "none", "max_depth": 80.0},
    }
    assert repeated_defaults(preset, PipelineConfig()) == [
        "model.input_height",
        "ingest.sources[0].splits",
        "evaluate.crop",
    ]

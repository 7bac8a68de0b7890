"""Every choice field of the config is ``Literal``-typed, so a value outside the choices fails at load."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from pipeline.config import ConfigError, PipelineConfig, load_config


def choice_fields(section, prefix: str = "") -> dict[str, tuple[bool, tuple]]:
    """``key`` -> (is a list of choices, the choices) for every ``Literal`` field below ``section``."""
    found = {}
    for name, hint in typing.get_type_hints(type(section)).items():
        key, value = f"{prefix}{name}", getattr(section, name)
        is_list = typing.get_origin(hint) is list
        inner = typing.get_args(hint)[0] if is_list else hint
        if dataclasses.is_dataclass(value):
            found.update(choice_fields(value, f"{key}."))
        elif typing.get_origin(inner) is typing.Literal:
            found[key] = (is_list, typing.get_args(inner))
    return found


CHOICE_FIELDS = choice_fields(PipelineConfig())


def test_the_known_choice_fields_are_literals():
    assert {
        "ingest.source",
        "ingest.direct_running_mode",
        "ingest.nyu_labeled.depth_field",
        "ingest.kitti_depth.cameras",
        "ingest.diode.scene_types",
        "ingest.diode.val_split",
        "train.strategy",
        "evaluate.crop",
        "evaluate.paper_table",
    } <= set(CHOICE_FIELDS)


@pytest.mark.parametrize("key", sorted(CHOICE_FIELDS))
def test_a_value_outside_the_choices_fails_at_load_naming_key_and_choices(key):
    is_list, choices = CHOICE_FIELDS[key]
    value = "[no_such_choice]" if is_list else "no_such_choice"
    with pytest.raises(ConfigError, match="expects one of") as error:
        load_config(None, [f"{key}={value}"])
    assert key in str(error.value) and repr(choices[0]) in str(error.value)

"""Typed pipeline configuration: one dataclass section per stage, loaded from YAML.

A preset file (``configs/*.yaml``) names only what differs from the defaults
below; ``--set section.key=value`` overrides apply on top. Unknown keys and
wrong types raise :class:`ConfigError` naming the key, the source (file or
``--set``) and the expected type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.evaluate.config import EvaluateConfig
from components.export.config import ExportConfig
from components.ingest.config import IngestConfig
from components.train.config import TrainConfig
from keras_depth.config import (
    AugmentConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
)

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIGS_DIR / "default.yaml"


class ConfigError(ValueError):
    """A config file or override does not match the typed schema."""


@dataclass
class TrackingConfig:
    """MLflow tracking.

    Attributes:
        tracking_uri: Tracking URI; "" = ``$MLFLOW_TRACKING_URI`` if set, else
            ``sqlite:///<output_dir>/mlflow.db``.
        experiment_name: Experiment that receives one run per pipeline execution.
        enabled: Turn tracking off entirely.
    """

    tracking_uri: str = ""
    experiment_name: str = "keras-depth"
    enabled: bool = True


@dataclass
class PipelineConfig:
    """The whole resolved configuration of one pipeline run."""

    preset: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    mlflow: TrackingConfig = field(default_factory=TrackingConfig)


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return f"mapping ({tp.__name__})"
    return getattr(tp, "__name__", None) or str(tp)


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; returns it (ints widen to float)."""

    def fail() -> ConfigError:
        return ConfigError(
            f"{source}: key '{key}' expects {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )

    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail()
        return _build(tp, value, key, source)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise fail()
        return [_coerce(item, item_tp, f"{key}[{i}]", source) for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key, source)
            except ConfigError:
                continue
        raise fail()
    if tp is type(None):
        if value is not None:
            raise fail()
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail()
        return value
    raise ConfigError(f"{source}: key '{key}' has an unsupported type {tp!r}")


def _build(cls: type, values: dict, prefix: str, source: str, base: Any = None) -> Any:
    """Builds dataclass ``cls`` from ``values`` on top of ``base`` (or the defaults)."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    current = base if base is not None else cls()
    updates = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in known:
            raise ConfigError(f"{source}: unknown key '{key}'; expected one of: {', '.join(sorted(known))}")
        tp = hints[name]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            updates[name] = _build(tp, value, key, source, getattr(current, name))
        else:
            updates[name] = _coerce(value, tp, key, source)
    return dataclasses.replace(current, **updates)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``section.key=value`` into the key path and the YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"--set: '{text}' is not of the form section.key=value")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".")]
    if not all(path):
        raise ConfigError(f"--set: '{text}' has an empty key part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set: value of '{key}' is not valid YAML: {err}") from err
    return path, value


def _nest(path: list[str], value: Any) -> dict:
    nested: Any = value
    for part in reversed(path):
        nested = {part: nested}
    return nested


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Loads a preset file and applies ``--set`` overrides.

    Args:
        path: YAML preset; ``None`` loads ``configs/default.yaml``.
        overrides: ``section.key=value`` strings, applied in order.

    Returns:
        The resolved :class:`PipelineConfig`.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    values.setdefault("preset", path.stem)
    config = _build(PipelineConfig, values, "", str(path))
    for text in overrides or []:
        key_path, value = parse_override(text)
        config = _build(PipelineConfig, _nest(key_path, value), "", f"--set {text}", config)
    return config


def config_to_dict(config: Any) -> dict:
    """The config (or one section) as plain dicts, lists and scalars."""
    return dataclasses.asdict(config)


def flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for MLflow params and fingerprints)."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            flat.update(flatten(value, key))
        else:
            flat[key] = value
    return flat


def save_config(config: PipelineConfig, path: str | Path) -> None:
    """Writes the resolved config as YAML (loadable again with :func:`load_config`)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))

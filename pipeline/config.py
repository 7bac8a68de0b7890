"""Typed pipeline configuration: one dataclass section per stage, loaded from YAML.

A preset file (``configs/*.yaml``) names only what differs from the defaults
below; ``--set section.key=value`` overrides apply on top. Unknown keys and
wrong types raise :class:`ConfigError` naming the key, the source (file or
``--set``) and the expected type. Once every override is applied, each section's
``validate()`` checks the values (sizes > 0, fractions in [0, 1], depth ranges in
order, ...; ``keras_depth.config_checks``); a value out of range raises
:class:`ConfigError` the same way, so a bad config fails before any stage runs.
"""

from __future__ import annotations

import dataclasses
import re
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
from keras_depth.config_checks import ConfigValueError, check_not_empty

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
        required: False (default): tracking is best-effort; an unreachable tracking server
            at the start is replaced by the local SQLite store (with a warning), and a
            failure while a stage logs only warns. True: the pipeline fails within
            seconds, before any stage runs, when the tracking store cannot be reached.
        registered_model_name: MLflow Model Registry name of the pushed (blessed) models: each
            pushed model is one registered version, and the alias ``champion`` moves to the model
            pushed (or found already served) last.
    """

    tracking_uri: str = ""
    experiment_name: str = "keras-depth"
    enabled: bool = True
    required: bool = False
    registered_model_name: str = "keras-depth"

    def validate(self) -> None:
        """Raises ``ConfigValueError`` for an empty experiment or registered model name."""
        check_not_empty(self, "experiment_name", "registered_model_name")


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

    def validate(self) -> None:
        """Checks across sections: the network input fits in the stored frames (crops need it)."""
        for side in ("height", "width"):
            size, stored = getattr(self.model, f"input_{side}"), getattr(self.ingest, f"storage_{side}")
            if size > stored:
                raise ConfigValueError(
                    f"model.input_{side}",
                    f"a value <= ingest.storage_{side} ({stored})",
                    size,
                    (f"ingest.storage_{side}",),
                )


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return f"mapping ({tp.__name__})"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp)


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; returns it (ints widen to float)."""

    def fail() -> ConfigError:
        return ConfigError(
            f"{source}: key '{key}' expects {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )

    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise fail()
        return value
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


def key_source(keys: list[str], path: str | Path | None, overrides: list[str] | None) -> str:
    """Where the values of ``keys`` (``["data.batch_size"]``) came from, as error messages name it.

    Returns:
        ``"--set <text>"`` for the last override that set one of ``keys`` or a section above it,
        else the preset file's path (which also stands for the defaults it does not change).
    """
    paths = [re.sub(r"\[\d+\]", "", key).split(".") for key in keys]  # a list item is set by its list
    for text in reversed(overrides or []):
        override_key = text.split("=", 1)[0].strip().split(".")
        if any(path[: len(override_key)] == override_key for path in paths):
            return f"--set {text}"
    return str(Path(path) if path is not None else DEFAULT_CONFIG)


def _validate(section: Any, prefix: str, source: typing.Callable[[list[str]], str]) -> None:
    """Runs ``validate()`` of ``section`` and of every section below it (innermost first).

    Sections inside lists are checked by the section holding the list, which names them by index.

    Raises:
        ConfigError: ``<source>: key '<key>' expects <what>, got <value>`` for the first failed check.
    """
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(value):
            _validate(value, f"{prefix}{item.name}.", source)
    validate = getattr(section, "validate", None)
    if validate is None:
        return
    try:
        validate()
    except ConfigValueError as err:
        key = f"{prefix}{err.field}"
        related = [f"{prefix}{name}" for name in err.related]
        raise ConfigError(
            f"{source([key, *related])}: key '{key}' expects {err.expected}, got {err.value!r}"
        ) from None


def validate_config(config: PipelineConfig, path: str | Path | None, overrides: list[str] | None) -> None:
    """Checks the values of a loaded config (see :func:`load_config`).

    Raises:
        ConfigError: naming the key, what it accepts and the ``--set`` or file that set it (the last
            of these among the keys the check compared).
    """

    _validate(config, "", lambda keys: key_source(keys, path, overrides))


def _read_preset(path: Path) -> dict:
    """The top-level mapping of a YAML preset file.

    Raises:
        ConfigError: the file is missing, not YAML, or not a mapping.
    """
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return values


def with_preset_section(config: PipelineConfig, path: str | Path, section: str) -> PipelineConfig:
    """``config`` with one section taken from a preset file, on top of that section's defaults.

    Only ``section`` of the file is read (e.g. the ``ingest`` section of a dataset's preset); the
    result is checked as a loaded config is, the checks across sections against ``config``'s other
    sections included.

    Args:
        config: A resolved config.
        path: YAML preset with a ``section`` mapping.
        section: A ``PipelineConfig`` section name, e.g. ``"ingest"``.

    Returns:
        A new config; ``config`` is not changed.

    Raises:
        ConfigError: the file is missing, not YAML or has no ``section`` mapping, or the section has
            an unknown key or a bad value; the message names the file and the key.
    """
    path = Path(path)
    values = _read_preset(path).get(section)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a '{section}' section (a mapping), got {values!r}")
    default = type(getattr(config, section))()
    merged = _build(
        PipelineConfig, {section: values}, "", str(path), dataclasses.replace(config, **{section: default})
    )
    validate_config(merged, path, None)
    return merged


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Loads a preset file, applies ``--set`` overrides and checks the values.

    Args:
        path: YAML preset; ``None`` loads ``configs/default.yaml``.
        overrides: ``section.key=value`` strings, applied in order.

    Returns:
        The resolved :class:`PipelineConfig`.

    Raises:
        ConfigError: the file is missing or not YAML, a key is unknown, a value has the wrong type
            or is out of range; the message names the file or ``--set`` and the key.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    values = _read_preset(path)
    values.setdefault("preset", path.stem)
    config = _build(PipelineConfig, values, "", str(path))
    for text in overrides or []:
        key_path, value = parse_override(text)
        config = _build(PipelineConfig, _nest(key_path, value), "", f"--set {text}", config)
    validate_config(config, path, overrides)
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

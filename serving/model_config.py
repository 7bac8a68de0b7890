"""Which models to serve: TF Serving's ``--model_config_file`` (text-format protobuf), parsed.

TF Serving reads a ``ModelServerConfig`` message in protobuf text format. The
``tensorflow_serving`` protos are not installed here, so this module parses the subset a model
server needs with a small tokenizer and a recursive-descent parser::

    model_config_list {
      config {
        name: "depth"
        base_path: "/models/depth"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }  # or latest {...} / all {}
        version_labels { key: "stable" value: 1 }
      }
    }

Text-format details that are accepted: ``#`` comments, optional ``:`` before a message, ``{}`` or
``<>`` message delimiters, single or double quoted strings with escapes (adjacent strings
concatenate), list syntax for repeated scalars (``versions: [1, 2]``) and ``,``/``;`` separators.
Every error names the file and line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

LATEST = "latest"
ALL = "all"
SPECIFIC = "specific"
TENSORFLOW_PLATFORM = "tensorflow"
# Model names as TF Serving's REST regex accepts them ([^/:]+), further restricted so that a name can
# never be a path component like ".." or contain a separator.
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>\#.*)
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<number>[-+]?\d+)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<punct>[{}<>\[\]:,;])
    )""",
    re.VERBOSE,
)
_CLOSING = {"{": "}", "<": ">"}


class ModelConfigError(ValueError):
    """A model config file that cannot be parsed or names unsupported fields."""


def is_valid_model_name(name: str) -> bool:
    """True when ``name`` is a safe model name (letters, digits, ``_.-``; no ``..``, no ``/``)."""
    return bool(_MODEL_NAME.fullmatch(name)) and ".." not in name


@dataclass(frozen=True)
class VersionPolicy:
    """Which of the versions found under a base path are served (TF Serving's ``ServableVersionPolicy``).

    Attributes:
        kind: ``"latest"`` (the ``num_versions`` highest), ``"all"`` or ``"specific"``.
        num_versions: How many of the highest versions ``latest`` serves.
        versions: The versions ``specific`` serves (when present on disk).
    """

    kind: str = LATEST
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: Iterable[int]) -> set[int]:
        """The versions to serve.

        Args:
            available: Versions present on disk.

        Returns:
            The subset of ``available`` this policy serves.
        """
        available = sorted(set(available))
        if self.kind == ALL:
            return set(available)
        if self.kind == SPECIFIC:
            return set(available) & set(self.versions)
        return set(available[-self.num_versions :])


@dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Attributes:
        name: The model name used in REST paths (``/v1/models/{name}``).
        base_path: Directory holding ``<integer version>/saved_model.pb``.
        version_policy: Which versions to serve.
        version_labels: Label -> version, for ``/v1/models/{name}/labels/{label}``.
    """

    name: str
    base_path: str
    version_policy: VersionPolicy = VersionPolicy()
    version_labels: Mapping[str, int] = field(default_factory=dict)


@dataclass
class _Field:
    """One parsed ``name: value`` or ``name { ... }`` entry; ``value`` is a list of fields for messages."""

    name: str
    value: object
    line: int


class _Parser:
    """Recursive-descent parser of protobuf text format into ``_Field`` trees (no schema)."""

    def __init__(self, text: str, source: str):
        self._source = source
        self._tokens = list(self._tokenize(text))
        self._pos = 0

    def _error(self, line: int, message: str) -> ModelConfigError:
        return ModelConfigError(f"{self._source}:{line}: {message}")

    def _tokenize(self, text: str):
        for line_number, line in enumerate(text.splitlines(), start=1):
            pos = 0
            while pos < len(line):
                match = _TOKEN.match(line, pos)
                if match is None or match.end() == pos:
                    if line[pos:].strip():
                        raise self._error(line_number, f"unexpected text {line[pos:].strip()[:20]!r}")
                    break
                pos = match.end()
                kind = match.lastgroup
                if kind != "comment":
                    yield kind, match.group(kind), line_number

    def _peek(self):
        return self._tokens[self._pos] if self._pos < len(self._tokens) else (None, None, self._last_line())

    def _last_line(self) -> int:
        return self._tokens[-1][2] if self._tokens else 1

    def _next(self):
        token = self._peek()
        self._pos += 1
        return token

    def _expect(self, value: str):
        kind, text, line = self._next()
        if text != value or kind != "punct":
            raise self._error(line, f"expected {value!r}, found {text or 'end of file'!r}")

    def parse(self) -> list[_Field]:
        return self._message(closing=None)

    def _message(self, closing: str | None) -> list[_Field]:
        fields: list[_Field] = []
        while True:
            kind, text, line = self._peek()
            if kind is None:
                if closing is not None:
                    raise self._error(line, f"missing {closing!r} before end of file")
                return fields
            if kind == "punct" and text == closing:
                self._next()
                return fields
            if kind == "punct" and text in ",;":
                self._next()
                continue
            if kind != "ident":
                raise self._error(line, f"expected a field name, found {text!r}")
            self._next()
            fields.extend(self._field_value(text, line))

    def _field_value(self, name: str, line: int) -> list[_Field]:
        kind, text, value_line = self._peek()
        has_colon = kind == "punct" and text == ":"
        if has_colon:
            self._next()
            kind, text, value_line = self._peek()
        if kind == "punct" and text in _CLOSING:
            self._next()
            return [_Field(name, self._message(closing=_CLOSING[text]), line)]
        if not has_colon:
            raise self._error(value_line, f"expected ':' or '{{' after field {name!r}")
        if kind == "punct" and text == "[":
            self._next()
            return [_Field(name, value, line) for value in self._scalar_list()]
        return [_Field(name, self._scalar(), line)]

    def _scalar_list(self) -> list[object]:
        values: list[object] = []
        while True:
            kind, text, _ = self._peek()
            if kind == "punct" and text == "]":
                self._next()
                return values
            if values:
                self._expect(",")
            values.append(self._scalar())

    def _unquote(self, literal: str, line: int) -> str:
        try:
            return ast.literal_eval(literal)
        except (SyntaxError, ValueError) as error:
            raise self._error(line, f"invalid string {literal}: {error}") from error

    def _scalar(self) -> object:
        kind, text, line = self._next()
        if kind == "number":
            return int(text)
        if kind == "ident":
            return text
        if kind == "string":
            value = self._unquote(text, line)
            # Adjacent string literals concatenate, as in C and protobuf text format.
            while self._peek()[0] == "string":
                value += self._unquote(*self._next()[1:])
            return value
        raise self._error(line, f"expected a value, found {text or 'end of file'!r}")


class _Interpreter:
    """Checks parsed fields against the ``ModelServerConfig`` subset and builds ``ModelConfig``s."""

    def __init__(self, source: str, base_dir: Path):
        self._source = source
        self._base_dir = base_dir

    def _error(self, line: int, message: str) -> ModelConfigError:
        return ModelConfigError(f"{self._source}:{line}: {message}")

    def _check_fields(self, fields: list[_Field], allowed: set[str], where: str, repeated=()) -> None:
        seen: set[str] = set()
        for entry in fields:
            if entry.name not in allowed:
                raise self._error(
                    entry.line,
                    f"unsupported field {entry.name!r} in {where}; expected one of {sorted(allowed)}",
                )
            if entry.name in seen and entry.name not in repeated:
                raise self._error(entry.line, f"field {entry.name!r} given twice in {where}")
            seen.add(entry.name)

    def _typed(self, entry: _Field, kind: type):
        is_message = isinstance(entry.value, list)
        if kind is list and not is_message:
            raise self._error(entry.line, f"field {entry.name!r} must be a message {{...}}")
        if kind is not list and (is_message or not isinstance(entry.value, kind)):
            raise self._error(entry.line, f"field {entry.name!r} must be a {kind.__name__}")
        return entry.value

    def server_config(self, fields: list[_Field]) -> list[ModelConfig]:
        self._check_fields(fields, {"model_config_list"}, "the file")
        if not fields:
            raise self._error(1, "no model_config_list")
        configs = self._typed(fields[0], list)
        self._check_fields(configs, {"config"}, "model_config_list", repeated={"config"})
        models = [self._model(self._typed(entry, list), entry.line) for entry in configs]
        names = [model.name for model in models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise self._error(fields[0].line, f"model names given more than once: {duplicates}")
        if not models:
            raise self._error(fields[0].line, "model_config_list has no config")
        return models

    def _model(self, fields: list[_Field], line: int) -> ModelConfig:
        allowed = {"name", "base_path", "model_platform", "model_version_policy", "version_labels"}
        self._check_fields(fields, allowed, "config", repeated={"version_labels"})
        values = {entry.name: entry for entry in fields}
        for required in ("name", "base_path"):
            if required not in values:
                raise self._error(line, f"config has no {required!r}")
        name = self._typed(values["name"], str)
        if not is_valid_model_name(name):
            raise self._error(values["name"].line, f"invalid model name {name!r}")
        if "model_platform" in values:
            platform = self._typed(values["model_platform"], str)
            if platform != TENSORFLOW_PLATFORM:
                raise self._error(
                    values["model_platform"].line, f"model_platform must be 'tensorflow', got {platform!r}"
                )
        base_path = Path(self._typed(values["base_path"], str))
        policy = VersionPolicy()
        if "model_version_policy" in values:
            policy = self._policy(
                self._typed(values["model_version_policy"], list), values["model_version_policy"].line
            )
        labels = dict(self._label(entry) for entry in fields if entry.name == "version_labels")
        return ModelConfig(
            name=name,
            base_path=str(base_path if base_path.is_absolute() else self._base_dir / base_path),
            version_policy=policy,
            version_labels=labels,
        )

    def _policy(self, fields: list[_Field], line: int) -> VersionPolicy:
        self._check_fields(fields, {LATEST, ALL, SPECIFIC}, "model_version_policy")
        if len(fields) != 1:
            raise self._error(line, "model_version_policy needs exactly one of latest, all, specific")
        choice = fields[0]
        body = self._typed(choice, list)
        if choice.name == ALL:
            self._check_fields(body, set(), "all")
            return VersionPolicy(kind=ALL)
        if choice.name == LATEST:
            self._check_fields(body, {"num_versions"}, "latest")
            count = self._typed(body[0], int) if body else 1
            if count < 1:
                raise self._error(choice.line, f"num_versions must be >= 1, got {count}")
            return VersionPolicy(kind=LATEST, num_versions=count)
        self._check_fields(body, {"versions"}, "specific", repeated={"versions"})
        versions = tuple(self._typed(entry, int) for entry in body)
        if not versions:
            raise self._error(choice.line, "specific policy lists no versions")
        return VersionPolicy(kind=SPECIFIC, versions=versions)

    def _label(self, entry: _Field) -> tuple[str, int]:
        body = self._typed(entry, list)
        self._check_fields(body, {"key", "value"}, "version_labels")
        values = {item.name: item for item in body}
        if set(values) != {"key", "value"}:
            raise self._error(entry.line, "version_labels needs both key and value")
        return self._typed(values["key"], str), self._typed(values["value"], int)


def parse_model_config(
    text: str, source: str = "<model config>", base_dir: Path | None = None
) -> list[ModelConfig]:
    """Parses a ``ModelServerConfig`` text proto.

    Args:
        text: The file contents.
        source: Name used in error messages (the file path).
        base_dir: Directory that relative ``base_path`` values are resolved against
            (default: the current directory, as TF Serving does).

    Returns:
        One ``ModelConfig`` per ``config`` entry, in file order.

    Raises:
        ModelConfigError: On a syntax error or unsupported field, naming ``source`` and the line.
    """
    fields = _Parser(text, source).parse()
    return _Interpreter(source, base_dir or Path.cwd()).server_config(fields)


def load_model_config(path: str | Path) -> list[ModelConfig]:
    """Reads and parses ``--model_config_file``.

    Raises:
        ModelConfigError: If the file is unreadable or invalid (the message names the file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ModelConfigError(f"{path}: cannot read model config file: {error.strerror}") from error
    return parse_model_config(text, source=str(path))

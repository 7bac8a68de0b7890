"""TF Serving's predict JSON <-> named numpy tensors.

Request bodies (``POST ...:predict``)::

    {"signature_name": "...", "instances": [...]}   # row format: one entry per example
    {"signature_name": "...", "inputs": ...}        # columnar format: whole tensors
    {..., "output_filter": ["depth", ...]}          # optional: the outputs to compute and return

With a single named input an instance (or ``inputs``) is the value itself; with several it is an
object ``{input_name: value}``. Binary strings are ``{"b64": "<base64>"}``. Values are checked
against the signature's dtypes and shapes (``None`` dims are free) and against the server's
``RequestLimits`` (rows, pixels; see ``request_limits``) before the model runs. ``output_filter``
is the field of TF Serving's gRPC ``PredictRequest``: the output names to compute; without it the
signature's default outputs are returned (see ``select_outputs``).

Responses: row requests get ``{"predictions": [...]}`` with one entry per example (an object of
outputs per example when the signature has several outputs); columnar requests get
``{"outputs": {name: tensor}}``, or the bare tensor when there is a single output. String outputs
whose name ends in ``_bytes`` are returned as ``{"b64": ...}``, as TF Serving does. Non-finite floats
are written as the ``NaN``/``Infinity`` tokens TF Serving emits.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from serving.contract import SERVING_DEFAULT
from serving.errors import invalid_argument
from serving.request_limits import LimitChecker, RequestLimits, nested_shape

ROW_KEY = "instances"
COLUMNAR_KEY = "inputs"
SIGNATURE_KEY = "signature_name"
OUTPUT_FILTER_KEY = "output_filter"
DEFAULT_SIGNATURE = SERVING_DEFAULT
B64_KEY = "b64"
BINARY_OUTPUT_SUFFIX = "_bytes"
STRING_DTYPE = "string"
# Deepest list nesting accepted for one input (numpy allows 64 dimensions).
MAX_INPUT_RANK = 32
_REQUEST_KEYS = {ROW_KEY, COLUMNAR_KEY, SIGNATURE_KEY, OUTPUT_FILTER_KEY}
# numpy dtype kinds a JSON value may have for each kind of tensor dtype.
_ACCEPTED_KINDS = {"f": "biuf", "c": "biufc", "i": "biu", "u": "biu", "b": "b"}


@dataclass(frozen=True)
class InputSpec:
    """What a signature input accepts.

    Attributes:
        dtype: numpy dtype name (``"float32"``, ``"int64"``...) or ``"string"``.
        shape: Dimensions with ``None`` for any size, batch first; ``None`` for unknown rank.
    """

    dtype: str
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class PredictRequest:
    """A decoded predict request.

    Attributes:
        signature_name: The signature to run.
        row_format: True for ``instances``, False for ``inputs``.
        inputs: Input name -> tensor (string tensors are object arrays of ``bytes``).
        output_filter: The requested output names, or None for the default outputs.
    """

    signature_name: str
    row_format: bool
    inputs: dict[str, np.ndarray]
    output_filter: tuple[str, ...] | None = None


def parse_json_body(body: bytes) -> dict:
    """Parses a request body that must be a JSON object.

    Raises:
        ServingError: INVALID_ARGUMENT (400) for invalid UTF-8/JSON, nesting deeper than the parser's
            recursion limit, integers over Python's int-string conversion limit (4300 digits), or a
            non-object document.
    """
    try:
        payload = json.loads(body)
    except RecursionError as error:
        raise invalid_argument(f"Malformed JSON request body: nested too deeply ({error})") from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many integer digits
        raise invalid_argument(f"Malformed JSON request body: {error}") from error
    if not isinstance(payload, dict):
        raise invalid_argument(f"Request body must be a JSON object, got {type(payload).__name__}")
    return payload


def signature_name_of(payload: Mapping) -> str:
    """The requested signature (``serving_default`` when absent or empty)."""
    name = payload.get(SIGNATURE_KEY) or DEFAULT_SIGNATURE
    if not isinstance(name, str):
        raise invalid_argument(f"'{SIGNATURE_KEY}' must be a string, got {type(name).__name__}")
    return name


def decode_predict_request(
    payload: Mapping, specs: Mapping[str, InputSpec], limits: RequestLimits | None = None
) -> PredictRequest:
    """Builds the input tensors of a predict request.

    Args:
        payload: The parsed JSON object.
        specs: The signature's inputs, name -> spec.
        limits: Rows and pixels the request may have (default: ``RequestLimits()``).

    Returns:
        The decoded request.

    Raises:
        ServingError: INVALID_ARGUMENT (400) for unknown or missing keys and inputs, bad base64,
            values of the wrong type, ragged nesting, shapes the signature does not accept, a
            malformed ``output_filter`` or an unreadable image header; PAYLOAD_TOO_LARGE (413) for
            a request over ``limits``, checked before its tensors are built or images decoded.
    """
    unknown = sorted(set(payload) - _REQUEST_KEYS)
    if unknown:
        raise invalid_argument(
            f"Unknown request keys {unknown}; expected '{ROW_KEY}' or '{COLUMNAR_KEY}' and optional "
            f"'{SIGNATURE_KEY}' and '{OUTPUT_FILTER_KEY}'"
        )
    if (ROW_KEY in payload) == (COLUMNAR_KEY in payload):
        raise invalid_argument(
            f"Request must have exactly one of '{ROW_KEY}' (row format) or '{COLUMNAR_KEY}' (columnar format)"
        )
    signature_name = signature_name_of(payload)
    output_filter = _output_filter_of(payload)
    checker = LimitChecker(limits or RequestLimits())
    if ROW_KEY in payload:
        values = _rows_to_columns(payload[ROW_KEY], specs, checker)
    else:
        values = _named_values(payload[COLUMNAR_KEY], specs, where=f"'{COLUMNAR_KEY}'")
    tensors = {name: _to_tensor(values[name], specs[name], name, checker) for name in specs}
    return PredictRequest(
        signature_name=signature_name,
        row_format=ROW_KEY in payload,
        inputs=tensors,
        output_filter=output_filter,
    )


def _output_filter_of(payload: Mapping) -> tuple[str, ...] | None:
    value = payload.get(OUTPUT_FILTER_KEY)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise invalid_argument(
            f"'{OUTPUT_FILTER_KEY}' must be a non-empty list of output names (strings), got {type(value).__name__}"
        )
    return tuple(dict.fromkeys(value))


def select_outputs(
    available: Sequence[str], output_filter: Sequence[str] | None, opt_in: Collection[str]
) -> tuple[str, ...]:
    """The outputs a request gets.

    Args:
        available: The signature's output names.
        output_filter: The request's ``output_filter``, or None.
        opt_in: Outputs computed only when ``output_filter`` names them (``--opt_in_outputs``).

    Returns:
        ``output_filter`` when given, else every available output not in ``opt_in`` (all of them
        when that would leave none), sorted.

    Raises:
        ServingError: INVALID_ARGUMENT (400) when ``output_filter`` names an output the signature lacks.
    """
    if output_filter is not None:
        unknown = sorted(set(output_filter) - set(available))
        if unknown:
            raise invalid_argument(
                f"'{OUTPUT_FILTER_KEY}' names unknown outputs {unknown}; the signature has {sorted(available)}"
            )
        return tuple(sorted(output_filter))
    default = sorted(set(available) - set(opt_in))
    return tuple(default or sorted(available))


def _is_b64(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {B64_KEY}


def _named_values(value: object, specs: Mapping[str, InputSpec], where: str) -> dict[str, object]:
    """Splits a value into per-input values: an object keyed by input names, or the single input itself."""
    names = sorted(specs)
    if isinstance(value, dict) and not _is_b64(value):
        unknown = sorted(set(value) - set(names))
        missing = sorted(set(names) - set(value))
        if unknown or missing:
            raise invalid_argument(
                f"{where}: unknown inputs {unknown}, missing inputs {missing}; the signature takes {names}"
            )
        return dict(value)
    if len(names) != 1:
        raise invalid_argument(f"{where} must be an object with the inputs {names}")
    return {names[0]: value}


def _rows_to_columns(
    instances: object, specs: Mapping[str, InputSpec], checker: LimitChecker
) -> dict[str, list]:
    if not isinstance(instances, list) or not instances:
        raise invalid_argument(f"'{ROW_KEY}' must be a non-empty list with one entry per example")
    checker.check_rows(len(instances), f"'{ROW_KEY}'")
    columns: dict[str, list] = {name: [] for name in specs}
    for index, instance in enumerate(instances):
        for name, value in _named_values(instance, specs, where=f"'{ROW_KEY}'[{index}]").items():
            columns[name].append(value)
    return columns


def _to_tensor(value: object, spec: InputSpec, name: str, checker: LimitChecker) -> np.ndarray:
    claimed = nested_shape(value)  # checked against the limits before any tensor is built
    if len(claimed) > MAX_INPUT_RANK:
        raise invalid_argument(
            f"input '{name}' is nested {len(claimed)} lists deep; at most {MAX_INPUT_RANK}"
        )
    if claimed:
        checker.check_rows(claimed[0], f"input '{name}'")
    if spec.dtype == STRING_DTYPE:
        array = _string_tensor(value, name, max_rank=len(claimed))
        for index, item in enumerate(array.reshape(-1)):
            checker.check_encoded(item, name, index)
    else:
        checker.check_numeric(claimed, name)
        array = _numeric_tensor(value, np.dtype(spec.dtype), name)
    _check_shape(array.shape, spec.shape, name)
    return array


def _numeric_tensor(value: object, dtype: np.dtype, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nesting
        raise invalid_argument(
            f"input '{name}': values are not a rectangular (nested) list: {error}"
        ) from error
    accepted = _ACCEPTED_KINDS.get(dtype.kind, "")
    if array.dtype.kind not in accepted:
        raise invalid_argument(
            f"input '{name}' has dtype {dtype.name}: expected JSON {'booleans' if dtype.kind == 'b' else 'numbers'}"
            f" in a rectangular (nested) list, got {_describe(array)}"
        )
    return array.astype(dtype, copy=False)


def _describe(array: np.ndarray) -> str:
    if array.dtype.kind == "O":
        return "objects or ragged lists"
    return {"U": "strings", "f": "non-integer numbers", "b": "booleans"}.get(
        array.dtype.kind, str(array.dtype)
    )


def _string_tensor(value: object, name: str, max_rank: int) -> np.ndarray:
    """Nested lists of strings / ``{"b64": ...}`` -> object array of bytes (NUL bytes preserved).

    Lists nested deeper than ``max_rank`` are refused (ragged), which also bounds the recursion.
    """
    flat: list[bytes] = []
    shape = _collect_strings(value, flat, name, max_rank)
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


def _collect_strings(value: object, flat: list[bytes], name: str, depth_left: int) -> tuple[int, ...]:
    if isinstance(value, list):
        if depth_left <= 0:
            raise invalid_argument(
                f"input '{name}': ragged nested list (nested deeper than its first element)"
            )
        shapes = {_collect_strings(item, flat, name, depth_left - 1) for item in value}
        if len(shapes) > 1:
            raise invalid_argument(f"input '{name}': ragged nested list (element shapes {sorted(shapes)})")
        return (len(value), *(shapes.pop() if shapes else ()))
    if isinstance(value, str):
        flat.append(value.encode("utf-8"))
        return ()
    if _is_b64(value) and isinstance(value[B64_KEY], str):
        try:
            flat.append(base64.b64decode(value[B64_KEY], validate=True))
        except (binascii.Error, ValueError) as error:
            raise invalid_argument(
                f"input '{name}': invalid base64 in {{\"{B64_KEY}\": ...}}: {error}"
            ) from error
        return ()
    raise invalid_argument(
        f'input \'{name}\' has dtype string: expected strings or {{"{B64_KEY}": "..."}}, got {type(value).__name__}'
    )


def _check_shape(shape: tuple[int, ...], expected: tuple[int | None, ...] | None, name: str) -> None:
    if expected is None:
        return
    compatible = len(shape) == len(expected) and all(
        want is None or want == got for got, want in zip(shape, expected, strict=True)
    )
    if not compatible:
        wanted = "[" + ", ".join("?" if dim is None else str(dim) for dim in expected) + "]"
        raise invalid_argument(
            f"input '{name}' has shape {list(shape)}; the signature expects {wanted} (? = any size)"
        )
    if expected and shape[0] == 0:
        raise invalid_argument(f"input '{name}' is empty (batch size 0)")


def encode_predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """The JSON object TF Serving returns for these outputs.

    Args:
        outputs: Output name -> tensor, batch first for row-format requests.
        row_format: Whether the request used ``instances``.

    Returns:
        ``{"predictions": [...]}`` or ``{"outputs": ...}``.

    Raises:
        ServingError: INVALID_ARGUMENT when a row-format request gets outputs of differing batch sizes.
    """
    values = {name: _to_json_value(array, name) for name, array in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    sizes = {name: np.shape(array)[0] if np.ndim(array) else None for name, array in outputs.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise invalid_argument(
            f"outputs have no common batch size {sizes}; use the columnar '{COLUMNAR_KEY}' format"
        )
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    batch = next(iter(sizes.values()))
    return {"predictions": [{name: value[index] for name, value in values.items()} for index in range(batch)]}


def _to_json_value(array: np.ndarray, name: str) -> object:
    array = np.asarray(array)
    if array.dtype.kind not in "OSU":
        return array.tolist()
    binary = name.endswith(BINARY_OUTPUT_SUFFIX)
    encode = (lambda item: {B64_KEY: base64.b64encode(item).decode("ascii")}) if binary else _text
    flat = [encode(item) for item in array.reshape(-1)]
    return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim else flat[0]


def _text(item: bytes | str) -> str:
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else item


def dumps(document: object) -> bytes:
    """Serialises a response; non-finite floats become ``NaN``/``Infinity`` like TF Serving's JSON."""
    return json.dumps(document, allow_nan=True, separators=(",", ":")).encode("utf-8")

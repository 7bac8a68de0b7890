"""One loaded SavedModel version: its signatures, their TF Serving metadata, and running them.

A model base path holds one directory per integer version (TF Serving's layout)::

    <model_base_path>/<version>/saved_model.pb
                               /variables/...

Loading uses only ``tf.saved_model.load``; nothing of the project's model code is imported, so
any SavedModel with the same signatures is served the same way.

A request may ask for a subset of a signature's outputs (``output_filter``). The signature is then
called inside a ``tf.function`` that returns only those outputs; TensorFlow inlines the signature
and prunes the ops no requested output depends on, so an unrequested output (e.g. ``depth_full``,
[N, H, W] at the input size) is never computed -- as TF Serving's session run fetches only the
requested tensors.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import json_format, text_format
from tensorflow.core.protobuf import saved_model_pb2

from serving.errors import HTTP_STATUS_BY_CODE, ServingError, invalid_argument
from serving.request_codec import STRING_DTYPE, InputSpec

SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
SERVE_TAG = "serve"
# Lines of a TF runtime error that describe where it happened rather than what went wrong.
_OP_ERROR_NOISE = re.compile(r"^(\s|Graph execution error:|Detected at node|<stack traces unavailable>)")
_CODE_BY_TF_ERROR = {
    getattr(tf.errors, code): code for code in HTTP_STATUS_BY_CODE if hasattr(tf.errors, code)
}


def has_saved_model(directory: Path) -> bool:
    """True when ``directory`` contains ``saved_model.pb`` or ``saved_model.pbtxt``."""
    return (directory / SAVED_MODEL_PB).is_file() or (directory / SAVED_MODEL_PBTXT).is_file()


def find_versions(base_path: str | Path) -> dict[int, Path]:
    """The complete versions under a model base path.

    Args:
        base_path: ``<model_base_path>`` (may not exist yet).

    Returns:
        Version -> directory, for subdirectories named by a non-negative integer that hold a
        SavedModel. Other entries (staging directories, files, half-copied versions without
        ``saved_model.pb``) are ignored.
    """
    base = Path(base_path)
    try:
        children = list(base.iterdir())
    except OSError:
        return {}
    return {
        int(child.name): child
        for child in children
        if child.name.isdigit() and child.is_dir() and has_saved_model(child)
    }


def resolve_saved_model_dir(path: str | Path) -> Path:
    """A SavedModel directory given either the directory itself or a versioned base path.

    Args:
        path: ``.../<version>/`` (holding ``saved_model.pb``) or ``<model_base_path>``.

    Returns:
        ``path`` itself, or its highest-numbered version.

    Raises:
        FileNotFoundError: If neither layout holds a SavedModel (the message names ``path``).
    """
    path = Path(path)
    if has_saved_model(path):
        return path
    versions = find_versions(path)
    if not versions:
        raise FileNotFoundError(
            f"{path}: no SavedModel (expected {path}/{SAVED_MODEL_PB} or {path}/<version>/{SAVED_MODEL_PB})"
        )
    return versions[max(versions)]


def read_signature_defs(directory: Path) -> dict[str, dict]:
    """The ``serve`` MetaGraph's SignatureDefs as TF Serving prints them (proto JSON, field names kept).

    Args:
        directory: A SavedModel directory.

    Returns:
        Signature name -> ``{"inputs": ..., "outputs": ..., "method_name": ..., "defaults": ...}``,
        with tensor names (``serving_default_images:0``), ``DT_*`` dtypes and ``tensor_shape.dim``
        sizes (``"-1"`` = any).
    """
    saved_model = saved_model_pb2.SavedModel()
    if (directory / SAVED_MODEL_PB).is_file():
        saved_model.ParseFromString((directory / SAVED_MODEL_PB).read_bytes())
    else:
        text_format.Parse((directory / SAVED_MODEL_PBTXT).read_text(encoding="utf-8"), saved_model)
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return {
                name: json_format.MessageToDict(
                    signature, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
                )
                for name, signature in sorted(meta_graph.signature_def.items())
            }
    raise ValueError(f"{directory}: no MetaGraph tagged '{SERVE_TAG}'")


def _input_spec(spec: tf.TensorSpec) -> InputSpec:
    dtype = STRING_DTYPE if spec.dtype == tf.string else np.dtype(spec.dtype.as_numpy_dtype).name
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return InputSpec(dtype=dtype, shape=shape)


@dataclass(frozen=True)
class Signature:
    """A runnable signature.

    Attributes:
        name: Signature key (``serving_default``...).
        function: The concrete function; takes the inputs as keyword tensors.
        input_specs: Input name -> accepted dtype and shape.
        tf_dtypes: Input name -> ``tf.DType`` used to build the input tensors.
        output_names: The outputs the function returns, sorted.
    """

    name: str
    function: object
    input_specs: Mapping[str, InputSpec]
    tf_dtypes: Mapping[str, tf.DType]
    output_names: tuple[str, ...]


def _output_subset_function(function, output_names: Sequence[str]):
    """A callable like ``function`` (keyword tensors in) that computes and returns only ``output_names``."""
    specs = function.structured_input_signature[1]
    input_names = sorted(specs)

    def call(*tensors):
        outputs = function(**dict(zip(input_names, tensors, strict=True)))
        return {name: outputs[name] for name in output_names}

    concrete = tf.function(
        call, input_signature=[specs[name] for name in input_names]
    ).get_concrete_function()
    return lambda **tensors: concrete(*(tensors[name] for name in input_names))


def op_error_message(error: tf.errors.OpError) -> str:
    """A TF runtime error's message without graph-location and stack-trace lines."""
    lines = [line.split("\t [[")[0].strip() for line in error.message.splitlines() if line.strip()]
    useful = [line for line in lines if line and not _OP_ERROR_NOISE.match(line)]
    return " ".join(useful) or error.message


class Servable:
    """A loaded model version.

    Requests keep a reference to the ``Servable`` they resolved, so a version unloaded by the
    registry stays alive until its in-flight requests finish.

    Args:
        name: Model name.
        version: Integer version.
        path: The version directory.
    """

    def __init__(self, name: str, version: int, path: Path):
        self.name = name
        self.version = version
        self.path = path
        self._module = tf.saved_model.load(str(path), tags=[SERVE_TAG])
        self.signature_defs = read_signature_defs(path)
        self.signatures: dict[str, Signature] = {}
        for key, function in self._module.signatures.items():
            specs = function.structured_input_signature[1]
            self.signatures[key] = Signature(
                name=key,
                function=function,
                input_specs={input_name: _input_spec(spec) for input_name, spec in specs.items()},
                tf_dtypes={input_name: spec.dtype for input_name, spec in specs.items()},
                output_names=tuple(sorted(function.structured_outputs)),
            )
        self._subset_functions: dict[tuple[str, tuple[str, ...]], object] = {}
        self._subset_lock = threading.Lock()

    def signature(self, name: str) -> Signature:
        """The runnable signature ``name``.

        Raises:
            ServingError: INVALID_ARGUMENT (400), as TF Serving, when the model has no such signature.
        """
        if name not in self.signatures:
            raise invalid_argument(
                f'Serving signature name: "{name}" not found in signature def; available: {sorted(self.signatures)}'
            )
        return self.signatures[name]

    def _function(self, signature: Signature, output_names: Sequence[str] | None):
        """The signature's function, or one computing only ``output_names`` (traced once, cached)."""
        wanted = tuple(sorted(output_names)) if output_names is not None else signature.output_names
        unknown = sorted(set(wanted) - set(signature.output_names))
        if unknown:
            raise invalid_argument(
                f"signature {signature.name!r} has no outputs {unknown}; it has {list(signature.output_names)}"
            )
        if wanted == signature.output_names:
            return signature.function
        key = (signature.name, wanted)
        with self._subset_lock:
            if key not in self._subset_functions:
                self._subset_functions[key] = _output_subset_function(signature.function, wanted)
            return self._subset_functions[key]

    def run(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_names: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs a signature (blocking; call it off the event loop).

        Args:
            signature_name: The signature key.
            inputs: Input name -> tensor matching the signature (see ``request_codec``).
            output_names: The outputs to compute and return (default: all); the others are not
                computed.

        Returns:
            Output name -> numpy array (for our depth signatures ``depth`` [N, h, w] metres,
            ``log_depth`` [N, h, w] and optionally ``depth_full`` [N, H, W]).

        Raises:
            ServingError: With the TF error's canonical code (e.g. INVALID_ARGUMENT for
                undecodable image bytes) and its message without graph-location noise.
        """
        signature = self.signature(signature_name)
        function = self._function(signature, output_names)
        tensors = {
            name: tf.constant(value, dtype=signature.tf_dtypes[name]) for name, value in inputs.items()
        }
        try:
            outputs = function(**tensors)
        except tf.errors.OpError as error:
            raise ServingError(
                _CODE_BY_TF_ERROR.get(error.error_code, "UNKNOWN"), op_error_message(error)
            ) from error
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def metadata(self) -> dict:
        """TF Serving's ``GetModelMetadataResponse`` JSON for this version."""
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": self.signature_defs}},
        }

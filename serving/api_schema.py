"""Pydantic models that document the REST API in ``/openapi.json``.

They describe TF Serving's JSON; the handlers build the JSON themselves (request bodies are read
with a size limit and decoded against the model's signature, which a static schema cannot
express), so these models -- and the predict body's JSON schema, written out because it has
alternatives -- are used for documentation (and schema-based fuzzing) only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    """Every failure: ``{"error": "<message>"}`` with a 4xx/5xx status."""

    error: str = Field(description="What went wrong, naming the field, input or model concerned.")


class Status(BaseModel):
    error_code: str = Field(description='Canonical code, "OK" unless loading failed.')
    error_message: str = Field(description="Load error, or empty.")


class ModelVersionStatus(BaseModel):
    version: str = Field(description="Integer version, as a string (proto int64 JSON).")
    state: str = Field(description="LOADING, AVAILABLE or END (unloaded or failed to load).")
    status: Status


class ModelStatusResponse(BaseModel):
    """``GetModelStatusResponse``."""

    model_version_status: list[ModelVersionStatus]


class ModelSpec(BaseModel):
    name: str
    signature_name: str = Field(description='Always "" (metadata covers every signature).')
    version: str


class ModelMetadataResponse(BaseModel):
    """``GetModelMetadataResponse``: ``metadata.signature_def.signature_def`` maps each signature name
    to ``{"inputs": {name: TensorInfo}, "outputs": {...}, "method_name": ..., "defaults": {}}`` where a
    TensorInfo is ``{"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1", "name": ""}],
    "unknown_rank": false}, "name": "serving_default_images:0"}``."""

    model_spec: ModelSpec
    metadata: dict[str, Any]


_IMAGE = {
    "type": "array",
    "description": "One image, float [H, W, 3], RGB 0..255 (serving_default's 'images').",
    "minItems": 1,
    "items": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "number"}},
    },
}
_B64 = {
    "type": "object",
    "description": "Binary string: base64 of PNG/JPEG bytes (predict_image_bytes' 'image_bytes').",
    "properties": {"b64": {"type": "string", "contentEncoding": "base64"}},
    "required": ["b64"],
    "additionalProperties": False,
}
_NAMED_INPUTS = {
    "type": "object",
    "description": "{input_name: value}, for signatures with several inputs.",
    "additionalProperties": True,
}
# The predict body (a JSON schema; the signature decides the inputs' exact dtypes and shapes).
PREDICT_REQUEST_SCHEMA = {
    "title": "PredictRequest",
    "type": "object",
    "description": "TF Serving's predict request: exactly one of 'instances' (row format) or 'inputs' "
    "(columnar format). Requests over --max_rows_per_request, --max_pixels_per_image or "
    "--max_pixels_per_request get 413.",
    "properties": {
        "signature_name": {
            "type": "string",
            "description": 'Signature to run: "serving_default" (input images float32 [N, H, W, 3], RGB '
            '0..255) or "predict_image_bytes" (input image_bytes string [N], PNG/JPEG as {"b64": ...}).',
            "examples": ["serving_default", "predict_image_bytes"],
        },
        "instances": {
            "type": "array",
            "minItems": 1,
            "description": "Row format: one entry per example; the input value itself, or "
            "{input_name: value} when the signature has several inputs.",
            "items": {"anyOf": [_IMAGE, _B64, _NAMED_INPUTS]},
        },
        "inputs": {
            "description": "Columnar format: the whole input tensor, or {input_name: tensor}.",
            "anyOf": [
                {"type": "array", "minItems": 1, "items": {"anyOf": [_IMAGE, _B64]}},
                _NAMED_INPUTS,
            ],
        },
        "output_filter": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string"},
            "description": "Outputs to compute and return (TF Serving's PredictRequest.output_filter). "
            "Default: every output except those in --opt_in_outputs (depth_full), i.e. depth and "
            "log_depth.",
            "examples": [["depth"], ["depth", "depth_full"]],
        },
    },
    "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
}


class PredictResponse(BaseModel):
    """``predictions`` for row requests, ``outputs`` for columnar requests (never both).

    Outputs of the depth signatures: ``depth`` float32 [N, h, w] metres, ``log_depth`` [N, h, w],
    and, when named in ``output_filter``, ``depth_full`` [N, H, W] metres at the input image size."""

    predictions: Any = Field(default=None, description="One entry per example: {output_name: value}.")
    outputs: Any = Field(
        default=None, description="{output_name: tensor}, or the tensor for a single output."
    )

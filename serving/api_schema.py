"""Pydantic models that document the REST API in ``/openapi.json``.

They describe TF Serving's JSON; the handlers build the JSON themselves (request bodies are read
with a size limit and decoded against the model's signature, which a static schema cannot
express), so these models are used for documentation only.
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


class PredictRequest(BaseModel):
    """A predict request: exactly one of ``instances`` or ``inputs``."""

    signature_name: str | None = Field(
        default=None,
        description='Signature to run: "serving_default" (input images float32 [N, H, W, 3], RGB 0..255) '
        'or "predict_image_bytes" (input image_bytes string [N], PNG/JPEG as {"b64": ...}).',
    )
    instances: Any = Field(
        default=None,
        description="Row format: a list with one entry per example; the input value itself, or "
        "{input_name: value} when the signature has several inputs.",
    )
    inputs: Any = Field(
        default=None,
        description="Columnar format: the whole input tensor, or {input_name: tensor}.",
    )


class PredictResponse(BaseModel):
    """``predictions`` for row requests, ``outputs`` for columnar requests (never both).

    Outputs of the depth signatures: ``depth`` float32 [N, h, w] metres, ``log_depth`` [N, h, w],
    optionally ``depth_full`` [N, H, W] metres at the input image size."""

    predictions: Any = Field(default=None, description="One entry per example: {output_name: value}.")
    outputs: Any = Field(
        default=None, description="{output_name: tensor}, or the tensor for a single output."
    )

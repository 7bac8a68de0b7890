"""TF Serving's REST API as a FastAPI app.

Endpoints (``{selector}`` is empty, ``/versions/{version}`` or ``/labels/{label}``)::

    GET  /v1/models/{model_name}{selector}             model status
    GET  /v1/models/{model_name}{selector}/metadata    signature defs of the version
    POST /v1/models/{model_name}{selector}:predict     run a signature
    GET  /monitoring/prometheus/metrics                Prometheus metrics
    GET  /openapi.json                                 this API's description

Path segments match TF Serving's ``[^/:]+``, which is what lets ``/v1/models/depth:predict``
route to predict rather than to the status of a model called ``depth:predict``. Request data is
only ever used as a key into the configured models, never as a file path; names that could be
path components (``..``) are refused with 404 before the lookup. Unknown paths under ``/v1/``
(including a ``%2F`` that decodes to a separator) and wrong methods get TF Serving's 400
``Malformed request``; other unknown paths get 404. Every error body is ``{"error": "..."}``.

Model calls, JSON decoding and encoding run on a worker pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import api_schema
from serving.access_log import STATE_ERROR_CODE, STATE_MODEL, STATE_VERSION, AccessLogMiddleware
from serving.batching import InferenceRunner
from serving.errors import PAYLOAD_TOO_LARGE, ServingError, invalid_argument, not_found
from serving.metrics import CONTENT_TYPE, Metrics
from serving.model_config import is_valid_model_name
from serving.model_registry import ModelRegistry
from serving.request_codec import (
    PredictRequest,
    decode_predict_request,
    dumps,
    encode_predict_response,
    parse_json_body,
    signature_name_of,
)
from serving.servable import Servable

JSON_MEDIA_TYPE = "application/json"
METRICS_PATH = "/monitoring/prometheus/metrics"
API_PREFIX = "/v1/"
SEGMENT = "segment"
MODEL_PATH = f"/v1/models/{{model_name:{SEGMENT}}}"
# Optional version/label selector after the model name -> the path parameters it adds.
SELECTORS = {
    "": (),
    f"/versions/{{version:{SEGMENT}}}": ("version",),
    f"/labels/{{label:{SEGMENT}}}": ("label",),
}
_PARAMETER_DOCS = {
    "model_name": "Model name from --model_name or the model config file.",
    "version": "Integer model version (default: the highest available).",
    "label": "Version label from the model config file's version_labels.",
}
_ERROR_RESPONSES = {
    400: {"model": api_schema.ErrorResponse, "description": "Malformed request (INVALID_ARGUMENT)."},
    404: {"model": api_schema.ErrorResponse, "description": "Unknown model, version or label (NOT_FOUND)."},
}


class _SegmentConvertor(Convertor):
    """One path segment without ':' (TF Serving's ``[^/:]+``)."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor(SEGMENT, _SegmentConvertor())


def _json_response(document: object, status_code: int = 200) -> Response:
    return Response(content=dumps(document), status_code=status_code, media_type=JSON_MEDIA_TYPE)


def _error_response(status_code: int, message: str) -> Response:
    return _json_response({"error": message}, status_code)


def _selector(request: Request) -> tuple[str, int | None, str | None]:
    """(model name, version, label) from the path; records the model for the access log."""
    params = request.path_params
    name = params["model_name"]
    if not is_valid_model_name(name):
        raise not_found(f"Servable not found for request: invalid model name {name!r}")
    setattr(request.state, STATE_MODEL, name)
    version = params.get("version")
    if version is not None:
        if not version.isdigit():
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        version = int(version)
    return name, version, params.get("label")


async def _read_body(request: Request, max_body_bytes: int) -> bytes:
    """The request body, refusing more than ``max_body_bytes`` (declared or streamed) with 413."""
    too_large = ServingError(
        PAYLOAD_TOO_LARGE,
        f"Request body exceeds the server's limit of {max_body_bytes} bytes (--max_body_bytes)",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, servable: Servable) -> PredictRequest:
    payload = parse_json_body(body)
    signature = servable.signature(signature_name_of(payload))
    return decode_predict_request(payload, signature.input_specs)


def _path_parameters(names: tuple[str, ...]) -> list[dict]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": _PARAMETER_DOCS[name],
        }
        for name in ("model_name", *names)
    ]


def create_app(
    registry: ModelRegistry,
    runner: InferenceRunner,
    metrics: Metrics,
    executor: Executor,
    max_body_bytes: int,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """Builds the REST app.

    Args:
        registry: The served models.
        runner: Runs signature calls (with or without batching).
        metrics: Request and batching metrics.
        executor: Worker pool for JSON decoding/encoding.
        max_body_bytes: Largest accepted predict body; larger ones get 413.
        on_shutdown: Called once the server has stopped accepting requests and running ones
            have finished (graceful shutdown).

    Returns:
        The ASGI application.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title="keras-depth model server",
        description="TensorFlow Serving-compatible REST API (predict, model status, model metadata).",
        version="1",
    )
    app.add_middleware(AccessLogMiddleware, metrics=metrics)

    async def model_status(request: Request) -> Response:
        name, version, label = _selector(request)
        return _json_response({"model_version_status": registry.status(name, version, label)})

    async def model_metadata(request: Request) -> Response:
        servable = registry.resolve(*_selector(request))
        setattr(request.state, STATE_VERSION, str(servable.version))
        return _json_response(servable.metadata())

    async def predict(request: Request) -> Response:
        name, version, label = _selector(request)
        body = await _read_body(request, max_body_bytes)
        servable = registry.resolve(name, version, label)
        setattr(request.state, STATE_VERSION, str(servable.version))
        loop = asyncio.get_running_loop()
        decoded = await loop.run_in_executor(executor, _decode, body, servable)
        outputs = await runner.run(servable, decoded.signature_name, decoded.inputs)
        content = await loop.run_in_executor(
            executor, lambda: dumps(encode_predict_response(outputs, decoded.row_format))
        )
        return Response(content=content, media_type=JSON_MEDIA_TYPE)

    predict_body = {
        "requestBody": {
            "required": True,
            "content": {JSON_MEDIA_TYPE: {"schema": api_schema.PredictRequest.model_json_schema()}},
        }
    }
    for suffix, names in SELECTORS.items():
        base = MODEL_PATH + suffix
        parameters = {"parameters": _path_parameters(names)}
        app.add_api_route(
            base,
            model_status,
            methods=["GET"],
            summary="Model status" + (f" ({names[0]})" if names else " (all versions)"),
            responses={200: {"model": api_schema.ModelStatusResponse}, **_ERROR_RESPONSES},
            openapi_extra=parameters,
        )
        app.add_api_route(
            base + "/metadata",
            model_metadata,
            methods=["GET"],
            summary="Model metadata (signature defs)" + (f" ({names[0]})" if names else " (highest version)"),
            responses={200: {"model": api_schema.ModelMetadataResponse}, **_ERROR_RESPONSES},
            openapi_extra=parameters,
        )
        app.add_api_route(
            base + ":predict",
            predict,
            methods=["POST"],
            summary="Predict" + (f" ({names[0]})" if names else " (highest version)"),
            responses={
                200: {"model": api_schema.PredictResponse},
                **_ERROR_RESPONSES,
                413: {"model": api_schema.ErrorResponse, "description": "Body larger than --max_body_bytes."},
            },
            openapi_extra={**parameters, **predict_body},
        )

    @app.get(
        METRICS_PATH, summary="Prometheus metrics (text exposition format)", response_class=PlainTextResponse
    )
    async def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, error: ServingError) -> Response:
        setattr(request.state, STATE_ERROR_CODE, error.code)
        return _error_response(error.http_status, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith(API_PREFIX) and error.status_code in (404, 405):
            return _error_response(400, f"Malformed request: {request.method} {request.url.path}")
        return _error_response(error.status_code, f"{error.detail}: {request.method} {request.url.path}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        return _error_response(500, f"Internal error: {type(error).__name__}: {error}")

    return app

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

Predict requests are bounded before the model runs (``ApiOptions``): the body must arrive within
``body_timeout_s`` (408, connection closed) and be at most ``max_body_bytes`` (413); rows and
pixels are checked against ``limits`` while decoding (413, see ``request_limits``). A client that
disconnects before its answer is sent is logged with status 499 (TF Serving's ``CANCELLED``), not
as a server error, and a request whose client is gone is not run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from serving import api_schema
from serving.access_log import STATE_ERROR_CODE, STATE_MODEL, STATE_VERSION, AccessLogMiddleware
from serving.batching import InferenceRunner
from serving.contract import DEPTH_FULL_OUTPUT
from serving.errors import (
    PAYLOAD_TOO_LARGE,
    REQUEST_TIMEOUT,
    ServingError,
    invalid_argument,
    not_found,
)
from serving.metrics import CONTENT_TYPE, Metrics
from serving.model_config import is_valid_model_name
from serving.model_registry import ModelRegistry
from serving.request_codec import (
    PredictRequest,
    decode_predict_request,
    dumps,
    encode_predict_response,
    parse_json_body,
    select_outputs,
    signature_name_of,
)
from serving.request_limits import RequestLimits
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
_PREDICT_ERROR_RESPONSES = {
    408: {
        "model": api_schema.ErrorResponse,
        "description": "Body not received within --request_body_timeout_seconds.",
    },
    413: {
        "model": api_schema.ErrorResponse,
        "description": "Body larger than --max_body_bytes, or more rows or pixels than "
        "--max_rows_per_request, --max_pixels_per_image or --max_pixels_per_request.",
    },
}
# Headers of the 408 to a body that did not arrive in time: the rest of it is not waited for.
_CLOSE_HEADERS = {"Connection": "close"}


@dataclass(frozen=True)
class ApiOptions:
    """Bounds and defaults of predict requests (server flags of the same names).

    Attributes:
        max_body_bytes: Largest accepted body; larger ones get 413 (``--max_body_bytes``).
        body_timeout_s: Seconds to receive the whole body after the headers; slower clients get 408
            and the connection is closed (``--request_body_timeout_seconds``).
        limits: Rows and pixels per request (``--max_rows_per_request`` and the pixel limits).
        opt_in_outputs: Outputs computed only when a request names them in ``output_filter``
            (``--opt_in_outputs``, default ``depth_full``).
    """

    max_body_bytes: int = 64 * 1024 * 1024
    body_timeout_s: float = 30.0
    limits: RequestLimits = field(default_factory=RequestLimits)
    opt_in_outputs: Collection[str] = (DEPTH_FULL_OUTPUT,)


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


def _cancelled(when: str) -> ServingError:
    return ServingError("CANCELLED", f"Client disconnected {when}")


async def _read_body(request: Request, options: ApiOptions) -> bytes:
    """The request body, refusing more than ``max_body_bytes`` (declared or streamed) with 413 and a
    body not complete within ``body_timeout_s`` with 408."""
    too_large = ServingError(
        PAYLOAD_TOO_LARGE,
        f"Request body exceeds the server's limit of {options.max_body_bytes} bytes (--max_body_bytes)",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > options.max_body_bytes:
        raise too_large
    chunks, size = [], 0
    try:
        async with asyncio.timeout(options.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > options.max_body_bytes:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError as error:
        raise ServingError(
            REQUEST_TIMEOUT,
            f"Request body not received within {options.body_timeout_s:g} s "
            f"(--request_body_timeout_seconds); got {size} bytes",
        ) from error
    except ClientDisconnect as error:
        raise _cancelled(f"after sending {size} bytes of the request body") from error
    return b"".join(chunks)


def _decode(body: bytes, servable: Servable, options: ApiOptions) -> tuple[PredictRequest, tuple[str, ...]]:
    """The decoded request and the outputs to compute for it."""
    payload = parse_json_body(body)
    signature = servable.signature(signature_name_of(payload))
    decoded = decode_predict_request(payload, signature.input_specs, options.limits)
    outputs = select_outputs(signature.output_names, decoded.output_filter, options.opt_in_outputs)
    return decoded, outputs


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
    options: ApiOptions,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """Builds the REST app.

    Args:
        registry: The served models.
        runner: Runs signature calls (with or without batching).
        metrics: Request and batching metrics.
        executor: Worker pool for JSON decoding/encoding.
        options: Predict request bounds and default outputs.
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
        body = await _read_body(request, options)
        servable = registry.resolve(name, version, label)
        setattr(request.state, STATE_VERSION, str(servable.version))
        loop = asyncio.get_running_loop()
        decoded, output_names = await loop.run_in_executor(executor, _decode, body, servable, options)
        if await request.is_disconnected():
            raise _cancelled("before the model ran")
        outputs = await runner.run(servable, decoded.signature_name, decoded.inputs, output_names)
        content = await loop.run_in_executor(
            executor, lambda: dumps(encode_predict_response(outputs, decoded.row_format))
        )
        if await request.is_disconnected():
            raise _cancelled("before the response was sent")
        return Response(content=content, media_type=JSON_MEDIA_TYPE)

    predict_body = {
        "requestBody": {
            "required": True,
            "content": {JSON_MEDIA_TYPE: {"schema": api_schema.PREDICT_REQUEST_SCHEMA}},
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
                **_PREDICT_ERROR_RESPONSES,
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
        response = _error_response(error.http_status, error.message)
        if error.code == REQUEST_TIMEOUT:
            response.headers.update(_CLOSE_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith(API_PREFIX) and error.status_code in (404, 405):
            return _error_response(400, f"Malformed request: {request.method} {request.url.path}")
        return _error_response(error.status_code, f"{error.detail}: {request.method} {request.url.path}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        return _error_response(500, f"Internal error: {type(error).__name__}: {error}")

    return app
